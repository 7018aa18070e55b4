// Local training through the API, as a client sees it: POST /api/v1/trainings, then poll the operation and its metrics.
// Real workers and real (tiny) trainings on the in-process app; one end-to-end test kills and restarts the server process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { TrainingSpecInput } from "../src/schemas/spec.ts";
import { BACKEND_NAMES } from "../src/trainer/backend.ts";
import { INTERRUPTED } from "../src/trainer/dispatcher.ts";
import { earlyStoppingStopEpoch } from "../src/trends/early_stopping.ts";
import { json, localTrainingApp, req, startServerProcess, tempDir, until, type ServerProcess } from "./helpers.ts";

const FIXTURES = join(import.meta.dir, "fixtures");
/** The backend a training picks here: wasm unless forced, or unless a native TensorFlow package is installed. */
const EXPECTED_BACKEND = process.env.TRAINWATCH_BACKEND || (["@tensorflow/tfjs-node", "@tensorflow/tfjs-node-gpu"].some(installed) ? null : "wasm");

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

const EPOCH_FIELDS = ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate", "duration", "timestamp"];

/** At most 3 local trainings at once, CSV datasets read from the fixtures. */
const setup = () => localTrainingApp({ env: { TRAINWATCH_MAX_LOCAL_TRAININGS: "3", TRAINWATCH_DATA_DIR: FIXTURES } });

let t: ReturnType<typeof setup>;
beforeAll(() => {
  t = setup();
});
afterAll(() => t.close());

type Json = { status: number; body: any };
const api = (method: string, path: string, body?: unknown): Promise<Json> => json(t.app.handle(req(method, `/api/v1${path}`, body)));
const start = (spec: TrainingSpecInput) => api("POST", "/trainings", spec);
const operation = async (id: string) => (await api("GET", `/operations/${id}`)).body.data;
const epochsOf = async (id: string, since?: number): Promise<any[]> =>
  (await api("GET", `/operations/${id}/metrics${since === undefined ? "" : `?since_epoch=${since}`}`)).body.data.metrics.epochs;


const finished = (id: string) =>
  until(`${id} to finish`, async () => {
    const op = await operation(id);
    return op.status === "pending" || op.status === "running" ? undefined : op;
  });

/** Epoch records without their wall-clock fields, for exact comparison between runs. */
const metricsOnly = (epochs: any[]) => epochs.map(({ duration: _d, timestamp: _t, ...m }) => m);

const spirals = (samples: number, training: NonNullable<TrainingSpecInput["training"]>, seed = 1): TrainingSpecInput => ({
  dataset: { kind: "synthetic", generator: "spirals", samples, seed },
  model: { hidden_layers: [16, 8] },
  training: { seed: 42, ...training },
});

describe("local training through the API", () => {
  test("POST /trainings answers 202 at once; every epoch arrives complete; progress, backend and the saved model are reported", async () => {
    // 1600 training rows in batches of 1: 4800 steps in all, so the run spans several of the 250 ms progress updates even
    // on a backend several times faster than wasm here (~0.3 ms a step).
    const res = await start({ name: "api-demo", ...spirals(2000, { epochs: 3, batch_size: 1 }) });
    expect(res.status).toBe(202);
    const id = res.body.data.operation_id as string;
    expect(id).toMatch(/^op_training_/);
    expect(["pending", "running"]).toContain(res.body.data.status);
    expect(res.body.data).toMatchObject({ name: "api-demo", operation_type: "training", progress: { total_epochs: 3 } });

    // Watch it like a client: poll the operation and read new epochs with since_epoch.
    const seen: any[] = [];
    const batches: any[] = [];
    let op: any;
    do {
      op = await operation(id);
      if (op.status === "running" && op.progress.batch) batches.push(op.progress.batch);
      seen.push(...(await epochsOf(id, seen.length ? seen[seen.length - 1].epoch : -1)));
      await Bun.sleep(20);
    } while (op.status === "pending" || op.status === "running");
    seen.push(...(await epochsOf(id, seen.length ? seen[seen.length - 1].epoch : -1)));

    expect(op.status).toBe("completed");
    expect(seen.map((e) => e.epoch)).toEqual([0, 1, 2]);
    for (const e of seen) {
      expect(Object.keys(e).sort()).toEqual([...EPOCH_FIELDS].sort());
      for (const k of EPOCH_FIELDS.slice(1, -1)) expect(Number.isFinite(e[k])).toBe(true);
      expect(e.learning_rate).toBe(0.001);
      expect(new Date(e.timestamp).toISOString()).toBe(e.timestamp);
    }
    expect(await epochsOf(id)).toEqual(seen);

    expect(batches.length).toBeGreaterThan(0);
    for (const b of batches) {
      expect(Object.keys(b).sort()).toEqual(["batch", "batches", "epoch"]);
      expect(b.batches).toBe(1600);
      expect(b.batch).toBeGreaterThanOrEqual(1);
      expect(b.batch).toBeLessThanOrEqual(1600);
      expect(b.epoch).toBeLessThan(3);
    }
    expect(op.progress).toMatchObject({ percentage: 100, epochs_completed: 3, current_epoch: 2 });
    expect(op.progress.batch).toBeUndefined();

    expect(op.metadata).toMatchObject({ location: "local", samples_train: 1600, samples_val: 400, batches_per_epoch: 1600 });
    expect(BACKEND_NAMES).toContain(op.metadata.backend);
    if (EXPECTED_BACKEND) expect(op.metadata.backend).toBe(EXPECTED_BACKEND);
    const result = op.result;
    expect(result).toMatchObject({ stop_reason: "completed", epochs_run: 3, backend: op.metadata.backend });
    expect(result.final_metrics).toEqual(seen[2]);
    expect(result.best_metrics).toEqual(seen.find((e) => e.epoch === result.best_epoch));
    expect(result.model_path).toBe(join(t.models.dir, id));
    for (const file of ["model.json", "weights.bin", "preprocessing.json"]) expect(existsSync(join(result.model_path, file))).toBe(true);
  });

  test("early stopping: the last stored epoch is where the Keras rule stops on the stored val_loss series", async () => {
    const es = { monitor: "val_loss", patience: 3, min_delta: 0, mode: "min", baseline: null, restore_best_weights: true, start_from_epoch: 0 } as const;
    const res = await start({
      dataset: { kind: "synthetic", generator: "overfit", seed: 3 },
      training: { epochs: 30, seed: 5, early_stopping: es },
    });
    expect(res.status).toBe(202);
    const op = await finished(res.body.data.operation_id);
    const epochs = await epochsOf(op.operation_id);
    const stop = earlyStoppingStopEpoch(es, epochs.map((e) => e.val_loss));
    expect(stop).not.toBeNull();
    expect(epochs.length).toBeLessThan(30);
    expect(epochs.map((e) => e.epoch)).toEqual([...Array(stop! + 1).keys()]);
    expect(op.status).toBe("completed");
    expect(op.result.stop_reason).toBe("early_stopping");
    expect(op.result.final_metrics).toEqual(epochs[stop!]);
    const best = epochs.reduce((a, b) => (b.val_loss < a.val_loss ? b : a));
    expect(op.result.best_epoch).toBe(best.epoch);
    expect(op.trends.best_epoch).toBe(best.epoch);
  });

  test("real training on the overfit generator raises is_overfitting in the stored trends", async () => {
    const res = await start({ dataset: { kind: "synthetic", generator: "overfit", seed: 3 }, training: { epochs: 30, seed: 5 } });
    const id = res.body.data.operation_id as string;
    // Every stored epoch publishes the recomputed trends; keep the flag of each write.
    const flags: boolean[] = [];
    const off = t.operations.subscribe(id, (e) => {
      if (e.type === "epochs") flags.push(e.trends.is_overfitting);
    });
    try {
      expect((await finished(id)).status).toBe("completed");
    } finally {
      off();
    }
    expect((await epochsOf(id)).length).toBe(30);
    expect(flags.includes(true)).toBe(true);
    expect(flags.slice(0, 5).includes(true)).toBe(false);
  });

  test("DELETE cancels a running training: status cancelled, no epoch after, and the worker is gone", async () => {
    const res = await start(spirals(2000, { epochs: 500, batch_size: 4 }));
    const id = res.body.data.operation_id as string;
    await until("the first epoch", async () => ((await epochsOf(id)).length > 0 ? true : undefined));

    const del = await api("DELETE", `/operations/${id}`);
    expect(del.status).toBe(200);
    expect(del.body.data.status).toBe("cancelled");
    await t.local.settled(id);
    expect(t.local.describe()).toMatchObject({ running: 0, queued: 0 });

    const stored = await epochsOf(id);
    await Bun.sleep(500);
    expect(await epochsOf(id)).toEqual(stored);
    expect(stored.map((e) => e.epoch)).toEqual([...stored.keys()]);
    const op = await operation(id);
    expect(op.status).toBe("cancelled");
    expect(op.progress.batch).toBeUndefined();
    expect(op.result).toMatchObject({ stop_reason: "cancelled", model_path: null, epochs_run: stored.length });
    expect(existsSync(join(t.models.dir, id, "model.json"))).toBe(false);
    expect((await api("DELETE", `/operations/${id}`)).status).toBe(409);
  });

  test("3 concurrent trainings each store their own contiguous epochs, identical to the same spec trained alone", async () => {
    const specs: TrainingSpecInput[] = [
      spirals(600, { epochs: 6, batch_size: 16 }, 1),
      { dataset: { kind: "synthetic", generator: "random_walk", samples: 600, seed: 2 }, model: { hidden_layers: [16] }, training: { epochs: 6, seed: 7 } },
      { dataset: { kind: "synthetic", generator: "overfit", seed: 3 }, training: { epochs: 6, seed: 5, optimizer: "sgd", learning_rate: 0.01 } },
    ];
    const ids: string[] = [];
    for (const s of specs) ids.push((await start(s)).body.data.operation_id);
    expect(t.local.describe()).toMatchObject({ max_concurrent: 3, running: 3, queued: 0 });
    const together = [];
    for (const id of ids) {
      expect((await finished(id)).status).toBe("completed");
      together.push(await epochsOf(id));
    }
    for (const epochs of together) expect(epochs.map((e) => e.epoch)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(new Set(together.map((e) => e[5].train_loss)).size).toBe(3);

    for (const [i, s] of specs.entries()) {
      const alone = await finished((await start(s)).body.data.operation_id);
      expect(metricsOnly(await epochsOf(alone.operation_id))).toEqual(metricsOnly(together[i]!));
    }
  });

  test("a bad spec is a 400 naming the field, and creates no operation", async () => {
    const before = (await api("GET", "/operations")).body.total_count;
    const batch = await start(spirals(100, { batch_size: 0 }));
    expect(batch.status).toBe(400);
    expect(batch.body.error.code).toBe("VALIDATION_ERROR");
    expect(batch.body.error.message).toContain("training.batch_size");

    const monitor = await start(spirals(100, { validation_split: 0, early_stopping: { monitor: "val_loss" } }));
    expect(monitor.status).toBe(400);
    expect(monitor.body.error.code).toBe("VALIDATION_ERROR");
    expect(monitor.body.error.message).toContain("training.early_stopping.monitor");
    expect(monitor.body.error.message).toContain("validation_split");

    const generator = await start({ dataset: { kind: "synthetic", generator: "mnist" } } as never);
    expect(generator.status).toBe(400);
    expect(generator.body.error.message).toContain("dataset");
    expect((await api("GET", "/operations")).body.total_count).toBe(before);
  });

  test("a CSV path outside TRAINWATCH_DATA_DIR, or naming no readable file there, is a 400 naming body.dataset.path that echoes nothing from the file, and stores nothing", async () => {
    const before = (await api("GET", "/operations")).body.total_count;
    for (const path of ["/etc/passwd", "../package.json", "../../../../../../etc/passwd", join(FIXTURES, "..", "helpers.ts"), "nope.csv", "."]) {
      const r = await start({ dataset: { kind: "csv", path, label: "root" } });
      expect(r.status).toBe(400);
      expect(r.body.error.details.field).toBe("body.dataset.path");
      expect(r.body.error.message).not.toContain("root:");
      expect(r.body.error.message).not.toContain("import");
    }
    expect((await api("GET", "/operations")).body.total_count).toBe(before);
  });

  test("a CSV without its label column fails the operation with a message naming row and column; a good CSV trains", async () => {
    const bad = await start({ dataset: { kind: "csv", path: "missing_label.csv", label: "species" }, training: { epochs: 2 } });
    expect(bad.status).toBe(202);
    const failed = await finished(bad.body.data.operation_id);
    expect(failed.status).toBe("failed");
    expect(failed.error_message).toContain('row 1, column "species"');
    expect(await epochsOf(failed.operation_id)).toEqual([]);

    const cell = await finished((await start({ dataset: { kind: "csv", path: "bad_cell.csv", label: "price_k" } })).body.data.operation_id);
    expect(cell.status).toBe("failed");
    expect(cell.error_message).toBe('row 8, column "age_years": not a number');

    const good = await finished(
      (await start({ dataset: { kind: "csv", path: join(FIXTURES, "flowers.csv") /* absolute inside the data dir is fine */, label: "species" }, training: { epochs: 3, batch_size: 8 } })).body.data.operation_id,
    );
    expect(good.status).toBe("completed");
    expect(good.metadata).toMatchObject({ task: "classification", classes: ["setosa", "versicolor", "virginica"] });
    expect((await epochsOf(good.operation_id)).map((e) => e.epoch)).toEqual([0, 1, 2]);
  });
});

describe("the server process", () => {
  const servers: ServerProcess[] = [];
  const data = tempDir();
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    data.cleanup();
  });

  test("a training running when the server is killed is failed as interrupted at the next start, and keeps its epochs", async () => {
    const env = { TRAINWATCH_DB: join(data.dir, "tw.db"), TRAINWATCH_MODELS_DIR: join(data.dir, "models") };
    const first = await startServerProcess(env);
    servers.push(first);
    const post = await fetch(`${first.url}/api/v1/trainings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(spirals(2000, { epochs: 1000, batch_size: 4 })),
    });
    expect(post.status).toBe(202);
    const id = ((await post.json()) as any).data.operation_id as string;
    const metrics = async (url: string) => ((await (await fetch(`${url}/api/v1/operations/${id}/metrics`)).json()) as any).data;
    const before = await until("2 stored epochs", async () => {
      const m = await metrics(first.url);
      return m.metrics.epochs.length >= 2 ? m : undefined;
    });
    expect(before.status).toBe("running");

    first.proc.kill("SIGKILL");
    await first.proc.exited;

    const second = await startServerProcess(env);
    servers.push(second);
    expect(second.output()).toContain(`marked 1 interrupted local training(s) failed: ${id}`);
    const op = ((await (await fetch(`${second.url}/api/v1/operations/${id}`)).json()) as any).data;
    expect(op.status).toBe("failed");
    expect(op.error_message).toBe(INTERRUPTED);
    const after = await metrics(second.url);
    expect(after.metrics.epochs.length).toBeGreaterThanOrEqual(before.metrics.epochs.length);
    expect(after.metrics.epochs.slice(0, before.metrics.epochs.length)).toEqual(before.metrics.epochs);
    expect(after.metrics.epochs.map((e: any) => e.epoch)).toEqual([...after.metrics.epochs.keys()]);
  });
});
