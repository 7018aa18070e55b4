// The MLP's shape and its seeded initial weights: the Dense stack a spec asks for, the output head that follows from the
// task, the parameter shapes in the order every other trainer module uses, and Keras's initialisation. No TF.js: the
// network's maths is in maths.ts, its export in export.ts (schemas/memory.ts mirrors these shapes to estimate memory).

import type { Activation, NormalizedSpec } from "../schemas/spec.ts";
import type { Task } from "./datasets/dataset.ts";
import type { Rng } from "./datasets/prng.ts";

export type Head = "softmax" | "sigmoid" | "linear";

export interface MlpArch {
  inputs: number;
  hidden: number[];
  activation: Activation;
  dropout: number;
  /** Output units: classes (softmax), 1 (sigmoid or linear). */
  outputs: number;
  head: Head;
}

/** Softmax for more than two classes, sigmoid for two, linear (MSE) for regression. */
export function mlpArch(model: NormalizedSpec["model"], inputs: number, task: Task, classes: number): MlpArch {
  const head: Head = task === "regression" ? "linear" : classes > 2 ? "softmax" : "sigmoid";
  return {
    inputs,
    hidden: [...model.hidden_layers],
    activation: model.activation,
    dropout: model.dropout,
    outputs: head === "softmax" ? classes : 1,
    head,
  };
}

/** [kernel₀, bias₀, kernel₁, bias₁, …, kernel_out, bias_out]. */
export function paramShapes(arch: MlpArch): number[][] {
  const widths = [arch.inputs, ...arch.hidden, arch.outputs];
  const shapes: number[][] = [];
  for (let l = 0; l + 1 < widths.length; l++) shapes.push([widths[l]!, widths[l + 1]!], [widths[l + 1]!]);
  return shapes;
}

/** Keras Dense defaults: Glorot-uniform kernels (limit √(6 / (fan_in + fan_out))), zero biases; drawn from `rng`. */
export function initParams(arch: MlpArch, rng: Rng): Float32Array[] {
  return paramShapes(arch).map((shape) => {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 2) {
      const limit = Math.sqrt(6 / (shape[0]! + shape[1]!));
      for (let i = 0; i < values.length; i++) values[i] = rng.uniform(-limit, limit);
    }
    return values;
  });
}
