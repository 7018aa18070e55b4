/**
 * How a batch of epochs is written, for both stores: the lifecycle check and the revive, the custom-metric-name bound,
 * the batch's rows (a batch's last copy of an epoch wins, timestamps parsed once), the trend summary kept
 * incrementally from the stored rule state and the recent tail (so a write costs O(batch), not O(history)), the chart
 * blocks, pending → running and the liveness stamp. Written once, over an EpochWriter each store implements with its
 * SQL alone, as a generator of I/O steps: SQLite runs it synchronously inside its `.immediate()` transaction (runSync),
 * PostgreSQL awaits each step inside `sql.begin` (runAsync). Pure: no I/O of its own.
 */
import { canAcceptRows, isRevivable, operationFinished, takesByGrace } from "../operations/lifecycle.ts";
import { controlAfterGrace } from "../operations/stop_policy.ts";
import { noteRows, parseCadence } from "../operations/liveness.ts";
import { admitMetricNames, encodeMetric, type EpochRecord } from "../schemas/epoch.ts";
import type { MetricRow } from "../schemas/metric.ts";
import type { OperationStatus, StopControl, StopPolicy } from "../schemas/operation.ts";
import type { SpanSummary } from "../trends/downsample.ts";
import {
  advanceJudge,
  decodeJudge,
  emptyJudgeState,
  judgeStateFits,
  judgeStateOf,
  type JudgeState,
} from "../trends/judgement_state.ts";
import { advanceState, analyzeTrends, chooseMonitor, summarizeFrom } from "../trends/summary.ts";
import {
  EMPTY_STATE,
  type EpochPoint,
  type Monitor,
  type TrendConfig,
  type TrendState,
  type TrendSummary,
} from "../trends/types.ts";
import type { WireEpoch } from "../schemas/epoch.ts";
import { appendToBlock, blocksOf, byBlock, summarizeBlock } from "./blocks.ts";
import { summaryColumns, type SummaryColumns } from "./search_columns.ts";
import type { WriteResult } from "./store.ts";
import { raisedFlags, summaryFlags } from "../alerts/rules.ts";
import type { AlertRules } from "../schemas/alert.ts";

/** A value now (SQLite) or later (PostgreSQL). */
export type Io<T> = T | PromiseLike<T>;

/** The operation row a write locks, as both stores keep it: what the algorithm reads of it. */
export interface WriteRow {
  operation_id: string;
  status: OperationStatus;
  failure_code: string | null;
  stop_policy: string | null;
  control: string | null;
  /** The trend summary and the rule state (best_json) the incremental update starts from. */
  summary: string;
  best_json: string | null;
  /** The judgement kept on write (src/trends/judgement_state.ts encodeJudge's bytes); null before this version kept one. */
  judgement: Uint8Array | null;
  /** The custom metric names, a sorted JSON array (Store.metricNames). */
  metric_names: string;
  /** The row cadence (src/operations/liveness.ts Cadence as JSON); null before any row. */
  cadence: string | null;
  /** The run's alert rules (src/schemas/alert.ts AlertRules as JSON); null: the server's defaults. */
  alert_rules: string | null;
}

/**
 * One stored epoch of a batch: its last copy, its timestamp in ms, and the custom metrics column (its JSON, filled in
 * by writeEpochs once the name bound admitted the batch: a refused batch encodes nothing).
 */
export interface BatchRow {
  e: EpochRecord;
  ts: number;
  custom: string | null;
}

/** A batch as the write stores it, built once the name bound admitted it (a refused batch builds nothing). */
export interface EpochBatch {
  /** As posted: the trend state and a live stream see these. */
  epochs: readonly EpochRecord[];
  /** One per distinct epoch, its last copy (an upsert may touch a row once per statement; INSERT OR REPLACE keeps the last). */
  rows: BatchRow[];
  /** The smallest epoch number (Infinity for an empty batch). */
  minEpoch: number;
  /** The epochs by chart block (src/store/blocks.ts). */
  blocks: Map<number, EpochRecord[]>;
}

/** What the write reads once its rows are in: the summary's tail or whole loss history, and the blocks to summarise again. */
export interface InsertPlan {
  /** Every row lies past the stored epochs: none can conflict (PostgreSQL COPYs them). */
  fresh: boolean;
  /** Read the `tail` most recent loss points (0: none needed). */
  tail: number;
  /** Read the whole loss history (a full recompute). */
  history: boolean;
  /** Chart blocks whose rows to read back (ascending within each), to summarise again. */
  blocks: number[];
}

export interface InsertReads {
  /** Ascending; null unless asked for. */
  tail: EpochPoint[] | null;
  /** Ascending; null unless asked for. */
  history: EpochPoint[] | null;
  /** The rows of InsertPlan.blocks in wire form, each block's contiguous and ascending. */
  blockRows: WireEpoch[];
}

/** What a write saves on the operation row and its blocks, in the same transaction. */
export interface SavedWrite {
  trends: TrendSummary;
  /** The search columns of the summary (src/store/search_columns.ts), saved on the row with it. */
  columns: SummaryColumns;
  state: TrendState;
  /** The judgement kept on write, advanced by the batch (column judgement). */
  kept: JudgeState;
  /** The new custom metric name list; null: unchanged. */
  names: string[] | null;
  /** A revivable failure goes back to running (its error, failure code and completion cleared). */
  revived: boolean;
  /** A pending operation starts: running, started_at = `at`. */
  started: boolean;
  /** The operation's new stop decision (a cancel's, its checkpoint moved by the epoch its grace took); null: unchanged. */
  control: StopControl | null;
  /** started_at when it starts, and last_seen_at. */
  at: Date;
  /** The row cadence after the write (src/operations/liveness.ts Cadence as JSON); null: unchanged (no row of its own). */
  cadence: string | null;
  /** Chart blocks to store (an operation keeping none has none). */
  blocks: Map<number, SpanSummary>;
  batch: EpochBatch;
}

/** A store's part of a write: its SQL alone, inside the transaction the store opened. */
export interface EpochWriter<R extends WriteRow> {
  /**
   * Locks and reads the operation's row (NOT_FOUND when unknown), with its stored chart blocks among `blocks`; null
   * for an operation that keeps none (a SQLite row from before chart blocks: built on its first chart read).
   */
  lock(operationId: string, blocks: number[]): Io<{ op: R; blocks: Map<number, SpanSummary> | null }>;
  /** Stores the batch's rows (replacing stored copies of their epochs), then reads what `plan` asks for. */
  insert(op: R, batch: EpochBatch, plan: InsertPlan): Io<InsertReads>;
  /** Saves the write on the row and the blocks; returns the write's version (WriteResult.version), 0 when counted later. */
  save(op: R, write: SavedWrite): Io<number>;
}

/** The steps of a write: each yields an Io and is resumed with its value. */
export type Steps<T> = Generator<unknown, T, unknown>;

/** One I/O step of a Steps generator, typed: `const v = yield* step(writer.x(...))`. */
export function* step<T>(io: Io<T>): Generator<Io<T>, T, unknown> {
  return (yield io) as T;
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === "object" && v !== null && typeof (v as { then?: unknown }).then === "function";

/** Runs `steps` over a writer that answers at once (SQLite, inside its synchronous transaction). */
export function runSync<T>(steps: Steps<T>): T {
  for (let r = steps.next(); ; r = steps.next(r.value)) {
    if (r.done) return r.value;
    if (isThenable(r.value)) throw new Error("runSync: a step answered with a promise");
  }
}

/** Runs `steps` over a writer that answers later (PostgreSQL, inside `sql.begin`). */
export async function runAsync<T>(steps: Steps<T>): Promise<T> {
  let r = steps.next();
  while (!r.done) r = steps.next(await r.value);
  return r.value;
}

/**
 * A batch's rows, for either series: one row per distinct `key`, built by `row` from that key's last copy in the batch
 * and its timestamp in ms (timestamp_ms, else the ISO timestamp parsed, once per run of equal timestamps: a batch
 * usually shares one server timestamp), in batch order; with the smallest key (Infinity for an empty batch).
 */
export function keyedBatch<T extends MetricRow, R>(
  items: readonly T[],
  key: (item: T) => number,
  row: (item: T, ts: number) => R,
): { rows: R[]; min: number } {
  const last = new Map<number, number>();
  for (let i = 0; i < items.length; i++) last.set(key(items[i]!), i);
  const rows: R[] = [];
  let min = Infinity;
  let lastIso = "";
  let lastMs = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (item.timestamp_ms !== undefined) lastMs = item.timestamp_ms;
    else if (item.timestamp !== lastIso) (lastIso = item.timestamp), (lastMs = Date.parse(item.timestamp));
    const k = key(item);
    if (last.get(k) !== i) continue;
    if (k < min) min = k;
    rows.push(row(item, lastMs));
  }
  return { rows, min };
}

/** The batch's rows: a batch's last copy of an epoch wins (keyedBatch). */
export function epochBatch(epochs: readonly EpochRecord[]): EpochBatch {
  const { rows, min } = keyedBatch(
    epochs,
    (e) => e.epoch,
    (e, ts): BatchRow => ({ e, ts, custom: null }),
  );
  return { epochs, rows, minEpoch: min, blocks: byBlock(epochs) };
}

/** What writeEpochs needs besides the writer: the trend rules, their tail size (tailSize(trends)), and the clock. */
export interface WriteContext {
  trends: TrendConfig;
  tail: number;
  /** Read once, when the write saves: started_at of a start, last_seen_at. */
  now: () => Date;
  /** Epoch records a step write derived: its rows are the steps', already in the cadence (default false). */
  derived?: boolean;
}

/**
 * Store.writeEpochs, once for both stores: refuses a finished operation (OPERATION_FINISHED; a cancelled one still
 * takes the epoch in progress at the cancel, canAcceptRows, and keeps its control's checkpoint current) and, before its batch is
 * built, a batch past the custom metric name limit (VALIDATION_ERROR); stores the rows; keeps the summary (appended, or
 * recomputed from the whole history), the chart blocks a write touched (appended, or summarised again from their rows),
 * the name list; revives a revivable failure, starts a pending operation, stamps last_seen_at.
 */
export function* writeEpochs<R extends WriteRow>(
  writer: EpochWriter<R>,
  operationId: string,
  epochs: readonly EpochRecord[],
  ctx: WriteContext,
): Steps<WriteResult> {
  const { op, blocks: stored } = yield* step(writer.lock(operationId, blocksOf(epochs)));
  const control = decision(op);
  // A cancelled operation still takes the epoch that was in progress at the cancel (lifecycle.ts canAcceptRows).
  if (!canAcceptRows({ ...op, control }, epochs)) throw operationFinished(operationId, op.status, control);
  // Before any row: a batch past the name limit is refused whole (the row lock orders concurrent writers' names).
  const names = admitMetricNames(() => JSON.parse(op.metric_names) as string[], epochs);
  // Built only now: a batch past the bound (10,000 epochs each naming a new metric, say) is refused before its rows,
  // blocks and custom columns exist, which made such a refusal cost tens of MB of garbage (bench/attack.ts).
  const batch = epochBatch(epochs);
  for (const r of batch.rows) r.custom = customColumn(r.e.custom);
  const revived = isRevivable(op);
  const prev = JSON.parse(op.summary) as TrendSummary;
  const prevKept = decodeJudge(op.judgement);
  // A kept judgement of another shape, monitor or configuration (or none, on a row from before it) is rebuilt.
  const keptFits = prev.total_epochs_completed === 0 || judgeStateFits(prevKept, prev.monitor, ctx.trends);
  const planned = planAppend(prev, op.best_json, batch.epochs, batch.rows.length, batch.minEpoch, ctx.tail);
  const append = keptFits ? planned : null;
  const blocks = new Map<number, SpanSummary | null>();
  if (stored) for (const [b, rows] of batch.blocks) blocks.set(b, appendToBlock(stored.get(b) ?? null, rows));
  const redo = [...blocks].filter(([, v]) => v === null).map(([b]) => b);

  const read = yield* step(
    writer.insert(op, batch, {
      fresh: prev.latest_epoch === null || batch.minEpoch > prev.latest_epoch,
      tail: append && append.tail === null ? ctx.tail : 0,
      history: append === null,
      blocks: redo,
    }),
  );
  let trends: TrendSummary;
  let state: TrendState;
  let kept: JudgeState;
  // The stored epochs' most recent losses, ascending: the latest one's are the search's final figures.
  let recent: readonly EpochPoint[];
  if (append) {
    state = append.state;
    recent = append.tail ?? read.tail!;
    trends = appendedSummary(append, recent as EpochPoint[], ctx.trends);
    const from = prevKept ?? emptyJudgeState(append.monitor, ctx.trends);
    kept = advanceJudge(from, ascending(batch.epochs), append.monitor, state.best);
  } else {
    recent = read.history!;
    ({ state, summary: trends } = analyzeTrends(read.history!, ctx.trends));
    kept = judgeStateOf(read.history!, trends.monitor, state.best, ctx.trends);
  }
  for (const b of redo) blocks.set(b, summarizeBlock(read.blockRows, b));
  const moved = control !== null && takesByGrace({ ...op, control }) ? controlAfterGrace(control, trends) : null;
  const at = ctx.now();
  const version = yield* step(
    writer.save(op, {
      trends,
      columns: summaryColumns(trends, recent.at(-1) ?? null),
      state,
      kept,
      names,
      revived,
      started: op.status === "pending",
      control: moved,
      at,
      // An empty write (a revive) and a step write's derived epochs log no row of their own.
      cadence: batch.rows.length === 0 || ctx.derived ? null : cadenceAfter(op.cadence, at),
      blocks: blocks as Map<number, SpanSummary>,
      batch,
    }),
  );
  return {
    stored: batch.epochs.length,
    trends,
    revived,
    version,
    statusChanged: revived || op.status === "pending" || moved !== null,
    stopPolicy: op.stop_policy === null ? null : (JSON.parse(op.stop_policy) as StopPolicy),
    control: moved ?? control,
    raised: raisedFlags(summaryFlags(prev), summaryFlags(trends)),
    raisedAt: { epoch: trends.latest_epoch, step: null },
    alertRules: alertRules(op),
  };
}

/** The cadence column after a write of rows at `at` (src/operations/liveness.ts noteRows). */
export const cadenceAfter = (stored: string | null, at: Date): string =>
  JSON.stringify(noteRows(parseCadence(stored), at.getTime()));

/** The run's alert rules the locked row holds. */
export const alertRules = (op: Pick<WriteRow, "alert_rules">): AlertRules | null =>
  op.alert_rules === null ? null : (JSON.parse(op.alert_rules) as AlertRules);

/** `epochs` ascending by epoch: as they are when they came so (the usual batch), else a sorted copy. */
function ascending<T extends { epoch: number }>(epochs: readonly T[]): readonly T[] {
  for (let i = 1; i < epochs.length; i++) {
    if (epochs[i]!.epoch < epochs[i - 1]!.epoch) return [...epochs].sort((a, b) => a.epoch - b.epoch);
  }
  return epochs;
}

/** The stop decision the locked row records. */
export const decision = (op: Pick<WriteRow, "control">): StopControl | null =>
  op.control === null ? null : (JSON.parse(op.control) as StopControl);

/** The custom metrics column: JSON of the wire values (NaN as "NaN"), or null when there are none. */
export function customColumn(custom: EpochRecord["custom"]): string | null {
  if (!custom) return null;
  const out: Record<string, unknown> = {};
  for (const k in custom) out[k] = encodeMetric(custom[k]);
  return JSON.stringify(out);
}

/** A write that extends the stored history: the rule state after it, and what summarizeFrom needs besides the tail. */
export interface Append {
  monitor: Monitor | null;
  state: TrendState;
  count: number;
  /** The new tail when the batch alone is one (at least `tail` epochs, all past the stored ones); else null: read it. */
  tail: EpochPoint[] | null;
}

/**
 * How a write of `epochs` (of which `distinct` different epoch numbers, the smallest `minEpoch`) updates the stored
 * summary `prev` and rule state `bestJson`. An Append when every new epoch lies past the stored history and the
 * monitor stays put; null for a full recompute: a replaced epoch, a switch to val_loss, a batch naming an epoch twice
 * (only a recompute sees which copy was kept), or a row whose rule state predates the current TrendState shape.
 */
export function planAppend(
  prev: TrendSummary,
  bestJson: string | null,
  epochs: readonly EpochRecord[],
  distinct: number,
  minEpoch: number,
  tail: number,
): Append | null {
  const prevState = bestJson === null && prev.total_epochs_completed > 0 ? null : parseState(bestJson);
  const batchMonitor = chooseMonitor(epochs);
  const monitor =
    prev.monitor === "val_loss" || batchMonitor === "val_loss" ? "val_loss" : (prev.monitor ?? batchMonitor);
  const appends =
    prevState !== null &&
    (prev.latest_epoch === null || minEpoch > prev.latest_epoch) &&
    !(prev.monitor === "train_loss" && monitor === "val_loss") &&
    distinct === epochs.length;
  if (!appends) return null;
  // Only the first values depend on order; once the state has them, the batch merges as it came.
  const needsOrder = prevState.first === null || prevState.first_train === null;
  const sorted = needsOrder || epochs.length >= tail ? [...epochs].sort((a, b) => a.epoch - b.epoch) : null;
  const state = advanceState(prevState, needsOrder ? sorted! : epochs, monitor);
  return {
    monitor,
    state,
    count: prev.total_epochs_completed + distinct,
    tail: epochs.length >= tail ? sorted!.slice(-tail) : null,
  };
}

/** The summary after an Append, from the stored epochs' most recent `tail` losses (ascending). */
export function appendedSummary(plan: Append, tail: EpochPoint[], cfg: TrendConfig): TrendSummary {
  return summarizeFrom({ monitor: plan.monitor, state: plan.state, tail, count: plan.count }, cfg);
}

/** The stored rule state (column best_json), or null when absent or written by an older version (then recompute). */
export function parseState(json: string | null): TrendState | null {
  if (json === null) return { ...EMPTY_STATE };
  const v = JSON.parse(json) as Partial<TrendState>;
  return "best" in v && "first" in v && "min_train" in v && "best_train" in v && "first_train" in v
    ? (v as TrendState)
    : null;
}
