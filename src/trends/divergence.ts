// Divergence rule: the loss is not finite, has exploded far above its lowest value, or training and validation both climb.
// A noisy training loss that drifts up while validation improves is not divergence (dropout does that).

import { finiteSeries, isFiniteLoss } from "./history.ts";
import { fittedRelativeChange } from "./regression.ts";
import { DEFAULT_TREND_CONFIG, type EpochPoint, type Monitor, type TrendConfig, type TrendState } from "./types.ts";

/** A training loss this many times its lowest has exploded wherever it started (a run whose first epoch was already huge). */
export const HARD_EXPLOSION = 100;
/**
 * ...but only when it stays there two epochs running and is no longer near zero (at least this share of its first
 * value). A loss trained down to ~1e-10 (a memorised training set) swings by orders of magnitude from one epoch to the
 * next, and a single batch can spike it to a few % of its start and back: ratios to its lowest are noise there.
 */
export const HARD_EXPLOSION_FLOOR = 0.01;

/** What the divergence rule saw, and which of its three tests fired (`kind`, null when none). */
export interface Divergence {
  kind: "non_finite" | "exploded" | "rising" | null;
  non_finite: { epoch: number; field: Monitor; value: number } | null;
  /** The latest train_loss ÷ the lowest train_loss so far; null without both. */
  explosion: number | null;
  /** Relative change of the fitted train_loss line over the window; null with fewer than 3 finite values. */
  train_change: number | null;
  /** Relative change of the fitted val_loss line over the same window; null without val_loss. */
  val_change: number | null;
  /** Epochs in the trend window. */
  points: number;
}

/**
 * Measures divergence on `recent` (ascending) with the history's lowest and first training loss in `state`:
 * - non_finite: the latest epoch's train_loss or val_loss is NaN or ±Infinity (from the very first epoch too);
 * - exploded: the latest train_loss is above `explode_factor` (3) × the lowest train_loss so far AND at or above the first
 *   one (a tiny loss tripling is noise; one that has climbed back past where training started has lost what it learned),
 *   or, wherever it started, the last two are each above HARD_EXPLOSION (100) × the lowest and above HARD_EXPLOSION_FLOOR
 *   (1 %) of the first (one spike of a loss trained to near zero is not an explosion);
 * - rising: over the last `diverge_window` (5) epochs train_loss rises every epoch, its fitted line by more than
 *   `diverge_threshold` (20 %) of its fitted start, AND the fitted val_loss line rises too (by more than
 *   `trajectory_threshold`, 1 %); without any val_loss the training rise alone counts. Noise does not rise five times in a row.
 */
export function divergence(
  recent: readonly EpochPoint[],
  state: Pick<TrendState, "min_train" | "first_train">,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): Divergence {
  const latest = recent[recent.length - 1];
  let nonFinite: Divergence["non_finite"] = null;
  if (latest) {
    for (const field of ["train_loss", "val_loss"] as const) {
      const v = latest[field];
      if (typeof v === "number" && !Number.isFinite(v)) {
        nonFinite = { epoch: latest.epoch, field, value: v };
        break;
      }
    }
  }
  const lastTrain = latest?.train_loss;
  const explosion =
    isFiniteLoss(lastTrain) && state.min_train !== null && state.min_train > 0 ? lastTrain / state.min_train : null;
  const hard = (t: number | null | undefined) =>
    isFiniteLoss(t) &&
    state.min_train !== null &&
    t > HARD_EXPLOSION * state.min_train &&
    (state.first_train === null || t >= HARD_EXPLOSION_FLOOR * state.first_train);
  const exploded =
    explosion !== null &&
    explosion > cfg.explode_factor &&
    ((state.first_train !== null && (lastTrain as number) >= state.first_train) ||
      (hard(lastTrain) && hard(recent[recent.length - 2]?.train_loss)));

  const window = cfg.diverge_window > 0 ? recent.slice(-cfg.diverge_window) : [];
  const train = fit(window, "train_loss");
  const val = fit(window, "val_loss");
  const hasVal = recent.some((p) => isFiniteLoss(p.val_loss));
  const trains = window.map((p) => p.train_loss);
  const everyEpochUp =
    trains.length >= 3 && trains.every((t, i) => isFiniteLoss(t) && (i === 0 || t > (trains[i - 1] as number)));
  const rising =
    everyEpochUp &&
    train !== null &&
    train > cfg.diverge_threshold &&
    (hasVal ? val !== null && val > cfg.trajectory_threshold : true);
  const kind = nonFinite ? "non_finite" : exploded ? "exploded" : rising ? "rising" : null;
  return { kind, non_finite: nonFinite, explosion, train_change: train, val_change: val, points: window.length };
}

/** is_diverging: any of divergence()'s three tests fires. */
export function isDiverging(
  recent: readonly EpochPoint[],
  state: Pick<TrendState, "min_train" | "first_train">,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): boolean {
  return divergence(recent, state, cfg).kind !== null;
}

function fit(window: readonly EpochPoint[], field: Monitor): number | null {
  const { xs, ys } = finiteSeries(window, field);
  return xs.length >= 3 ? fittedRelativeChange(xs, ys) : null;
}
