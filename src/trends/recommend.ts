// Turns a trend summary into one action (continue, stop, restore a checkpoint) with a one-sentence reason citing numbers and
// the thresholds applied, plus the monitored loss's trajectory and the generalization gap that agents use to explain a run.

import { chooseCheckpointPoint } from "./checkpoint.ts";
import { divergence } from "./divergence.ts";
import { fmtLoss, pct, plural, signedPct, times } from "./format.ts";
import { finiteSeries, isFiniteLoss, normalizeHistory, RECENT_EPOCHS } from "./history.ts";
import { median } from "./noise.ts";
import { LEVEL_EPOCHS, sinceBest } from "./overfitting.ts";
import { addToFit, EMPTY_FIT, fitSlope, fittedRelativeChange, linearFit, type OnlineFit } from "./regression.ts";
import { LEARNED_FRACTION, stall } from "./stalled.ts";
import { advanceState, tailSize } from "./summary.ts";
import {
  DEFAULT_TREND_CONFIG,
  EMPTY_STATE,
  type EpochPoint,
  type Monitor,
  type TrendConfig,
  type TrendState,
  type TrendSummary,
} from "./types.ts";

export type Trajectory = "improving" | "worsening" | "flat";
export type Action = "insufficient_data" | "stop" | "continue" | "use_checkpoint";
export type RunStatus = "pending" | "running" | "completed" | "failed" | "cancelled";

export interface Recommendation {
  action: Action;
  /** One sentence citing the numbers behind the action and the thresholds applied. */
  reason: string;
  /** The epoch whose weights to restore for stop and use_checkpoint (one that has a checkpoint when Trainwatch holds them); null otherwise. */
  checkpoint_epoch: number | null;
  trajectory: Trajectory;
}

/**
 * Who holds the run's checkpoints. `trainwatch`: a local or host training; `epochs` are those it has written (or will write:
 * a running training writes its best and last when it stops). `trainer`: an external trainer; any epoch may have one.
 */
export type CheckpointHolding = { held_by: "trainwatch"; epochs: readonly number[] } | { held_by: "trainer" };

export interface TrajectoryDetail {
  trajectory: Trajectory;
  /** Slope of the fitted line over the recent window, per epoch; null with fewer than 2 points. */
  slope: number | null;
  /** Fitted relative change over the recent window; null with fewer than 2 points. */
  relative_change: number | null;
  /** Finite points in the recent window. */
  points: number;
  /** "since_best" when the monitored loss sits well above its best (that decides, whatever the window says); else "recent". */
  basis: "recent" | "since_best";
  /** How far above its best the monitored loss sits (SinceBest.rise) and the margin that counts; null without a best or epochs after it. */
  since_best: { best_epoch: number; rise: number; margin: number } | null;
}

/**
 * Trajectory of the monitored loss. Worsening "since the best epoch" when the mean of its last 3 epochs after the best sits above
 * the best by more than the overfitting margin (max(overfit_threshold, overfit_noise_z σ)), whatever the recent window does.
 * Otherwise a line (x = epoch) fitted over the last `trajectory_window` (10) finite points: a fitted relative change below
 * −trajectory_threshold (−1 %) is improving, above +1 % worsening, else flat (also flat with < 2 points). `epochs` ascending.
 */
export function trajectoryOf(
  epochs: readonly EpochPoint[],
  monitor: Monitor | null,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
  state?: TrendState,
): TrajectoryDetail {
  if (monitor === null) return trajectoryFrom([], [], null, EMPTY_STATE, cfg);
  const sorted = normalizeHistory(epochs);
  const { xs, ys } = finiteSeries(sorted, monitor);
  const window = trajectoryWindow(cfg);
  const s = state ?? advanceState(EMPTY_STATE, sorted, monitor);
  return trajectoryFrom(
    xs.slice(-window).map((x, i) => [x, ys.slice(-window)[i]!]),
    sorted.slice(-tailSize(cfg)),
    monitor,
    s,
    cfg,
  );
}

/** The points trajectoryOf fits: the last max(2, trajectory_window) finite monitored values. */
export function trajectoryWindow(cfg: TrendConfig = DEFAULT_TREND_CONFIG): number {
  return Math.max(2, cfg.trajectory_window);
}

/**
 * trajectoryOf from its parts: `window` the last trajectoryWindow finite monitored (epoch, value) pairs, `recent` the last
 * tailSize stored epochs, `state` the history's rule state. What the judgement kept on write reads (judgement_state.ts).
 */
export function trajectoryFrom(
  window: readonly (readonly [number, number])[],
  recent: readonly EpochPoint[],
  monitor: Monitor | null,
  state: TrendState,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): TrajectoryDetail {
  const none: TrajectoryDetail = {
    trajectory: "flat",
    slope: null,
    relative_change: null,
    points: 0,
    basis: "recent",
    since_best: null,
  };
  if (monitor === null) return none;
  const wx = window.map((p) => p[0]);
  const wy = window.map((p) => p[1]);
  const s = sinceBest(recent, monitor, state, cfg);
  const since_best = s ? { best_epoch: s.best_epoch, rise: s.rise, margin: s.margin } : null;
  if (wx.length < 2) return { ...none, points: wx.length, since_best };
  const change = fittedRelativeChange(wx, wy);
  const slope = linearFit(wx, wy).slope;
  if (s && s.rise > s.margin)
    return {
      trajectory: "worsening",
      slope,
      relative_change: change,
      points: wx.length,
      basis: "since_best",
      since_best,
    };
  const threshold = cfg.trajectory_threshold;
  const trajectory: Trajectory =
    change === null ? "flat" : change < -threshold ? "improving" : change > threshold ? "worsening" : "flat";
  return { trajectory, slope, relative_change: change, points: wx.length, basis: "recent", since_best };
}

export interface GeneralizationGap {
  /** val_loss − train_loss at the last epoch with both finite. */
  latest: number | null;
  /** Least-squares slope of the gap per epoch over the judged span. */
  slope: number | null;
  trend: "widening" | "narrowing" | "stable" | null;
}

/** One epoch of the gap: its number, val_loss − train_loss, and val_loss (both finite). */
export type GapPoint = readonly [epoch: number, gap: number, val: number];

/** The epochs of `epochs` (ascending) where train_loss and val_loss are both finite, as GapPoints. */
export function gapPoints(epochs: readonly EpochPoint[]): GapPoint[] {
  const out: GapPoint[] = [];
  for (const p of epochs) {
    if (isFiniteLoss(p.train_loss) && isFiniteLoss(p.val_loss))
      out.push([p.epoch, p.val_loss - p.train_loss, p.val_loss]);
  }
  return out;
}

/** GapPoints folded into an OnlineFit (x = epoch, y = gap, |val| summed), in order. */
export function gapFit(points: readonly GapPoint[], fit: OnlineFit = EMPTY_FIT): OnlineFit {
  let f = fit;
  for (const [x, g, v] of points) f = addToFit(f, x, g, v);
  return f;
}

/**
 * Generalization gap = val_loss − train_loss on epochs where both are finite. Its trend is judged from the best epoch on (at
 * least the last trajectory_window (10) such epochs), so a run that overfits since its best reads "widening" even when the last
 * few epochs wobble: when the fitted gap moves across that span by no more than trajectory_threshold (1 %) of the mean
 * |val_loss| there, it is "stable"; otherwise "widening" (rising) or "narrowing" (falling). The line is fitted one point at
 * a time (regression.ts OnlineFit), so the judgement kept on write extends it as epochs arrive.
 */
export function generalizationGap(
  epochs: readonly EpochPoint[],
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
  bestEpoch: number | null = null,
): GeneralizationGap {
  const points = gapPoints(normalizeHistory(epochs));
  const window = trajectoryWindow(cfg);
  const atBest = bestEpoch === null ? -1 : points.findIndex((p) => p[0] >= bestEpoch);
  const sinceBestFit = atBest >= 0 ? gapFit(points.slice(atBest)) : null;
  return gapFrom(points[points.length - 1]?.[1] ?? null, points.slice(-window), sinceBestFit, cfg);
}

/**
 * generalizationGap from its parts: the latest gap, the last trajectoryWindow GapPoints, and the fit over every GapPoint
 * from the best epoch on (null without a best); that span decides when it holds more points than the window.
 */
export function gapFrom(
  latest: number | null,
  window: readonly GapPoint[],
  sinceBestFit: OnlineFit | null,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): GeneralizationGap {
  const fit = sinceBestFit !== null && sinceBestFit.n > trajectoryWindow(cfg) ? sinceBestFit : gapFit(window);
  if (fit.n < 2) return { latest, slope: null, trend: null };
  const slope = fitSlope(fit);
  const moved = slope * (fit.last_x! - fit.first_x!);
  const tolerance = (cfg.trajectory_threshold * fit.sum_abs) / fit.n;
  const trend = Math.abs(moved) <= tolerance ? "stable" : moved > 0 ? "widening" : "narrowing";
  return { latest, slope, trend };
}

export interface RecommendInput {
  status: RunStatus;
  epochs: readonly EpochPoint[];
  summary: TrendSummary;
  checkpoints: CheckpointHolding;
  /** How a finished run ended, when the trainer said (e.g. "early_stopping"); words the reason. */
  stop_reason?: string | null;
  /** The rule state and trajectory of `epochs`, when the caller has them already (judgeRun); derived when absent. */
  state?: TrendState;
  trajectory?: TrajectoryDetail;
}

/**
 * What recommend reads of a history, each part bounded: the judgement kept on write (judgement_state.ts) has them without
 * the history; recommend derives them from it.
 */
export interface RecommendParts {
  status: RunStatus;
  summary: TrendSummary;
  checkpoints: CheckpointHolding;
  stop_reason?: string | null;
  state: TrendState;
  trajectory: TrajectoryDetail;
  /** Stored epochs. */
  count: number;
  /** The last tailSize stored epochs, ascending. */
  recent: readonly EpochPoint[];
  /** The checkpoint to advise (checkpoint.ts chooseCheckpoint among the holding's epochs) and its monitored value; null when none qualifies. */
  checkpoint: { epoch: number; value: number } | null;
  /** levelSinceBest of the history. */
  level: { change: number; half: number } | null;
}

/**
 * One recommendation, in this order:
 * 1. diverging (running or not yet started) → stop, naming the epoch and the test that fired; NaN from the first epoch too.
 * 2. a finished run whose every loss was non-finite → stop (it diverged; nothing to restore); fewer than 3 epochs →
 *    insufficient_data.
 * 3. finished (completed, failed, cancelled) → use_checkpoint, the checkpoint chosen robustly (checkpoint.ts) among those that
 *    exist; insufficient_data without any finite loss.
 * 4. running: overfitting → stop; stalled → stop (no checkpoint: nothing was learned); plateaued → stop, unless, over the
 *    epochs since the best (of the last RECENT_EPOCHS (64) stored), the median of the later half is more than
 *    trajectory_threshold (1 %) below the median of the earlier half (the best was a lucky epoch; the level still falls)
 *    → continue; each stop with a checkpoint for overfitting and plateau; else continue.
 * checkpoint_epoch always names an epoch with a checkpoint when Trainwatch holds them, and any epoch for an external trainer
 * (the reason then says "if you kept one").
 */
export function recommend(input: RecommendInput, cfg: TrendConfig = DEFAULT_TREND_CONFIG): Recommendation {
  const epochs = normalizeHistory(input.epochs);
  const s = input.summary;
  const state = input.state ?? advanceState(EMPTY_STATE, epochs, s.monitor);
  const candidates = input.checkpoints.held_by === "trainwatch" ? input.checkpoints.epochs : null;
  return recommendFrom(
    {
      status: input.status,
      summary: s,
      checkpoints: input.checkpoints,
      stop_reason: input.stop_reason,
      state,
      trajectory: input.trajectory ?? trajectoryOf(epochs, s.monitor, cfg, state),
      count: epochs.length,
      recent: epochs.slice(-tailSize(cfg)),
      checkpoint: chooseCheckpointPoint(epochs, s.monitor, candidates),
      level: levelSinceBest(epochs.slice(-RECENT_EPOCHS), s),
    },
    cfg,
  );
}

/**
 * levelChange over the epochs after the best among `recent` (the last RECENT_EPOCHS (64) stored, ascending); null without
 * a monitor or a best.
 */
export function levelSinceBest(
  recent: readonly EpochPoint[],
  s: Pick<TrendSummary, "monitor" | "best_epoch">,
): { change: number; half: number } | null {
  if (s.monitor === null || s.best_epoch === null) return null;
  const best = s.best_epoch;
  return levelChange(
    recent.filter((p) => p.epoch > best),
    s.monitor,
  );
}

/** recommend from its parts (see recommend for the order of the rules). */
export function recommendFrom(input: RecommendParts, cfg: TrendConfig = DEFAULT_TREND_CONFIG): Recommendation {
  const s = input.summary;
  const state = input.state;
  const traj = input.trajectory;
  const result = (action: Action, reason: string, checkpoint_epoch: number | null = null): Recommendation => ({
    action,
    reason,
    checkpoint_epoch,
    trajectory: traj.trajectory,
  });
  const n = input.count;
  const monitor = s.monitor ?? "loss";
  const recent = input.recent;
  const finished = input.status === "completed" || input.status === "failed" || input.status === "cancelled";

  // The checkpoint to advise, only among epochs before a blow-up, and how to say it.
  const candidates = input.checkpoints.held_by === "trainwatch" ? input.checkpoints.epochs : null;
  const restore = (): { epoch: number | null; text: string } => {
    const chosen = input.checkpoint;
    if (chosen === null && candidates !== null && candidates.length > 0) {
      // Checkpoints exist but none of their epochs was stored (a cancel refuses the epoch that was finishing): the newest.
      const newest = Math.max(...candidates);
      return { epoch: newest, text: `restore the checkpoint of epoch ${newest} (its metrics were not recorded)` };
    }
    if (chosen === null) {
      return {
        epoch: null,
        text:
          candidates !== null && candidates.length === 0
            ? "no checkpoint was written"
            : `no epoch has a finite ${monitor}, so there is no checkpoint to restore`,
      };
    }
    const what = `epoch ${chosen.epoch} (${monitor} ${fmtLoss(chosen.value)})`;
    return {
      epoch: chosen.epoch,
      text:
        candidates === null
          ? `restore your checkpoint of ${what}, if you kept one`
          : `restore the checkpoint of ${what}`,
    };
  };

  if (s.is_diverging && !finished) {
    const d = divergence(recent, state, cfg);
    let what: string;
    if (d.kind === "non_finite" && d.non_finite) {
      what = `${label(d.non_finite.field)} became ${fmtLoss(d.non_finite.value)} at epoch ${d.non_finite.epoch}`;
    } else if (d.kind === "exploded" && d.explosion !== null) {
      what = `Training loss exploded to ${times(d.explosion)} its lowest value (explode factor ${cfg.explode_factor})`;
    } else {
      what =
        `Training loss rose ${pct(d.train_change ?? 0)} over the last ${plural(d.points, "epoch")} (threshold ${pct(cfg.diverge_threshold)})` +
        (d.val_change !== null ? ` while validation loss rose ${pct(d.val_change)}` : "");
    }
    const r = restore();
    const fix = r.epoch === null ? "; lower the learning rate and check the inputs for NaN" : `; ${r.text}`;
    return result("stop", `${what}: the run is diverging, so stop it${fix}.`, r.epoch);
  }
  if (finished && s.is_diverging && s.monitor === null)
    // Nothing but non-finite losses: the run diverged from the start; it is not short of data.
    return result(
      "stop",
      `Every loss of the ${plural(n, "epoch")} was non-finite: the run diverged, and there is no finite loss to go back to; lower the learning rate and check the inputs for NaN.`,
    );
  if (n < 3)
    return result(
      "insufficient_data",
      `Only ${plural(n, "epoch")} recorded; at least 3 are needed to judge the trend.`,
    );

  const trend = trendText(traj);
  if (finished) {
    const ended =
      input.status === "cancelled"
        ? "was cancelled"
        : input.stop_reason === "early_stopping"
          ? "early-stopped"
          : input.status;
    const r = restore();
    if (r.epoch === null)
      return result("insufficient_data", `The run ${ended} after ${plural(n, "epoch")} and ${r.text}.`);
    return result(
      "use_checkpoint",
      `The run ${ended} after ${plural(n, "epoch")}, with ${monitor} ${trend} at the end; ${r.text}.`,
      r.epoch,
    );
  }

  const best = bestClause(s) ?? `no finite ${monitor} has been recorded yet`;
  if (s.is_overfitting) {
    const o = sinceBest(recent, s.monitor, state, cfg)!;
    const r = restore();
    return result(
      "stop",
      `Validation loss is ${pct(o.rise)} above its best ${fmtLoss(o.best)} at epoch ${o.best_epoch} (mean of the last ${Math.min(LEVEL_EPOCHS, o.epochs_after)} epochs; ` +
        `margin ${pct(o.margin)}: at least ${pct(cfg.overfit_threshold)} and ${cfg.overfit_noise_z}× its noise) while training loss fell ${pct(o.train_change ?? 0)}: ` +
        `the run is overfitting, so stop it and ${r.text}.`,
      r.epoch,
    );
  }
  if (s.is_stalled) {
    const st = stall(recent, s.monitor, state, cfg)!;
    return result(
      "stop",
      `${monitor} improved ${pct(st.window_improvement)} of its first value over the last ${plural(st.window, "epoch")} (threshold ${pct(cfg.stall_threshold)}) ` +
        `and ${pct(st.total_improvement)} in all (under ${pct(LEARNED_FRACTION)}): the run is not learning; check the learning rate (too low?), ` +
        `that the weights are trainable, and that the labels match the inputs.`,
    );
  }
  if (s.is_plateaued) {
    const level = input.level;
    if (level !== null && level.change < -cfg.trajectory_threshold) {
      return result(
        "continue",
        `${monitor} has not set a new best for ${plural(s.epochs_since_improvement ?? 0, "epoch")} (patience ${cfg.plateau_patience}), ` +
          `but since then its median over the last ${level.half} epochs is ${pct(level.change)} below the ${level.half} before ` +
          `(more than ${pct(cfg.trajectory_threshold)}): the best was a lucky epoch and the run is still improving, so keep training.`,
      );
    }
    const r = restore();
    return result(
      "stop",
      `${monitor} has not improved for ${plural(s.epochs_since_improvement ?? 0, "epoch")} (patience ${cfg.plateau_patience}) and is ${trend}; ${best}; stop and ${r.text}.`,
      r.epoch,
    );
  }
  if (s.best_epoch === null)
    return result("insufficient_data", `No finite loss in ${plural(n, "epoch")} yet, so there is no trend to judge.`);
  return result("continue", `${monitor} is ${trend}; ${best}, so keep training.`);
}

/**
 * How the monitored loss's typical level moved over `epochs` (those since the best): the median of the later half of the
 * finite values ÷ the median of the earlier half − 1 (negative: lower now), and the half's length. null with fewer than 4.
 */
export function levelChange(epochs: readonly EpochPoint[], monitor: Monitor): { change: number; half: number } | null {
  const { ys } = finiteSeries(epochs, monitor);
  const half = ys.length >> 1;
  if (half < 2) return null;
  const before = median(ys.slice(-2 * half, -half));
  return before === 0 ? null : { change: median(ys.slice(-half)) / before - 1, half };
}

/** "improving (-3.2% over the last 10 epochs)" or "worsening since the best epoch (+12.0% above its best at epoch 17)". */
function trendText(t: TrajectoryDetail): string {
  if (t.basis === "since_best" && t.since_best) {
    return `worsening since the best epoch (${signedPct(t.since_best.rise)} above its best at epoch ${t.since_best.best_epoch})`;
  }
  return t.relative_change === null
    ? t.trajectory
    : `${t.trajectory} (${signedPct(t.relative_change)} over the last ${plural(t.points, "epoch")})`;
}

/** "best val_loss 0.4123 at epoch 17, 9 epochs ago", or null without a best. */
function bestClause(s: TrendSummary): string | null {
  if (s.monitor === null || s.best_epoch === null || s.best_val_loss === null) return null;
  const since = s.epochs_since_improvement;
  const ago = since === null ? "" : since === 0 ? ", the latest epoch" : `, ${plural(since, "epoch")} ago`;
  return `best ${s.monitor} ${fmtLoss(s.best_val_loss)} at epoch ${s.best_epoch}${ago}`;
}

function label(field: Monitor): string {
  return field === "val_loss" ? "Validation loss" : "Training loss";
}
