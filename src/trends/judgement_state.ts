// The judgement kept on write: what the trajectory, the generalization gap and the checkpoint advice need of a run's
// whole history, advanced by each write in work proportional to the epochs it appends, so a read judges from this state
// plus the last RECENT_EPOCHS stored epochs, at the same cost at any length. Plain data, stored as JSON beside the
// rule state (TrendState); the rule state's best decides where the gap's span starts.

import { checkpointScore, chooseAmong, type CheckpointPoint } from "./checkpoint.ts";
import { isFiniteLoss } from "./history.ts";
import { addToFit, EMPTY_FIT, type OnlineFit } from "./regression.ts";
import { trajectoryWindow } from "./recommend.ts";
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
  const traj = prev.traj.slice();
  const low = prev.low.slice();
  let last = prev.last;
  let first = prev.first_epoch;
  const win = prev.gap.win.slice();
  const from = best?.epoch ?? null;
  // The best moves only onto an appended epoch: its span starts within this batch.
  let span = from !== null && from === prev.gap.from_best ? prev.gap.span : EMPTY_FIT;
  let latest = prev.gap.latest;
  for (const p of epochs) {
    const v = monitor === null ? null : p[monitor];
    const value = isFiniteLoss(v) ? v : null;
    if (first === null) first = p.epoch;
    if (last !== null && last.value !== null) {
      const at = low.findIndex((q) => q[0] === last!.epoch);
      if (at >= 0) low[at] = [low[at]![0], low[at]![1], low[at]![2], value];
    }
    if (value !== null) {
      traj.push([p.epoch, value]);
      const point: LowPoint = [p.epoch, value, last?.value ?? null, null];
      if (low.length < LOW_KEPT || byValue(point, low[low.length - 1]!) < 0) {
        let k = low.length;
        while (k > 0 && byValue(point, low[k - 1]!) < 0) k--;
        low.splice(k, 0, point);
        if (low.length > LOW_KEPT) low.pop();
      }
    }
    const t = p.train_loss;
    const vl = p.val_loss;
    if (isFiniteLoss(t) && isFiniteLoss(vl)) {
      const g = vl - t;
      win.push([p.epoch, g, vl]);
      latest = g;
      if (from !== null && p.epoch >= from) span = addToFit(span, p.epoch, g, vl);
    }
    last = { epoch: p.epoch, value };
  }
  if (traj.length > window) traj.splice(0, traj.length - window);
  if (win.length > window) win.splice(0, win.length - window);
  return {
    v: JUDGE_STATE_VERSION,
    window,
    monitor,
    first_epoch: first,
    last,
    traj,
    gap: { win, latest, from_best: from, span: from === null ? { ...EMPTY_FIT } : span },
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

const MONITORS: readonly (Monitor | null)[] = [null, "val_loss", "train_loss"];

/**
 * The state as the stores keep it: little-endian float64s (a BLOB / bytea of ~0.8 KB), written and read without
 * formatting or parsing a number, exactly (a double round-trips bit for bit). Layout: version, window, monitor (0 none, 1 val_loss, 2
 * train_loss), first_epoch, last epoch and value, then each list with its length first (traj pairs, gap window triples),
 * the latest gap, from_best, the span's eight fields, the low quadruples. NaN stands for null in the nullable fields.
 */
export function encodeJudge(s: JudgeState): Uint8Array {
  const out = new Uint8Array(8 * (19 + 2 * s.traj.length + 3 * s.gap.win.length + 4 * s.low.length));
  const view = new DataView(out.buffer);
  let i = 0;
  const put = (v: number | null) => {
    view.setFloat64(8 * i++, v ?? NaN, true);
  };
  put(s.v);
  put(s.window);
  put(MONITORS.indexOf(s.monitor));
  put(s.first_epoch);
  put(s.last?.epoch ?? null);
  put(s.last?.value ?? null);
  put(s.traj.length);
  for (const p of s.traj) put(p[0]), put(p[1]);
  put(s.gap.win.length);
  for (const g of s.gap.win) put(g[0]), put(g[1]), put(g[2]);
  const f = s.gap.span;
  put(s.gap.latest);
  put(s.gap.from_best);
  put(f.n), put(f.mean_x), put(f.mean_y), put(f.cxx), put(f.cxy), put(f.sum_abs), put(f.first_x), put(f.last_x);
  put(s.low.length);
  for (const l of s.low) put(l[0]), put(l[1]), put(l[2]), put(l[3]);
  return out;
}

/** encodeJudge's bytes back as a state; null for bytes of another version or length (the state is then rebuilt). */
export function decodeJudge(bytes: Uint8Array | null): JudgeState | null {
  // Not bytes (a JSON state an earlier build kept in the same column), or bytes of another length: rebuilt.
  if (!(bytes instanceof Uint8Array) || bytes.byteLength % 8 !== 0 || bytes.byteLength < 8 * 19) return null;
  // Through a DataView: a BLOB's bytes need not be 8-aligned; little-endian, as encodeJudge wrote them.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / 8;
  let i = 0;
  const num = () => view.getFloat64(8 * i++, true);
  const opt = () => {
    const v = view.getFloat64(8 * i++, true);
    return Number.isNaN(v) ? null : v;
  };
  if (num() !== JUDGE_STATE_VERSION) return null;
  const window = num();
  const monitor = MONITORS[num()] ?? null;
  const first_epoch = opt();
  const lastEpoch = opt();
  const lastValue = opt();
  const traj: [number, number][] = [];
  for (let k = num(); k > 0 && i < n; k--) traj.push([num(), num()]);
  const win: [number, number, number][] = [];
  for (let k = num(); k > 0 && i < n; k--) win.push([num(), num(), num()]);
  const latest = opt();
  const from_best = opt();
  const span: OnlineFit = {
    n: num(),
    mean_x: num(),
    mean_y: num(),
    cxx: num(),
    cxy: num(),
    sum_abs: num(),
    first_x: opt(),
    last_x: opt(),
  };
  const low: LowPoint[] = [];
  for (let k = num(); k > 0 && i < n; k--) low.push([num(), num(), opt(), opt()]);
  if (i !== n) return null;
  return {
    v: JUDGE_STATE_VERSION,
    window,
    monitor,
    first_epoch,
    last: lastEpoch === null ? null : { epoch: lastEpoch, value: lastValue },
    traj,
    gap: { win, latest, from_best, span },
    low,
  };
}
