// The MLP's maths on TF.js: a hand-written forward and backward pass, the loss and accuracy sums, and the head in JS for
// backends whose tensors live in host memory. Gradients are derived by hand (no gradient tape): a Dense/dropout stack has a
// closed-form backward pass needing far fewer kernels than the tape records, and on WASM the per-kernel overhead is most of
// the training time.

import * as tf from "@tensorflow/tfjs";
import type { Activation } from "../schemas/spec.ts";
import type { MlpArch } from "./model.ts";

/** Rows on the device (validation). `targets`: one-hot [n, k] (softmax), 0/1 or value [n, 1] (sigmoid, linear). */
export type DeviceBatch = {
  x: tf.Tensor;
  targets: tf.Tensor;
  /** Class ids [n] (softmax only), for accuracy. */
  labels: tf.Tensor | null;
};

/** Summed (not averaged) batch loss and, for classification, the number of correct predictions. */
export type BatchTotals = {
  lossSum: tf.Tensor;
  correct: tf.Tensor | null;
};

/** tf.tidy for results holding nulls (TensorContainer has no null, but tidy walks past them): keeps the returned tensors. */
export function tidy<T>(fn: () => T): T {
  return tf.tidy(fn as () => tf.TensorContainer) as T;
}

/**
 * a·b with optional transposes. WASM's matmul kernel runs transposed operands through a slow generic path (~6× slower for
 * 64×64), so there an explicit transpose kernel first is faster; other backends transpose inside the matmul.
 */
function matMul(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean): tf.Tensor {
  if (tf.getBackend() !== "wasm") return tf.matMul(a, b, transposeA, transposeB);
  return tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b);
}

/** Dense layer: act(a·W + b) in one fused kernel; tanh is the one activation TF.js cannot fuse. */
function dense(a: tf.Tensor, w: tf.Tensor, b: tf.Tensor, activation: Activation): tf.Tensor {
  const z = tf.fused.matMul({
    a: a as tf.Tensor2D,
    b: w as tf.Tensor2D,
    bias: b,
    activation: activation === "tanh" ? "linear" : activation,
  });
  return activation === "tanh" ? tf.tanh(z) : z;
}

/** d act / dz, written in terms of the activation's OUTPUT h (which is what the forward pass keeps). */
function activationGrad(h: tf.Tensor, activation: Activation): tf.Tensor | null {
  switch (activation) {
    case "relu":
      return tf.step(h);
    case "sigmoid":
      return tf.mul(h, tf.sub(1, h));
    case "tanh":
      return tf.sub(1, tf.square(h));
    case "elu": // h > 0: 1; else h = eᶻ − 1, so the derivative eᶻ = h + 1
      return tf.add(tf.minimum(h, 0), 1);
    case "linear":
      return null;
  }
}

interface Forward {
  /** Inputs of each Dense layer (x, then each hidden layer's post-dropout output). */
  inputs: tf.Tensor[];
  /** Each hidden layer's post-activation, pre-dropout output. */
  hidden: tf.Tensor[];
  logits: tf.Tensor;
}

function forward(
  arch: MlpArch,
  params: readonly tf.Tensor[],
  x: tf.Tensor,
  masks: readonly (tf.Tensor | null)[],
): Forward {
  const inputs: tf.Tensor[] = [x];
  const hidden: tf.Tensor[] = [];
  let a = x;
  for (let l = 0; l < arch.hidden.length; l++) {
    const h = dense(a, params[2 * l]!, params[2 * l + 1]!, arch.activation);
    hidden.push(h);
    const mask = masks[l];
    a = mask ? tf.mul(h, mask) : h;
    inputs.push(a);
  }
  const last = arch.hidden.length;
  const logits = dense(a, params[2 * last]!, params[2 * last + 1]!, "linear");
  return { inputs, hidden, logits };
}

/** Loss summed over the batch, from logits (numerically stable forms), and the correct-prediction count. */
function totals(arch: MlpArch, logits: tf.Tensor, targets: tf.Tensor, labels: tf.Tensor | null): BatchTotals {
  switch (arch.head) {
    case "softmax": {
      const lossSum = tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits))));
      if (!labels) throw new Error("softmax head needs class labels");
      const correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), "float32"));
      return { lossSum, correct };
    }
    case "sigmoid": {
      // Binary cross-entropy of sigmoid(z) against y is softplus(z) − z·y; a prediction counts when z > 0 ⇔ p > 0.5.
      const lossSum = tf.sum(tf.sub(tf.softplus(logits), tf.mul(logits, targets)));
      const correct = tf.sum(tf.cast(tf.equal(tf.greater(logits, 0), tf.cast(targets, "bool")), "float32"));
      return { lossSum, correct };
    }
    case "linear":
      return { lossSum: tf.sum(tf.squaredDifference(logits, targets)), correct: null };
  }
}

/** dLoss/dlogits for the batch MEAN loss (n rows). */
function headGrad(arch: MlpArch, logits: tf.Tensor, targets: tf.Tensor, n: number): tf.Tensor {
  switch (arch.head) {
    case "softmax":
      return tf.mul(tf.sub(tf.softmax(logits), targets), 1 / n);
    case "sigmoid":
      return tf.mul(tf.sub(tf.sigmoid(logits), targets), 1 / n);
    case "linear":
      return tf.mul(tf.sub(logits, targets), 2 / n);
  }
}

/** A training batch: features and dropout masks on the device; targets on the host, and on the device for a device head. */
export type TrainBatch = {
  x: tf.Tensor;
  /** Per hidden layer: inverted-dropout mask with values 0 or 1/(1−rate), or null without dropout. */
  masks: (tf.Tensor | null)[];
  /** Per row: class id (softmax), 0/1 (sigmoid) or target value (linear). */
  y: Float32Array;
  /** Device targets and labels as in DeviceBatch; needed by the device head only. */
  targets: tf.Tensor | null;
  labels: tf.Tensor | null;
};

/** Where the loss, accuracy and dLoss/dlogits are computed: on the device, or in JS after reading the logits. */
export type HeadPlacement = "device" | "host";

/** Sums are tensors with a device head, plain numbers with a host head. */
export type StepResult = { grads: tf.Tensor[]; lossSum: tf.Tensor | number; correct: tf.Tensor | number | null };

/**
 * One training step's maths: forward with dropout masks, batch totals, and the gradient of the mean loss for every
 * parameter (paramShapes order). A host head replaces ~12 tiny kernels with one read of the [n, outputs] logits and a
 * JS loop, which is faster wherever tensors live in host memory (wasm, cpu). Call inside tf.tidy.
 */
export function trainStep(
  arch: MlpArch,
  params: readonly tf.Tensor[],
  batch: TrainBatch,
  head: HeadPlacement,
): StepResult {
  const n = batch.x.shape[0]!;
  const fwd = forward(arch, params, batch.x, batch.masks);
  if (head === "host") {
    const h = hostHead(arch, fwd.logits.dataSync() as Float32Array, batch.y);
    const g = tf.tensor2d(h.grad, [n, arch.outputs]);
    return { lossSum: h.lossSum, correct: h.correct, grads: backward(arch, params, fwd, batch.masks, g) };
  }
  if (!batch.targets) throw new Error("a device head needs device targets");
  const result = totals(arch, fwd.logits, batch.targets, batch.labels);
  return { ...result, grads: backward(arch, params, fwd, batch.masks, headGrad(arch, fwd.logits, batch.targets, n)) };
}

/**
 * The head in JS, same maths as totals() + headGrad(): summed loss (stable from-logits forms), correct count, and
 * dLoss/dlogits of the MEAN loss. `logits` is [n, outputs] row-major; `y` holds class ids or targets.
 */
export function hostHead(
  arch: MlpArch,
  logits: Float32Array,
  y: Float32Array,
): { lossSum: number; correct: number | null; grad: Float32Array } {
  const k = arch.outputs;
  const n = y.length;
  const grad = new Float32Array(n * k);
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const yi = y[i]!;
    if (arch.head === "softmax") {
      const o = i * k;
      let max = -Infinity;
      let arg = 0;
      for (let j = 0; j < k; j++) {
        if (logits[o + j]! > max) {
          max = logits[o + j]!;
          arg = j;
        }
      }
      let sum = 0;
      for (let j = 0; j < k; j++) sum += Math.exp(logits[o + j]! - max);
      const lse = max + Math.log(sum);
      lossSum += lse - logits[o + yi]!;
      for (let j = 0; j < k; j++) grad[o + j] = (Math.exp(logits[o + j]! - lse) - (j === yi ? 1 : 0)) / n;
      if (arg === yi) correct++;
    } else if (arch.head === "sigmoid") {
      const z = logits[i]!;
      lossSum += Math.max(z, 0) - z * yi + Math.log1p(Math.exp(-Math.abs(z)));
      grad[i] = (1 / (1 + Math.exp(-z)) - yi) / n;
      if (z > 0 === yi > 0.5) correct++;
    } else {
      const d = logits[i]! - yi;
      lossSum += d * d;
      grad[i] = (2 * d) / n;
    }
  }
  return { lossSum, correct: arch.head === "linear" ? null : correct, grad };
}

/** Backpropagates g = dLoss/dlogits through the Dense layers, dropout masks and activations. */
function backward(
  arch: MlpArch,
  params: readonly tf.Tensor[],
  fwd: Forward,
  masks: readonly (tf.Tensor | null)[],
  gOut: tf.Tensor,
): tf.Tensor[] {
  const grads: tf.Tensor[] = new Array(params.length);
  let g = gOut;
  for (let l = arch.hidden.length; l >= 0; l--) {
    grads[2 * l] = matMul(fwd.inputs[l]!, g, true, false);
    grads[2 * l + 1] = tf.sum(g, 0);
    if (l === 0) break;
    // Back through layer l−1's dropout mask and activation.
    let ga = matMul(g, params[2 * l]!, false, true);
    const mask = masks[l - 1];
    if (mask) ga = tf.mul(ga, mask);
    const dAct = activationGrad(fwd.hidden[l - 1]!, arch.activation);
    g = dAct ? tf.mul(ga, dAct) : ga;
  }
  return grads;
}

/** Loss sum and correct count without dropout (validation). Call inside tf.tidy. */
export function evaluateBatch(
  arch: MlpArch,
  params: readonly tf.Tensor[],
  x: tf.Tensor,
  targets: tf.Tensor,
  labels: tf.Tensor | null,
): BatchTotals {
  return totals(arch, forward(arch, params, x, []).logits, targets, labels);
}

/** Predicted probabilities (classification) or values (regression), as the exported layers model computes them. */
export function predict(arch: MlpArch, params: readonly tf.Tensor[], x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const logits = forward(arch, params, x, []).logits;
    return arch.head === "softmax" ? tf.softmax(logits) : arch.head === "sigmoid" ? tf.sigmoid(logits) : logits;
  });
}
