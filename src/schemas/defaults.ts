/**
 * Every default of the training spec, in one table. It feeds the schema's field descriptions (spec.ts), the
 * normalisation that fills an omitted field (spec_rules.ts normalizeSpec) and the dashboard's New training form, which
 * shows them as placeholders (public/views/new.js, served as /assets/schemas/defaults.js by src/routes/dashboard.ts).
 * Plain data with no imports, so the page runs it as is.
 */
export const DEFAULTS = {
  /** Per generator: rows and input columns generated; spirals also its number of arms (classes). */
  generators: {
    spirals: { samples: 2000, features: 2, classes: 3 },
    overfit: { samples: 400, features: 100 },
    random_walk: { samples: 5000, features: 5 },
  },
  model: { hidden_layers: [64, 32], activation: "relu", dropout: 0.2 },
  training: {
    epochs: 10,
    batch_size: 32,
    learning_rate: 0.001,
    optimizer: "adam",
    /** Decoupled weight decay: adamw's, and every other optimizer's. */
    weight_decay: { adamw: 0.004, other: 0 },
    validation_split: 0.2,
    seed: 42,
  },
  /** Each field of training.early_stopping when it is present (absent: off). */
  early_stopping: {
    monitor: "val_loss",
    patience: 5,
    min_delta: 0,
    mode: "auto",
    baseline: null,
    restore_best_weights: true,
    start_from_epoch: 0,
  },
  /** Each field of training.lr_schedule when its kind is reduce_on_plateau (absent: constant). */
  reduce_on_plateau: {
    monitor: "val_loss",
    factor: 0.5,
    patience: 3,
    min_delta: 0.0001,
    cooldown: 0,
    min_lr: 0,
    mode: "auto",
  },
} as const;
