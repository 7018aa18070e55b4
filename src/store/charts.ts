/**
 * Chart reads over any Store: the epochs of a range (`from_epoch` … `to_epoch`, after `since_epoch`), reduced to
 * `max_points` by the min/max-per-bucket reducer (src/trends/downsample.ts), and optionally smoothed over every stored
 * epoch rather than over the points that are returned. Three paths, one guarantee:
 *   - the range fits in max_points, or no max_points: every row of the range;
 *   - up to SCAN_ROWS rows (or smoothed, when the block path's windows would read more than WINDOW_SHARE of it): the
 *     range's rows, reduced in memory (the smoothed curves are reduced with them, so they keep their own extremes);
 *   - beyond that, when buckets span several blocks (≥ 32 rows per point): the store's block summaries (epochSpans)
 *     are reduced, and only the chosen rows are read, so a million-epoch run costs ~7,800 summaries and max_points
 *     rows instead of a million rows (bench/dashboard.ts). Smoothed, each chosen row's EMA comes from a window of the
 *     rows just before it (smoothAt: ~54 rows each at w = 0.6), unless the windows would read WINDOW_SHARE of the range.
 */
import { encodeMetric, MAX_EPOCH, type WireEpoch } from "../schemas/epoch.ts";
import { MAX_STEP, type WireStep } from "../schemas/step.ts";
import type { WireMetric } from "../trends/wire.ts";
import {
  keyOf,
  metricValue,
  pickEpochs,
  reduceRows,
  type ExtraColumns,
  type KeyedRow,
  type SeriesKey,
  type SpanSummary,
} from "../trends/downsample.ts";
import { emaSmooth, emaWarmup, isSmoothed, type EmaState } from "../trends/smoothing.ts";
import type { Fields, StoreReader } from "./store.ts";
import { BLOCK, blockOf, spanPoints } from "./blocks.ts";

/** Past this many rows in the range a reduction reads block summaries instead of rows: ~50 ms of rows on the 2-vCPU VM. */
export const SCAN_ROWS = 50_000;

export interface ChartQuery {
  /** Only epochs with epoch > since (a poller's cursor). */
  since?: number;
  /** Only epochs with from ≤ epoch ≤ to. */
  from?: number;
  to?: number;
  /** Reduce to at most this many epochs (at least 3). */
  maxPoints?: number;
  /** Kept whenever it lies in the range: the best epoch. */
  keepEpoch?: number | null;
  /** TensorBoard's EMA weight (0 … MAX_SMOOTHING, src/schemas/query.ts), computed over every stored epoch up to each returned one. */
  smoothing?: number;
  /** Only these metrics (and `epoch`): the reduction and the smoothing consider only them. All fields when absent. */
  fields?: readonly string[];
}

/** Smoothed curves aligned with the returned epochs, and where each EMA stands after the range's last epoch (to go on live). */
export interface Smoothed {
  weight: number;
  series: Record<string, (WireMetric | null)[]>;
  state: Record<string, EmaState>;
}

export interface ChartReply {
  epochs: WireEpoch[];
  smoothed?: Smoothed;
}

/** A chart read of any series: its rows (epochs or steps) and the smoothed curves. */
export interface SeriesReply<R> {
  rows: R[];
  smoothed?: Smoothed;
}

/**
 * A series a chart reads (an operation's epochs or its steps), as the store reads it: `read` the rows with
 * since < key ≤ until, `readAt` those of listed keys, `readBefore` the `limit` rows just before a key, `spans` the chart
 * summaries covering from … to (the store's blocks). All ascending, projected on `fields` when given.
 */
export interface ChartSeries<R extends KeyedRow> {
  key: SeriesKey;
  /** The largest key. */
  max: number;
  read(since: number, until: number, fields?: Fields): Promise<R[]>;
  readAt(keys: readonly number[], fields?: Fields): Promise<R[]>;
  readBefore(key: number, limit: number, fields?: Fields): Promise<R[]>;
  spans(from: number, to: number): Promise<SpanSummary[]>;
  /**
   * Retention removed the rows (Store.pruneSteps): every read is drawn from the blocks alone (blockPoints), whatever the
   * range; the store's blocks are whole and the rows are gone.
   */
  pruned?: boolean;
}

/** An operation's epochs as a chart series. */
export const epochSeries = (store: StoreReader, operationId: string): ChartSeries<WireEpoch> => ({
  key: "epoch",
  max: MAX_EPOCH,
  read: (since, until, fields) => store.readEpochs(operationId, since, until, fields),
  readAt: (keys, fields) => store.readEpochsAt(operationId, keys, fields),
  readBefore: (key, limit, fields) => store.readEpochsBefore(operationId, key, limit, fields),
  spans: (from, to) => store.epochSpans(operationId, from, to),
});

/** An operation's steps as a chart series; `pruned`: retention removed its rows (progress.steps_pruned_at). */
export const stepSeries = (store: StoreReader, operationId: string, pruned = false): ChartSeries<WireStep> => ({
  key: "step",
  max: MAX_STEP,
  pruned,
  read: (since, until, fields) => store.readSteps(operationId, since, until, fields),
  readAt: (keys, fields) => store.readStepsAt(operationId, keys, fields),
  readBefore: (key, limit, fields) => store.readStepsBefore(operationId, key, limit, fields),
  spans: (from, to) => store.stepSpans(operationId, from, to),
});

/**
 * Share of the range's rows the block path's smoothing windows may read (smoothAt); past it, reading the whole range is
 * about as cheap and exact in every point. On the 2-vCPU VM a windowed row costs ~1.35 µs (read by epoch number), a row
 * of the range ~1 µs (0.6 read, 0.4 smoothed and reduced).
 */
export const WINDOW_SHARE = 0.75;

/** Where the block path starts and how much of the range its smoothing may read (tests move both). */
export interface ChartTuning {
  scanRows?: number;
  windowShare?: number;
}

/** The epochs a chart of `query` shows, read from `store` (readSeries over the operation's epochs). */
export async function readChart(
  store: StoreReader,
  operationId: string,
  query: ChartQuery,
  tuning: ChartTuning = {},
): Promise<ChartReply> {
  const { rows, smoothed } = await readSeries(epochSeries(store, operationId), query, tuning);
  return { epochs: rows, ...(smoothed && { smoothed }) };
}

/**
 * The rows a chart of `query` shows of a series (epochs or steps; `keepEpoch`, `from`, `to` and `since` are its key
 * values), with this module's three paths and one guarantee.
 */
export async function readSeries<R extends KeyedRow>(
  series: ChartSeries<R>,
  query: ChartQuery,
  { scanRows = SCAN_ROWS, windowShare = WINDOW_SHARE }: ChartTuning = {},
): Promise<SeriesReply<R>> {
  const lower = Math.max(query.from ?? 0, (query.since ?? -1) + 1);
  const upper = query.to ?? series.max;
  if (lower > upper)
    return {
      rows: [],
      ...(query.smoothing === undefined ? {} : { smoothed: { weight: query.smoothing, series: {}, state: {} } }),
    };
  // A pruned series has no row to read: its blocks' points, reduced and smoothed as rows would be.
  if (series.pruned) {
    const points = await blockPoints(series, lower, upper);
    return chartOf(series.key, points, { ...query, from: undefined, to: undefined, since: undefined }, [], true);
  }
  const { maxPoints, smoothing } = query;
  // A range of at most max_points epoch numbers fits whatever it holds: its rows, without counting them first.
  if (maxPoints !== undefined && upper - lower + 1 > maxPoints) {
    // The spans count the range's rows too: count(*) would scan them (~0.5 s for a million on the 2-vCPU VM).
    const spans = await series.spans(lower, upper);
    const n = spans.reduce((sum, s) => sum + s.count, 0);
    // Blocks only when buckets would span several of them (≥ 32 rows per point): a finer reduction needs the rows.
    if (n > scanRows && n >= 32 * maxPoints) {
      const reduction = pickEpochs(onlyFields(spans, query.fields), maxPoints, query.keepEpoch ?? null);
      // Smoothed, the windows smoothAt would read first are counted before any row is: past the share, the range's
      // rows are read instead, without reading the chosen ones for nothing (100 overlaid runs: 300 rows each). Within
      // it, the chosen rows come with the windows' first read (smoothAt), not from a read of their own.
      const windows = smoothing === undefined ? 0 : windowRows(reduction.epochs, emaWarmup(smoothing), n * windowShare);
      if (windows <= n * windowShare) {
        if (smoothing === undefined) return { rows: await series.readAt(reduction.epochs, query.fields) };
        const reply = await smoothAt(series, reduction.epochs, smoothing, n * windowShare, query.fields);
        if (reply) return reply;
      }
    }
  }
  // The store projects the rows on fields: a chart of one metric reads its column alone.
  const rows = await series.read(lower - 1, upper, query.fields);
  const warmup = smoothing === undefined ? [] : await warmupRows(series, lower, rows, smoothing, query.fields);
  return chartOf(series.key, rows, { ...query, from: undefined, to: undefined, since: undefined }, warmup, false);
}

/**
 * The same reply from rows already in memory (ascending): `warmup` are the stored epochs just before the rows, for the
 * EMA to start from (empty when `rows` start at the history's beginning, as the comparison's full histories do).
 */
export function chartOfRows(
  all: readonly WireEpoch[],
  query: ChartQuery,
  warmup: readonly WireEpoch[] = [],
): ChartReply {
  const { rows, smoothed } = chartOf("epoch", all, query, warmup, true);
  return { epochs: rows, ...(smoothed && { smoothed }) };
}

/**
 * chartOfRows; `projecting`: the range's rows are narrowed to query.fields here (false: the store read them so). The
 * warm-up is never narrowed: the EMA reads only the metrics of the range's rows from it.
 */
function chartOf<R extends KeyedRow>(
  key: SeriesKey,
  all: readonly R[],
  query: ChartQuery,
  warmup: readonly R[],
  projecting: boolean,
): SeriesReply<R> {
  const lower = Math.max(query.from ?? 0, (query.since ?? -1) + 1);
  const upper = query.to ?? Number.POSITIVE_INFINITY;
  let start = 0;
  while (start < all.length && keyOf(all[start]!, key) < lower) start++;
  let end = all.length;
  while (end > start && keyOf(all[end - 1]!, key) > upper) end--;
  const rows = projecting ? project(key, all.slice(start, end), query.fields) : all.slice(start, end);
  // Rows of `all` before the range are the EMA's warm-up too.
  const before = start > 0 ? [...warmup, ...all.slice(0, start)] : warmup;
  const { smoothing, maxPoints } = query;
  if (smoothing === undefined) {
    return {
      rows: maxPoints === undefined ? rows : reduceRows(rows, maxPoints, query.keepEpoch ?? null, undefined, key).rows,
    };
  }
  const { columns, state } = smooth(key, before, rows, smoothing);
  const extra: ExtraColumns = {};
  for (const [name, col] of Object.entries(columns)) extra[`~${name}`] = col;
  const kept =
    maxPoints === undefined
      ? { rows, indices: rows.map((_, i) => i) }
      : reduceRows(rows, maxPoints, query.keepEpoch ?? null, extra, key);
  const series: Record<string, (WireMetric | null)[]> = {};
  for (const [name, col] of Object.entries(columns))
    series[name] = kept.indices.map((i) => encodeMetric(col[i]) ?? null);
  return { rows: kept.rows, smoothed: { weight: smoothing, series, state } };
}

/**
 * The points the blocks of a pruned series still hold in lower … upper: each metric's extremes per block at the key that
 * held them (spanPoints). The range is widened to whole blocks for the read (an edge would be summarised from rows that
 * are gone) and the points are clipped back to it, so a zoom inside one block shows the extremes that lie in it.
 */
async function blockPoints<R extends KeyedRow>(series: ChartSeries<R>, lower: number, upper: number): Promise<R[]> {
  const spans = await series.spans(blockOf(lower) * BLOCK, blockOf(upper) * BLOCK + BLOCK - 1);
  return spanPoints(spans, series.key).filter((p) => {
    const k = keyOf(p, series.key);
    return k >= lower && k <= upper;
  }) as R[];
}

/** Rows with their key and only `fields` (the rows themselves without). */
function project<R extends KeyedRow>(key: SeriesKey, rows: readonly R[], fields: readonly string[] | undefined): R[] {
  if (!fields) return rows as R[];
  return rows.map((r) => {
    const out: Record<string, unknown> = { [key]: keyOf(r, key) };
    for (const f of fields)
      if ((r as Record<string, unknown>)[f] !== undefined) out[f] = (r as Record<string, unknown>)[f];
    return out as R;
  });
}

/** Span summaries holding only the stats of `fields` (all of them without), so a reduction picks for those alone. */
function onlyFields(spans: readonly SpanSummary[], fields: readonly string[] | undefined): readonly SpanSummary[] {
  if (!fields) return spans;
  return spans.map((s) => ({
    ...s,
    fields: Object.fromEntries(fields.filter((f) => s.fields[f]).map((f) => [f, s.fields[f]!])),
  }));
}

/** The smoothable metrics of rows: every metric key the series smooths (isSmoothed; a step row's `epoch` labels it). */
function smoothable(key: SeriesKey, rows: readonly KeyedRow[]): string[] {
  const names = new Set<string>();
  for (const r of rows)
    for (const k in r) if (k !== key && k !== "epoch" && k !== "timestamp" && isSmoothed(key, k)) names.add(k);
  return [...names];
}

/** EMA of every smoothable metric over `rows`, started on `warmup`; returns the columns (aligned with rows) and the final states. */
function smooth(key: SeriesKey, warmup: readonly KeyedRow[], rows: readonly KeyedRow[], weight: number) {
  const columns: Record<string, (number | null)[]> = {};
  const state: Record<string, EmaState> = {};
  for (const name of smoothable(key, rows)) {
    const s: EmaState = { last: 0, n: 0 };
    emaSmooth(
      warmup.map((r) => metricValue((r as Record<string, unknown>)[name]) ?? null),
      weight,
      s,
    );
    columns[name] = emaSmooth(
      rows.map((r) => metricValue((r as Record<string, unknown>)[name]) ?? null),
      weight,
      s,
    );
    state[name] = s;
  }
  return { columns, state };
}

/**
 * How many epoch numbers smoothAt's first windows hold for `epochs` (ascending): the union of `span` epochs before each
 * and itself, from 0 — what its first read may cost at most. Stops counting past `limit`.
 */
function windowRows(epochs: readonly number[], span: number, limit: number): number {
  let total = 0;
  let end = -1;
  for (const e of epochs) {
    const start = Math.max(0, e - span, end + 1);
    if (e >= start) total += e - start + 1;
    if (e > end) end = e;
    if (total > limit) break;
  }
  return total;
}

/**
 * The rows of `chosen` (epochs, ascending, from a block reduction) and the EMA of `weight` at each, without reading the
 * rows between them: the rows come with the first windows' read, which holds them (each window ends at its epoch), as
 * readEpochsAt would give them. Each value is the EMA over a window of the stored epochs just before its epoch, holding
 * emaWarmup(weight) finite values of every metric (the window doubles, up to 64 × that, for a sparser metric, as
 * warmupRows searches), or reaching epoch 0 — within 10⁻¹² of the EMA over the whole history, as a zoomed range's
 * warm-up is. The smoothed curves are not reduced themselves here: they lie within the raw curves' extremes, which the
 * reduction kept. Null when the windows would read more than `maxRows` rows (a weight near 1, points close together):
 * then reading the range is cheaper.
 */
async function smoothAt<R extends KeyedRow>(
  series: ChartSeries<R>,
  chosen: readonly number[],
  weight: number,
  maxRows: number,
  fields: readonly string[] | undefined,
): Promise<SeriesReply<R> | null> {
  const key = series.key;
  const need = emaWarmup(weight);
  let rows: R[] = [];
  let names: string[] = [];
  let curves: Record<string, (WireMetric | null)[]> = {};
  const state: Record<string, EmaState> = {};
  // The epochs whose windows the next read covers; `pending`: their rows' indices, once the first read gave the rows.
  let ends: readonly number[] = chosen;
  let pending: number[] = [];
  let first = true;
  let span = need;
  let read = 0;
  while (ends.length > 0) {
    const wanted = new Set<number>();
    for (const end of ends) for (let e = Math.max(0, end - span); e <= end; e++) wanted.add(e);
    read += wanted.size;
    if (read > maxRows) return null;
    const sorted = [...wanted].sort((a, b) => a - b);
    const lo = sorted[0]!;
    const hi = sorted[sorted.length - 1]!;
    // Windows that cover most of their span (points closer than the warm-up) read as one range: the rows between
    // windows are never in one (each window is sliced by its epochs below), and a range costs a fraction of a list of
    // epoch numbers (100 overlaid runs: ~1.2 ms a run for 10,000 rows against ~3.3 ms for 7,000 listed).
    const got =
      2 * sorted.length >= hi - lo + 1 ? await series.read(lo - 1, hi, fields) : await series.readAt(sorted, fields);
    if (first) {
      first = false;
      const picked = new Set(chosen);
      rows = got.filter((r) => picked.has(keyOf(r, key)));
      names = smoothable(key, rows);
      curves = Object.fromEntries(names.map((n) => [n, rows.map(() => null)]));
      pending = rows.map((_, i) => i);
    }
    const last = span >= 64 * need;
    const retry: number[] = [];
    let w = 0;
    for (const i of pending) {
      const epoch = keyOf(rows[i]!, key);
      const start = Math.max(0, epoch - span);
      while (w < got.length && keyOf(got[w]!, key) < start) w++;
      let end = w;
      while (end < got.length && keyOf(got[end]!, key) <= epoch) end++;
      const window = got.slice(w, end);
      const done: [string, number | null, EmaState][] = [];
      let enough = true;
      for (const name of names) {
        const s: EmaState = { last: 0, n: 0 };
        const values = emaSmooth(
          window.map((r) => metricValue((r as Record<string, unknown>)[name]) ?? null),
          weight,
          s,
        );
        const own = values[values.length - 1] ?? null;
        // A finite value needs the warm-up behind it (or the history's start); null and non-finite ones stand alone,
        // except at the last row, whose EMA states a live client goes on from.
        const warm = (own !== null && Number.isFinite(own)) || i === rows.length - 1;
        if (warm && s.n < need && start > 0 && !last) enough = false;
        done.push([name, own, s]);
      }
      if (!enough) {
        retry.push(i);
        continue;
      }
      for (const [name, own, s] of done) {
        curves[name]![i] = encodeMetric(own) ?? null;
        if (i === rows.length - 1) state[name] = s;
      }
    }
    pending = retry;
    ends = retry.map((i) => keyOf(rows[i]!, key));
    span *= 2;
  }
  return { rows, smoothed: { weight, series: curves, state } };
}

/**
 * The stored epochs before `lower` an EMA of `weight` needs (emaWarmup values of each smoothable metric of `rows`, or
 * the history's start), read backwards in chunks. A metric sparser than one epoch in 64 stops the search at 64 × the
 * warm-up, and its EMA then starts there (within the tolerance only when that is far enough back).
 */
async function warmupRows<R extends KeyedRow>(
  series: ChartSeries<R>,
  lower: number,
  rows: readonly R[],
  weight: number,
  fields: readonly string[] | undefined,
): Promise<R[]> {
  const names = smoothable(series.key, rows);
  if (lower === 0 || names.length === 0) return [];
  const need = emaWarmup(weight);
  const limit = 64 * need;
  const chunk = Math.min(limit, Math.max(256, 2 * need));
  const chunks: R[][] = [];
  const finite = new Map(names.map((n) => [n, 0]));
  let before = lower;
  let read = 0;
  while (read < limit) {
    const got = await series.readBefore(before, chunk, fields);
    if (got.length === 0) break;
    chunks.unshift(got);
    read += got.length;
    for (const r of got) {
      for (const n of names) {
        const v = metricValue((r as Record<string, unknown>)[n]);
        if (v !== undefined && Number.isFinite(v)) finite.set(n, finite.get(n)! + 1);
      }
    }
    before = keyOf(got[0]!, series.key);
    if (got.length < chunk || [...finite.values()].every((c) => c >= need)) break;
  }
  return chunks.flat();
}
