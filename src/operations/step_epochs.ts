/**
 * The epoch records a step run's steps imply (issue 22's contract), kept on write: for each epoch e that has steps,
 * `train_loss` is the mean of its steps' finite train_loss, `val_loss` / `val_accuracy` / `eval/*` the last evaluation
 * taken during it, `learning_rate` that of its first step carrying one, `duration` the sum of its steps' durations when
 * every step has one (else the seconds from its first step's timestamp to its last's), `timestamp` its last step's, and
 * the custom `step` its last step number. A record is written when its epoch closes: a step of a later epoch arrives, or
 * the operation finishes.
 *
 * The open epoch's running sums live in the stored StepState, so a write costs O(rows written): adding a step is O(1),
 * and so is replacing one, unless the replaced step held the epoch's first or last step, its learning rate or one of
 * its evaluations; then (and for any write into an epoch already closed) the epoch is summed again from its own rows,
 * read by its step range, never from the whole history. Pure: the store reads and writes around it (src/store/write_steps.ts).
 */
import type { EpochRecord } from "../schemas/epoch.ts";
import type { StepRecord } from "../schemas/step.ts";
import { decodeMetric, encodeMetric, type WireMetric } from "../trends/wire.ts";

/** An evaluation field of a step: val_loss, val_accuracy, or a custom `eval/<name>`. */
const isEval = (name: string) => name === "val_loss" || name === "val_accuracy" || name.startsWith("eval/");

/** One epoch's running sums over its steps (plain JSON: the store keeps the open epoch's in StepState). */
export interface EpochSums {
  epoch: number;
  /** Its first and last step numbers and how many steps it has. */
  first: number;
  last: number;
  count: number;
  /** Sum and count of its finite train_loss values. */
  loss_sum: number;
  loss_n: number;
  /** Sum of its steps' finite durations and how many steps have one. */
  dur_sum: number;
  dur_n: number;
  /** Timestamps (ms) of its first and last step. */
  first_ts: number;
  last_ts: number;
  /** The learning rate of its lowest step carrying one: [step, wire value]. */
  lr: [number, WireMetric] | null;
  /** Per evaluation field, its latest value: [step, wire value]. */
  evals: Record<string, [number, WireMetric]>;
}

/** What an operation's step write starts from; JSON in the operation row (null before any step). */
export interface StepState {
  /** Highest stored step number, -1 before any. */
  max: number;
  /** The open epoch (the highest epoch any step named, not yet closed) and its sums; null when none is open. */
  open: EpochSums | null;
  /** Every epoch with steps: epoch → [first step, last step] (the last is the epoch's end, GET …/steps epoch_ends). */
  spans: Record<string, [number, number]>;
}

export const EMPTY_STEP_STATE: StepState = { max: -1, open: null, spans: {} };

const tsOf = (s: StepRecord) => s.timestamp_ms ?? Date.parse(s.timestamp);

/** Adds step `s` (of this epoch, not already counted) to the sums. */
export function addStep(sums: EpochSums, s: StepRecord): void {
  const ts = tsOf(s);
  if (sums.count === 0 || s.step < sums.first) (sums.first = s.step), (sums.first_ts = ts);
  if (sums.count === 0 || s.step > sums.last) (sums.last = s.step), (sums.last_ts = ts);
  sums.count++;
  if (typeof s.train_loss === "number" && Number.isFinite(s.train_loss)) (sums.loss_sum += s.train_loss), sums.loss_n++;
  if (typeof s.duration === "number" && Number.isFinite(s.duration)) (sums.dur_sum += s.duration), sums.dur_n++;
  if (typeof s.learning_rate === "number" && (sums.lr === null || s.step < sums.lr[0]))
    sums.lr = [s.step, encodeMetric(s.learning_rate)!];
  for (const [name, v] of evaluations(s)) {
    const held = sums.evals[name];
    if (!held || s.step >= held[0]) sums.evals[name] = [s.step, encodeMetric(v)!];
  }
}

/**
 * Takes stored step `old` (counted in these sums) back out. False when only a sum over its rows can tell the result:
 * it was the epoch's first or last step, or held its learning rate or one of its evaluations (the sums are then stale).
 */
export function removeStep(sums: EpochSums, old: StepRecord): boolean {
  if (old.step === sums.first || old.step === sums.last) return false;
  if (sums.lr !== null && sums.lr[0] === old.step) return false;
  for (const name in sums.evals) if (sums.evals[name]![0] === old.step) return false;
  sums.count--;
  if (typeof old.train_loss === "number" && Number.isFinite(old.train_loss))
    (sums.loss_sum -= old.train_loss), sums.loss_n--;
  if (typeof old.duration === "number" && Number.isFinite(old.duration)) (sums.dur_sum -= old.duration), sums.dur_n--;
  return true;
}

function* evaluations(s: StepRecord): Generator<[string, number]> {
  if (typeof s.val_loss === "number") yield ["val_loss", s.val_loss];
  if (typeof s.val_accuracy === "number") yield ["val_accuracy", s.val_accuracy];
  if (s.custom) for (const k in s.custom) if (isEval(k) && typeof s.custom[k] === "number") yield [k, s.custom[k]!];
}

const emptySums = (epoch: number): EpochSums => ({
  epoch,
  first: 0,
  last: 0,
  count: 0,
  loss_sum: 0,
  loss_n: 0,
  dur_sum: 0,
  dur_n: 0,
  first_ts: 0,
  last_ts: 0,
  lr: null,
  evals: {},
});

/** The sums of `epoch` over `steps` (any order; those of other epochs are skipped): the from-scratch result. */
export function sumSteps(epoch: number, steps: readonly StepRecord[]): EpochSums {
  const sums = emptySums(epoch);
  for (const s of steps) if (s.epoch === epoch) addStep(sums, s);
  return sums;
}

/** The epoch record of the sums (the rule in this module's header). */
export function epochRecord(sums: EpochSums): EpochRecord {
  const custom: Record<string, number | null> = { step: sums.last };
  const rec: EpochRecord = {
    epoch: sums.epoch,
    timestamp: new Date(sums.last_ts).toISOString(),
    timestamp_ms: sums.last_ts,
    train_loss: sums.loss_n > 0 ? sums.loss_sum / sums.loss_n : null,
    learning_rate: sums.lr === null ? null : decodeMetric(sums.lr[1])!,
    duration: sums.dur_n === sums.count ? sums.dur_sum : Math.max(0, (sums.last_ts - sums.first_ts) / 1000),
    custom,
  };
  for (const [name, [, v]] of Object.entries(sums.evals)) {
    if (name === "val_loss" || name === "val_accuracy") rec[name] = decodeMetric(v)!;
    else custom[name] = decodeMetric(v)!;
  }
  return rec;
}

/** An epoch to sum again from its rows: those with this epoch among steps from … to. */
export interface EpochRead {
  epoch: number;
  from: number;
  to: number;
}

/** What a batch does to the state: the epochs it closed (their records), and the epochs to sum again from their rows. */
export interface StepAdvance {
  state: StepState;
  closed: EpochRecord[];
  reread: EpochRead[];
}

/**
 * The state after storing `steps` (distinct step numbers, ascending), which replaced `replaced` (the stored copies of
 * those of them that existed). Work: O(steps + replaced), plus the epochs listed in `reread`, which the caller reads
 * (after the batch's rows are in) and passes to `settle`.
 */
export function advanceSteps(
  prev: StepState,
  steps: readonly StepRecord[],
  replaced: readonly StepRecord[],
): StepAdvance {
  const state: StepState = {
    max: prev.max,
    open: prev.open && { ...prev.open, evals: { ...prev.open.evals } },
    spans: { ...prev.spans },
  };
  const closed: EpochRecord[] = [];
  const stale = new Set<number>();
  for (const o of replaced) {
    if (o.epoch === undefined) continue;
    if (state.open?.epoch !== o.epoch || !removeStep(state.open, o)) stale.add(o.epoch);
  }
  for (const s of steps) {
    if (s.step > state.max) state.max = s.step;
    if (s.epoch === undefined) continue;
    const span = state.spans[s.epoch];
    state.spans[s.epoch] = span ? [Math.min(span[0], s.step), Math.max(span[1], s.step)] : [s.step, s.step];
    const open = state.open;
    // With none open, an epoch that has steps was closed (at a finish): it is summed again, not reopened with this step alone.
    if (open === null ? span === undefined : s.epoch > open.epoch) {
      // A later epoch: the open one closes (from its sums, or summed again when they went stale).
      if (open !== null && !stale.has(open.epoch)) closed.push(epochRecord(open));
      state.open = emptySums(s.epoch);
      addStep(state.open, s);
    } else if (s.epoch === open?.epoch) {
      if (!stale.has(open.epoch)) addStep(open, s);
    } else stale.add(s.epoch);
  }
  const reread = [...stale]
    .filter((e) => state.spans[e] !== undefined)
    .sort((a, b) => a - b)
    .map((epoch) => ({ epoch, from: state.spans[epoch]![0], to: state.spans[epoch]![1] }));
  return { state, closed, reread };
}

/**
 * Settles an epoch of `reread` from its rows (`rows`: the stored steps of its range, after the write): the open epoch
 * takes the sums, a closed one returns its record (null when it holds no step any more).
 */
export function settle(state: StepState, epoch: number, rows: readonly StepRecord[]): EpochRecord | null {
  const sums = sumSteps(epoch, rows);
  if (sums.count === 0) {
    delete state.spans[epoch];
    if (state.open?.epoch === epoch) state.open = null;
    return null;
  }
  state.spans[epoch] = [sums.first, sums.last];
  if (state.open?.epoch === epoch) {
    state.open = sums;
    return null;
  }
  return epochRecord(sums);
}

/** At finish: the open epoch closes; its record, and the state without it. */
export function closeOpen(prev: StepState): { state: StepState; record: EpochRecord | null } {
  if (prev.open === null) return { state: prev, record: null };
  return { state: { ...prev, open: null }, record: epochRecord(prev.open) };
}

/** The end of every epoch with steps (its last step), ascending by epoch. */
export function epochEnds(state: StepState): { epoch: number; step: number }[] {
  return Object.entries(state.spans)
    .map(([e, [, last]]) => ({ epoch: Number(e), step: last }))
    .sort((a, b) => a.epoch - b.epoch);
}
