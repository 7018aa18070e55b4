// Train/validation split (Keras-style: the last fraction is validation, after a seeded shuffle) and feature
// standardisation with the TRAINING split's statistics, so nothing from the validation rows leaks into training.

import { TrainwatchError } from "../../errors.ts";
import type { Dataset, Task } from "./dataset.ts";
import { Rng } from "./prng.ts";

export interface Rows {
  x: Float32Array;
  y: Float32Array;
  rows: number;
}

export interface SplitDataset {
  train: Rows;
  val: Rows | null;
  features: number;
  featureNames: string[];
  task: Task;
  classes: string[] | null;
  /** Per-feature mean and std of the training rows (std 0 is stored as 1); saved with the model for inference. */
  mean: Float32Array;
  std: Float32Array;
}

/** Shuffles rows with `seed`, keeps the first floor(rows·(1−validationSplit)) for training, standardises both parts. */
export function splitDataset(ds: Dataset, validationSplit: number, seed: number): SplitDataset {
  const f = ds.featureNames.length;
  const trainRows = Math.floor(ds.rows * (1 - validationSplit));
  const valRows = ds.rows - trainRows;
  if (trainRows < 1 || (validationSplit > 0 && valRows < 1)) {
    throw new TrainwatchError(
      "TRAINING_FAILED",
      `validation_split ${validationSplit} of ${ds.rows} rows leaves ${trainRows} training and ${valRows} validation rows; both need at least 1`,
    );
  }
  const order = new Rng(seed).shuffle(Uint32Array.from({ length: ds.rows }, (_, i) => i));
  const train = gatherRows(ds, f, order, 0, trainRows);
  const val = valRows > 0 ? gatherRows(ds, f, order, trainRows, valRows) : null;
  const { mean, std } = columnStats(train.x, trainRows, f);
  standardize(train.x, mean, std);
  if (val) standardize(val.x, mean, std);
  return { train, val, features: f, featureNames: ds.featureNames, task: ds.task, classes: ds.classes, mean, std };
}

/**
 * Takes `rows` rows out of `ds` (a seeded shuffle, then the last `rows`), before any train/validation split: a held-out
 * test set for benchmarks, which neither the training nor the reported validation sees. Returns what is kept and what is
 * held out; standardise the held-out rows with the training split's statistics (`standardizeRows`).
 */
export function holdOut(ds: Dataset, rows: number, seed: number): { kept: Dataset; held: Rows } {
  const f = ds.featureNames.length;
  if (!Number.isInteger(rows) || rows < 1 || rows >= ds.rows) {
    throw new TrainwatchError("TRAINING_FAILED", `held-out rows ${rows} of ${ds.rows}: need 1 … ${ds.rows - 1}`);
  }
  // A seed of its own, so the held-out rows do not follow the split's shuffle.
  const order = new Rng((seed ^ 0x68e31da4) >>> 0).shuffle(Uint32Array.from({ length: ds.rows }, (_, i) => i));
  const kept = gatherRows(ds, f, order, 0, ds.rows - rows);
  return { kept: { ...ds, ...kept }, held: gatherRows(ds, f, order, ds.rows - rows, rows) };
}

/** Standardises `rows` in place with a split's training statistics (mean, std). */
export function standardizeRows(rows: Rows, split: Pick<SplitDataset, "mean" | "std">): void {
  standardize(rows.x, split.mean, split.std);
}

/** Copies rows order[start] … order[start + count − 1] of `src` (f features each) into new arrays. */
export function gatherRows(
  src: Pick<Rows, "x" | "y">,
  f: number,
  order: Uint32Array,
  start: number,
  count: number,
): Rows {
  const x = new Float32Array(count * f);
  const y = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const row = order[start + i]!;
    x.set(src.x.subarray(row * f, row * f + f), i * f);
    y[i] = src.y[row]!;
  }
  return { x, y, rows: count };
}

function columnStats(x: Float32Array, rows: number, f: number): { mean: Float32Array; std: Float32Array } {
  const sum = new Float64Array(f);
  for (let i = 0; i < rows; i++) for (let j = 0; j < f; j++) sum[j]! += x[i * f + j]!;
  const mean = new Float32Array(f);
  for (let j = 0; j < f; j++) mean[j] = sum[j]! / rows;
  const sq = new Float64Array(f);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < f; j++) {
      const d = x[i * f + j]! - mean[j]!;
      sq[j]! += d * d;
    }
  const std = new Float32Array(f);
  for (let j = 0; j < f; j++) std[j] = Math.sqrt(sq[j]! / rows) || 1;
  return { mean, std };
}

function standardize(x: Float32Array, mean: Float32Array, std: Float32Array): void {
  const f = mean.length;
  for (let i = 0; i < x.length; i++) x[i] = (x[i]! - mean[i % f]!) / std[i % f]!;
}
