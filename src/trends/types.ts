// Plain data shapes of the trend core: one epoch's losses, the tuning knobs, the persisted rule state and the summary the
// API reports. Nothing here computes; the rules live in divergence.ts, overfitting.ts, stalled.ts and summary.ts.

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

/**
 * What the rules need from the whole history besides its recent tail, kept beside the summary so a write costs O(batch):
 * the best monitored epoch (with the training loss it had), the first finite monitored value, and the lowest training loss.
 */
export interface TrendState {
  best: Best | null;
  /** train_loss at the best epoch, when finite: overfitting asks whether training kept improving since. */
  best_train: number | null;
  first: Best | null;
  /** Lowest finite train_loss so far: divergence measures an explosion against it. */
  min_train: number | null;
  /** The first finite train_loss: an explosion has lost everything learned when it climbs back above it. */
  first_train: number | null;
}

export const EMPTY_STATE: TrendState = Object.freeze({
  best: null,
  best_train: null,
  first: null,
  min_train: null,
  first_train: null,
});

/**
 * Every knob of the rules. Windows are counted in stored epochs; thresholds are fractions (of the best value, the first
 * value or a fitted starting value, as each rule says). The server reads them from TRAINWATCH_* variables (src/config.ts),
 * and every reason text quotes the values actually applied.
 */
export interface TrendConfig {
  /** Plateau: this many epochs without a new best. */
  plateau_patience: number;
  /** Overfitting: epochs whose first differences estimate the monitored loss's noise. */
  overfit_window: number;
  /** Overfitting: the smallest rise above the best that can count, as a fraction of the best. */
  overfit_threshold: number;
  /** Overfitting: the rise must also exceed this many noise standard deviations. */
  overfit_noise_z: number;
  /** Divergence: the trend window, in epochs. */
  diverge_window: number;
  /** Divergence: the training-loss rise over the window (fraction of its fitted start; every epoch up) that, with validation worsening too, is divergence. */
  diverge_threshold: number;
  /** Divergence: a training loss above this multiple of its lowest value so far, and above its first value, has exploded. */
  explode_factor: number;
  /** Stalled: the window, in epochs. */
  stall_window: number;
  /** Stalled: improvement over the window below this fraction of the first value is no learning. */
  stall_threshold: number;
  /** Trajectory: the recent window, in epochs. */
  trajectory_window: number;
  /** Trajectory: a fitted change beyond ± this fraction is improving/worsening, else flat. */
  trajectory_threshold: number;
}

/**
 * Defaults: plateau after 10 epochs without improvement; overfitting when validation sits 1 % (and 3 noise σ, measured over 20 epochs) above its best
 * while training improves; divergence on a non-finite loss, a training loss 3× its lowest and above its first, or train rising
 * every epoch for 5 epochs (by 20 %) while validation worsens; stalled below 1 % of the first value in 20 epochs; trajectory 1 % over 10 epochs.
 */
export const DEFAULT_TREND_CONFIG: TrendConfig = Object.freeze({
  plateau_patience: 10,
  overfit_window: 20,
  overfit_threshold: 0.01,
  overfit_noise_z: 3,
  diverge_window: 5,
  diverge_threshold: 0.2,
  explode_factor: 3,
  stall_window: 20,
  stall_threshold: 0.01,
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
  is_stalled: boolean;
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
  is_stalled: false,
  latest_epoch: null,
  total_epochs_completed: 0,
});
