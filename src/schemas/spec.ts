/**
 * The training spec: one TypeBox schema for route validation, OpenAPI, the MCP tool input and the worker's message check,
 * plus the pure normalisation that fills every default so the trainer never has to guess.
 */
import { Type, type Static, type TLiteral, type TUnion } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { invalid, type TrainwatchError } from "../errors.ts";
import { memoryProblem } from "./memory.ts";
import { explain, fieldOf } from "./explain.ts";

export const ACTIVATIONS = ["relu", "tanh", "sigmoid", "elu", "linear"] as const;
export const OPTIMIZERS = ["adam", "adamw", "sgd", "rmsprop"] as const;
export const GENERATORS = ["spirals", "overfit", "random_walk"] as const;
export const MONITORS = ["val_loss", "train_loss", "val_accuracy", "train_accuracy"] as const;

/** A union of string literals (the JSON-schema `anyOf` of consts that Swagger and MCP clients understand); errors list them. */
const literals = <T extends readonly string[]>(values: T, description: string) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    { description },
  ) as TUnion<TLiteral<T[number]>[]>;

// ── Field schemas, shared by the input form (mostly optional) and the normalised form (all present) ──

const Seed = Type.Integer({ minimum: 0, maximum: 4_294_967_295, description: "Seed of the deterministic PRNG (0 … 2³²−1)." });
const Monitor = literals(MONITORS, "Metric to watch, as named in the epoch records.");
const Mode = literals(["min", "max", "auto"] as const, '"auto": max when the monitor name contains "acc", else min.');
const Generator = literals(GENERATORS, [
  "spirals: interleaved spiral arms, one class per arm (learns well);",
  "overfit: few noisy samples with many irrelevant features (the default model overfits within ~30 epochs);",
  "random_walk: random-walk prices with trading indicators, label = next move up (1) or down (0).",
].join(" "));
const Task = literals(["classification", "regression"] as const, "Classification: a class per distinct label. Regression: numeric label, MSE loss.");

const Fields = {
  name: Type.String({ minLength: 1, maxLength: 200, description: "Display name of the training." }),
  samples: Type.Integer({ minimum: 10, maximum: 1_000_000, description: "Rows to generate. Defaults: spirals 2000, overfit 400, random_walk 5000." }),
  synthFeatures: Type.Integer({
    minimum: 1,
    maximum: 1024,
    description: "Input columns. spirals: 2 coordinates + noise columns (≥ 2, default 2); overfit: default 100 (3 informative); random_walk: lagged returns besides the 6 indicators (default 5).",
  }),
  classes: Type.Integer({ minimum: 2, maximum: 8, description: "spirals only: number of arms (classes); default 3." }),
  path: Type.String({ minLength: 1, maxLength: 4096, description: "CSV file path on the server (header row, comma-separated)." }),
  label: Type.String({ minLength: 1, maxLength: 256, description: "Header name of the label column." }),
  csvFeatures: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
    minItems: 1,
    maxItems: 4096,
    uniqueItems: true,
    description: "Numeric feature columns; default: every column except the label.",
  }),
  hidden: Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), {
    maxItems: 16,
    description: "Units of each hidden Dense layer (at most 16 layers, 1 … 4096 units). Default [64, 32].",
  }),
  activation: literals(ACTIVATIONS, "Activation of the hidden layers. Default relu."),
  dropout: Type.Number({ minimum: 0, maximum: 0.95, description: "Dropout rate after each hidden layer (0 … 0.95). Default 0.2." }),
  epochs: Type.Integer({ minimum: 1, maximum: 10_000, description: "Epochs to run (1 … 10000). Default 10." }),
  batchSize: Type.Integer({ minimum: 1, maximum: 65_536, description: "Rows per gradient step (1 … 65536). Default 32." }),
  learningRate: Type.Number({ exclusiveMinimum: 0, maximum: 10, description: "Initial learning rate. Default 0.001." }),
  optimizer: literals(OPTIMIZERS, "adam (default), adamw (Adam with decoupled weight decay), sgd, rmsprop."),
  weightDecay: Type.Number({ minimum: 0, maximum: 1, description: "Decoupled weight decay per step (θ −= lr·wd·θ). Default 0.004 for adamw, else 0." }),
  validationSplit: Type.Number({ minimum: 0, maximum: 0.9, description: "Fraction held out for validation (the last rows after a seeded shuffle). Default 0.2." }),
  patience: Type.Integer({ minimum: 0, maximum: 10_000, description: "Epochs without improvement to wait." }),
  minDelta: Type.Number({ minimum: 0, description: "Smallest change that counts as an improvement." }),
  baseline: Type.Union([Type.Number(), Type.Null()], { description: "Value the monitor must beat to reset the patience; null = none." }),
  restoreBest: Type.Boolean({ description: "Save the weights of the best epoch instead of the last. Default true." }),
  startFrom: Type.Integer({ minimum: 0, maximum: 10_000, description: "Epochs to run before monitoring starts. Default 0." }),
  factor: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, description: "New lr = lr · factor. Default 0.5." }),
  cooldown: Type.Integer({ minimum: 0, maximum: 10_000, description: "Epochs to wait after a reduction before counting again. Default 0." }),
  minLr: Type.Number({ minimum: 0, description: "Lower bound of the learning rate. Default 0." }),
};

// ── Input form ──

const SyntheticDatasetInput = Type.Object(
  {
    kind: Type.Literal("synthetic"),
    generator: Generator,
    samples: Type.Optional(Fields.samples),
    seed: Type.Optional(Type.Integer({ ...Seed, description: "Seed of the generated data. Default: training.seed." })),
    features: Type.Optional(Fields.synthFeatures),
    classes: Type.Optional(Fields.classes),
  },
  { additionalProperties: false, description: "A generated dataset, deterministic for its seed." },
);

const CsvDatasetInput = Type.Object(
  {
    kind: Type.Literal("csv"),
    path: Fields.path,
    label: Fields.label,
    features: Type.Optional(Fields.csvFeatures),
    task: Type.Optional(
      Type.Union([Type.Literal("classification"), Type.Literal("regression")], {
        description: "Default: regression when every label is a number, else classification.",
      }),
    ),
  },
  {
    additionalProperties: false,
    description: "A CSV file with a header row. Features are standardised with the training split's mean and std.",
  },
);

const EarlyStoppingInput = Type.Object(
  {
    monitor: Type.Optional(Monitor),
    patience: Type.Optional(Type.Integer({ ...Fields.patience, description: `${Fields.patience.description} Default 5.` })),
    min_delta: Type.Optional(Type.Number({ ...Fields.minDelta, description: `${Fields.minDelta.description} Default 0.` })),
    mode: Type.Optional(Mode),
    baseline: Type.Optional(Fields.baseline),
    restore_best_weights: Type.Optional(Fields.restoreBest),
    start_from_epoch: Type.Optional(Fields.startFrom),
  },
  {
    additionalProperties: false,
    description: "Keras EarlyStopping: stop once the monitor has not improved by min_delta for `patience` epochs. Absent = off.",
  },
);

const ConstantLrInput = Type.Object(
  { kind: Type.Literal("constant") },
  { additionalProperties: false, description: "Keep the learning rate fixed." },
);

const ReduceOnPlateauInput = Type.Object(
  {
    kind: Type.Literal("reduce_on_plateau"),
    monitor: Type.Optional(Monitor),
    factor: Type.Optional(Fields.factor),
    patience: Type.Optional(Type.Integer({ ...Fields.patience, description: `${Fields.patience.description} Default 3.` })),
    min_delta: Type.Optional(Type.Number({ ...Fields.minDelta, description: `${Fields.minDelta.description} Default 0.0001.` })),
    cooldown: Type.Optional(Fields.cooldown),
    min_lr: Type.Optional(Fields.minLr),
    mode: Type.Optional(Mode),
  },
  { additionalProperties: false, description: "Keras ReduceLROnPlateau: multiply the lr by `factor` after `patience` epochs without improvement." },
);

export const TrainingSpec = Type.Object(
  {
    name: Type.Optional(Fields.name),
    dataset: Type.Union([SyntheticDatasetInput, CsvDatasetInput], { description: 'What to train on; "kind" selects the variant.' }),
    model: Type.Optional(
      Type.Object(
        {
          hidden_layers: Type.Optional(Fields.hidden),
          activation: Type.Optional(Fields.activation),
          dropout: Type.Optional(Fields.dropout),
        },
        {
          additionalProperties: false,
          description: "A multilayer perceptron; the output layer (softmax, sigmoid or linear) follows from the task.",
        },
      ),
    ),
    training: Type.Optional(
      Type.Object(
        {
          epochs: Type.Optional(Fields.epochs),
          batch_size: Type.Optional(Fields.batchSize),
          learning_rate: Type.Optional(Fields.learningRate),
          optimizer: Type.Optional(Fields.optimizer),
          weight_decay: Type.Optional(Fields.weightDecay),
          validation_split: Type.Optional(Fields.validationSplit),
          seed: Type.Optional(Type.Integer({ ...Seed, description: "Seed of the split, shuffles, initial weights and dropout. Default 42." })),
          early_stopping: Type.Optional(EarlyStoppingInput),
          lr_schedule: Type.Optional(
            Type.Union([ConstantLrInput, ReduceOnPlateauInput], { description: 'Learning-rate schedule; absent = "constant".' }),
          ),
        },
        { additionalProperties: false, description: "Optimisation settings." },
      ),
    ),
  },
  {
    additionalProperties: false,
    description: "A training to run on this server: dataset, MLP model and training settings; omitted fields take their defaults.",
  },
);
export type TrainingSpecInput = Static<typeof TrainingSpec>;

// ── Normalised form: every field present; what the engine and the worker receive ──

const EarlyStoppingNormalized = Type.Object(
  {
    monitor: Monitor,
    patience: Fields.patience,
    min_delta: Fields.minDelta,
    mode: Mode,
    baseline: Fields.baseline,
    restore_best_weights: Fields.restoreBest,
    start_from_epoch: Fields.startFrom,
  },
  { additionalProperties: false },
);

const ReduceOnPlateauNormalized = Type.Object(
  {
    kind: Type.Literal("reduce_on_plateau"),
    monitor: Monitor,
    factor: Fields.factor,
    patience: Fields.patience,
    min_delta: Fields.minDelta,
    cooldown: Fields.cooldown,
    min_lr: Fields.minLr,
    mode: Mode,
  },
  { additionalProperties: false },
);

export const NormalizedTrainingSpec = Type.Object(
  {
    name: Fields.name,
    dataset: Type.Union([
      Type.Object(
        {
          kind: Type.Literal("synthetic"),
          generator: Generator,
          samples: Fields.samples,
          seed: Seed,
          features: Fields.synthFeatures,
          classes: Fields.classes,
        },
        { additionalProperties: false },
      ),
      Type.Object(
        {
          kind: Type.Literal("csv"),
          path: Fields.path,
          label: Fields.label,
          features: Type.Union([Fields.csvFeatures, Type.Null()]),
          task: Type.Union([Task, Type.Null()]),
        },
        { additionalProperties: false },
      ),
    ]),
    model: Type.Object(
      { hidden_layers: Fields.hidden, activation: Fields.activation, dropout: Fields.dropout },
      { additionalProperties: false },
    ),
    training: Type.Object(
      {
        epochs: Fields.epochs,
        batch_size: Fields.batchSize,
        learning_rate: Fields.learningRate,
        optimizer: Fields.optimizer,
        weight_decay: Fields.weightDecay,
        validation_split: Fields.validationSplit,
        seed: Seed,
        early_stopping: Type.Union([EarlyStoppingNormalized, Type.Null()]),
        lr_schedule: Type.Union([Type.Object({ kind: Type.Literal("constant") }, { additionalProperties: false }), ReduceOnPlateauNormalized]),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, description: "A training spec with every default filled in." },
);
export type NormalizedSpec = Static<typeof NormalizedTrainingSpec>;
export type NormalizedDataset = NormalizedSpec["dataset"];
export type Activation = (typeof ACTIVATIONS)[number];
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** Upper bound of samples × features for generated data (200 MB of float32). */
export const MAX_SYNTHETIC_VALUES = 50_000_000;

/** Defaults of the synthetic generators. */
export const GENERATOR_DEFAULTS: Record<(typeof GENERATORS)[number], { samples: number; features: number }> = {
  spirals: { samples: 2000, features: 2 },
  overfit: { samples: 400, features: 100 },
  random_walk: { samples: 5000, features: 5 },
};

/**
 * Fills every default of a schema-valid spec. Pure: no I/O, no randomness; same input, same output.
 * Defaults: model [64, 32] relu dropout 0.2; 10 epochs, batch 32, adam lr 0.001, validation 0.2, seed 42; early stopping
 * (when present) val_loss / patience 5 / min_delta 0 / auto / no baseline / restore best / from epoch 0; reduce_on_plateau
 * (when chosen) val_loss / factor 0.5 / patience 3 / min_delta 1e-4 / cooldown 0 / min_lr 0 / auto.
 */
export function normalizeSpec(input: TrainingSpecInput): NormalizedSpec {
  const t = input.training ?? {};
  const m = input.model ?? {};
  const seed = t.seed ?? 42;
  const optimizer = t.optimizer ?? "adam";
  const ds = input.dataset;
  const dataset: NormalizedDataset =
    ds.kind === "synthetic"
      ? {
          kind: "synthetic",
          generator: ds.generator,
          samples: ds.samples ?? GENERATOR_DEFAULTS[ds.generator].samples,
          seed: ds.seed ?? seed,
          features: ds.features ?? GENERATOR_DEFAULTS[ds.generator].features,
          classes: ds.generator === "spirals" ? (ds.classes ?? 3) : 2,
        }
      : { kind: "csv", path: ds.path, label: ds.label, features: ds.features ?? null, task: ds.task ?? null };
  const es = t.early_stopping;
  const lr = t.lr_schedule;
  return {
    name: input.name ?? (ds.kind === "synthetic" ? ds.generator : (ds.path.split(/[\\/]/).pop() ?? ds.path)),
    dataset,
    model: { hidden_layers: m.hidden_layers ?? [64, 32], activation: m.activation ?? "relu", dropout: m.dropout ?? 0.2 },
    training: {
      epochs: t.epochs ?? 10,
      batch_size: t.batch_size ?? 32,
      learning_rate: t.learning_rate ?? 0.001,
      optimizer,
      weight_decay: t.weight_decay ?? (optimizer === "adamw" ? 0.004 : 0),
      validation_split: t.validation_split ?? 0.2,
      seed,
      early_stopping: es
        ? {
            monitor: es.monitor ?? "val_loss",
            patience: es.patience ?? 5,
            min_delta: es.min_delta ?? 0,
            mode: es.mode ?? "auto",
            baseline: es.baseline ?? null,
            restore_best_weights: es.restore_best_weights ?? true,
            start_from_epoch: es.start_from_epoch ?? 0,
          }
        : null,
      lr_schedule:
        lr?.kind === "reduce_on_plateau"
          ? {
              kind: "reduce_on_plateau",
              monitor: lr.monitor ?? "val_loss",
              factor: lr.factor ?? 0.5,
              patience: lr.patience ?? 3,
              min_delta: lr.min_delta ?? 0.0001,
              cooldown: lr.cooldown ?? 0,
              min_lr: lr.min_lr ?? 0,
              mode: lr.mode ?? "auto",
            }
          : { kind: "constant" },
    },
  };
}

export type SpecValidation = { ok: true; spec: NormalizedSpec } | { ok: false; path: string; message: string };

/**
 * Schema check, then the cross-field rules the schema cannot express, then (with `maxModelMb`) the memory budget
 * (memory.ts); on failure names the first failing field path, e.g. { path: "/training/batch_size", message:
 * "/training/batch_size: Expected integer to be greater or equal to 1" }.
 */
export function validateSpec(value: unknown, opts: { maxModelMb?: number } = {}): SpecValidation {
  if (!Value.Check(TrainingSpec, value)) {
    const error = explain(TrainingSpec, value) ?? { path: "", message: "Invalid training spec" };
    const path = error.path || "/";
    return { ok: false, path, message: `${path}: ${error.message}` };
  }
  const problem = crossFieldProblem(value);
  if (problem) return { ok: false, path: problem.path, message: `${problem.path}: ${problem.message}` };
  const spec = normalizeSpec(value);
  const memory = opts.maxModelMb === undefined ? null : memoryProblem(spec, opts.maxModelMb);
  if (memory) return { ok: false, path: memory.path, message: `${memory.path}: ${memory.message}` };
  return { ok: true, spec };
}

function crossFieldProblem(input: TrainingSpecInput): { path: string; message: string } | null {
  const ds = input.dataset;
  if (ds.kind === "synthetic") {
    const size = (ds.samples ?? GENERATOR_DEFAULTS[ds.generator].samples) * (ds.features ?? GENERATOR_DEFAULTS[ds.generator].features);
    if (size > MAX_SYNTHETIC_VALUES)
      return { path: "/dataset/samples", message: `samples × features is ${size}; at most ${MAX_SYNTHETIC_VALUES} values are generated` };
    if (ds.generator === "spirals" && ds.features !== undefined && ds.features < 2)
      return { path: "/dataset/features", message: "spirals needs at least 2 features (the coordinates)" };
    if (ds.generator !== "spirals" && ds.classes !== undefined)
      return { path: "/dataset/classes", message: `classes applies only to the spirals generator, not ${ds.generator}` };
  } else if (ds.features?.includes(ds.label)) {
    return { path: "/dataset/features", message: `the label column "${ds.label}" cannot also be a feature` };
  }
  const validationSplit = input.training?.validation_split ?? 0.2;
  const monitors: [string, string | undefined][] = [
    ["/training/early_stopping/monitor", input.training?.early_stopping ? (input.training.early_stopping.monitor ?? "val_loss") : undefined],
    [
      "/training/lr_schedule/monitor",
      input.training?.lr_schedule?.kind === "reduce_on_plateau" ? (input.training.lr_schedule.monitor ?? "val_loss") : undefined,
    ],
  ];
  for (const [path, monitor] of monitors) {
    if (monitor?.startsWith("val_") && validationSplit === 0)
      return { path, message: `${monitor} needs training.validation_split > 0` };
  }
  return null;
}

/** A failed validateSpec as a 400 naming the field under `prefix` (e.g. "body" → "body.training.batch_size"). */
export function specError(prefix: string, failure: { path: string; message: string }): TrainwatchError {
  return invalid(fieldOf(prefix, failure.path), failure.message.slice(failure.path.length + 2));
}

/** The body of POST /trainings and of the MCP start tool: the spec plus where to train. */
export const TrainingRequest = Type.Object(
  {
    ...TrainingSpec.properties,
    target: Type.Optional(
      Type.Union([Type.Literal("local"), Type.Literal("host")], {
        description: "Where to train. Default: host when USE_TRAINING_HOST_SERVICE=true, else local.",
      }),
    ),
  },
  { additionalProperties: false, description: TrainingSpec.description },
);
