// Training throughput per TF.js backend on a fixed workload, against a PyTorch 1.13 CPU reference.
// Run: bun bench/throughput.ts [backend…]   (default: every backend that loads here)
//
// Workload: MLP 32→64→32→1 (relu, dropout 0.2, sigmoid output), 20,000 rows of binary data (spirals with 30 noise
// columns), batch 64, 20 % validation, 5 epochs, Adam 1e-3. "seconds" is the sum of the 5 epoch durations the engine
// reports (training + validation pass), so data generation, backend start and model saving are left out.

import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { normalizeSpec } from "../src/schemas/spec_rules.ts";
import { activateBackend, BACKEND_NAMES, type BackendName } from "../src/trainer/backend.ts";
import { loadDataset } from "../src/trainer/datasets/dataset.ts";
import { splitDataset } from "../src/trainer/datasets/split.ts";
import { runTraining } from "../src/trainer/engine.ts";

const PYTORCH_SECONDS = 0.55;
const GOAL_RATIO = 0.5;
const EPOCHS = 5;

const spec = normalizeSpec({
  name: "throughput",
  dataset: { kind: "synthetic", generator: "spirals", samples: 20_000, features: 32, classes: 2, seed: 1 },
  model: { hidden_layers: [64, 32], activation: "relu", dropout: 0.2 },
  training: {
    epochs: EPOCHS,
    batch_size: 64,
    learning_rate: 0.001,
    optimizer: "adam",
    validation_split: 0.2,
    seed: 42,
  },
});

/** The engine (hand-written backward pass, one read per epoch): seconds for the 5 epochs. */
async function engineSeconds(
  modelsDir: string,
  backend: BackendName,
): Promise<{ seconds: number; samples: number; valAccuracy: number }> {
  let seconds = 0;
  let samples = 0;
  let valAccuracy = Number.NaN;
  await runTraining(
    spec,
    { modelsDir, operationId: "bench", backend },
    {
      onStart: (i) => (samples = i.samples_train * i.total_epochs),
      onEpoch: (e) => {
        seconds += e.duration ?? 0;
        valAccuracy = e.val_accuracy ?? Number.NaN;
      },
      onProgress: () => {},
    },
  );
  return { seconds, samples, valAccuracy };
}

/** Plain Keras-style model.fit on the same split and model. */
async function fitSeconds(): Promise<{ seconds: number; valAccuracy: number }> {
  const data = splitDataset(loadDataset(spec.dataset), spec.training.validation_split, spec.training.seed);
  const f = data.features;
  const val = data.val!;
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [f], units: 64, activation: "relu" }),
      tf.layers.dropout({ rate: 0.2 }),
      tf.layers.dense({ units: 32, activation: "relu" }),
      tf.layers.dropout({ rate: 0.2 }),
      tf.layers.dense({ units: 1, activation: "sigmoid" }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.001), loss: "binaryCrossentropy", metrics: ["accuracy"] });
  const x = tf.tensor2d(data.train.x, [data.train.rows, f]);
  const y = tf.tensor2d(data.train.y, [data.train.rows, 1]);
  const vx = tf.tensor2d(val.x, [val.rows, f]);
  const vy = tf.tensor2d(val.y, [val.rows, 1]);
  const started = performance.now();
  const history = await model.fit(x, y, {
    epochs: EPOCHS,
    batchSize: 64,
    validationData: [vx, vy],
    shuffle: true,
    verbose: 0,
  });
  const seconds = (performance.now() - started) / 1000;
  tf.dispose([x, y, vx, vy]);
  model.dispose();
  const acc = history.history.val_acc ?? history.history.val_accuracy;
  return { seconds, valAccuracy: Number(acc?.[acc.length - 1] ?? Number.NaN) };
}

async function wasmFeatures(): Promise<string> {
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
  return `SIMD ${simd ? "on" : "off"}, ${wasm.getThreadsCount()} thread(s)`;
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);

async function main(): Promise<void> {
  const wanted = (process.argv.slice(2).length > 0 ? process.argv.slice(2) : [...BACKEND_NAMES]) as BackendName[];
  const modelsDir = mkdtempSync(join(tmpdir(), "trainwatch-bench-"));
  console.log(`workload: MLP 32→64→32→1, dropout 0.2, 20,000 rows (16,000 train), batch 64, ${EPOCHS} epochs`);
  console.log(
    `reference: PyTorch 1.13 CPU ${PYTORCH_SECONDS} s; goal ≥ ${GOAL_RATIO}× its speed (≤ ${fmt(PYTORCH_SECONDS / GOAL_RATIO)} s)\n`,
  );
  try {
    for (const name of wanted) {
      try {
        await activateBackend(name);
      } catch (err) {
        console.log(`${name.padEnd(15)} unavailable: ${(err as Error).message.split("\n")[0]}`);
        continue;
      }
      const extra = name === "wasm" ? ` (${await wasmFeatures()})` : "";
      const cold = await engineSeconds(modelsDir, name);
      const warm = await engineSeconds(modelsDir, name);
      const fit = await fitSeconds();
      const line = (label: string, seconds: number, acc: number) =>
        `  ${label.padEnd(22)} ${fmt(seconds).padStart(6)} s  ${Math.round(cold.samples / seconds)
          .toLocaleString("en-US")
          .padStart(9)} samples/s  ` + `${fmt(PYTORCH_SECONDS / seconds)}× PyTorch  val_acc ${fmt(acc, 3)}`;
      console.log(`${name}${extra}`);
      console.log(line("engine (first run)", cold.seconds, cold.valAccuracy));
      console.log(line("engine (warm)", warm.seconds, warm.valAccuracy));
      console.log(line("model.fit", fit.seconds, fit.valAccuracy));
      const best = Math.min(cold.seconds, warm.seconds);
      console.log(
        `  goal (≤ ${fmt(PYTORCH_SECONDS / GOAL_RATIO)} s): ${best <= PYTORCH_SECONDS / GOAL_RATIO ? "met" : "NOT met"}\n`,
      );
    }
  } finally {
    rmSync(modelsDir, { recursive: true, force: true });
  }
}

await main();
