// Divergence rule: the latest loss is NaN/±Infinity, or the fitted training-loss line over the last few epochs climbs steeply.

import { isFiniteLoss } from "./history.ts";
import { fittedRelativeChange } from "./regression.ts";
import { DEFAULT_TREND_CONFIG, type EpochPoint, type TrendConfig } from "./types.ts";

/** What the divergence rule saw: a non-finite loss at the latest epoch, and the fitted train-loss change over the window. */
export interface Divergence {
  non_finite: { epoch: number; field: "train_loss" | "val_loss"; value: number } | null;
  /** Relative change of the fitted train_loss line; null with fewer than 3 finite values in the window. */
  train_change: number | null;
  /** Number of finite train_loss values the fit used. */
  points: number;
}

/** Measures divergence on `recent` (ascending): the latest epoch's losses, and the train_loss fit over the last `diverge_window` (default 5) epochs. */
export function divergence(recent: readonly EpochPoint[], cfg: TrendConfig = DEFAULT_TREND_CONFIG): Divergence {
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
  const xs: number[] = [];
  const ys: number[] = [];
  const window = cfg.diverge_window > 0 ? recent.slice(-cfg.diverge_window) : [];
  for (const p of window) {
    if (isFiniteLoss(p.train_loss)) {
      xs.push(p.epoch);
      ys.push(p.train_loss);
    }
  }
  const trainChange = xs.length >= 3 ? fittedRelativeChange(xs, ys) : null;
  return { non_finite: nonFinite, train_change: trainChange, points: xs.length };
}

/**
 * is_diverging: the latest epoch's train_loss or val_loss is NaN or ±Infinity, OR the fitted train_loss line over the last
 * `diverge_window` (5) epochs rises by more than `diverge_threshold` (20 %) of its fitted start (needs ≥ 3 finite values).
 */
export function isDiverging(recent: readonly EpochPoint[], cfg: TrendConfig = DEFAULT_TREND_CONFIG): boolean {
  const d = divergence(recent, cfg);
  return d.non_finite !== null || (d.train_change !== null && d.train_change > cfg.diverge_threshold);
}
