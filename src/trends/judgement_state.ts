// The judgement kept on write: what the trajectory, the generalization gap and the checkpoint advice need of a run's
// whole history, advanced by each write in work proportional to the epochs it appends, so a read judges from this state
// plus the last RECENT_EPOCHS stored epochs, at the same cost at any length. Plain data, stored as JSON beside the
// rule state (TrendState); the rule state's best decides where the gap's span starts.

import { checkpointScore, chooseAmong, type CheckpointPoint } from "./checkpoint.ts";
import { isFiniteLoss } from "./history.ts";
import { EMPTY_FIT, type OnlineFit } from "./regression.ts";
import { gapFit, gapPoints, trajectoryWindow } from "./recommend.ts";
import { DEFAULT_TREND_CONFIG, type Best, type EpochPoint, type Monitor, type TrendConfig } from "./types.ts";

/**
 * The lowest monitored epochs kept with their neighbours (8): an external trainer's checkpoint is chosen among them
 * (checkpoint.ts: a lucky dip scores as its neighbour, so the choice is exact whenever one of them is not a lucky dip).
 */
export const LOW_KEPT = 8;

/** A kept low epoch, compact in JSON: [epoch, value, prev, next] as checkpoint.ts CheckpointPoint names them. */
export type LowPoint = [epoch: number, value: number, prev: number | null, next: number | null];

const toPoint = ([epoch, value, prev, next]: LowPoint): CheckpointPoint => ({ epoch, value, prev, next });

/** The shape version: a state of another version (or kept for another trajectory window or monitor) is rebuilt. */
export const JUDGE_STATE_VERSION = 1;

export interface JudgeState {
  v: typeof JUDGE_STATE_VERSION;
  /** trajectoryWindow(cfg) the windows below were kept for. */
  window: number;
  /** The monitor the monitored parts were kept for (the summary's). */
  monitor: Monitor | null;
  /** The smallest stored epoch. */
  first_epoch: number | null;
  /** The largest stored epoch and its finite monitored value (null when not finite): the next epoch's `prev`. */
  last: { epoch: number; value: number | null } | null;
  /** The last `window` finite monitored (epoch, value) pairs, ascending. */
  traj: [number, number][];
  gap: {
    /** The last `window` GapPoints, ascending. */
    win: [number, number, number][];
    /** The latest gap. */
    latest: number | null;
    /** The best epoch `span` starts from; null without a best. */
    from_best: number | null;
    /** The fit over every GapPoint from `from_best` on. */
    span: OnlineFit;
  };
  /** Up to LOW_KEPT finite monitored epochs with the lowest values (value, then epoch, ascending), with their stored neighbours. */
  low: LowPoint[];
}

/** The state of a run with no epochs, for `monitor` under `cfg`. */
export function emptyJudgeState(monitor: Monitor | null, cfg: TrendConfig = DEFAULT_TREND_CONFIG): JudgeState {
  return {
    v: JUDGE_STATE_VERSION,
    window: trajectoryWindow(cfg),
    monitor,
    first_epoch: null,
    last: null,
    traj: [],
    gap: { win: [], latest: null, from_best: null, span: { ...EMPTY_FIT } },
    low: [],
  };
}

/** Whether `s` was kept for `monitor` under `cfg` in this version's shape (else rebuild it from the history). */
export function judgeStateFits(s: JudgeState | null, monitor: Monitor | null, cfg: TrendConfig): s is JudgeState {
  return s !== null && s.v === JUDGE_STATE_VERSION && s.window === trajectoryWindow(cfg) && s.monitor === monitor;
}

const byValue = (a: LowPoint, b: LowPoint) => a[1] - b[1] || a[0] - b[0];

/**
 * The state after appending `epochs` (ascending, each past `prev.last`), for `monitor` (prev's, or the one it switches
 * to from null) with `best` the rule state's best after them (TrendState.best). O(epochs · LOW_KEPT); `prev` is left as it is.
 */
export function advanceJudge(
  prev: JudgeState,
  epochs: readonly EpochPoint[],
  monitor: Monitor | null,
  best: Best | null,
): JudgeState {
  const window = prev.window;
  const traj = [...prev.traj];
  const low = prev.low.map((p) => [...p] as LowPoint);
  let last = prev.last;
  let first = prev.first_epoch;
  for (const p of epochs) {
    const v = monitor === null ? null : p[monitor];
    const value = isFiniteLoss(v) ? v : null;
    if (first === null) first = p.epoch;
    if (last !== null && last.value !== null) {
      const before = low.find((q) => q[0] === last!.epoch);
      if (before) before[3] = value;
    }
    if (value !== null) {
      traj.push([p.epoch, value]);
      const point: LowPoint = [p.epoch, value, last?.value ?? null, null];
      if (low.length < LOW_KEPT || byValue(point, low[low.length - 1]!) < 0) {
        low.push(point);
        low.sort(byValue);
        if (low.length > LOW_KEPT) low.pop();
      }
    }
    last = { epoch: p.epoch, value };
  }
  const added = gapPoints(epochs);
  const win = [...prev.gap.win, ...added].slice(-window) as [number, number, number][];
  const from = best?.epoch ?? null;
  // The best moves only onto an appended epoch: its span starts within this batch.
  const span =
    from === null
      ? { ...EMPTY_FIT }
      : from === prev.gap.from_best
        ? gapFit(added, prev.gap.span)
        : gapFit(added.filter((g) => g[0] >= from));
  return {
    v: JUDGE_STATE_VERSION,
    window,
    monitor,
    first_epoch: first,
    last,
    traj: traj.slice(-window),
    gap: { win, latest: added[added.length - 1]?.[1] ?? prev.gap.latest, from_best: from, span },
    low,
  };
}

/** The state of a whole history (ascending, de-duplicated): advanceJudge from the empty state. */
export function judgeStateOf(
  epochs: readonly EpochPoint[],
  monitor: Monitor | null,
  best: Best | null,
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): JudgeState {
  return advanceJudge(emptyJudgeState(monitor, cfg), epochs, monitor, best);
}

/**
 * An external trainer's checkpoint (any stored epoch may have one) from the kept lowest epochs and the noise σ
 * (checkpoint.ts checkpointNoise): exact when one of them is not a lucky dip (every epoch left out scores at least as
 * high as its own value, which is no lower than theirs), or when they are every finite epoch. `undefined` when neither
 * holds (every one of the LOW_KEPT lowest is a lucky dip): the caller judges the history instead.
 */
export function lowCheckpoint(s: JudgeState, sigma: number): CheckpointPoint | null | undefined {
  const low = s.low.map(toPoint);
  const chosen = chooseAmong(low, sigma);
  if (chosen === null || low.length < LOW_KEPT) return chosen;
  return low.some((p) => checkpointScore(p, sigma) === p.value) ? chosen : undefined;
}
