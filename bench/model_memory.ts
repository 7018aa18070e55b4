/**
 * Calibrates the memory estimate (src/schemas/memory.ts) against real trainings:
 *   bun run bench/model_memory.ts [--backend=wasm]
 * Each spec trains in a fresh process (so the peak is its own); the child prints its peak RSS (VmHWM) after the
 * backend is loaded and after training, and the parent prints the training's growth next to the estimate.
 * Prints figures; asserts nothing.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { estimateTrainingMemory, specMemoryShape } from "../src/schemas/memory.ts";
import type { TrainingSpecInput } from "../src/schemas/spec.ts";
import { validateSpec } from "../src/schemas/spec_rules.ts";
import { args } from "./args.ts";

const BACKEND = args.get("backend") ?? "wasm";

/** The first six calibrated the coefficients; the last two were not used for fitting (a check of the fit). */
const SPECS: Record<string, TrainingSpecInput> = {
  tiny: {
    dataset: { kind: "synthetic", generator: "spirals", samples: 200 },
    model: { hidden_layers: [8] },
    training: { epochs: 1 },
  },
  "mid 3×2048 adam": {
    dataset: { kind: "synthetic", generator: "spirals", samples: 400 },
    model: { hidden_layers: [2048, 2048, 2048] },
    training: { epochs: 1, batch_size: 32 },
  },
  "mid 3×2048, 4× the steps": {
    dataset: { kind: "synthetic", generator: "spirals", samples: 1600 },
    model: { hidden_layers: [2048, 2048, 2048] },
    training: { epochs: 1, batch_size: 32 },
  },
  "mid 3×2048 sgd": {
    dataset: { kind: "synthetic", generator: "spirals", samples: 400 },
    model: { hidden_layers: [2048, 2048, 2048] },
    training: { epochs: 1, batch_size: 32, optimizer: "sgd" },
  },
  "mid 2×512 batch 4096": {
    dataset: { kind: "synthetic", generator: "spirals", samples: 10_000 },
    model: { hidden_layers: [512, 512] },
    training: { epochs: 1, batch_size: 4096 },
  },
  "wide 4096+2048 tanh": {
    dataset: { kind: "synthetic", generator: "overfit", samples: 300, features: 1024 },
    model: { hidden_layers: [4096, 2048], activation: "tanh" },
    training: { epochs: 1, batch_size: 64 },
  },
  "check: 4×1536 rmsprop sigm": {
    dataset: { kind: "synthetic", generator: "random_walk", samples: 3000 },
    model: { hidden_layers: [1536, 1536, 1536, 1536], activation: "sigmoid", dropout: 0 },
    training: { epochs: 1, batch_size: 256, optimizer: "rmsprop" },
  },
  "check: 4096,4096,2048 adamw": {
    dataset: { kind: "synthetic", generator: "spirals", samples: 200 },
    model: { hidden_layers: [4096, 4096, 2048] },
    training: { epochs: 1, batch_size: 32, optimizer: "adamw", early_stopping: { monitor: "val_loss" } },
  },
};

const hwmMb = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;

if (args.has("child")) {
  const { runTraining } = await import("../src/trainer/engine.ts");
  const { activateBackend } = await import("../src/trainer/backend.ts");
  await activateBackend(BACKEND as "wasm");
  const before = hwmMb();
  const checked = validateSpec(SPECS[args.get("child")!]);
  if (!checked.ok) throw new Error(checked.message);
  const dir = mkdtempSync(join(tmpdir(), "tw-mem-"));
  let atEpoch = 0;
  try {
    await runTraining(
      checked.spec,
      { modelsDir: dir, operationId: "mem", backend: BACKEND as "wasm" },
      {
        onStart() {},
        onEpoch() {
          atEpoch = hwmMb();
        },
        onProgress() {},
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ before, after: hwmMb(), atEpoch }));
  process.exit(0);
}

console.log(
  `backend ${BACKEND}; MB = 2^20 bytes; growth = peak RSS after training − peak RSS once the backend is loaded`,
);
for (const name of Object.keys(SPECS)) {
  const checked = validateSpec(SPECS[name]);
  if (!checked.ok) throw new Error(checked.message);
  const est = estimateTrainingMemory(specMemoryShape(checked.spec));
  const proc = Bun.spawnSync([process.execPath, import.meta.path, `--child=${name}`, `--backend=${BACKEND}`], {
    stderr: "pipe",
  });
  const line = proc.stdout.toString().trim().split("\n").pop() ?? "";
  if (proc.exitCode !== 0) {
    console.log(`${name}: child failed (${proc.exitCode}): ${proc.stderr.toString().slice(-500)}`);
    continue;
  }
  const { before, after, atEpoch } = JSON.parse(line) as { before: number; after: number; atEpoch: number };
  const growth = after - before;
  console.log(
    `${name.padEnd(28)} params ${est.parameters.toLocaleString("en-US").padStart(12)}  estimate ${String(est.total_mb).padStart(5)} MB  ` +
      `baseline ${before.toFixed(0).padStart(4)} MB  at last epoch ${atEpoch.toFixed(0).padStart(5)} MB  peak ${after.toFixed(0).padStart(5)} MB  growth ${growth.toFixed(0).padStart(5)} MB  ` +
      `growth/estimate ${(growth / est.total_mb).toFixed(2)}`,
  );
}
