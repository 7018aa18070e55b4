// Stalled rule: the run is not learning. Over a long window the monitored loss has barely moved relative to where it started,
// and it never learned much before either (a converged run learned first; it is plateaued, not stalled).

import { finiteSeries } from "./history.ts";
import { linearFit } from "./regression.ts";
import { DEFAULT_TREND_CONFIG, type EpochPoint, type Monitor, type TrendConfig, type TrendState } from "./types.ts";

/** A run whose best is this fraction (10 %) or more below its first value has learned; it can plateau, not stall. */
export const LEARNED_FRACTION = 0.1;

export interface Stall {
  /** Fitted improvement over the window (fitted start − fitted end, ≥ 0) ÷ |first value|. */
  window_improvement: number;
  /** (first value − best value) ÷ |first value|. */
  total_improvement: number;
  /** The same two for train_loss when the monitor is val_loss and train_loss is reported; null otherwise. */
  train: { window_improvement: number; total_improvement: number } | null;
  /** Epochs in the window. */
  window: number;
}

/** Fitted improvement over the last `window` finite values of `field`, and the best's distance below `first`, both ÷ |first|. */
function progress(recent: readonly EpochPoint[], field: Monitor, window: number, first: number, best: number) {
  const { xs, ys } = finiteSeries(recent, field);
  if (xs.length < window || first === 0) return null;
  const wx = xs.slice(-window);
  const { slope } = linearFit(wx, ys.slice(-window));
  return {
    window_improvement: Math.max(0, -slope * (wx[wx.length - 1]! - wx[0]!)) / Math.abs(first),
    total_improvement: (first - best) / Math.abs(first),
  };
}

/** Measures the last `stall_window` finite monitored values of `recent` against the first value in `state`; null when fewer. */
export function stall(
  recent: readonly EpochPoint[],
  monitor: Monitor | null,
  state: Pick<TrendState, "best" | "first" | "first_train" | "min_train">,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): Stall | null {
  if (monitor === null || state.first === null || state.best === null || cfg.stall_window < 2) return null;
  const m = progress(recent, monitor, cfg.stall_window, state.first.value, state.best.value);
  if (m === null) return null;
  const train =
    monitor === "val_loss" && state.first_train !== null && state.min_train !== null
      ? progress(recent, "train_loss", cfg.stall_window, state.first_train, state.min_train)
      : null;
  return { ...m, train, window: cfg.stall_window };
}

/**
 * is_stalled: over the last `stall_window` (20) epochs the fitted monitored loss improved by less than `stall_threshold` (1 %)
 * of the first value, and the best is less than LEARNED_FRACTION (10 %) below the first value; and when validation is
 * monitored, train_loss (if reported) has never got LEARNED_FRACTION below its own first value either: the model learns
 * nothing even on its training data (training that falls while validation rises is overfitting, not a stall). Typical causes: a learning rate far
 * too low, frozen weights, or data and labels that carry no signal.
 */
export function isStalled(
  recent: readonly EpochPoint[],
  monitor: Monitor | null,
  state: Pick<TrendState, "best" | "first" | "first_train" | "min_train">,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): boolean {
  const s = stall(recent, monitor, state, cfg);
  const flat = (p: { window_improvement: number; total_improvement: number }) =>
    p.window_improvement < cfg.stall_threshold && p.total_improvement < LEARNED_FRACTION;
  return s !== null && flat(s) && (s.train === null || s.train.total_improvement < LEARNED_FRACTION);
}
