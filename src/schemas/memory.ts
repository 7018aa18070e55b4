/**
 * How much memory a training needs, estimated from its spec before anything runs, so a spec that cannot fit is refused
 * at validation instead of growing a worker until it aborts. Pure: it mirrors the MLP and the training loop of
 * src/trainer (model.ts, maths.ts, optimizer.ts, batches.ts, engine.ts) in float32 counts; it imports nothing from them
 * (they load TF.js).
 */
import type { NormalizedSpec } from "./spec.ts";

/** The facts the estimate needs: the layer widths of the real architecture and what one training step holds. */
export interface MemoryShape {
  /** Input features, hidden layer units, output units: the widths of model.ts's Dense stack. */
  inputs: number;
  hidden: readonly number[];
  outputs: number;
  activation: NormalizedSpec["model"]["activation"];
  dropout: number;
  optimizer: NormalizedSpec["training"]["optimizer"];
  /** Rows per step (the batch size, capped at the training rows when known). */
  batch: number;
  /** Training and validation rows; 0 when unknown before the data is read (CSV). */
  trainRows: number;
  valRows: number;
  /** Early stopping with restore_best_weights keeps one more copy of the weights. */
  keepsBest: boolean;
}

export interface MemoryEstimate {
  parameters: number;
  /** MB (2²⁰ bytes) per part, rounded up; `total_mb` is their sum. */
  weights_mb: number;
  gradients_mb: number;
  optimizer_mb: number;
  activations_mb: number;
  data_mb: number;
  total_mb: number;
}

const FLOAT = 4;
const MB = 1024 * 1024;
/** Validation rows per forward pass (batches.ts EVAL_CHUNK). */
const EVAL_CHUNK = 8192;

/** Weights and biases of the Dense stack [inputs, …hidden, outputs] (model.ts paramShapes). */
export function parameterCount(shape: Pick<MemoryShape, "inputs" | "hidden" | "outputs">): number {
  const widths = [shape.inputs, ...shape.hidden, shape.outputs];
  let n = 0;
  for (let l = 0; l + 1 < widths.length; l++) n += widths[l]! * widths[l + 1]! + widths[l + 1]!;
  return n;
}

/**
 * Gradient floats a WASM/CPU training reads into JS (and drops) between two forced collections (optimizer.ts): 64 MB.
 * Without them the GC let those copies pile up: 8.4 M parameters peaked at 1.2 GB after 50 steps, 0.5 GB with them.
 */
export const GC_AFTER_FLOATS = 16 * 1024 * 1024;

/**
 * The WASM heap grows in steps and never gives memory back: a batch's tensors took 1.35× their size in RSS (measured,
 * bench/model_memory.ts).
 */
const HEAP_GROWTH = 1.35;

/**
 * Peak memory of one training, per part, in float32 counts (P = parameters), calibrated on real trainings with
 * bench/model_memory.ts (peak RSS growth within 0.95–1.1× of the estimate for models of 8–13 M parameters):
 * - weights, 7·P: the master copy, the tensors a step reads and the fresh ones uploaded after the update, the
 *   transposed kernels of the WASM backward pass (maths.ts matMul), the exported layers model at the end, and the WASM
 *   heap's growth around them; one more P when early stopping keeps the best weights;
 * - gradients, 2·P: the gradient tensors and the JS copy the update reads, plus the copies awaiting the forced
 *   collection (up to GC_AFTER_FLOATS, about two steps' worth for smaller models);
 * - optimizer state: Adam/AdamW two moments (2·P), RMSprop one (P), SGD none;
 * - activations of one batch, all alive until the step's tf.tidy ends, per hidden unit and row: forward output, dropout
 *   mask and masked output (3; 1 without dropout), backward gradient, masked gradient, activation derivative and
 *   product (4; 3 without dropout), the transposed layer input for the kernel gradient (1), and more for activations
 *   whose derivative takes extra kernels (tanh 2, sigmoid 1, elu 1); plus the input batch and its transpose, the forward
 *   pass of one validation chunk, all times HEAP_GROWTH;
 * - data: the generated or read rows, their train/validation copies, and the validation rows on the device.
 */
export function estimateTrainingMemory(s: MemoryShape): MemoryEstimate {
  const p = parameterCount(s);
  const weights = p * (s.keepsBest ? 8 : 7);
  const gradients = p * 2 + Math.min(GC_AFTER_FLOATS, p * 2);
  const optimizer = p * (s.optimizer === "adam" || s.optimizer === "adamw" ? 2 : s.optimizer === "rmsprop" ? 1 : 0);
  const extra = s.activation === "tanh" ? 2 : s.activation === "sigmoid" || s.activation === "elu" ? 1 : 0;
  const perUnit = (s.dropout > 0 ? 3 + 4 : 1 + 3) + 1 + extra;
  const units = s.hidden.reduce((a, b) => a + b, 0);
  const evalRows = Math.min(EVAL_CHUNK, s.valRows);
  const batch = s.batch * (units * perUnit + 2 * s.inputs + 4 * s.outputs);
  const evaluation = evalRows * (units * (s.activation === "tanh" ? 2 : 1) + s.outputs);
  const activations = (batch + evaluation) * HEAP_GROWTH;
  const rows = s.trainRows + s.valRows;
  const data = rows * (s.inputs + 1) * 2 + s.valRows * (s.inputs + s.outputs);
  const mb = (floats: number) => Math.ceil((floats * FLOAT) / MB);
  const parts = {
    weights_mb: mb(weights),
    gradients_mb: mb(gradients),
    optimizer_mb: mb(optimizer),
    activations_mb: mb(activations),
    data_mb: mb(data),
  };
  return { parameters: p, ...parts, total_mb: Object.values(parts).reduce((a, b) => a + b, 0) };
}

/**
 * The shape a normalised spec trains: exact for generated data; for a CSV, whose header and rows are only read by the
 * trainer, the inputs are the listed features (1 when not listed), the outputs 1, and the data part is left out.
 */
export function specMemoryShape(spec: NormalizedSpec): MemoryShape {
  const ds = spec.dataset;
  const t = spec.training;
  const synthetic = ds.kind === "synthetic";
  // random_walk adds 6 indicator columns to its lagged returns (synthetic.ts).
  const inputs = synthetic ? ds.features + (ds.generator === "random_walk" ? 6 : 0) : (ds.features?.length ?? 1);
  const classes = synthetic ? ds.classes : 2;
  const trainRows = synthetic ? Math.floor(ds.samples * (1 - t.validation_split)) : 0;
  const valRows = synthetic ? ds.samples - trainRows : 0;
  return {
    inputs,
    hidden: spec.model.hidden_layers,
    outputs: classes > 2 ? classes : 1,
    activation: spec.model.activation,
    dropout: spec.model.dropout,
    optimizer: t.optimizer,
    batch: trainRows > 0 ? Math.min(t.batch_size, trainRows) : t.batch_size,
    trainRows,
    valRows,
    keepsBest: t.early_stopping?.restore_best_weights === true,
  };
}

/**
 * The field to blame when the estimate is over `budgetMb`, and the message giving the estimate; null when it fits.
 * The field is the biggest part's: the layers for weights, gradients and optimizer state, the batch size for
 * activations, the samples for data.
 */
export function memoryProblem(spec: NormalizedSpec, budgetMb: number): { path: string; message: string } | null {
  const e = estimateTrainingMemory(specMemoryShape(spec));
  if (e.total_mb <= budgetMb) return null;
  const model = e.weights_mb + e.gradients_mb + e.optimizer_mb;
  const path =
    model >= e.activations_mb && model >= e.data_mb
      ? "/model/hidden_layers"
      : e.activations_mb >= e.data_mb
        ? "/training/batch_size"
        : "/dataset/samples";
  return {
    path,
    message:
      `this training needs an estimated ${e.total_mb} MB (${e.parameters.toLocaleString("en-US")} parameters: weights ${e.weights_mb} MB, ` +
      `gradients ${e.gradients_mb} MB, optimizer state ${e.optimizer_mb} MB, activations ${e.activations_mb} MB, data ${e.data_mb} MB); ` +
      `the limit is ${budgetMb} MB (TRAINWATCH_MAX_MODEL_MB): use fewer or narrower hidden layers, or a smaller batch`,
  };
}
