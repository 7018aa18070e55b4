// What a user relies on from a training, whichever trainer runs it: one suite, run against the local worker trainer and
// a GPU host's, both training for real (worker threads, TF.js) in one in-process world (tests/fixtures/hosts.ts), and
// watched only through the API as a client would: POST /trainings with `target`, the metrics stream, GET and DELETE.
// Epochs arrive in order, each complete; completion records the result and the saved model; a cancel in the middle of
// an epoch ends the training cancelled without finishing that epoch; a failure records failure_code and its reason.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { DEFAULTS } from "../src/schemas/defaults.ts";
import { STANDARD_FIELDS } from "../src/schemas/epoch.ts";
import type { TrainingSpecInput } from "../src/schemas/spec.ts";
import { BACKEND_NAMES } from "../src/trainer/types.ts";
import { startWorkerTraining } from "../src/trainer/worker_client.ts";
import { world } from "./fixtures/hosts.ts";
import { json, req, tempDir, until } from "./helpers.ts";
import { SseReader } from "./sse.ts";

const HOST = "http://gpu-a.test";
const FIXTURES = join(import.meta.dir, "fixtures");
/** The backend a training picks here: wasm unless forced, or unless a native TensorFlow package is installed. */
const EXPECTED_BACKEND =
  process.env.TRAINWATCH_BACKEND ||
  (["@tensorflow/tfjs-node", "@tensorflow/tfjs-node-gpu"].some(installed) ? null : "wasm");

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/** Every field of a built-in training's epoch record: the standard metrics, all present, between epoch and timestamp. */
const EPOCH_FIELDS = ["epoch", ...STANDARD_FIELDS, "timestamp"];

const apiModels = tempDir("trainwatch-contract-api-");
const hostModels = tempDir("trainwatch-contract-host-");
// Both sides train with the real worker; the API reads CSVs from the fixtures, as the host does.
const w = world([HOST], {
  start: startWorkerTraining,
  modelsDir: hostModels.dir,
  local: { start: startWorkerTraining, modelsDir: apiModels.dir, maxConcurrent: 2 },
  env: { TRAINWATCH_DATA_DIR: FIXTURES },
});
afterAll(async () => {
  for (const h of w.hosts) h.outbox.stop();
  await w.local.stopAll();
  w.store.close();
  apiModels.cleanup();
  hostModels.cleanup();
});

type Json = { status: number; body: any };
const api = (method: string, path: string, body?: unknown): Promise<Json> =>
  json(w.app.handle(req(method, `/api/v1${path}`, body)));
const operation = async (id: string) => (await api("GET", `/operations/${id}`)).body.data;
const epochsOf = async (id: string): Promise<any[]> =>
  (await api("GET", `/operations/${id}/metrics`)).body.data.metrics.epochs;
/** The operation once it has finished and its trainer's result (or failure) is recorded. */
const ended = (id: string) =>
  until(`${id} to end with its trainer's report`, async () => {
    const op = await operation(id);
    return op.status !== "pending" && op.status !== "running" && (op.result !== null || op.status === "failed")
      ? op
      : undefined;
  });

const spirals = (samples: number, training: NonNullable<TrainingSpecInput["training"]>): TrainingSpecInput => ({
  dataset: { kind: "synthetic", generator: "spirals", samples, seed: 1 },
  model: { hidden_layers: [16, 8] },
  training: { seed: 42, ...training },
});

for (const target of ["local", "host"] as const) {
  const models = target === "local" ? apiModels.dir : hostModels.dir;
  const start = async (spec: TrainingSpecInput) => {
    const res = await api("POST", "/trainings", { ...spec, target });
    expect(res.status).toBe(202);
    expect(["pending", "running"]).toContain(res.body.data.status);
    expect(res.body.data).toMatchObject({
      operation_type: "training",
      progress: { total_epochs: spec.training?.epochs },
    });
    expect(res.body.data.metadata).toMatchObject(
      target === "host" ? { location: "host", host: HOST } : { location: "local" },
    );
    return res.body.data.operation_id as string;
  };

  describe(`the ${target} trainer`, () => {
    test("epochs arrive in order on the stream, each complete; completion records the result, the backend and the saved model", async () => {
      const id = await start(spirals(400, { epochs: 4, batch_size: 32 }));
      const stream = new SseReader(await w.app.handle(req("GET", `/api/v1/operations/${id}/metrics/stream`)));
      try {
        await stream.end();
      } finally {
        await stream.cancel();
      }
      expect(stream.epochs()).toEqual([0, 1, 2, 3]);
      expect(stream.events.at(-1)).toMatchObject({ event: "end", data: { status: "completed" } });
      const epochs = await epochsOf(id);
      for (const e of epochs) {
        expect(Object.keys(e).sort()).toEqual([...EPOCH_FIELDS].sort());
        for (const k of STANDARD_FIELDS) expect(Number.isFinite(e[k])).toBe(true);
        expect(e.learning_rate).toBe(DEFAULTS.training.learning_rate);
        expect(new Date(e.timestamp).toISOString()).toBe(e.timestamp);
      }
      expect(stream.events.filter((e) => e.event === "epoch").map((e) => e.data)).toEqual(epochs);

      const op = await ended(id);
      expect(op.status).toBe("completed");
      expect(op.failure_code).toBeNull();
      expect(op.progress).toMatchObject({ percentage: 100, epochs_completed: 4, current_epoch: 3 });
      expect(op.progress.batch).toBeUndefined();
      expect(op.metadata).toMatchObject({
        location: target,
        samples_train: 320,
        samples_val: 80,
        batches_per_epoch: 10,
        task: "classification",
      });
      expect(BACKEND_NAMES).toContain(op.metadata.backend);
      if (EXPECTED_BACKEND) expect(op.metadata.backend).toBe(EXPECTED_BACKEND);
      expect(op.result).toMatchObject({
        stop_reason: "completed",
        epochs_run: 4,
        backend: op.metadata.backend,
        model_path: join(models, id),
      });
      expect(op.result.final_metrics).toEqual(epochs[3]);
      expect(op.result.best_metrics).toEqual(epochs.find((e) => e.epoch === op.result.best_epoch));
      for (const file of ["model.json", "weights.bin", "preprocessing.json"])
        expect(existsSync(join(op.result.model_path, file))).toBe(true);
    });

    test("a cancel in the middle of an epoch ends the training cancelled, without finishing that epoch or saving a model", async () => {
      // 16,000 batches of one row an epoch: seconds of work, so the cancel lands well inside epoch 0 (the trainer checks
      // the cancel before every batch; an epoch-end check would still store epoch 0).
      const id = await start(spirals(20_000, { epochs: 3, batch_size: 1 }));
      const running = await until("batch progress inside epoch 0", async () => {
        const op = await operation(id);
        return op.progress.batch ? op : undefined;
      });
      expect(running.progress.batch).toEqual({ epoch: 0, batch: expect.any(Number), batches: 16_000 });
      expect(running.progress.batch.batch).toBeLessThan(16_000);

      const del = await api("DELETE", `/operations/${id}`);
      expect(del.status).toBe(200);
      expect(del.body.data.status).toBe("cancelled");
      const op = await ended(id);
      expect(op.status).toBe("cancelled");
      expect(op.failure_code).toBeNull();
      expect(op.progress.batch).toBeUndefined();
      expect(op.result).toMatchObject({ stop_reason: "cancelled", epochs_run: 0, model_path: null, checkpoints: [] });
      expect(await epochsOf(id)).toEqual([]);
      expect(existsSync(join(models, id, "model.json"))).toBe(false);
      // The worker is gone: the slot is free again, or the host's session has ended.
      if (target === "local") await until("the local slot to be free", () => w.local.describe().running === 0);
      else expect(w.hosts[0]!.sessions.get(id).status).toBe("cancelled");
      expect((await api("DELETE", `/operations/${id}`)).status).toBe(409);
    });

    test("a training that fails records failed, failure_code trainer_error and the reason, and no epoch", async () => {
      const id = await start({
        dataset: { kind: "csv", path: "missing_label.csv", label: "species" },
        training: { epochs: 2 },
      });
      const op = await ended(id);
      expect(op.status).toBe("failed");
      expect(op.failure_code).toBe("trainer_error");
      expect(op.error_message).toContain('row 1, column "species"');
      expect(await epochsOf(id)).toEqual([]);
    });
  });
}
