// Real, small trainings: what a user of the trainer relies on (records, determinism, stopping rules, cancel, CSV errors,
// saved models), plus the maths underneath (hand-written gradients, optimizer placements) checked against TF.js.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import * as tf from "@tensorflow/tfjs";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EpochRecord } from "../src/schemas/epoch.ts";
import { DEFAULTS } from "../src/schemas/defaults.ts";
import type { NormalizedSpec, TrainingSpecInput } from "../src/schemas/spec.ts";
import { normalizeSpec, validateSpec } from "../src/schemas/spec_rules.ts";
import { selectBackend, visibleGpu } from "../src/trainer/backend.ts";
import { loadDataset } from "../src/trainer/datasets/dataset.ts";
import { Rng } from "../src/trainer/datasets/prng.ts";
import { splitDataset } from "../src/trainer/datasets/split.ts";
import { runTraining, type RunOptions } from "../src/trainer/engine.ts";
import { predict, tidy, trainStep, type TrainBatch } from "../src/trainer/maths.ts";
import { initParams, mlpArch, type MlpArch } from "../src/trainer/model.ts";
import { createParamStore, type Placement } from "../src/trainer/optimizer.ts";
import type { TrainingResult } from "../src/trainer/types.ts";
import type { StartReport } from "../src/schemas/host.ts";
import { startWorkerTraining } from "../src/trainer/worker_client.ts";
import { earlyStoppingStopEpoch } from "../src/trends/early_stopping.ts";
import { summarizeTrends } from "../src/trends/summary.ts";
import { reduceOnPlateauInit, reduceOnPlateauStep } from "../src/trends/reduce_on_plateau.ts";

const FIXTURES = join(import.meta.dir, "fixtures");
let modelsDir = "";

beforeAll(async () => {
  modelsDir = mkdtempSync(join(tmpdir(), "trainwatch-models-"));
  await selectBackend();
});
afterAll(() => rmSync(modelsDir, { recursive: true, force: true }));

function spec(input: TrainingSpecInput): NormalizedSpec {
  const v = validateSpec(input);
  if (!v.ok) throw new Error(v.message);
  return v.spec;
}

interface Run {
  result: TrainingResult;
  records: EpochRecord[];
  start: StartReport | null;
  progress: { epoch: number; batch: number; batches: number }[];
}

async function train(
  s: NormalizedSpec,
  opts: Partial<RunOptions> = {},
  onProgress?: (p: Run["progress"][number]) => void,
): Promise<Run> {
  const run: Run = { result: null as unknown as TrainingResult, records: [], start: null, progress: [] };
  run.result = await runTraining(
    s,
    { modelsDir, operationId: `op-${crypto.randomUUID()}`, ...opts },
    {
      onStart: (i) => (run.start = i),
      onEpoch: (e) => void run.records.push(e),
      onProgress: (p) => {
        run.progress.push(p);
        onProgress?.(p);
      },
    },
  );
  return run;
}

/** Everything but wall-clock fields. */
const metricsOf = (records: EpochRecord[]) => records.map(({ duration: _d, timestamp: _t, ...m }) => m);

const SPIRALS = spec({
  name: "spirals",
  dataset: { kind: "synthetic", generator: "spirals", samples: 1000, seed: 1 },
  training: { epochs: 10, seed: 42 },
});
const OVERFIT_ES = { ...DEFAULTS.early_stopping, patience: 3, mode: "min" } as const;

describe("training in a worker", () => {
  let workerRun: Run;

  test("a 10-epoch spirals run emits 10 complete records and writes the model", async () => {
    const run: Run = { result: null as unknown as TrainingResult, records: [], start: null, progress: [] };
    const handle = startWorkerTraining(
      { operationId: "spirals-worker", spec: SPIRALS, modelsDir },
      {
        onStart: (i) => (run.start = i),
        onEpoch: (e) => void run.records.push(e),
        onProgress: (p) => void run.progress.push(p),
      },
    );
    run.result = await handle.done;
    workerRun = run;

    expect(run.start).toMatchObject({
      backend: "wasm",
      samples_train: 800,
      samples_val: 200,
      batches_per_epoch: 25,
      total_epochs: 10,
      task: "classification",
    });
    expect(run.start?.classes).toEqual(["arm_0", "arm_1", "arm_2"]);
    expect(run.records.map((r) => r.epoch)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const r of run.records) {
      for (const key of ["train_loss", "val_loss", "train_accuracy", "val_accuracy", "duration"] as const) {
        expect(Number.isFinite(r[key])).toBe(true);
      }
      expect(r.learning_rate).toBe(0.001);
      expect(new Date(r.timestamp).toISOString()).toBe(r.timestamp);
    }
    const first = run.records[0]!;
    const last = run.records[9]!;
    expect(last.train_loss!).toBeLessThan(first.train_loss!);
    expect(last.val_accuracy!).toBeGreaterThan(0.6);
    expect(run.result).toMatchObject({ stop_reason: "completed", epochs_run: 10, backend: "wasm" });
    expect(run.result.final_metrics).toEqual(last);
    const dir = join(modelsDir, "spirals-worker");
    expect(run.result.model_path).toBe(dir);
    for (const file of ["model.json", "weights.bin", "preprocessing.json"])
      expect(existsSync(join(dir, file))).toBe(true);
    const modelJson = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
    expect(modelJson.format).toBe("layers-model");
    expect(modelJson.weightsManifest[0].paths).toEqual(["weights.bin"]);
  });

  test("same spec and seed give identical metrics (worker and in-process alike)", async () => {
    const again = await train(SPIRALS);
    expect(metricsOf(again.records)).toEqual(metricsOf(workerRun.records));
    const otherSeed = await train({ ...SPIRALS, training: { ...SPIRALS.training, seed: 7 } });
    expect(metricsOf(otherSeed.records)).not.toEqual(metricsOf(workerRun.records));
  });

  test("cancel from the main thread ends the run as cancelled, without a model: the worker stops by itself and writes its checkpoints", async () => {
    const slow = spec({
      dataset: { kind: "synthetic", generator: "spirals", samples: 2000 },
      training: { epochs: 200, batch_size: 8 },
    });
    let cancelled = false;
    const handle = startWorkerTraining(
      { operationId: "cancel-worker", spec: slow, modelsDir },
      {
        onStart: () => {},
        onEpoch: () => {
          if (!cancelled) {
            cancelled = true;
            handle.cancel();
          }
        },
        onProgress: () => {},
      },
      // No grace timer to race: only the worker's own stop can settle `done` (how fast it does is bench/latency.ts).
      { cancelGraceMs: 3_600_000 },
    );
    const result = await handle.done;
    expect(result.stop_reason).toBe("cancelled");
    expect(result.epochs_run).toBeLessThan(5);
    // What only the worker's own end reports (a terminated one's result has no best epoch): it left its loop and returned.
    expect(result.best_epoch).not.toBeNull();
    expect(result.final_metrics).not.toBeNull();
    expect(result.model_path).toBeNull();
    // No final model; what it trained is kept as its checkpoints (issue 9).
    expect(existsSync(join(modelsDir, "cancel-worker", "model.json"))).toBe(false);
    expect(result.checkpoints.map((c) => c.kind)).toEqual(["best", "last"]);
    for (const c of result.checkpoints) expect(existsSync(join(c.path, "model.json"))).toBe(true);
  });

  test("bad CSVs fail with a message naming row and column", async () => {
    const fail = async (input: TrainingSpecInput) => {
      const handle = startWorkerTraining(
        { operationId: "bad-csv", spec: spec(input), modelsDir },
        { onStart() {}, onEpoch() {}, onProgress() {} },
      );
      return handle.done.then(
        () => {
          throw new Error("expected the training to fail");
        },
        (err: Error & { code?: string }) => err,
      );
    };
    const missing = await fail({
      dataset: { kind: "csv", path: join(FIXTURES, "missing_label.csv"), label: "species" },
    });
    expect(missing.code).toBe("TRAINING_FAILED");
    expect(missing.message).toBe('row 1, column "species": label column not found in the header (4 column(s))');
    const cell = await fail({ dataset: { kind: "csv", path: join(FIXTURES, "bad_cell.csv"), label: "price_k" } });
    expect(cell.message).toBe('row 8, column "age_years": not a number');
  });

  test("a worker that dies rejects with WORKER_EXITED", async () => {
    const handle = startWorkerTraining(
      { operationId: "crash", spec: SPIRALS, modelsDir },
      { onStart() {}, onEpoch() {}, onProgress() {} },
      { workerUrl: new URL("./fixtures/crashing_worker.ts", import.meta.url).href },
    );
    const err = (await handle.done.catch((e: unknown) => e)) as Error & { code?: string };
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe("WORKER_EXITED");
  });
});

describe("stopping rules", () => {
  const overfit = (training: NonNullable<TrainingSpecInput["training"]>) =>
    spec({
      dataset: { kind: "synthetic", generator: "overfit", seed: 3 },
      training: { epochs: 30, seed: 5, ...training },
    });

  test("the overfit dataset trips the overfitting rule within 30 epochs", async () => {
    const { records } = await train(overfit({}));
    const firstOverfit = records.findIndex((_, i) => summarizeTrends(records.slice(0, i + 1)).is_overfitting);
    // Caught, and only after validation has passed its best (at least 2 epochs later).
    expect(firstOverfit).toBeGreaterThanOrEqual(0);
    expect(firstOverfit).toBeGreaterThanOrEqual(summarizeTrends(records.slice(0, firstOverfit + 1)).best_epoch! + 2);
    expect(records.length).toBe(30);
  });

  test("early stopping stops at the epoch the Keras rule names, emits it, and saves the best weights", async () => {
    const s = overfit({ early_stopping: OVERFIT_ES });
    const before = tf.memory().numTensors;
    const run = await train(s);
    expect(tf.memory().numTensors).toBe(before);
    const stopEpoch = earlyStoppingStopEpoch(
      OVERFIT_ES,
      run.records.map((r) => r.val_loss ?? null),
    );
    expect(stopEpoch).not.toBeNull();
    expect(run.result.stop_reason).toBe("early_stopping");
    expect(run.records[run.records.length - 1]!.epoch).toBe(stopEpoch!);
    const best = run.records.reduce((a, b) => (b.val_loss! < a.val_loss! ? b : a));
    expect(run.result.best_epoch).toBe(best.epoch);
    expect(run.result.best_metrics).toEqual(best);

    // The saved model is the best epoch's: reloaded, it reproduces that epoch's val_loss on the validation rows.
    const dir = run.result.model_path!;
    const json = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
    const weights = new Uint8Array(readFileSync(join(dir, "weights.bin"))).buffer;
    const model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: weights,
      }),
    );
    const { val } = splitDataset(loadDataset(s.dataset), s.training.validation_split, s.training.seed);
    const valLoss = tf.tidy(() => {
      const p = tf.clipByValue(model.predict(tf.tensor2d(val!.x, [val!.rows, 100])) as tf.Tensor, 1e-7, 1 - 1e-7);
      const y = tf.tensor2d(val!.y, [val!.rows, 1]);
      return tf.neg(tf.mean(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p)))))).dataSync()[0]!;
    });
    model.dispose();
    expect(valLoss).toBeCloseTo(best.val_loss!, 4);
  });

  test("reduce_on_plateau: each record's learning_rate is the Keras rule's replay", async () => {
    const lrCfg = {
      kind: "reduce_on_plateau",
      monitor: "val_loss",
      factor: 0.5,
      patience: 1,
      min_delta: 0.0001,
      cooldown: 1,
      min_lr: 0.0001,
      mode: "auto",
    } as const;
    const { records } = await train(overfit({ epochs: 20, learning_rate: 0.002, lr_schedule: lrCfg }));
    let state = reduceOnPlateauInit(lrCfg);
    let lr = 0.002;
    const expected: number[] = [];
    for (const r of records) {
      expected.push(lr);
      const step = reduceOnPlateauStep(lrCfg, state, lr, r.val_loss);
      state = step.state;
      lr = step.lr;
    }
    expect(records.map((r) => r.learning_rate)).toEqual(expected);
    expect(new Set(expected).size).toBeGreaterThan(2);
  });

  test("cancel stops before the next batch and reports no partial epoch", async () => {
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const s = spec({
      dataset: { kind: "synthetic", generator: "spirals", samples: 2000 },
      training: { epochs: 5, batch_size: 1 },
    });
    const before = tf.memory().numTensors;
    let seen = 0;
    const run = await train(s, { cancelFlag: flag }, () => {
      seen++;
      Atomics.store(flag, 0, 1);
    });
    expect(seen).toBe(1);
    expect(run.progress).toHaveLength(1);
    expect(run.result.stop_reason).toBe("cancelled");
    expect(run.result.epochs_run).toBe(run.records.length);
    expect(run.records.every((r) => r.epoch < run.progress[0]!.epoch)).toBe(true);
    expect(run.result.model_path).toBeNull();
    expect(tf.memory().numTensors).toBe(before);

    const early = await train(s, { cancelFlag: flag });
    expect(early.progress).toHaveLength(0);
    expect(early.result).toMatchObject({ stop_reason: "cancelled", epochs_run: 0, final_metrics: null });
  });
});

describe("CSV datasets", () => {
  test("a categorical label trains a classifier over the sorted classes", async () => {
    const run = await train(
      spec({
        dataset: { kind: "csv", path: join(FIXTURES, "flowers.csv"), label: "species" },
        training: { epochs: 15, learning_rate: 0.01, batch_size: 8 },
      }),
    );
    expect(run.start).toMatchObject({
      task: "classification",
      classes: ["setosa", "versicolor", "virginica"],
      samples_train: 72,
      samples_val: 18,
    });
    expect(run.records[14]!.val_accuracy!).toBeGreaterThan(0.8);
  });

  test("a numeric label trains a regression without accuracy", async () => {
    const run = await train(
      spec({
        dataset: { kind: "csv", path: join(FIXTURES, "houses.csv"), label: "price_k" },
        training: { epochs: 15, learning_rate: 0.05, batch_size: 8 },
      }),
    );
    expect(run.start?.task).toBe("regression");
    expect(run.start?.classes).toBeUndefined();
    expect(run.records[0]).not.toHaveProperty("train_accuracy");
    expect(run.records[14]!.val_loss!).toBeLessThan(run.records[0]!.val_loss! / 10);
    const pre = JSON.parse(readFileSync(join(run.result.model_path!, "preprocessing.json"), "utf8"));
    expect(pre).toMatchObject({
      features: ["rooms", "area_m2", "age_years"],
      task: "regression",
      output: "linear",
      label: "price_k",
    });
  });
});

describe("the maths", () => {
  let tensorsBefore = 0;
  beforeEach(() => {
    tensorsBefore = tf.memory().numTensors;
  });
  afterEach(() => expect(tf.memory().numTensors).toBe(tensorsBefore));

  const heads: [string, MlpArch][] = [
    ["softmax / relu", { inputs: 5, hidden: [7, 4], activation: "relu", dropout: 0.3, outputs: 3, head: "softmax" }],
    ["sigmoid / tanh", { inputs: 5, hidden: [6], activation: "tanh", dropout: 0.2, outputs: 1, head: "sigmoid" }],
    ["linear / elu", { inputs: 5, hidden: [6, 5], activation: "elu", dropout: 0, outputs: 1, head: "linear" }],
    [
      "linear / sigmoid, no hidden layer",
      { inputs: 5, hidden: [], activation: "sigmoid", dropout: 0, outputs: 1, head: "linear" },
    ],
  ];

  for (const [name, arch] of heads) {
    test(`hand-written gradients equal TF.js autodiff, device and host head (${name})`, () => {
      const rng = new Rng(11);
      const n = 9;
      const params = initParams(arch, rng).map((p, i) => {
        const widths = [arch.inputs, ...arch.hidden, arch.outputs];
        const l = Math.floor(i / 2);
        // Non-zero biases so every path of the backward pass is exercised.
        return i % 2 === 0
          ? tf.tensor2d(p, [widths[l]!, widths[l + 1]!])
          : tf.tensor1d(Array.from(p, () => rng.uniform(-0.5, 0.5)));
      });
      const labels = Array.from({ length: n }, () => rng.int(arch.outputs === 1 ? 2 : arch.outputs));
      const y = Float32Array.from(labels, (l) => (arch.head === "linear" ? l * 3 - 1 : l));
      const batch: TrainBatch = {
        x: tf.tensor2d(
          Array.from({ length: n * arch.inputs }, () => rng.normal()),
          [n, arch.inputs],
        ),
        y,
        targets:
          arch.head === "softmax" ? tf.tidy(() => tf.oneHot(labels, arch.outputs).toFloat()) : tf.tensor2d(y, [n, 1]),
        labels: arch.head === "softmax" ? tf.tensor1d(labels, "int32") : null,
        masks: arch.hidden.map((u) =>
          arch.dropout > 0
            ? tf.tensor2d(
                Array.from({ length: n * u }, () => (rng.next() < arch.dropout ? 0 : 1 / (1 - arch.dropout))),
                [n, u],
              )
            : null,
        ),
      };
      const manual = tidy(() => trainStep(arch, params, batch, "device"));
      const host = tidy(() => trainStep(arch, params, batch, "host"));
      const act = (z: tf.Tensor) =>
        arch.activation === "linear" ? z : (tf[arch.activation] as (t: tf.Tensor) => tf.Tensor)(z);
      const meanLoss = (...ps: tf.Tensor[]) => {
        let a: tf.Tensor = batch.x;
        arch.hidden.forEach((_, l) => {
          a = act(tf.add(tf.matMul(a, ps[2 * l]!), ps[2 * l + 1]!));
          if (batch.masks[l]) a = tf.mul(a, batch.masks[l]!);
        });
        const last = arch.hidden.length;
        const z = tf.add(tf.matMul(a, ps[2 * last]!), ps[2 * last + 1]!);
        if (arch.head === "softmax") return tf.losses.softmaxCrossEntropy(batch.targets!, z);
        if (arch.head === "sigmoid") return tf.losses.sigmoidCrossEntropy(batch.targets!, z);
        return tf.losses.meanSquaredError(batch.targets!, z);
      };
      const auto = tf.grads(meanLoss)(params);
      const mean = tidy(() => meanLoss(...params).dataSync()[0]!);
      expect((manual.lossSum as tf.Tensor).dataSync()[0]! / n).toBeCloseTo(mean, 5);
      expect((host.lossSum as number) / n).toBeCloseTo(mean, 5);
      if (arch.head === "linear") expect(host.correct).toBeNull();
      else expect(host.correct).toBe((manual.correct as tf.Tensor).dataSync()[0]!);
      for (const step of [manual, host]) {
        step.grads.forEach((g, i) => {
          const a = auto[i]!.dataSync();
          const m = g.dataSync();
          expect(m.length).toBe(a.length);
          for (let j = 0; j < a.length; j++) expect(m[j]!).toBeCloseTo(a[j]!, 5);
        });
      }
      tf.dispose([
        ...params,
        ...auto,
        ...manual.grads,
        ...host.grads,
        manual.lossSum as tf.Tensor,
        (manual.correct as tf.Tensor | null) ?? [],
      ]);
      tf.dispose([batch.x, batch.targets!, batch.labels ?? [], ...batch.masks.filter((m) => m !== null)]);
    });
  }

  test("host and device optimizers take the same steps", () => {
    const arch: MlpArch = { inputs: 4, hidden: [8], activation: "relu", dropout: 0, outputs: 1, head: "linear" };
    for (const name of ["adam", "adamw", "sgd", "rmsprop"] as const) {
      const final = (placement: Placement) => {
        const rng = new Rng(3);
        const shapes = [[4, 8], [8], [8, 1], [1]];
        const store = createParamStore(placement, initParams(arch, rng), shapes, {
          name,
          weightDecay: name === "adamw" ? 0.01 : 0,
        });
        const x = tf.tensor2d(
          Array.from({ length: 32 * 4 }, () => rng.normal()),
          [32, 4],
        );
        const yHost = Float32Array.from({ length: 32 }, () => rng.normal());
        const y = tf.tensor2d(yHost, [32, 1]);
        for (let i = 0; i < 25; i++) {
          const step = tidy(() =>
            trainStep(arch, store.params, { x, y: yHost, targets: y, labels: null, masks: [null] }, "device"),
          );
          store.apply(step.grads, 0.01);
          tf.dispose([...step.grads, step.lossSum as tf.Tensor]);
        }
        const values = store.read();
        store.dispose();
        tf.dispose([x, y]);
        return values;
      };
      const host = final("host");
      const device = final("device");
      host.forEach((h, k) => h.forEach((v, j) => expect(v).toBeCloseTo(device[k]![j]!, 5)));
    }
  });

  test("host and device placements train alike (the device path is what TensorFlow backends run)", async () => {
    const s = spec({ dataset: { kind: "synthetic", generator: "spirals", samples: 600 }, training: { epochs: 3 } });
    const before = tf.memory().numTensors;
    const host = await train(s, { placement: "host" });
    const device = await train(s, { placement: "device" });
    expect(tf.memory().numTensors).toBe(before);
    device.records.forEach((r, i) => {
      const h = host.records[i]!;
      expect(r.train_loss!).toBeCloseTo(h.train_loss!, 3);
      expect(r.val_loss!).toBeCloseTo(h.val_loss!, 3);
      expect(r.val_accuracy!).toBeCloseTo(h.val_accuracy!, 2);
    });
  });

  test("a whole training leaves no tensor behind and predicts like the saved model", async () => {
    const before = tf.memory().numTensors;
    const s = spec({
      dataset: { kind: "synthetic", generator: "random_walk", samples: 600 },
      training: { epochs: 2, optimizer: "adamw" },
    });
    const run = await train(s);
    expect(run.records).toHaveLength(2);
    expect(run.start?.classes).toEqual(["down", "up"]);
    expect(tf.memory().numTensors).toBe(before);

    const dir = run.result.model_path!;
    const json = JSON.parse(readFileSync(join(dir, "model.json"), "utf8"));
    const model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: new Uint8Array(readFileSync(join(dir, "weights.bin"))).buffer,
      }),
    );
    const arch = mlpArch(s.model, 11, "classification", 2);
    const x = tf.randomNormal([5, 11]) as tf.Tensor2D;
    const params = model.getWeights();
    const ours = predict(arch, params, x);
    const theirs = model.predict(x) as tf.Tensor;
    const a = ours.dataSync();
    const b = theirs.dataSync();
    for (let i = 0; i < a.length; i++) expect(a[i]!).toBeCloseTo(b[i]!, 5);
    tf.dispose([x, ours, theirs]);
    model.dispose();
  });
});

describe("training spec", () => {
  test("fills every default", () => {
    const s = normalizeSpec({ dataset: { kind: "synthetic", generator: "spirals" } });
    expect(s).toEqual({
      name: "spirals",
      dataset: { kind: "synthetic", generator: "spirals", samples: 2000, seed: 42, features: 2, classes: 3 },
      model: { hidden_layers: [64, 32], activation: "relu", dropout: 0.2 },
      training: {
        epochs: 10,
        batch_size: 32,
        learning_rate: 0.001,
        optimizer: "adam",
        weight_decay: 0,
        validation_split: 0.2,
        seed: 42,
        early_stopping: null,
        lr_schedule: { kind: "constant" },
      },
    });
  });

  test("names the first failing field", () => {
    const bad = (value: unknown) => {
      const v = validateSpec(value);
      return v.ok ? "ok" : v.message;
    };
    const ds = { kind: "synthetic", generator: "spirals" };
    expect(bad({ dataset: ds, training: { batch_size: 0 } })).toBe(
      "/training/batch_size: Expected integer to be greater or equal to 1",
    );
    expect(bad({ dataset: ds, training: { epoch: 3 } })).toBe("/training/epoch: Unexpected property");
    expect(bad({ dataset: { kind: "csv", label: "y" } })).toBe("/dataset/path: Expected required property");
    expect(bad({ dataset: { kind: "parquet" } })).toBe('/dataset/kind: Expected one of "synthetic", "csv"');
    expect(bad({ dataset: ds, model: { activation: "gelu" } })).toBe(
      '/model/activation: Expected one of "relu", "tanh", "sigmoid", "elu", "linear"',
    );
    expect(bad({ dataset: ds, training: { lr_schedule: { kind: "reduce_on_plateau", factor: 2 } } })).toBe(
      "/training/lr_schedule/factor: Expected number to be less than 1",
    );
    expect(bad({ dataset: ds, training: { validation_split: 0, early_stopping: {} } })).toBe(
      "/training/early_stopping/monitor: val_loss needs training.validation_split > 0",
    );
    expect(bad({ dataset: { ...ds, samples: 1_000_000, features: 100 } })).toBe(
      "/dataset/samples: samples × features is 100000000; at most 50000000 values are generated",
    );
    expect(bad({ dataset: ds, model: { hidden_layers: Array(17).fill(8) } })).toBe(
      "/model/hidden_layers: Expected array length to be less or equal to 16",
    );
  });
});

describe("backend selection", () => {
  const installed = (pkg: string) => {
    try {
      createRequire(import.meta.url).resolve(pkg);
      return true;
    } catch {
      return false;
    }
  };
  afterAll(() => selectBackend());

  test("TRAINWATCH_BACKEND forces a backend and fails loudly when it cannot load", async () => {
    expect(await selectBackend({ TRAINWATCH_BACKEND: "cpu" })).toEqual({
      backend: "cpu",
      backend_fallback_reason: null,
      gpu: null,
      gpu_visible: visibleGpu(),
    });
    expect(tf.getBackend()).toBe("cpu");
    const unknown = (await selectBackend({ TRAINWATCH_BACKEND: "webgpu" }).catch((e: unknown) => e)) as Error & {
      code?: string;
    };
    expect(unknown.message).toBe("TRAINWATCH_BACKEND=webgpu is not one of tensorflow-gpu, tensorflow, wasm, cpu");
    if (!installed("@tensorflow/tfjs-node")) {
      const missing = (await selectBackend({ TRAINWATCH_BACKEND: "tensorflow" }).catch((e: unknown) => e)) as Error & {
        code?: string;
      };
      expect(missing.code).toBe("TRAINING_FAILED");
      expect(missing.message).toStartWith(
        "TRAINWATCH_BACKEND=tensorflow cannot be used: @tensorflow/tfjs-node cannot be loaded",
      );
    }
  });

  test("a visible NVIDIA GPU is named from the driver's information file", () => {
    const root = mkdtempSync(join(tmpdir(), "trainwatch-gpus-"));
    try {
      expect(visibleGpu({}, root)).toBeNull();
      mkdirSync(join(root, "0000:00:06.0"));
      // The layout seen on an H100 machine.
      writeFileSync(join(root, "0000:00:06.0", "information"), "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 41\n");
      expect(visibleGpu({}, root)).toBe("NVIDIA H100 80GB HBM3");
      expect(visibleGpu({ CUDA_VISIBLE_DEVICES: "" }, root)).toBeNull();
      mkdirSync(join(root, "0000:00:07.0"));
      writeFileSync(join(root, "0000:00:07.0", "information"), "Model: \t\t NVIDIA H100 80GB HBM3\n");
      expect(visibleGpu({}, root)).toBe("NVIDIA H100 80GB HBM3 (×2)");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("without it, the best loadable backend wins and the skipped ones are named", async () => {
    const info = await selectBackend({});
    expect(tf.getBackend()).toBe(info.backend === "tensorflow-gpu" ? "tensorflow" : info.backend);
    if (!installed("@tensorflow/tfjs-node") && !installed("@tensorflow/tfjs-node-gpu")) {
      expect(info.backend).toBe("wasm");
      expect(info.backend_fallback_reason).toContain("tensorflow-gpu: ");
      expect(info.backend_fallback_reason).toContain("; tensorflow: @tensorflow/tfjs-node cannot be loaded");
    }
  });
});
