/**
 * The training spec's shapes: one TypeBox schema for route validation, OpenAPI, the MCP tool input and the worker's
 * message check, in the input form (mostly optional) and the normalised form (every field present). The defaults the
 * descriptions name come from defaults.ts; the rules that fill them and check across fields are spec_rules.ts.
 */
import { Type, type Static, type TLiteral, type TUnion } from "@sinclair/typebox";
import { DEFAULTS } from "./defaults.ts";

export const ACTIVATIONS = ["relu", "tanh", "sigmoid", "elu", "linear"] as const;
export const OPTIMIZERS = ["adam", "adamw", "sgd", "rmsprop"] as const;
export const GENERATORS = ["spirals", "overfit", "random_walk"] as const;
export const MONITORS = ["val_loss", "train_loss", "val_accuracy", "train_accuracy"] as const;

/**
 * A union of string literals (the JSON-schema `anyOf` of consts that Swagger and MCP clients understand), from the one
 * list of them; errors list them.
 */
export const literals = <T extends readonly string[]>(values: T, description: string) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    { description },
  ) as TUnion<TLiteral<T[number]>[]>;

// ── Field schemas, shared by the input form (mostly optional) and the normalised form (all present) ──

const Seed = Type.Integer({
  minimum: 0,
  maximum: 4_294_967_295,
  description: "Seed of the deterministic PRNG (0 … 2³²−1).",
});
/** A stopping rule's monitor and mode, naming that rule's default (`dflt`). */
const monitor = (dflt: string) =>
  literals(MONITORS, `Metric to watch, as named in the epoch records. Default ${dflt}.`);
const mode = (dflt: string) =>
  literals(
    ["min", "max", "auto"] as const,
    `"auto": max when the monitor name contains "acc", else min. Default ${dflt}.`,
  );
const Monitor = literals(MONITORS, "Metric to watch, as named in the epoch records.");
const Mode = literals(["min", "max", "auto"] as const, '"auto": max when the monitor name contains "acc", else min.');
const Generator = literals(
  GENERATORS,
  [
    "spirals: interleaved spiral arms, one class per arm (learns well);",
    "overfit: few noisy samples with many irrelevant features (the default model overfits within ~30 epochs);",
    "random_walk: random-walk prices with trading indicators, label = next move up (1) or down (0).",
  ].join(" "),
);
const Task = literals(
  ["classification", "regression"] as const,
  "Classification: a class per distinct label. Regression: numeric label, MSE loss.",
);

const D = DEFAULTS;
const G = D.generators;
/** How a description words a default: lists as "[64, 32]", everything else as written in the table. */
const shown = (v: unknown) => (Array.isArray(v) ? `[${v.join(", ")}]` : String(v));

const Fields = {
  name: Type.String({ minLength: 1, maxLength: 200, description: "Display name of the training." }),
  samples: Type.Integer({
    minimum: 10,
    maximum: 1_000_000,
    description: `Rows to generate. Defaults: spirals ${G.spirals.samples}, overfit ${G.overfit.samples}, random_walk ${G.random_walk.samples}.`,
  }),
  synthFeatures: Type.Integer({
    minimum: 1,
    maximum: 1024,
    description: `Input columns. spirals: 2 coordinates + noise columns (≥ 2, default ${G.spirals.features}); overfit: default ${G.overfit.features} (3 informative); random_walk: lagged returns besides the 6 indicators (default ${G.random_walk.features}).`,
  }),
  classes: Type.Integer({
    minimum: 2,
    maximum: 8,
    description: `spirals only: number of arms (classes); default ${G.spirals.classes}.`,
  }),
  path: Type.String({
    minLength: 1,
    maxLength: 4096,
    description: "CSV file path on the server (header row, comma-separated).",
  }),
  label: Type.String({ minLength: 1, maxLength: 256, description: "Header name of the label column." }),
  csvFeatures: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
    minItems: 1,
    maxItems: 4096,
    uniqueItems: true,
    description: "Numeric feature columns; default: every column except the label.",
  }),
  hidden: Type.Array(Type.Integer({ minimum: 1, maximum: 4096 }), {
    maxItems: 16,
    description: `Units of each hidden Dense layer (at most 16 layers, 1 … 4096 units). Default ${shown(D.model.hidden_layers)}.`,
  }),
  activation: literals(ACTIVATIONS, `Activation of the hidden layers. Default ${D.model.activation}.`),
  dropout: Type.Number({
    minimum: 0,
    maximum: 0.95,
    description: `Dropout rate after each hidden layer (0 … 0.95). Default ${D.model.dropout}.`,
  }),
  epochs: Type.Integer({
    minimum: 1,
    maximum: 10_000,
    description: `Epochs to run (1 … 10000). Default ${D.training.epochs}.`,
  }),
  batchSize: Type.Integer({
    minimum: 1,
    maximum: 65_536,
    description: `Rows per gradient step (1 … 65536). Default ${D.training.batch_size}.`,
  }),
  learningRate: Type.Number({
    exclusiveMinimum: 0,
    maximum: 10,
    description: `Initial learning rate. Default ${D.training.learning_rate}.`,
  }),
  optimizer: literals(
    OPTIMIZERS,
    `adam, adamw (Adam with decoupled weight decay), sgd, rmsprop. Default ${D.training.optimizer}.`,
  ),
  weightDecay: Type.Number({
    minimum: 0,
    maximum: 1,
    description: `Decoupled weight decay per step (θ −= lr·wd·θ). Default ${D.training.weight_decay.adamw} for adamw, else ${D.training.weight_decay.other}.`,
  }),
  validationSplit: Type.Number({
    minimum: 0,
    maximum: 0.9,
    description: `Fraction held out for validation (the last rows after a seeded shuffle). Default ${D.training.validation_split}.`,
  }),
  patience: Type.Integer({ minimum: 0, maximum: 10_000, description: "Epochs without improvement to wait." }),
  minDelta: Type.Number({ minimum: 0, description: "Smallest change that counts as an improvement." }),
  baseline: Type.Union([Type.Number(), Type.Null()], {
    description: "Value the monitor must beat to reset the patience; null = none.",
  }),
  restoreBest: Type.Boolean({
    description: `Save the weights of the best epoch instead of the last. Default ${D.early_stopping.restore_best_weights}.`,
  }),
  startFrom: Type.Integer({
    minimum: 0,
    maximum: 10_000,
    description: `Epochs to run before monitoring starts. Default ${D.early_stopping.start_from_epoch}.`,
  }),
  factor: Type.Number({
    exclusiveMinimum: 0,
    exclusiveMaximum: 1,
    description: `New lr = lr · factor. Default ${D.reduce_on_plateau.factor}.`,
  }),
  cooldown: Type.Integer({
    minimum: 0,
    maximum: 10_000,
    description: `Epochs to wait after a reduction before counting again. Default ${D.reduce_on_plateau.cooldown}.`,
  }),
  minLr: Type.Number({
    minimum: 0,
    description: `Lower bound of the learning rate. Default ${D.reduce_on_plateau.min_lr}.`,
  }),
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

/** A stopping rule's patience and min_delta, naming that rule's default (`dflt`), as monitor() and mode() do. */
const patience = (dflt: number) =>
  Type.Integer({ ...Fields.patience, description: `${Fields.patience.description} Default ${dflt}.` });
const minDelta = (dflt: number) =>
  Type.Number({ ...Fields.minDelta, description: `${Fields.minDelta.description} Default ${dflt}.` });

const EarlyStoppingInput = Type.Object(
  {
    monitor: Type.Optional(monitor(D.early_stopping.monitor)),
    patience: Type.Optional(patience(D.early_stopping.patience)),
    min_delta: Type.Optional(minDelta(D.early_stopping.min_delta)),
    mode: Type.Optional(mode(D.early_stopping.mode)),
    baseline: Type.Optional(Fields.baseline),
    restore_best_weights: Type.Optional(Fields.restoreBest),
    start_from_epoch: Type.Optional(Fields.startFrom),
  },
  {
    additionalProperties: false,
    description:
      "Keras EarlyStopping: stop once the monitor has not improved by min_delta for `patience` epochs. Absent = off.",
  },
);

const ConstantLrInput = Type.Object(
  { kind: Type.Literal("constant") },
  { additionalProperties: false, description: "Keep the learning rate fixed." },
);

const ReduceOnPlateauInput = Type.Object(
  {
    kind: Type.Literal("reduce_on_plateau"),
    monitor: Type.Optional(monitor(D.reduce_on_plateau.monitor)),
    factor: Type.Optional(Fields.factor),
    patience: Type.Optional(patience(D.reduce_on_plateau.patience)),
    min_delta: Type.Optional(minDelta(D.reduce_on_plateau.min_delta)),
    cooldown: Type.Optional(Fields.cooldown),
    min_lr: Type.Optional(Fields.minLr),
    mode: Type.Optional(mode(D.reduce_on_plateau.mode)),
  },
  {
    additionalProperties: false,
    description: "Keras ReduceLROnPlateau: multiply the lr by `factor` after `patience` epochs without improvement.",
  },
);

export const TrainingSpec = Type.Object(
  {
    name: Type.Optional(Fields.name),
    dataset: Type.Union([SyntheticDatasetInput, CsvDatasetInput], {
      description: 'What to train on; "kind" selects the variant.',
    }),
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
          seed: Type.Optional(
            Type.Integer({
              ...Seed,
              description: `Seed of the split, shuffles, initial weights and dropout. Default ${D.training.seed}.`,
            }),
          ),
          early_stopping: Type.Optional(EarlyStoppingInput),
          lr_schedule: Type.Optional(
            Type.Union([ConstantLrInput, ReduceOnPlateauInput], {
              description: 'Learning-rate schedule; absent = "constant".',
            }),
          ),
        },
        { additionalProperties: false, description: "Optimisation settings." },
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      "A training to run on this server: dataset, MLP model and training settings; omitted fields take their defaults.",
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
        lr_schedule: Type.Union([
          Type.Object({ kind: Type.Literal("constant") }, { additionalProperties: false }),
          ReduceOnPlateauNormalized,
        ]),
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
