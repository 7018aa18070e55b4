// Batches and epoch sums: training rows gathered in shuffled order and copied to the device with fresh dropout masks,
// validation (and benchmark held-out) rows uploaded once in chunks, and the per-batch loss and accuracy totals summed on
// the device so an epoch needs one device→host read.

import * as tf from "@tensorflow/tfjs";
import type { Rng } from "./datasets/prng.ts";
import { gatherRows, type Rows } from "./datasets/split.ts";
import { evaluateBatch, tidy, type DeviceBatch, type TrainBatch } from "./maths.ts";
import type { MlpArch } from "./model.ts";
import type { ParamStore } from "./optimizer.ts";

/** Validation rows per forward pass, to bound device memory on large validation sets. */
export const EVAL_CHUNK = 8192;

/** Running sums of per-batch totals: device scalars (kept there until the epoch's single read) or host numbers. */
export class Totals {
  loss: tf.Tensor | null = null;
  correct: tf.Tensor | null = null;
  hostLoss = 0;
  hostCorrect = 0;

  add(loss: tf.Tensor | number, correct: tf.Tensor | number | null): void {
    if (typeof loss === "number") this.hostLoss += loss;
    else this.loss = accumulate(this.loss, loss);
    if (typeof correct === "number") this.hostCorrect += correct;
    else this.correct = accumulate(this.correct, correct);
  }

  dispose(): void {
    tf.dispose([this.loss, this.correct].filter((t): t is tf.Tensor => t !== null));
  }
}

function accumulate(sum: tf.Tensor | null, x: tf.Tensor | null): tf.Tensor | null {
  if (x === null) return sum;
  if (sum === null) return x;
  const next = tf.add(sum, x);
  tf.dispose([sum, x]);
  return next;
}

/** Reads every device sum with one transfer and adds the host parts: [train loss, train correct, val loss, val correct]. */
export function readTotals(train: Totals, val: Totals): number[] {
  const parts = [train, val].flatMap((t) => [
    [t.loss, t.hostLoss],
    [t.correct, t.hostCorrect],
  ]) as [tf.Tensor | null, number][];
  const device = parts.map(([t]) => t).filter((t): t is tf.Tensor => t !== null);
  let values: Float32Array = new Float32Array(0);
  if (device.length > 0) {
    const stacked = tf.stack(device);
    values = stacked.dataSync() as Float32Array;
    stacked.dispose();
  }
  let i = 0;
  return parts.map(([t, host]) => host + (t === null ? 0 : values[i++]!));
}

/** Copies `n` rows (in `order` from `start`) to the device, with fresh dropout masks from `rng`; device targets on request. */
export function makeBatch(
  rows: Rows,
  order: Uint32Array,
  start: number,
  n: number,
  arch: MlpArch,
  rng: Rng,
  deviceTargets: boolean,
): TrainBatch {
  const f = arch.inputs;
  const { x, y } = gatherRows(rows, f, order, start, n);
  const masks = arch.hidden.map((units) =>
    arch.dropout === 0 ? null : tf.tensor2d(rng.dropoutMask(new Float32Array(n * units), arch.dropout), [n, units]),
  );
  if (!deviceTargets) return { x: tf.tensor2d(x, [n, f]), masks, y, targets: null, labels: null };
  return { ...toDevice(x, y, n, arch), masks, y };
}

function toDevice(x: Float32Array, y: Float32Array, n: number, arch: MlpArch): DeviceBatch {
  const xs = tf.tensor2d(x, [n, arch.inputs]);
  if (arch.head !== "softmax") return { x: xs, targets: tf.tensor2d(y, [n, 1]), labels: null };
  const oneHot = new Float32Array(n * arch.outputs);
  for (let i = 0; i < n; i++) oneHot[i * arch.outputs + y[i]!] = 1;
  return { x: xs, targets: tf.tensor2d(oneHot, [n, arch.outputs]), labels: tf.tensor1d(Int32Array.from(y), "int32") };
}

export function disposeBatch(b: DeviceBatch | TrainBatch): void {
  tf.dispose([b.x, b.targets, b.labels, ...("masks" in b ? b.masks : [])].filter((t): t is tf.Tensor => t !== null));
}

/** Validation rows uploaded once, in chunks of at most EVAL_CHUNK rows. */
export function chunks(rows: Rows, arch: MlpArch): DeviceBatch[] {
  const out: DeviceBatch[] = [];
  const f = arch.inputs;
  for (let s = 0; s < rows.rows; s += EVAL_CHUNK) {
    const n = Math.min(EVAL_CHUNK, rows.rows - s);
    out.push(toDevice(rows.x.slice(s * f, (s + n) * f), rows.y.slice(s, s + n), n, arch));
  }
  return out;
}

export function evaluateChunk(
  arch: MlpArch,
  params: ParamStore["params"],
  c: DeviceBatch,
): [tf.Tensor, tf.Tensor | null] {
  const r = tidy(() => evaluateBatch(arch, params, c.x, c.targets, c.labels));
  return [r.lossSum, r.correct];
}

/** Summed loss of the held-out rows (a second read per epoch, benchmarks only). */
export function heldOutLoss(arch: MlpArch, params: ParamStore["params"], held: DeviceBatch[]): number {
  const sums = new Totals();
  try {
    for (const c of held) sums.add(evaluateChunk(arch, params, c)[0], null);
    return readTotals(sums, new Totals())[0]!;
  } finally {
    sums.dispose();
  }
}
