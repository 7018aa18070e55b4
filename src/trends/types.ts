// Plain data shapes of the trend core: one epoch's losses, the tuning knobs, and the summary the API reports.
// Nothing here computes; the rules live in summary.ts, overfitting.ts and divergence.ts.

/** One stored epoch. Losses may be missing (null/undefined) or non-finite (NaN, ±Infinity): a diverging run reports them as they are. */
export interface EpochPoint {
  epoch: number;
  train_loss?: number | null;
  val_loss?: number | null;
  train_accuracy?: number | null;
  val_accuracy?: number | null;
}

/** The loss the summary tracks: val_loss whenever any epoch has one, else train_loss. */
export type Monitor = "val_loss" | "train_loss";

/** The best (lowest finite) monitored value and the epoch number where it occurred. */
export interface Best {
  epoch: number;
  value: number;
}

/** Windows are counted in stored epochs; thresholds are fractions of the fitted starting value. */
export interface TrendConfig {
  plateau_patience: number;
  overfit_window: number;
  overfit_threshold: number;
  diverge_window: number;
  diverge_threshold: number;
  trajectory_window: number;
  trajectory_threshold: number;
}

/** Defaults: plateau after 10 epochs without improvement; overfitting 5 % over 10 epochs; divergence 20 % over 5; trajectory 1 % over 10. */
export const DEFAULT_TREND_CONFIG: TrendConfig = Object.freeze({
  plateau_patience: 10,
  overfit_window: 10,
  overfit_threshold: 0.05,
  diverge_window: 5,
  diverge_threshold: 0.2,
  trajectory_window: 10,
  trajectory_threshold: 0.01,
});

/** How a training is going, recomputed on every metrics write. */
export interface TrendSummary {
  /** null before any epoch has a finite loss. */
  monitor: Monitor | null;
  /** The epoch number (not the list index) of the best monitored value. */
  best_epoch: number | null;
  /** The best monitored value; the API keeps this name even when the monitor is train_loss. */
  best_val_loss: number | null;
  /** latest_epoch − best_epoch. */
  epochs_since_improvement: number | null;
  is_overfitting: boolean;
  is_plateaued: boolean;
  is_diverging: boolean;
  /** The largest stored epoch number. */
  latest_epoch: number | null;
  /** Number of stored epochs. */
  total_epochs_completed: number;
}

/** The summary of an operation with no epochs yet: nulls, false flags, 0 completed. */
export const EMPTY_SUMMARY: TrendSummary = Object.freeze({
  monitor: null,
  best_epoch: null,
  best_val_loss: null,
  epochs_since_improvement: null,
  is_overfitting: false,
  is_plateaued: false,
  is_diverging: false,
  latest_epoch: null,
  total_epochs_completed: 0,
});
