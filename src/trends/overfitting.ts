// Overfitting rule, judged against the best epoch: the monitored validation loss now sits above its best by more than noise can
// explain, while training has kept improving since that best. A short recent window alone misses slow climbs and cries wolf
// on noise; the best epoch does not move with either.

import { isFiniteLoss } from "./history.ts";
import { mean, noiseSigma } from "./noise.ts";
import { DEFAULT_TREND_CONFIG, type EpochPoint, type Monitor, type TrendConfig, type TrendState } from "./types.ts";

/** Epochs after the best whose mean is "where the loss is now": a few, so one noisy epoch cannot decide. */
export const LEVEL_EPOCHS = 3;

/** Where the monitored loss stands against its best. */
export interface SinceBest {
  best_epoch: number;
  best: number;
  /** Mean of the monitored loss over the last LEVEL_EPOCHS (3) stored epochs after the best (fewer when fewer exist). */
  level: number;
  /** (level − best) / |best|. */
  rise: number;
  /** The rise that counts as real: max(overfit_threshold, overfit_noise_z × σ / |best|), σ the curve's noise (noise.ts). */
  margin: number;
  /** Relative noise σ / |best| over the last overfit_window epochs; null when too few to measure. */
  noise: number | null;
  /** Epochs stored after the best. */
  epochs_after: number;
  /** Mean train_loss over the same epochs ÷ train_loss at the best epoch − 1 (negative: training improved); null without both. */
  train_change: number | null;
}

/**
 * Measures the monitored loss in `recent` (ascending, the history's tail) against the best in `state`. null without a best or
 * without a finite epoch after it. When the best lies before the tail, every tail epoch is "after" it (`epochs_after` then
 * counts only those).
 */
export function sinceBest(
  recent: readonly EpochPoint[],
  monitor: Monitor | null,
  state: Pick<TrendState, "best" | "best_train">,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): SinceBest | null {
  const best = state.best;
  if (monitor === null || best === null || best.value === 0) return null;
  const after = recent.filter((p) => p.epoch > best.epoch && isFiniteLoss(p[monitor]));
  if (after.length === 0) return null;
  const last = after.slice(-LEVEL_EPOCHS);
  const level = mean(last.map((p) => p[monitor] as number));
  const sigma = noiseSigma(recent.slice(-Math.max(4, cfg.overfit_window)).map((p) => p[monitor]));
  const noise = sigma === null ? null : sigma / Math.abs(best.value);
  const margin = Math.max(cfg.overfit_threshold, cfg.overfit_noise_z * (noise ?? 0));
  const trains = last.map((p) => p.train_loss).filter(isFiniteLoss);
  const trainChange =
    state.best_train !== null && state.best_train !== 0 && trains.length === last.length
      ? mean(trains) / state.best_train - 1
      : null;
  return {
    best_epoch: best.epoch,
    best: best.value,
    level,
    rise: (level - best.value) / Math.abs(best.value),
    margin,
    noise,
    epochs_after: after.length,
    train_change: trainChange,
  };
}

/**
 * is_overfitting: the monitor is val_loss; the noise can be measured (4 or more epochs in the window); at least 2 epochs are
 * stored after the best; the mean of the last 3 of them is above
 * the best by more than max(`overfit_threshold` (1 %), `overfit_noise_z` (3) × the curve's relative noise); and the training
 * loss over those epochs is below its value at the best epoch (training kept improving while validation got worse).
 */
export function isOverfitting(
  recent: readonly EpochPoint[],
  monitor: Monitor | null,
  state: Pick<TrendState, "best" | "best_train">,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): boolean {
  if (monitor !== "val_loss") return false;
  const s = sinceBest(recent, monitor, state, cfg);
  // Without a noise estimate (fewer than 4 epochs) a rise cannot be told from jitter.
  return (
    s !== null &&
    s.noise !== null &&
    s.epochs_after >= 2 &&
    s.rise > s.margin &&
    s.train_change !== null &&
    s.train_change < 0
  );
}
