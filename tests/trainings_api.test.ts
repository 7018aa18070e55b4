// Local training through the API, as a client sees it: POST /api/v1/trainings, then poll the operation and its metrics.
// Real workers and real (tiny) trainings on the in-process app; one end-to-end test kills and restarts the server process.
// What every trainer must do (epochs in order, completion, cancel, failure) is tests/trainer_contract.test.ts, run on the
// local and the host trainer; here are the local trainer's own rules: early stopping, trends, concurrency, specs, CSVs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { TrainingSpecInput } from "../src/schemas/spec.ts";
import { DEFAULTS } from "../src/schemas/defaults.ts";
import { INTERRUPTED } from "../src/trainer/dispatcher.ts";
import { earlyStoppingStopEpoch } from "../src/trends/early_stopping.ts";
import { json, localTrainingApp, req, startServerProcess, tempDir, until, type ServerProcess } from "./helpers.ts";

const FIXTURES = join(import.meta.dir, "fixtures");
/** At most 3 local trainings at once, CSV datasets read from the fixtures. */
const setup = () => localTrainingApp({ env: { TRAINWATCH_MAX_LOCAL_TRAININGS: "3", TRAINWATCH_DATA_DIR: FIXTURES } });

let t: ReturnType<typeof setup>;
beforeAll(() => {
  t = setup();
});
afterAll(() => t.close());

type Json = { status: number; body: any };
const api = (method: string, path: string, body?: unknown): Promise<Json> =>
  json(t.app.handle(req(method, `/api/v1${path}`, body)));
const start = (spec: TrainingSpecInput) => api("POST", "/trainings", spec);
const operation = async (id: string) => (await api("GET", `/operations/${id}`)).body.data;
const epochsOf = async (id: string): Promise<any[]> =>
  (await api("GET", `/operations/${id}/metrics`)).body.data.metrics.epochs;

const finished = (id: string) =>
  until(`${id} to finish`, async () => {
    const op = await operation(id);
    return op.status === "pending" || op.status === "running" ? undefined : op;
  });

/** Epoch records without their wall-clock fields, for exact comparison between runs. */
const metricsOnly = (epochs: any[]) => epochs.map(({ duration: _d, timestamp: _t, ...m }) => m);

const spirals = (
  samples: number,
  training: NonNullable<TrainingSpecInput["training"]>,
  seed = 1,
): TrainingSpecInput => ({
  dataset: { kind: "synthetic", generator: "spirals", samples, seed },
  model: { hidden_layers: [16, 8] },
  training: { seed: 42, ...training },
});

describe("local training through the API", () => {
  test("early stopping: the last stored epoch is where the Keras rule stops on the stored val_loss series", async () => {
    const es = { ...DEFAULTS.early_stopping, patience: 3, mode: "min" } as const;
    const res = await start({
      dataset: { kind: "synthetic", generator: "overfit", seed: 3 },
      training: { epochs: 30, seed: 5, early_stopping: es },
    });
    expect(res.status).toBe(202);
    const op = await finished(res.body.data.operation_id);
    const epochs = await epochsOf(op.operation_id);
    const stop = earlyStoppingStopEpoch(
      es,
      epochs.map((e) => e.val_loss),
    );
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
    const res = await start({
      dataset: { kind: "synthetic", generator: "overfit", seed: 3 },
      training: { epochs: 30, seed: 5 },
    });
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

  test("3 concurrent trainings each store their own contiguous epochs, identical to the same spec trained alone", async () => {
    const specs: TrainingSpecInput[] = [
      spirals(600, { epochs: 6, batch_size: 16 }, 1),
      {
        dataset: { kind: "synthetic", generator: "random_walk", samples: 600, seed: 2 },
        model: { hidden_layers: [16] },
        training: { epochs: 6, seed: 7 },
      },
      {
        dataset: { kind: "synthetic", generator: "overfit", seed: 3 },
        training: { epochs: 6, seed: 5, optimizer: "sgd", learning_rate: 0.01 },
      },
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
    for (const path of [
      "/etc/passwd",
      "../package.json",
      "../../../../../../etc/passwd",
      join(FIXTURES, "..", "helpers.ts"),
      "nope.csv",
      ".",
    ]) {
      const r = await start({ dataset: { kind: "csv", path, label: "root" } });
      expect(r.status).toBe(400);
      expect(r.body.error.details.field).toBe("body.dataset.path");
      expect(r.body.error.message).not.toContain("root:");
      expect(r.body.error.message).not.toContain("import");
    }
    expect((await api("GET", "/operations")).body.total_count).toBe(before);
  });

  // A CSV without its label column: tests/trainer_contract.test.ts (a failing training, on both trainers).
  test("a CSV cell that is not a number fails the operation naming row and column; a good CSV trains", async () => {
    const cell = await finished(
      (await start({ dataset: { kind: "csv", path: "bad_cell.csv", label: "price_k" } })).body.data.operation_id,
    );
    expect(cell.status).toBe("failed");
    expect(cell.error_message).toBe('row 8, column "age_years": not a number');

    const good = await finished(
      (
        await start({
          dataset: {
            kind: "csv",
            path: join(FIXTURES, "flowers.csv") /* absolute inside the data dir is fine */,
            label: "species",
          },
          training: { epochs: 3, batch_size: 8 },
        })
      ).body.data.operation_id,
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
    const metrics = async (url: string) =>
      ((await (await fetch(`${url}/api/v1/operations/${id}/metrics`)).json()) as any).data;
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
