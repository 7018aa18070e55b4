// Overfitting rule: over the most recent epochs the fitted training-loss line falls while the fitted validation-loss line rises.
// Fitted lines, not raw endpoints, so a single noisy epoch cannot flip the flag.

import { isFiniteLoss } from "./history.ts";
import { fittedRelativeChange } from "./regression.ts";
import { DEFAULT_TREND_CONFIG, type EpochPoint, type TrendConfig } from "./types.ts";

/** Relative changes of the fitted loss lines over the overfitting window (negative = falling). */
export interface OverfitChange {
  train_change: number;
  val_change: number;
  window: number;
}

/**
 * Fits a least-squares line (x = epoch number) to train_loss and to val_loss over the last `overfit_window` (default 10)
 * epochs of `recent` (ascending). null unless there are at least that many and every one has finite train_loss and val_loss.
 */
export function overfitChange(recent: readonly EpochPoint[], cfg: TrendConfig = DEFAULT_TREND_CONFIG): OverfitChange | null {
  const window = cfg.overfit_window;
  if (window < 2 || recent.length < window) return null;
  const xs: number[] = [];
  const train: number[] = [];
  const val: number[] = [];
  for (const p of recent.slice(-window)) {
    if (!isFiniteLoss(p.train_loss) || !isFiniteLoss(p.val_loss)) return null;
    xs.push(p.epoch);
    train.push(p.train_loss);
    val.push(p.val_loss);
  }
  const trainChange = fittedRelativeChange(xs, train);
  const valChange = fittedRelativeChange(xs, val);
  if (trainChange === null || valChange === null) return null;
  return { train_change: trainChange, val_change: valChange, window };
}

/**
 * is_overfitting: over the last `overfit_window` (10) epochs, all with finite train and val loss, the fitted train line
 * falls by ≥ `overfit_threshold` (5 %) of its fitted start AND the fitted val line rises by ≥ the same fraction.
 */
export function isOverfitting(recent: readonly EpochPoint[], cfg: TrendConfig = DEFAULT_TREND_CONFIG): boolean {
  const change = overfitChange(recent, cfg);
  return change !== null && change.train_change <= -cfg.overfit_threshold && change.val_change >= cfg.overfit_threshold;
}
