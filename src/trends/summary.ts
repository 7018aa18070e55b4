// The trend summary stored with every operation: which loss to watch, the best epoch, and the overfitting, plateau,
// divergence and stalled flags. summarizeFrom works on (rule state, recent tail) so the store can update it incrementally;
// summarizeTrends does the full history.

import { isDiverging } from "./divergence.ts";
import { isFiniteLoss, normalizeHistory } from "./history.ts";
import { isOverfitting } from "./overfitting.ts";
import { isStalled } from "./stalled.ts";
import {
  DEFAULT_TREND_CONFIG,
  EMPTY_STATE,
  type Best,
  type EpochPoint,
  type Monitor,
  type TrendConfig,
  type TrendState,
  type TrendSummary,
} from "./types.ts";

/** "val_loss" when any epoch has a finite val_loss, else "train_loss" when any has a finite train_loss, else null. */
export function chooseMonitor(epochs: readonly EpochPoint[]): Monitor | null {
  if (epochs.some((p) => isFiniteLoss(p.val_loss))) return "val_loss";
  if (epochs.some((p) => isFiniteLoss(p.train_loss))) return "train_loss";
  return null;
}

/**
 * Lowest FINITE monitored value; ties keep the earliest epoch number. `prev` is a stored best for the same monitor that the
 * new epochs are merged into (appends only: a re-posted or removed epoch, or a monitor switch, needs a full recompute).
 */
export function findBest(epochs: readonly EpochPoint[], monitor: Monitor, prev: Best | null = null): Best | null {
  return advanceState({ ...EMPTY_STATE, best: prev }, epochs, monitor).best;
}

/**
 * The rule state after appending `epochs` (ascending; each epoch past those already in `prev`) for `monitor`: the best and the
 * train_loss it had, the first finite monitored value, the lowest and the first finite train_loss.
 */
export function advanceState(prev: TrendState, epochs: readonly EpochPoint[], monitor: Monitor | null): TrendState {
  let { best, best_train, first, min_train, first_train } = prev;
  for (const p of epochs) {
    const t = p.train_loss;
    if (isFiniteLoss(t) && (min_train === null || t < min_train)) min_train = t;
    if (isFiniteLoss(t) && first_train === null) first_train = t;
    if (monitor === null) continue;
    const v = p[monitor];
    if (!isFiniteLoss(v)) continue;
    if (first === null || p.epoch < first.epoch) first = { epoch: p.epoch, value: v };
    if (best === null || v < best.value || (v === best.value && p.epoch < best.epoch)) {
      best = { epoch: p.epoch, value: v };
      best_train = isFiniteLoss(t) ? t : null;
    }
  }
  return { best, best_train, first, min_train, first_train };
}

/** How many most-recent epochs summarizeFrom needs: the largest rule window, at least 1. */
export function tailSize(cfg: TrendConfig = DEFAULT_TREND_CONFIG): number {
  return Math.max(1, cfg.overfit_window, cfg.diverge_window, cfg.trajectory_window, cfg.stall_window);
}

/**
 * Builds the summary from stored parts: `tail` is the most recent epochs (at most tailSize; sorted here defensively),
 * `count` the number of stored epochs. latest_epoch = largest epoch number; epochs_since_improvement = latest_epoch − best_epoch;
 * is_plateaued = epochs_since_improvement ≥ plateau_patience (10); the other flags as in overfitting.ts, divergence.ts and
 * stalled.ts. A diverging run is not also called stalled.
 */
export function summarizeFrom(
  parts: { monitor: Monitor | null; state: TrendState; tail: EpochPoint[]; count: number },
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): TrendSummary {
  const tail = [...parts.tail].sort((a, b) => a.epoch - b.epoch);
  const latest = tail[tail.length - 1]?.epoch ?? null;
  const best = parts.state.best;
  const since = latest !== null && best !== null ? latest - best.epoch : null;
  const diverging = isDiverging(tail, parts.state, cfg);
  return {
    monitor: parts.monitor,
    best_epoch: best?.epoch ?? null,
    best_val_loss: best?.value ?? null,
    epochs_since_improvement: since,
    is_overfitting: isOverfitting(tail, parts.monitor, parts.state, cfg),
    is_plateaued: since !== null && since >= cfg.plateau_patience,
    is_diverging: diverging,
    is_stalled: !diverging && isStalled(tail, parts.monitor, parts.state, cfg),
    latest_epoch: latest,
    total_epochs_completed: parts.count,
  };
}

/** The rule state and summary of a full history in any order (sorted by epoch; a duplicated epoch keeps its last occurrence). */
export function analyzeTrends(
  history: readonly EpochPoint[],
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): { state: TrendState; summary: TrendSummary } {
  const epochs = normalizeHistory(history);
  const monitor = chooseMonitor(epochs);
  const state = advanceState(EMPTY_STATE, epochs, monitor);
  return {
    state,
    summary: summarizeFrom({ monitor, state, tail: epochs.slice(-tailSize(cfg)), count: epochs.length }, cfg),
  };
}

/** Summary of a full history in any order (see analyzeTrends). */
export function summarizeTrends(history: readonly EpochPoint[], cfg: TrendConfig = DEFAULT_TREND_CONFIG): TrendSummary {
  return analyzeTrends(history, cfg).summary;
}
