// Checkpoints that exist: a local training keeps its best and last epochs however it ends (completed, early-stopped,
// cancelled, failed after some epochs), lists them, and the API hands each out as a tar that loads with
// tf.loadLayersModel. Real workers and real (tiny) trainings; the routes' 404s on a bare app.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as tf from "@tensorflow/tfjs";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Checkpoint } from "../src/schemas/checkpoint.ts";
import type { EpochRecord } from "../src/schemas/epoch.ts";
import type { NormalizedSpec, TrainingSpecInput } from "../src/schemas/spec.ts";
import { validateSpec } from "../src/schemas/spec_rules.ts";
import { tar, untar } from "../src/tar.ts";
import { selectBackend } from "../src/trainer/backend.ts";
import { loadDataset } from "../src/trainer/datasets/dataset.ts";
import { splitDataset } from "../src/trainer/datasets/split.ts";
import { runTraining } from "../src/trainer/engine.ts";
import type { StartTraining } from "../src/trainer/local.ts";
import { startWorkerTraining } from "../src/trainer/worker_client.ts";
import { json, localTrainingApp, makeApp, req, tempDir, until } from "./helpers.ts";

/** Runs the real engine and fails at the end of epoch 3 with FAULT. */
const FAILING_WORKER = new URL("./fixtures/failing_worker.ts", import.meta.url).href;
const FAULT = "injected fault in epoch 3";

/** Local trainings through the API; `start` swaps the worker (a faulting one, say). */
function setup(start?: StartTraining) {
  const w = localTrainingApp({ start });
  const api = (method: string, path: string, body?: unknown) => json(w.app.handle(req(method, `/api/v1${path}`, body)));
  return { ...w, api };
}

/** The three files of a downloaded checkpoint tar, by name. */
function unpack(bytes: Uint8Array): Record<string, Uint8Array> {
  return Object.fromEntries(untar(bytes).map((e) => [e.name, e.data]));
}

/** A TF.js layers model from a checkpoint's model.json and weights.bin, through a memory IOHandler. */
async function loadCheckpoint(files: Record<string, Uint8Array>): Promise<tf.LayersModel> {
  const model = JSON.parse(new TextDecoder().decode(files["model.json"]));
  const w = files["weights.bin"]!;
  const weightData = w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength) as ArrayBuffer;
  return tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: model.modelTopology, weightSpecs: model.weightsManifest[0].weights, weightData }),
  );
}

const folderFiles = (dir: string) =>
  Object.fromEntries(["model.json", "weights.bin"].map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));

/** Epoch folders present under an operation's checkpoints/ directory. */
const epochFolders = (c: Checkpoint[]) => readdirSync(dirname(c[0]!.path)).sort();

function spec(input: TrainingSpecInput): NormalizedSpec {
  const v = validateSpec(input);
  if (!v.ok) throw new Error(v.message);
  return v.spec;
}

/** About 0.15 s an epoch on 2 busy cores: long enough to cancel mid-training. */
const SLOW: TrainingSpecInput = {
  name: "ckpt-slow",
  dataset: { kind: "synthetic", generator: "spirals", samples: 1000, seed: 1 },
  model: { hidden_layers: [32, 32] },
  training: { epochs: 500, batch_size: 8, seed: 7 },
};

beforeAll(async () => {
  await selectBackend();
});

describe("checkpoints of a local training", () => {
  let t: ReturnType<typeof setup>;
  beforeAll(async () => {
    t = setup();
  });
  afterAll(() => t.close());

  test("cancelled after 5 epochs: its best and last checkpoints exist, download as a tar, and load with tf.loadLayersModel and predict", async () => {
    const started = await t.api("POST", "/trainings", SLOW);
    expect(started.status).toBe(202);
    const id = started.body.data.operation_id as string;
    // While it runs, the checkpoints written so far are in its metadata, so advice can name them before the end.
    const during = await until(
      "metadata.checkpoints while running",
      async () => {
        const op = (await t.store.getOperation(id))!;
        return op.status === "running" &&
          Array.isArray(op.metadata.checkpoints) &&
          (await t.store.readEpochs(id)).length >= 5
          ? (op.metadata.checkpoints as Checkpoint[])
          : undefined;
      },
      30_000,
    );
    expect(during.map((c) => c.kind)).toEqual(["best", "last"]);
    for (const c of during) expect(existsSync(join(c.path, "model.json"))).toBe(true);
    // Two more epochs, so the last checkpoint has to be written when the cancel ends the loop.
    await until("two more epochs", async () =>
      (await t.store.readEpochs(id)).length >= during[1]!.epoch + 3 ? true : undefined,
    );

    expect((await t.api("DELETE", `/operations/${id}`)).status).toBe(200);
    await t.local.settled(id);
    const op = (await t.store.getOperation(id))!;
    const result = op.result as {
      stop_reason: string;
      epochs_run: number;
      best_epoch: number;
      model_path: string | null;
      checkpoints: Checkpoint[];
    };
    expect(op.status).toBe("cancelled");
    expect(result.stop_reason).toBe("cancelled");
    expect(result.epochs_run).toBeGreaterThanOrEqual(5);
    // Cancelled: no final model, but the best and last epochs are kept.
    expect(result.model_path).toBeNull();
    expect(result.checkpoints).toEqual([
      {
        epoch: result.best_epoch,
        kind: "best",
        path: join(t.models.dir, id, "checkpoints", `epoch-${result.best_epoch}`),
      },
      {
        epoch: result.epochs_run - 1,
        kind: "last",
        path: join(t.models.dir, id, "checkpoints", `epoch-${result.epochs_run - 1}`),
      },
    ]);
    // Only the kept epochs have folders; the ones written while it ran and since superseded are gone.
    expect(epochFolders(result.checkpoints)).toEqual(
      [...new Set(result.checkpoints.map((c) => `epoch-${c.epoch}`))].sort(),
    );

    // The advice names a checkpoint that exists, and says it is held here.
    const analysis = (await t.api("GET", `/operations/${id}/analysis`)).body.data;
    expect(analysis.checkpoints).toEqual({
      held_by: "trainwatch",
      epochs: [...new Set(result.checkpoints.map((c) => c.epoch))].sort((a, b) => a - b),
    });
    expect(analysis.recommendation).toMatchObject({ action: "use_checkpoint" });
    expect(result.checkpoints.map((c) => c.epoch)).toContain(analysis.recommendation.checkpoint_epoch);
    expect(analysis.recommendation.reason).toContain(
      `restore the checkpoint of epoch ${analysis.recommendation.checkpoint_epoch}`,
    );
    expect(analysis.recommendation.reason).not.toContain("if you kept one");

    const list = await t.api("GET", `/operations/${id}/checkpoints`);
    expect(list.status).toBe(200);
    expect(list.body.data).toEqual({
      operation_id: id,
      location: "local",
      checkpoints: result.checkpoints,
      note: null,
    });

    const slow = spec(SLOW);
    const rows = splitDataset(loadDataset(slow.dataset), slow.training.validation_split, slow.training.seed).val!;
    for (const c of result.checkpoints) {
      const res = await t.app.handle(req("GET", `/api/v1/operations/${id}/checkpoints/${c.epoch}`));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/x-tar");
      expect(res.headers.get("content-disposition")).toBe(`attachment; filename="${id}-epoch-${c.epoch}.tar"`);
      const files = unpack(new Uint8Array(await res.arrayBuffer()));
      expect(Object.keys(files)).toEqual(["model.json", "weights.bin", "preprocessing.json"]);
      expect(files["weights.bin"]).toEqual(new Uint8Array(readFileSync(join(c.path, "weights.bin"))));
      const pre = JSON.parse(new TextDecoder().decode(files["preprocessing.json"]));
      expect(pre).toMatchObject({ task: "classification", output: "softmax" });

      const model = await loadCheckpoint(files);
      const probs = tf.tidy(
        () =>
          (
            model.predict(
              tf.tensor2d(rows.x.slice(0, 10 * pre.features.length), [10, pre.features.length]),
            ) as tf.Tensor
          ).arraySync() as number[][],
      );
      model.dispose();
      expect(probs).toHaveLength(10);
      for (const p of probs) {
        expect(p).toHaveLength(pre.classes.length);
        expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      }
    }
  }, 60_000);

  test("a training that fails after some epochs still lists the checkpoints it wrote, and they download", async () => {
    const f = setup((args, events) => startWorkerTraining(args, events, { workerUrl: FAILING_WORKER }));
    try {
      const id = (await f.api("POST", "/trainings", SLOW)).body.data.operation_id as string;
      await until("the failure", async () =>
        (await f.store.getOperation(id))!.status === "failed" ? true : undefined,
      );
      await f.local.settled(id);
      const op = (await f.store.getOperation(id))!;
      expect(op.error_message).toBe(FAULT);
      const checkpoints = (op.result as { checkpoints: Checkpoint[] }).checkpoints;
      const epochs = (await f.store.readEpochs(id)).map((e) => e.epoch);
      expect(epochs).toEqual([0, 1, 2]);
      expect(checkpoints.map((c) => c.kind)).toEqual(["best", "last"]);
      expect(checkpoints[1]!.epoch).toBe(epochs.at(-1)!);
      const res = await f.app.handle(req("GET", `/api/v1/operations/${id}/checkpoints/${checkpoints[1]!.epoch}`));
      expect(res.status).toBe(200);
      const model = await loadCheckpoint(unpack(new Uint8Array(await res.arrayBuffer())));
      model.dispose();
    } finally {
      f.close();
    }
  }, 60_000);
});

describe("checkpoints from the engine", () => {
  const models = tempDir("trainwatch-ckpt-engine-");
  afterAll(() => models.cleanup());

  async function train(s: NormalizedSpec, failAtEpoch = -1) {
    const lists: Checkpoint[][] = [];
    const records: EpochRecord[] = [];
    const run = runTraining(
      s,
      { modelsDir: models.dir, operationId: `op-${crypto.randomUUID()}` },
      {
        onStart() {},
        onEpoch: (e) => {
          if (e.epoch === failAtEpoch) throw new Error("disk on fire");
          records.push(e);
        },
        onProgress() {},
        onCheckpoints: (l) => void lists.push(l),
      },
    );
    return { run, lists, records };
  }

  /** Binary cross-entropy of a checkpoint on the validation rows: equals the record of the epoch it claims to be. */
  async function valLossOf(c: Checkpoint, s: NormalizedSpec): Promise<number> {
    const model = await loadCheckpoint(folderFiles(c.path));
    const { val } = splitDataset(loadDataset(s.dataset), s.training.validation_split, s.training.seed);
    const loss = tf.tidy(() => {
      const p = tf.clipByValue(
        model.predict(tf.tensor2d(val!.x, [val!.rows, val!.x.length / val!.rows])) as tf.Tensor,
        1e-7,
        1 - 1e-7,
      );
      const y = tf.tensor2d(val!.y, [val!.rows, 1]);
      return tf.neg(tf.mean(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))))).dataSync()[0]!;
    });
    model.dispose();
    return loss;
  }

  const overfit = (training: NonNullable<TrainingSpecInput["training"]>) =>
    spec({
      dataset: { kind: "synthetic", generator: "overfit", seed: 3 },
      training: { epochs: 30, seed: 5, ...training },
    });

  test("an early-stopped run keeps its best epoch (by the monitor) and the epoch it stopped at, each holding that epoch's weights", async () => {
    const s = overfit({ early_stopping: { monitor: "val_loss", patience: 3 } });
    const { run, lists, records } = await train(s);
    const result = await run;
    expect(result.stop_reason).toBe("early_stopping");
    const [best, last] = result.checkpoints;
    expect(best).toMatchObject({ kind: "best", epoch: result.best_epoch! });
    expect(last).toMatchObject({ kind: "last", epoch: records.at(-1)!.epoch });
    expect(best!.epoch).toBeLessThan(last!.epoch);
    expect(lists.at(-1)).toEqual(result.checkpoints);
    expect(await valLossOf(best!, s)).toBeCloseTo(records[best!.epoch]!.val_loss!, 4);
    expect(await valLossOf(last!, s)).toBeCloseTo(records[last!.epoch]!.val_loss!, 4);
    expect(epochFolders(result.checkpoints)).toEqual([`epoch-${best!.epoch}`, `epoch-${last!.epoch}`].sort());
  });

  test("a completed run keeps its lowest-val_loss epoch and its final epoch", async () => {
    const s = overfit({ epochs: 20 });
    const { run, records } = await train(s);
    const result = await run;
    expect(result.stop_reason).toBe("completed");
    const lowest = records.reduce((a, b) => (b.val_loss! < a.val_loss! ? b : a));
    expect(result.checkpoints.map((c) => [c.kind, c.epoch])).toEqual([
      ["best", lowest.epoch],
      ["last", 19],
    ]);
    expect(await valLossOf(result.checkpoints[0]!, s)).toBeCloseTo(lowest.val_loss!, 4);
    // The final model is still written where it always was.
    expect(existsSync(join(result.model_path!, "model.json"))).toBe(true);
  });

  test("without a validation split the best epoch is the lowest train_loss; best and last of the same epoch are two entries, one folder", async () => {
    const s = spec({
      dataset: { kind: "synthetic", generator: "spirals", samples: 200, seed: 1 },
      training: { epochs: 4, validation_split: 0, seed: 2 },
    });
    const { run, records } = await train(s);
    const result = await run;
    const lowest = records.reduce((a, b) => (b.train_loss! < a.train_loss! ? b : a));
    expect(result.checkpoints[0]).toMatchObject({ kind: "best", epoch: lowest.epoch });
    expect(result.checkpoints[1]).toMatchObject({ kind: "last", epoch: 3 });
    if (lowest.epoch === 3) expect(result.checkpoints[0]!.path).toBe(result.checkpoints[1]!.path);
    expect(epochFolders(result.checkpoints)).toEqual(
      [...new Set(result.checkpoints.map((c) => `epoch-${c.epoch}`))].sort(),
    );
  });

  test("an error inside the loop still writes the best and last checkpoints, and reports them before the error", async () => {
    const s = overfit({ epochs: 30 });
    const failedAt = 3;
    const { run, lists, records } = await train(s, failedAt);
    await expect(run).rejects.toThrow("disk on fire");
    expect(records.length).toBe(failedAt);
    const list = lists.at(-1)!;
    expect(list.map((c) => c.kind)).toEqual(["best", "last"]);
    expect(list[1]!.epoch).toBe(failedAt - 1);
    for (const c of list) expect(existsSync(join(c.path, "weights.bin"))).toBe(true);
    expect(await valLossOf(list[1]!, s)).toBeCloseTo(records[failedAt - 1]!.val_loss!, 4);
  });
});

describe("checkpoint routes", () => {
  async function withOps() {
    const { app, store } = makeApp();
    const checkpoints = [
      { epoch: 4, kind: "best", path: "/models/op/checkpoints/epoch-4" },
      { epoch: 9, kind: "last", path: "/models/op/checkpoints/epoch-9" },
    ];
    const local = (await store.createOperation({ operation_type: "training", metadata: { location: "local" } }))
      .operation_id;
    await store.finish(local, "completed", { result: { stop_reason: "completed", checkpoints } });
    const external = (await store.createOperation({ operation_type: "training", metadata: { location: "external" } }))
      .operation_id;
    const api = (path: string) => json(app.handle(req("GET", `/api/v1${path}`)));
    return { api, local, external, checkpoints };
  }

  test("an unknown operation is a 404 OPERATION_NOT_FOUND", async () => {
    const { api } = await withOps();
    for (const path of ["/operations/op_nope/checkpoints", "/operations/op_nope/checkpoints/3"]) {
      const r = await api(path);
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe("OPERATION_NOT_FOUND");
    }
  });

  test("an epoch without a checkpoint is a 404 CHECKPOINT_NOT_FOUND naming the epochs that have one", async () => {
    const { api, local } = await withOps();
    const r = await api(`/operations/${local}/checkpoints/5`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("CHECKPOINT_NOT_FOUND");
    expect(r.body.error.message).toContain("epoch 4 and 9");
    expect(r.body.error.details).toMatchObject({ epoch: 5, epochs: [4, 9] });
  });

  test("an external operation has no checkpoints here: the list says why, a download is a 404 that says so", async () => {
    const { api, external } = await withOps();
    const list = await api(`/operations/${external}/checkpoints`);
    expect(list.status).toBe(200);
    expect(list.body.data).toMatchObject({ location: "external", checkpoints: [] });
    expect(list.body.data.note).toContain("Trainwatch holds no checkpoints");
    const r = await api(`/operations/${external}/checkpoints/0`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("CHECKPOINT_NOT_FOUND");
    expect(r.body.error.message).toContain("Trainwatch holds no checkpoints");
  });

  test("the epoch must be an integer from 0 to 2^31-1: a 400 naming params.epoch", async () => {
    const { api, local } = await withOps();
    for (const bad of ["-1", "1.5", "abc", "2147483648"]) {
      const r = await api(`/operations/${local}/checkpoints/${bad}`);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: "VALIDATION_ERROR", details: { field: "params.epoch" } });
    }
  });

  test("the list follows the result once there is one, and metadata.checkpoints while the training runs", async () => {
    const { app, store } = makeApp();
    const id = (
      await store.createOperation({
        operation_type: "training",
        metadata: { location: "host", checkpoints: [{ epoch: 1, kind: "best", path: "/h/e1" }] },
      })
    ).operation_id;
    const list = async () =>
      (await json(app.handle(req("GET", `/api/v1/operations/${id}/checkpoints`)))).body.data.checkpoints;
    expect(await list()).toEqual([{ epoch: 1, kind: "best", path: "/h/e1" }]);
    await store.finish(id, "cancelled", { result: { checkpoints: [{ epoch: 2, kind: "last", path: "/h/e2" }] } });
    expect(await list()).toEqual([{ epoch: 2, kind: "last", path: "/h/e2" }]);
  });
});

describe("tar", () => {
  test("writes ustar headers with valid checksums, pads to 512 bytes, ends with two zero blocks, and reads back", async () => {
    const files = [
      { name: "model.json", data: new TextEncoder().encode('{"a":1}'), mtime: 1_700_000_000 },
      { name: "weights.bin", data: new Uint8Array(513).fill(7), mtime: 0 },
      { name: "empty", data: new Uint8Array(0), mtime: 0 },
    ];
    const out = tar(files);
    expect(out.length).toBe(512 + 512 + (512 + 1024) + 512 + 1024);
    const header = out.subarray(0, 512);
    expect(new TextDecoder().decode(header.subarray(257, 262))).toBe("ustar");
    const stored = parseInt(new TextDecoder().decode(header.subarray(148, 154)), 8);
    const sum = [...header].reduce((a, b, i) => a + (i >= 148 && i < 156 ? 0x20 : b), 0);
    expect(stored).toBe(sum);
    expect(out.subarray(out.length - 1024).every((b) => b === 0)).toBe(true);
    expect(untar(out)).toEqual(files);
  });

  test("refuses a name longer than the 100-byte field", async () => {
    expect(() => tar([{ name: "x".repeat(101), data: new Uint8Array(1) }])).toThrow("1–100 bytes");
  });
});
