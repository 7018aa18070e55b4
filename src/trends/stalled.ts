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
  /** Epochs in the window. */
  window: number;
}

/** Measures the last `stall_window` finite monitored values of `recent` against the first value in `state`; null when fewer. */
export function stall(
  recent: readonly EpochPoint[],
  monitor: Monitor | null,
  state: Pick<TrendState, "best" | "first">,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): Stall | null {
  if (monitor === null || state.first === null || state.best === null || state.first.value === 0 || cfg.stall_window < 2) return null;
  const { xs, ys } = finiteSeries(recent, monitor);
  if (xs.length < cfg.stall_window) return null;
  const wx = xs.slice(-cfg.stall_window);
  const { slope } = linearFit(wx, ys.slice(-cfg.stall_window));
  const first = Math.abs(state.first.value);
  return {
    window_improvement: Math.max(0, -slope * (wx[wx.length - 1]! - wx[0]!)) / first,
    total_improvement: (state.first.value - state.best.value) / first,
    window: wx.length,
  };
}

/**
 * is_stalled: over the last `stall_window` (20) epochs the fitted monitored loss improved by less than `stall_threshold` (1 %)
 * of the first value, and the best is less than LEARNED_FRACTION (10 %) below the first value. Typical causes: a learning
 * rate far too low, frozen weights, or data and labels that carry no signal.
 */
export function isStalled(
  recent: readonly EpochPoint[],
  monitor: Monitor | null,
  state: Pick<TrendState, "best" | "first">,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): boolean {
  const s = stall(recent, monitor, state, cfg);
  return s !== null && s.window_improvement < cfg.stall_threshold && s.total_improvement < LEARNED_FRACTION;
}
