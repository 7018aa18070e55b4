// The trend summary stored with every operation: which loss to watch, the best epoch, and the overfitting/plateau/divergence flags.
// summarizeFrom works on (best, recent tail) so the SQLite store can update it incrementally; summarizeTrends does the full history.

import { isDiverging } from "./divergence.ts";
import { isFiniteLoss, normalizeHistory } from "./history.ts";
import { isOverfitting } from "./overfitting.ts";
import { DEFAULT_TREND_CONFIG, type Best, type EpochPoint, type Monitor, type TrendConfig, type TrendSummary } from "./types.ts";

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
  let best = prev;
  for (const p of epochs) {
    const v = p[monitor];
    if (!isFiniteLoss(v)) continue;
    if (best === null || v < best.value || (v === best.value && p.epoch < best.epoch)) best = { epoch: p.epoch, value: v };
  }
  return best;
}

/** How many most-recent epochs summarizeFrom needs: max(overfit_window, diverge_window, trajectory_window), at least 1. */
export function tailSize(cfg: TrendConfig = DEFAULT_TREND_CONFIG): number {
  return Math.max(1, cfg.overfit_window, cfg.diverge_window, cfg.trajectory_window);
}

/**
 * Builds the summary from stored parts: `tail` is the most recent epochs (at most tailSize; sorted here defensively),
 * `count` the number of stored epochs. latest_epoch = largest epoch number; epochs_since_improvement = latest_epoch − best_epoch;
 * is_plateaued = epochs_since_improvement ≥ plateau_patience (10); overfitting and divergence as in overfitting.ts / divergence.ts.
 */
export function summarizeFrom(
  parts: { monitor: Monitor | null; best: Best | null; tail: EpochPoint[]; count: number },
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): TrendSummary {
  const tail = [...parts.tail].sort((a, b) => a.epoch - b.epoch);
  const latest = tail[tail.length - 1]?.epoch ?? null;
  const bestEpoch = parts.best?.epoch ?? null;
  const since = latest !== null && bestEpoch !== null ? latest - bestEpoch : null;
  return {
    monitor: parts.monitor,
    best_epoch: bestEpoch,
    best_val_loss: parts.best?.value ?? null,
    epochs_since_improvement: since,
    is_overfitting: isOverfitting(tail, cfg),
    is_plateaued: since !== null && since >= cfg.plateau_patience,
    is_diverging: isDiverging(tail, cfg),
    latest_epoch: latest,
    total_epochs_completed: parts.count,
  };
}

/** Summary of a full history in any order (sorted by epoch; a duplicated epoch keeps its last occurrence). */
export function summarizeTrends(history: readonly EpochPoint[], cfg: TrendConfig = DEFAULT_TREND_CONFIG): TrendSummary {
  const epochs = normalizeHistory(history);
  const monitor = chooseMonitor(epochs);
  const best = monitor === null ? null : findBest(epochs, monitor);
  return summarizeFrom({ monitor, best, tail: epochs.slice(-tailSize(cfg)), count: epochs.length }, cfg);
}
