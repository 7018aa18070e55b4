// What a user relies on from a training, whichever trainer runs it: one suite, run against three implementations, each
// watched only through the API as a client would (POST /trainings, the metrics stream, GET and DELETE): the local
// worker trainer and a GPU host's, both training for real (worker threads, TF.js) in one in-process world
// (tests/fixtures/hosts.ts), and a script training (src/script_trainings/trainer.ts: a recipe run as a child process that
// reports its own epochs over HTTP, tests/fixtures/scripts/contract_train.ts).
// Epochs arrive in order, each complete; completion records the result; a cancel in the middle of an epoch ends the
// training cancelled without finishing that epoch; a failure records failure_code and its reason.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { DEFAULTS } from "../src/schemas/defaults.ts";
import { STANDARD_FIELDS } from "../src/schemas/epoch.ts";
import type { TrainingSpecInput } from "../src/schemas/spec.ts";
import { BACKEND_NAMES } from "../src/trainer/types.ts";
import { startWorkerTraining } from "../src/trainer/worker_client.ts";
import { groupAlive } from "../src/script_trainings/runner.ts";
import { world } from "./fixtures/hosts.ts";
import { fakeRecipe, scriptTrainingApp } from "./fixtures/scripts.ts";
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

/** Every field of an epoch record: the standard metrics, all present, between epoch and timestamp. */
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
// Script trainings: the server's wiring listening on loopback, since the script is a child process reporting over HTTP.
const s = scriptTrainingApp({
  recipes: [
    fakeRecipe({
      name: "contract",
      command: [process.execPath, "contract_train.ts"],
      params: {
        type: "object",
        properties: {
          epochs: { type: "integer", minimum: 1, maximum: 100, default: 4 },
          stall_at: { type: "integer", minimum: 0 },
          fail: { type: "boolean", default: false },
        },
        additionalProperties: false,
      },
    }),
  ],
});
afterAll(async () => {
  for (const h of w.hosts) h.outbox.stop();
  await w.local.stopAll();
  w.store.close();
  await s.close();
  apiModels.cleanup();
  hostModels.cleanup();
});

type Json = { status: number; body: any };
type App = { handle(r: Request): Promise<Response> };

const spirals = (samples: number, training: NonNullable<TrainingSpecInput["training"]>): TrainingSpecInput => ({
  dataset: { kind: "synthetic", generator: "spirals", samples, seed: 1 },
  model: { hidden_layers: [16, 8] },
  training: { seed: 42, ...training },
});

/**
 * One implementation of the trainer seam, as the suite drives it: where its trainings are posted, the bodies of the
 * three trainings the cases need, and the parts of its report that differ (a built-in trainer saves a model and names
 * its backend; a script saves what it likes and the API records its exit).
 */
interface Implementation {
  name: string;
  app: App;
  /** What the reply to POST /trainings records of where it runs. */
  metadata: Record<string, unknown>;
  /** Four epochs that complete. */
  completes: object;
  /** A long first epoch (spirals) or a script that stays inside its second one; three epochs planned. */
  stalls: object;
  /** Fails before its first epoch, the reason naming row 1 and column "species"; two epochs planned. */
  fails: object;
  /** The operation has its trainer's last word: the worker's result or failure, a script's exit. */
  reported(op: any): boolean;
  /** Waits until the training is inside an epoch, and returns the epochs stored before that one. */
  insideAnEpoch(id: string, operation: (id: string) => Promise<any>): Promise<number[]>;
  /** What completion records besides the common fields. */
  completed(op: any, epochs: any[]): void;
  /** What a cancel records besides the common fields, and that the trainer is gone. */
  cancelled(op: any): Promise<void>;
}

/** The worker trainer, locally or on a host: a spec in, a model and a backend out. */
function builtIn(target: "local" | "host"): Implementation {
  const models = target === "local" ? apiModels.dir : hostModels.dir;
  return {
    name: `the ${target} trainer`,
    app: w.app,
    metadata: target === "host" ? { location: "host", host: HOST } : { location: "local" },
    completes: { ...spirals(400, { epochs: 4, batch_size: 32 }), target },
    // 16,000 batches of one row an epoch: seconds of work, so the cancel lands well inside epoch 0 (the trainer checks
    // the cancel before every batch; an epoch-end check would still store epoch 0).
    stalls: { ...spirals(20_000, { epochs: 3, batch_size: 1 }), target },
    fails: { dataset: { kind: "csv", path: "missing_label.csv", label: "species" }, training: { epochs: 2 }, target },
    reported: (op) => op.result !== null || op.status === "failed",
    async insideAnEpoch(id, operation) {
      const running = await until("batch progress inside epoch 0", async () => {
        const op = await operation(id);
        return op.progress.batch ? op : undefined;
      });
      expect(running.progress.batch).toEqual({ epoch: 0, batch: expect.any(Number), batches: 16_000 });
      expect(running.progress.batch.batch).toBeLessThan(16_000);
      return [];
    },
    completed(op, epochs) {
      for (const e of epochs) expect(e.learning_rate).toBe(DEFAULTS.training.learning_rate);
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
        model_path: join(models, op.operation_id),
      });
      expect(op.result.final_metrics).toEqual(epochs[3]);
      expect(op.result.best_metrics).toEqual(epochs.find((e) => e.epoch === op.result.best_epoch));
      for (const file of ["model.json", "weights.bin", "preprocessing.json"])
        expect(existsSync(join(op.result.model_path, file))).toBe(true);
    },
    async cancelled(op) {
      const id = op.operation_id;
      expect(op.result).toMatchObject({ stop_reason: "cancelled", epochs_run: 0, model_path: null, checkpoints: [] });
      expect(existsSync(join(models, id, "model.json"))).toBe(false);
      // The worker is gone: the slot is free again, or the host's session has ended.
      if (target === "local") await until("the local slot to be free", () => w.local.describe().running === 0);
      else expect(w.hosts[0]!.sessions.get(id).status).toBe("cancelled");
    },
  };
}

/**
 * A script training on the API's machine. It has no batches the API could see (batch progress rides on a host's
 * heartbeat, which a local operation may not send), so "inside an epoch" is what the script prints after the epochs
 * it stored; and it has no backend or model of the API's: what it saves is its own, and the API records its exit.
 */
const script: Implementation = {
  name: "a script training",
  app: s.app,
  metadata: { location: "local", kind: "script", recipe: "contract" },
  completes: { recipe: "contract", params: { epochs: 4 } },
  stalls: { recipe: "contract", params: { epochs: 3, stall_at: 1 } },
  fails: { recipe: "contract", params: { epochs: 2, fail: true } },
  reported: (op) => op.metadata.exit !== undefined,
  async insideAnEpoch(id) {
    await until("the script inside epoch 1", async () => {
      const logs = (await json(s.app.handle(req("GET", `/api/v1/operations/${id}/logs`)))).body.data;
      return logs?.lines.includes("inside epoch 1");
    });
    return [0];
  },
  completed(op) {
    expect(op.metadata.exit).toMatchObject({ exit_code: 0, signal: null });
    expect(op.result).toEqual(op.metadata.exit);
  },
  async cancelled(op) {
    // The script's whole process group was stopped; the slot it held is free again.
    expect(op.metadata.exit).toMatchObject({ signal: "SIGTERM" });
    expect(groupAlive(op.metadata.pid)).toBe(false);
    await until("the local slot to be free", () => s.local.describe().running === 0);
  },
};

for (const impl of [builtIn("local"), builtIn("host"), script]) {
  const api = (method: string, path: string, body?: unknown): Promise<Json> =>
    json(impl.app.handle(req(method, `/api/v1${path}`, body)));
  const operation = async (id: string) => (await api("GET", `/operations/${id}`)).body.data;
  const epochsOf = async (id: string): Promise<any[]> =>
    (await api("GET", `/operations/${id}/metrics`)).body.data.metrics.epochs;
  /** The operation once it has finished and its trainer's report (or failure) is recorded. */
  const ended = (id: string) =>
    until(`${id} to end with its trainer's report`, async () => {
      const op = await operation(id);
      return op.status !== "pending" && op.status !== "running" && impl.reported(op) ? op : undefined;
    });
  const start = async (body: object, epochs: number) => {
    const res = await api("POST", "/trainings", body);
    expect(res.status).toBe(202);
    expect(["pending", "running"]).toContain(res.body.data.status);
    expect(res.body.data).toMatchObject({ operation_type: "training", progress: { total_epochs: epochs } });
    expect(res.body.data.metadata).toMatchObject(impl.metadata);
    return res.body.data.operation_id as string;
  };

  describe(impl.name, () => {
    test("epochs arrive in order on the stream, each complete; completion records the result", async () => {
      const id = await start(impl.completes, 4);
      const stream = new SseReader(await impl.app.handle(req("GET", `/api/v1/operations/${id}/metrics/stream`)));
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
        expect(new Date(e.timestamp).toISOString()).toBe(e.timestamp);
      }
      expect(stream.events.filter((e) => e.event === "epoch").map((e) => e.data)).toEqual(epochs);

      const op = await ended(id);
      expect(op.status).toBe("completed");
      expect(op.failure_code).toBeNull();
      expect(op.progress).toMatchObject({ percentage: 100, epochs_completed: 4, current_epoch: 3 });
      expect(op.progress.batch).toBeUndefined();
      impl.completed(op, epochs);
    });

    test("a cancel in the middle of an epoch ends the training cancelled, without finishing that epoch", async () => {
      const id = await start(impl.stalls, 3);
      const before = await impl.insideAnEpoch(id, operation);
      expect((await epochsOf(id)).map((e) => e.epoch)).toEqual(before);

      const del = await api("DELETE", `/operations/${id}`);
      expect(del.status).toBe(200);
      expect(del.body.data.status).toBe("cancelled");
      const op = await ended(id);
      expect(op.status).toBe("cancelled");
      expect(op.failure_code).toBeNull();
      expect(op.progress.batch).toBeUndefined();
      expect((await epochsOf(id)).map((e) => e.epoch)).toEqual(before);
      await impl.cancelled(op);
      expect((await api("DELETE", `/operations/${id}`)).status).toBe(409);
    });

    test("a training that fails records failed, failure_code trainer_error and the reason, and no epoch", async () => {
      const id = await start(impl.fails, 2);
      const op = await ended(id);
      expect(op.status).toBe("failed");
      expect(op.failure_code).toBe("trainer_error");
      expect(op.error_message).toContain('row 1, column "species"');
      expect(await epochsOf(id)).toEqual([]);
    });
  });
}
