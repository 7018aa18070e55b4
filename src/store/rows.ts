/**
 * What both stores read the same way, whatever the database: an operation row as the API's Operation, and an epoch row
 * in wire form (whole, or projected on a chart's fields). Pure: each store reads its own rows around these. How a write
 * stores rows and keeps the summary is src/store/write_epochs.ts.
 */
import { STANDARD_FIELDS, type WireEpoch } from "../schemas/epoch.ts";
import { STEP_FIELDS, type WireStep } from "../schemas/step.ts";
import type { SeriesKey } from "../trends/downsample.ts";
import type { WireMetric } from "../trends/wire.ts";
import { progressPercentage, type FailureCode } from "../operations/lifecycle.ts";
import type { Operation, OperationStatus, StopControl, StopPolicy } from "../schemas/operation.ts";
import { EMPTY_SUMMARY, type TrendSummary } from "../trends/types.ts";
import type { BatchProgress } from "./store.ts";
import { DEFAULT_CLIENT_LIVENESS, isStale, livenessOf, type ClientLiveness } from "../operations/liveness.ts";
import { withPlacement, type Location } from "../operations/ownership.ts";

/** An operation's columns as both stores keep them: times as ISO strings, JSON as text, last_seen_at in ms. */
export interface OperationColumns {
  operation_id: string;
  operation_type: string;
  name: string | null;
  status: OperationStatus;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  total_epochs_planned: number | null;
  total_steps_planned: number | null;
  /** Highest stored step + 1 (0 before any step). */
  steps_completed: number;
  /** When retention removed the step rows (ms; int8 text on PostgreSQL); null: they are all stored. */
  steps_pruned_at: number | string | null;
  error_message: string | null;
  failure_code: FailureCode | null;
  metadata: string;
  result: string | null;
  summary: string;
  last_seen_at: number | null;
  /** The first client heartbeat (ms); null: never (a run that is not watched). */
  watched_at: number | null;
  /** The row cadence kept on write (src/operations/liveness.ts Cadence as JSON); null before any row. */
  cadence: string | null;
  config: string | null;
  stop_policy: string | null;
  control: string | null;
  /** Where it runs and on which host (src/operations/ownership.ts): the server's own columns, never the client's blob. */
  location: Location | null;
  host: string | null;
  /** The executor that runs it and its id there (src/executors/executor.ts); the server's own, null before any. */
  executor: string | null;
  external_id: string | null;
  /** Why it waits and its place in the executor's queue, as last said; shown only while pending. */
  pending_reason: string | null;
  queue_position: number | null;
  /** The run's tags, a sorted JSON array (the search reads table operation_tags). */
  tags: string;
  group_name: string | null;
  /** The latest epoch's finite losses (src/store/search_columns.ts), kept by every epoch write. */
  final_loss: number | null;
  final_val_loss: number | null;
}

/** A nullable JSON column. */
export const parseJson = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

/**
 * Liveness settings of a store: when a silent host training reads `stale` (`lateAfterMs`), when a watched client run
 * reads `stale` or `hung` (`client`, default DEFAULT_CLIENT_LIVENESS), and the clock.
 */
export interface Liveness {
  lateAfterMs: number;
  client?: ClientLiveness;
  now?: () => number;
}

/** The API's Operation from stored columns and the in-memory batch progress. */
export function toOperation(r: OperationColumns, batch: BatchProgress | undefined, liveness: Liveness): Operation {
  // Spread over the empty summary: a row written before a flag existed reads it as false.
  const trends: TrendSummary = { ...EMPTY_SUMMARY, ...(JSON.parse(r.summary) as TrendSummary) };
  // The placement columns are the truth; the blob's copies of them are only what an older row was backfilled from.
  const metadata = withPlacement(JSON.parse(r.metadata) as Record<string, unknown>, r);
  const total = r.total_epochs_planned;
  const done = trends.total_epochs_completed;
  const now = (liveness.now ?? Date.now)();
  const watched = livenessOf(r, now, liveness.client ?? DEFAULT_CLIENT_LIVENESS);
  return {
    operation_id: r.operation_id,
    operation_type: r.operation_type,
    name: r.name,
    status: r.status,
    tags: JSON.parse(r.tags) as string[],
    group: r.group_name,
    created_at: r.created_at,
    started_at: r.started_at,
    completed_at: r.completed_at,
    progress: {
      percentage: progressPercentage(r.status, done, total, batch, {
        completed: Number(r.steps_completed),
        total: r.total_steps_planned,
      }),
      current_epoch: trends.latest_epoch,
      total_epochs: total,
      epochs_completed: done,
      // Only a step run (or one that plans steps) has them: a per-epoch operation reads exactly as before steps.
      ...(Number(r.steps_completed) > 0 || r.total_steps_planned !== null
        ? { steps_completed: Number(r.steps_completed), total_steps: r.total_steps_planned }
        : {}),
      ...(r.steps_pruned_at == null ? {} : { steps_pruned_at: new Date(Number(r.steps_pruned_at)).toISOString() }),
      ...(batch && r.status === "running" ? { batch } : {}),
    },
    error_message: r.error_message,
    failure_code: r.failure_code,
    last_seen_at: r.last_seen_at === null ? null : new Date(r.last_seen_at).toISOString(),
    stale: watched?.stale ?? isStale(r, r.last_seen_at, now, liveness.lateAfterMs),
    hung: watched?.hung ?? false,
    liveness: watched,
    executor: r.executor,
    external_id: r.external_id,
    // What the executor last said about the wait means nothing once it runs: not cleared on start, just not shown.
    ...(r.status === "pending" && r.pending_reason !== null ? { pending_reason: r.pending_reason } : {}),
    ...(r.status === "pending" && r.queue_position !== null ? { queue_position: Number(r.queue_position) } : {}),
    metadata,
    config: parseJson<Record<string, unknown>>(r.config),
    stop_policy: parseJson<StopPolicy>(r.stop_policy),
    control: parseJson<StopControl>(r.control),
    result: r.result ? (JSON.parse(r.result) as Record<string, unknown>) : null,
    trends,
    final_loss: r.final_loss === null ? null : Number(r.final_loss),
    final_val_loss: r.final_val_loss === null ? null : Number(r.final_val_loss),
  };
}

/** A stored epoch row; each store keeps a metric cell its own way (`C`). */
export interface EpochColumns<C> {
  epoch: number;
  train_loss: C | null;
  val_loss: C | null;
  train_accuracy: C | null;
  val_accuracy: C | null;
  learning_rate: C | null;
  duration: C | null;
  /** Milliseconds; PostgreSQL's int8 arrives as a string. */
  ts: number | string;
  custom: string | null;
}

/**
 * A stored row in wire form, with `wire` turning a non-null cell into a wire value (SQLite keeps NaN as text, PostgreSQL
 * as a float8). A NULL field is left out, as encodeEpoch leaves out a null one. A factory, so each store gets a function
 * of its own with `wire` fixed: this runs for every row a GET reads. Reading 1,000 SQLite rows took 655–702 µs of CPU
 * (best of 25) with the store's own copy, 662–720 µs through this factory, 810–1117 µs with `wire` as an argument.
 */
export function rowToWire<C>(wire: (c: C) => WireMetric | undefined): (r: EpochColumns<C>) => WireEpoch {
  return (r) => {
    const out: Record<string, unknown> = { epoch: r.epoch };
    if (r.train_loss !== null) out.train_loss = wire(r.train_loss);
    if (r.val_loss !== null) out.val_loss = wire(r.val_loss);
    if (r.train_accuracy !== null) out.train_accuracy = wire(r.train_accuracy);
    if (r.val_accuracy !== null) out.val_accuracy = wire(r.val_accuracy);
    if (r.learning_rate !== null) out.learning_rate = wire(r.learning_rate);
    if (r.duration !== null) out.duration = wire(r.duration);
    if (r.custom !== null) Object.assign(out, JSON.parse(r.custom));
    out.timestamp = new Date(typeof r.ts === "number" ? r.ts : Number(r.ts)).toISOString();
    return out as WireEpoch;
  };
}

/**
 * What a read projected on `fields` selects, and its rows in wire form: `epoch`, then each field the full read
 * (rowToWire) would give the row, in the order of `fields` — a standard one from its column (left out when NULL), a
 * custom one from the parsed custom column (null kept, as the full read keeps it), `timestamp` formatted only when
 * listed. Custom metrics never take a standard field's name (decodeEpoch keeps those as standard fields), so a field is
 * read from one place. The same rows as the full read's restricted to `fields` (src/store/charts.ts's project), without
 * formatting a timestamp per row or parsing custom metrics a chart does not show: a 10,000-epoch run's one standard
 * metric reads in a fraction of its full rows (bench/dashboard.ts (e)).
 */
export interface Projection<C, Row = EpochColumns<C>, Wire = WireEpoch> {
  /** The columns to select: the key, the listed standard ones (and a step's epoch), ts and custom only when needed. */
  columns: string[];
  toWire: (r: Row) => Wire;
}

const STANDARD_COLUMNS: Record<SeriesKey, ReadonlySet<string>> = {
  epoch: new Set<string>(STANDARD_FIELDS),
  // A step's epoch is a column too: an integer label, copied as it is.
  step: new Set<string>([...STEP_FIELDS, "epoch"]),
};

export function projection<C>(fields: readonly string[], wire: (c: C) => WireMetric | undefined): Projection<C>;
export function projection<C>(
  fields: readonly string[],
  wire: (c: C) => WireMetric | undefined,
  series: "step",
): Projection<C, StepColumns<C>, WireStep>;
/** `series`: which rows (epochs by default; a step row's `epoch` is read like a standard field, never wire-encoded). */
export function projection<C>(
  fields: readonly string[],
  wire: (c: C) => WireMetric | undefined,
  series: SeriesKey = "epoch",
  // biome-ignore lint/suspicious/noExplicitAny: the overloads above type each series' rows.
): Projection<C, any, any> {
  const columnsOf = STANDARD_COLUMNS[series];
  const cell = (f: string, c: unknown) => (f === "epoch" ? c : wire(c as C));
  const wanted = fields.filter((f, i) => f !== series && fields.indexOf(f) === i);
  const standard = wanted.filter((f) => columnsOf.has(f));
  const custom = wanted.some((f) => f !== "timestamp" && !columnsOf.has(f));
  const ts = wanted.includes("timestamp");
  const columns = [series, ...standard, ...(ts ? ["ts"] : []), ...(custom ? ["custom"] : [])];
  // One kind per field, in order: 0 a column, 1 a custom metric, 2 the timestamp.
  const kinds = wanted.map((f) => (columnsOf.has(f) ? 0 : f === "timestamp" ? 2 : 1));
  if (wanted.length === 1 && kinds[0] === 0) {
    // A chart's usual read: one standard metric.
    const f = wanted[0]!;
    return {
      columns,
      toWire: (r: Record<string, unknown>) => {
        const c = r[f] as C | null;
        return c === null ? { [series]: r[series] } : { [series]: r[series], [f]: cell(f, c) };
      },
    };
  }
  return {
    columns,
    toWire: (r: Record<string, unknown>) => {
      const out: Record<string, unknown> = { [series]: r[series] };
      const parsed =
        custom && r.custom !== null ? (JSON.parse(r.custom as string) as Record<string, unknown>) : undefined;
      for (let i = 0; i < wanted.length; i++) {
        const f = wanted[i]!;
        const kind = kinds[i];
        if (kind === 0) {
          const c = r[f] as C | null;
          if (c !== null) out[f] = cell(f, c);
        } else if (kind === 1) {
          const v = parsed?.[f];
          if (v !== undefined) out[f] = v;
        } else out.timestamp = new Date(typeof r.ts === "number" ? r.ts : Number(r.ts)).toISOString();
      }
      return out;
    },
  };
}

/** A stored step row; each store keeps a metric cell its own way (`C`). */
export interface StepColumns<C> {
  step: number;
  epoch: number | null;
  train_loss: C | null;
  val_loss: C | null;
  val_accuracy: C | null;
  learning_rate: C | null;
  grad_norm: C | null;
  duration: C | null;
  samples: C | null;
  tokens: C | null;
  ts: number | string;
  custom: string | null;
}

/** A stored step row in wire form (every column), as rowToWire gives an epoch's: `{ step, epoch?, …fields, timestamp }`. */
export function stepToWire<C>(wire: (c: C) => WireMetric | undefined): (r: StepColumns<C>) => WireStep {
  return (r) => {
    const out: Record<string, unknown> = { step: r.step };
    if (r.epoch !== null) out.epoch = r.epoch;
    for (const f of STEP_FIELDS) {
      const c = r[f];
      if (c !== null) out[f] = wire(c);
    }
    if (r.custom !== null) Object.assign(out, JSON.parse(r.custom));
    out.timestamp = new Date(typeof r.ts === "number" ? r.ts : Number(r.ts)).toISOString();
    return out as WireStep;
  };
}

/**
 * `make` memoised by field list: a store prepares a projected read once per list. Lists come from requests, so only
 * the most recent 256 are kept.
 */
export function byFieldList<P>(make: (fields: readonly string[]) => P): (fields: readonly string[]) => P {
  const made = new Map<string, P>();
  return (fields) => {
    const key = fields.join(",");
    let p = made.get(key);
    if (p === undefined) {
      p = make(fields);
      if (made.size >= 256) made.delete(made.keys().next().value!);
      made.set(key, p);
    }
    return p;
  };
}
