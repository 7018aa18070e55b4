// The memory estimate of a training spec (src/schemas/memory.ts) and the budget that refuses specs at validation.
import { describe, expect, test } from "bun:test";
import {
  estimateTrainingMemory,
  memoryProblem,
  parameterCount,
  specMemoryShape,
  type MemoryShape,
} from "../src/schemas/memory.ts";
import type { TrainingSpecInput } from "../src/schemas/spec.ts";
import { normalizeSpec, validateSpec } from "../src/schemas/spec_rules.ts";
import { paramShapes } from "../src/trainer/model.ts";
import { json, req } from "./helpers.ts";
import { LocalTrainer } from "../src/trainer/local.ts";
import { Dispatcher } from "../src/trainer/dispatcher.ts";
import { OperationsService } from "../src/operations/service.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { loadConfig } from "../src/config.ts";
import { createApp } from "../src/app.ts";
import { createHostApp } from "../src/host/app.ts";
import { Outbox } from "../src/host/outbox.ts";
import { Sessions } from "../src/host/sessions.ts";

const DEFAULT_BUDGET = loadConfig({}).maxModelMb;
const base: MemoryShape = {
  inputs: 10,
  hidden: [256, 128],
  outputs: 3,
  activation: "relu",
  dropout: 0.2,
  optimizer: "adam",
  batch: 32,
  trainRows: 1000,
  valRows: 250,
  keepsBest: false,
};
const spirals = (
  model: TrainingSpecInput["model"],
  training: TrainingSpecInput["training"] = {},
): TrainingSpecInput => ({
  dataset: { kind: "synthetic", generator: "spirals", samples: 2000 },
  model,
  training,
});

describe("training memory estimate", () => {
  test("counts the parameters of the real architecture (model.ts paramShapes)", async () => {
    for (const hidden of [[], [64, 32], [4096, 4096, 7]]) {
      const arch = {
        inputs: 13,
        hidden,
        outputs: 5,
        activation: "relu" as const,
        dropout: 0,
        head: "softmax" as const,
      };
      const shapes = paramShapes(arch);
      expect(parameterCount(arch)).toBe(shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0));
    }
  });

  test("the optimizer's state follows its moments: Adam two per parameter, RMSprop one, SGD none", async () => {
    const mb = (optimizer: MemoryShape["optimizer"]) =>
      estimateTrainingMemory({ ...base, hidden: [2048, 2048], optimizer }).optimizer_mb;
    const p = parameterCount({ ...base, hidden: [2048, 2048] });
    expect(mb("adam")).toBe(Math.ceil((2 * p * 4) / 2 ** 20));
    expect(mb("adamw")).toBe(mb("adam"));
    expect(mb("rmsprop")).toBe(Math.ceil((p * 4) / 2 ** 20));
    expect(mb("sgd")).toBe(0);
  });

  test("activations grow with the batch and with dropout masks; weights do not depend on the batch", async () => {
    const wide = { ...base, hidden: [4096, 4096] };
    const small = estimateTrainingMemory({ ...wide, batch: 256 });
    const big = estimateTrainingMemory({ ...wide, batch: 1024 });
    expect(big.activations_mb).toBeGreaterThan(3.5 * small.activations_mb);
    expect(big.weights_mb).toBe(small.weights_mb);
    expect(estimateTrainingMemory({ ...wide, batch: 1024, dropout: 0 }).activations_mb).toBeLessThan(
      big.activations_mb,
    );
    expect(estimateTrainingMemory({ ...wide, keepsBest: true }).weights_mb).toBeGreaterThan(small.weights_mb);
  });

  test("a spec's shape is its real architecture: random_walk adds its 6 indicators, spirals has one output per class", async () => {
    const rw = specMemoryShape(
      normalizeSpec({ dataset: { kind: "synthetic", generator: "random_walk", features: 5 } }),
    );
    expect(rw).toMatchObject({ inputs: 11, outputs: 1, hidden: [64, 32], trainRows: 4000, valRows: 1000 });
    const sp = specMemoryShape(normalizeSpec({ dataset: { kind: "synthetic", generator: "spirals", classes: 5 } }));
    expect(sp).toMatchObject({ inputs: 2, outputs: 5 });
  });

  test("16 hidden layers of 4096 are refused at the default budget, naming model.hidden_layers and giving the estimate in MB", async () => {
    const v = validateSpec(spirals({ hidden_layers: Array(16).fill(4096) }), { maxModelMb: DEFAULT_BUDGET });
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.path).toBe("/model/hidden_layers");
    const est = /needs an estimated (\d+) MB/.exec(v.message);
    expect(Number(est?.[1])).toBeGreaterThan(10_000);
    expect(v.message).toContain(`the limit is ${DEFAULT_BUDGET} MB (TRAINWATCH_MAX_MODEL_MB)`);
  });

  test("the default model fits; a huge batch of wide layers is blamed on the batch size", async () => {
    expect(memoryProblem(normalizeSpec(spirals(undefined)), DEFAULT_BUDGET)).toBeNull();
    const batch = memoryProblem(
      normalizeSpec({
        dataset: { kind: "synthetic", generator: "spirals", samples: 200_000 },
        model: { hidden_layers: [4096, 4096] },
        training: { batch_size: 65_536 },
      }),
      DEFAULT_BUDGET,
    );
    expect(batch?.path).toBe("/training/batch_size");
  });
});

describe("memory budget at the API", () => {
  function app(env: Record<string, string> = {}) {
    const config = loadConfig(env);
    const store = new SqliteStore(":memory:");
    const operations = new OperationsService(store);
    const local = new LocalTrainer(operations, {
      maxConcurrent: 1,
      modelsDir: "/tmp/unused",
      start: () => ({ done: new Promise(() => {}), cancel() {} }),
    });
    return {
      app: createApp({ store, operations, config, trainers: new Dispatcher(operations, local, null, config) }),
      store,
    };
  }

  test("POST /trainings with a spec over TRAINWATCH_MAX_MODEL_MB is a 400 naming body.model.hidden_layers, and stores nothing", async () => {
    const t = app();
    const r = await json(
      t.app.handle(req("POST", "/api/v1/trainings", spirals({ hidden_layers: Array(16).fill(4096) }))),
    );
    expect(r.status).toBe(400);
    expect(r.body.error.details.field).toBe("body.model.hidden_layers");
    expect(r.body.error.message).toMatch(/estimated \d+ MB/);
    expect((await t.store.listOperations({ limit: 10, offset: 0 })).total).toBe(0);
  });

  test("the budget is configurable: a spec that fits 1536 MB is refused under TRAINWATCH_MAX_MODEL_MB=100", async () => {
    const spec = spirals({ hidden_layers: [2048, 2048] });
    expect((await json(app().app.handle(req("POST", "/api/v1/trainings", spec)))).status).toBe(202);
    const r = await json(app({ TRAINWATCH_MAX_MODEL_MB: "100" }).app.handle(req("POST", "/api/v1/trainings", spec)));
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain("the limit is 100 MB");
  });
});

describe("memory budget on a training host", () => {
  test("a host refuses a normalised spec over its own TRAINWATCH_MAX_MODEL_MB with a 400 naming body.spec.model.hidden_layers", async () => {
    const outbox = new Outbox({
      path: ":memory:",
      api: () => {
        throw new Error("no relay in this test");
      },
      heartbeatMs: 0,
      log: () => {},
    });
    const sessions = new Sessions({
      outbox,
      modelsDir: "/tmp/unused",
      start: () => {
        throw new Error("must not start");
      },
      log: () => {},
    });
    const host = createHostApp({
      sessions,
      outbox,
      token: null,
      version: "test",
      dataDir: ".",
      maxModelMb: 50,
      backend: () => ({ backend: null, backend_fallback_reason: null, gpu: null, gpu_visible: null }),
    });
    const spec = normalizeSpec(spirals({ hidden_layers: [2048, 2048] }));
    const r = await json(
      host.handle(req("POST", "/sessions", { operation_id: "op_x", spec, api_url: "http://api.test" })),
    );
    expect(r.status).toBe(400);
    expect(r.body.error.details.field).toBe("body.spec.model.hidden_layers");
    expect(r.body.error.message).toContain("the limit is 50 MB");
    outbox.stop();
  });
});
