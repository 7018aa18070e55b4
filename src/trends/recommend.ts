// Turns a trend summary into one action (continue, stop, restore a checkpoint) with a one-sentence reason citing numbers,
// plus the monitored loss's trajectory and the generalization gap that agents use to explain a run.

import { divergence } from "./divergence.ts";
import { isFiniteLoss, normalizeHistory } from "./history.ts";
import { overfitChange } from "./overfitting.ts";
import { fittedRelativeChange, linearFit } from "./regression.ts";
import { tailSize } from "./summary.ts";
import { DEFAULT_TREND_CONFIG, type EpochPoint, type Monitor, type TrendConfig, type TrendSummary } from "./types.ts";

export type Trajectory = "improving" | "worsening" | "flat";
export type Action = "insufficient_data" | "stop" | "continue" | "use_checkpoint";

export interface Recommendation {
  action: Action;
  /** One sentence citing the numbers behind the action. */
  reason: string;
  /** The epoch whose weights to keep (the best epoch) for stop and use_checkpoint; null otherwise. */
  checkpoint_epoch: number | null;
  trajectory: Trajectory;
}

type RunStatus = "pending" | "running" | "completed" | "failed" | "cancelled";

interface TrajectoryDetail {
  trajectory: Trajectory;
  slope: number | null;
  relative_change: number | null;
  points: number;
}

/** Monitored values of the last trajectory_window (at least 2) epochs that have a finite one; lines up with trajectoryOf. */
function trajectoryDetail(epochs: readonly EpochPoint[], monitor: Monitor | null, cfg: TrendConfig): TrajectoryDetail {
  if (monitor === null) return { trajectory: "flat", slope: null, relative_change: null, points: 0 };
  const xs: number[] = [];
  const ys: number[] = [];
  for (const p of normalizeHistory(epochs)) {
    const v = p[monitor];
    if (isFiniteLoss(v)) {
      xs.push(p.epoch);
      ys.push(v);
    }
  }
  const window = Math.max(2, cfg.trajectory_window);
  const wx = xs.slice(-window);
  const wy = ys.slice(-window);
  if (wx.length < 2) return { trajectory: "flat", slope: null, relative_change: null, points: wx.length };
  const change = fittedRelativeChange(wx, wy);
  const threshold = cfg.trajectory_threshold;
  const trajectory: Trajectory = change === null ? "flat" : change < -threshold ? "improving" : change > threshold ? "worsening" : "flat";
  return { trajectory, slope: linearFit(wx, wy).slope, relative_change: change, points: wx.length };
}

/**
 * Fits a line (x = epoch number) to the monitored loss over its last `trajectory_window` (10) finite points: a fitted relative
 * change below −trajectory_threshold (−1 %) is improving, above +1 % worsening, else flat (also flat with < 2 points).
 */
export function trajectoryOf(
  epochs: EpochPoint[],
  monitor: Monitor | null,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): { trajectory: Trajectory; slope: number | null; relative_change: number | null } {
  const { trajectory, slope, relative_change } = trajectoryDetail(epochs, monitor, cfg);
  return { trajectory, slope, relative_change };
}

/**
 * Generalization gap = val_loss − train_loss on epochs where both are finite; `slope` is its least-squares slope per epoch over
 * the last trajectory_window (10) such epochs. Trend tolerance: when the fitted gap moves across that window by no more than
 * trajectory_threshold (1 %) of the mean |val_loss| there, it is "stable"; otherwise "widening" (rising) or "narrowing" (falling).
 */
export function generalizationGap(
  epochs: EpochPoint[],
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): { latest: number | null; slope: number | null; trend: "widening" | "narrowing" | "stable" | null } {
  const xs: number[] = [];
  const gaps: number[] = [];
  const vals: number[] = [];
  for (const p of normalizeHistory(epochs)) {
    if (isFiniteLoss(p.train_loss) && isFiniteLoss(p.val_loss)) {
      xs.push(p.epoch);
      gaps.push(p.val_loss - p.train_loss);
      vals.push(p.val_loss);
    }
  }
  const latest = gaps[gaps.length - 1] ?? null;
  const window = Math.max(2, cfg.trajectory_window);
  const wx = xs.slice(-window);
  if (wx.length < 2) return { latest, slope: null, trend: null };
  const { slope } = linearFit(wx, gaps.slice(-window));
  const moved = slope * (wx[wx.length - 1]! - wx[0]!);
  const wv = vals.slice(-window);
  const tolerance = (cfg.trajectory_threshold * wv.reduce((sum, v) => sum + Math.abs(v), 0)) / wv.length;
  const trend = Math.abs(moved) <= tolerance ? "stable" : moved > 0 ? "widening" : "narrowing";
  return { latest, slope, trend };
}

/**
 * One recommendation. Fewer than 3 epochs → insufficient_data. pending/running: stop when the summary says diverging,
 * overfitting or plateaued (checkpoint_epoch = best_epoch), else continue (checkpoint_epoch null). completed/failed/cancelled:
 * use_checkpoint with checkpoint_epoch = best_epoch. With no finite loss at all and nothing to stop for → insufficient_data.
 */
export function recommend(
  input: { status: RunStatus; epochs: EpochPoint[]; summary: TrendSummary },
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): Recommendation {
  const epochs = normalizeHistory(input.epochs);
  const s = input.summary;
  const traj = trajectoryDetail(epochs, s.monitor, cfg);
  const result = (action: Action, reason: string, checkpoint_epoch: number | null): Recommendation => ({
    action,
    reason,
    checkpoint_epoch,
    trajectory: traj.trajectory,
  });
  const n = epochs.length;
  if (n < 3) return result("insufficient_data", `Only ${plural(n, "epoch")} recorded; at least 3 are needed to judge the trend.`, null);

  const monitor = s.monitor ?? "loss";
  const trend = traj.relative_change === null
    ? traj.trajectory
    : `${traj.trajectory} (${signedPct(traj.relative_change)} over the last ${traj.points} epochs)`;
  const best = bestClause(s);

  if (input.status === "completed" || input.status === "failed" || input.status === "cancelled") {
    const ended = input.status === "cancelled" ? "was cancelled" : input.status;
    if (s.best_epoch === null || best === null) {
      return result("insufficient_data", `The run ${ended} after ${plural(n, "epoch")} without a finite loss, so there is no checkpoint to restore.`, null);
    }
    const since = s.epochs_since_improvement ?? 0;
    const where = since === 0 ? "the last epoch" : `${plural(since, "epoch")} before the last`;
    return result(
      "use_checkpoint",
      `The run ${ended} after ${plural(n, "epoch")}; restore epoch ${s.best_epoch} (best ${monitor} ${fmtLoss(s.best_val_loss ?? NaN)}, ${where}), with ${monitor} ${trend} at the end.`,
      s.best_epoch,
    );
  }

  const bestText = best ?? `no finite ${monitor} has been recorded yet`;
  const recent = epochs.slice(-tailSize(cfg));
  if (s.is_diverging) {
    const d = divergence(recent, cfg);
    const what = d.non_finite
      ? `${fieldLabel(d.non_finite.field)} became ${fmtLoss(d.non_finite.value)} at epoch ${d.non_finite.epoch}`
      : d.train_change !== null
        ? `Training loss has risen ${pct(d.train_change)} over the last ${d.points} epochs`
        : "The loss is diverging";
    return result("stop", `${what}; ${bestText}.`, s.best_epoch);
  }
  if (s.is_overfitting) {
    const o = overfitChange(recent, cfg);
    const what = o
      ? `Validation loss has risen ${pct(o.val_change)} over the last ${o.window} epochs while training loss fell ${fallText(o.train_change)}`
      : "Validation loss is rising while training loss falls";
    return result("stop", `${what}; ${bestText}.`, s.best_epoch);
  }
  if (s.is_plateaued) {
    return result(
      "stop",
      `${monitor} has not improved for ${plural(s.epochs_since_improvement ?? 0, "epoch")} (patience ${cfg.plateau_patience}) and is ${trend}; ${bestText}.`,
      s.best_epoch,
    );
  }
  if (best === null) return result("insufficient_data", `No finite loss in ${plural(n, "epoch")} yet, so there is no trend to judge.`, null);
  return result("continue", `${monitor} is ${trend}; ${best}, so keep training.`, null);
}

/** "best val_loss 0.4123 at epoch 17, 9 epochs ago", or null without a best. */
function bestClause(s: TrendSummary): string | null {
  if (s.monitor === null || s.best_epoch === null || s.best_val_loss === null) return null;
  const since = s.epochs_since_improvement;
  const ago = since === null ? "" : since === 0 ? ", the latest epoch" : `, ${plural(since, "epoch")} ago`;
  return `best ${s.monitor} ${fmtLoss(s.best_val_loss)} at epoch ${s.best_epoch}${ago}`;
}

function fieldLabel(field: Monitor): string {
  return field === "val_loss" ? "Validation loss" : "Training loss";
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** Four decimals in the usual loss range, four significant digits outside it. */
function fmtLoss(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a === 0 || (a >= 1e-3 && a < 1e5) ? v.toFixed(4) : v.toPrecision(4);
}

function pct(fraction: number): string {
  return `${(Math.abs(fraction) * 100).toFixed(1)}%`;
}

/** A fitted line can fall past zero over a window (the fit extrapolates); say so rather than print "104%". */
function fallText(fraction: number): string {
  return fraction <= -1 ? "to about zero on its fitted line" : pct(fraction);
}

function signedPct(fraction: number): string {
  return `${fraction < 0 ? "-" : "+"}${pct(fraction)}`;
}
