// Thins long epoch series for charts and agent replies without hiding what people look for: every bucket's lowest and
// highest value of every metric, every NaN and ±Infinity, the ends and the best epoch. Even spacing (the previous
// reducer, and what MLflow, W&B and TensorBoard do with 320, 1,500 random or 1,000 reservoir points) drops a one-epoch
// spike or NaN whenever it falls between two samples; a min/max reducer cannot, because the spike is a bucket's max.
//
// The reducer works on span summaries (SpanSummary): per metric, the lowest and highest finite value with the epoch
// holding each, and the runs of non-finite values. Summaries merge, so the store keeps them per block of epochs and
// reduces a million-epoch run without reading its rows (src/store/sqlite.ts); in memory, rows are summarised in
// chunks first (downsample). Both paths share pickEpochs, so they give the same guarantee:
//
//   The reply is a subset of the rows, ascending, with at most max(maxPoints, 3) rows. It always holds the first and
//   the last row, and the best (keepEpoch) when it is one of them. The rows are cut into B buckets of consecutive rows
//   (B as large as the budget allows, reported by pickEpochs), and every bucket keeps its first and last row and, for
//   every metric, a row with the bucket's lowest finite value and one with its highest. Non-finite values: a run is a
//   maximal stretch of consecutive rows holding the metric (rows without it are skipped) with the same non-finite
//   value. When the first and last row of every run, with the ends and the best, take at most half of the budget, they
//   are all kept (mode "runs": a chart then breaks its line over exactly the epochs it would break it over at full
//   resolution), and the other half goes to buckets. Otherwise (more runs than that) every bucket keeps, per metric,
//   one row of each non-finite value it holds (mode "buckets": still no NaN or ±Infinity disappears from any bucket).
//   B ≥ 1 whenever maxPoints ≥ 10 + 10 × (number of metrics); a smaller budget may hold only the ends and the best.

import { decodeMetric, type WireMetric } from "./wire.ts";

export type NonFinite = "NaN" | "Infinity" | "-Infinity";

/** One metric over a span of rows. */
export interface FieldStats {
  /** First and last epoch of the span holding a value (finite or not) of this metric. */
  first: number;
  last: number;
  /** Lowest finite value and the first epoch holding it; null when the span has no finite value of the metric. */
  min: number | null;
  minAt: number | null;
  max: number | null;
  maxAt: number | null;
  /** Runs of one non-finite value over consecutive rows holding the metric: [value, first epoch, last epoch], in order. */
  runs: [NonFinite, number, number][];
}

/** A span of consecutive rows: its first and last epoch, its row count, and each metric's stats. Plain JSON (the store keeps it). */
export interface SpanSummary {
  from: number;
  to: number;
  count: number;
  fields: Record<string, FieldStats>;
}

/** What pickEpochs chose: the epochs to keep, ascending; the buckets (first and last epoch of each); how non-finite values were kept. */
export interface Reduction {
  epochs: number[];
  buckets: { from: number; to: number }[];
  nonFinite: "runs" | "buckets";
}

/**
 * What a series is keyed by: epoch rows by `epoch`, step rows by `step` (a step row's `epoch` labels it; not a metric).
 * The reducer's guarantee holds over either key; `from`, `to` and the epochs of a Reduction are then key values.
 */
export type SeriesKey = "epoch" | "step";

/** A row of a series: its key, and metrics (or labels) by name. */
export type KeyedRow = { epoch: number } | { step: number };

/** Row keys that are not metrics, per series. */
const NOT_FIELDS: Record<SeriesKey, ReadonlySet<string>> = {
  epoch: new Set(["epoch", "timestamp"]),
  step: new Set(["step", "epoch", "timestamp"]),
};

/** The key value of a row of series `key`. */
export const keyOf = (row: KeyedRow, key: SeriesKey): number => (row as Record<string, number>)[key]!;

/** A row's metric value as a number (NaN and ±Infinity included; the wire strings decoded), or undefined for none (null, absent, not a metric). */
export function metricValue(v: unknown): number | undefined {
  const d = typeof v === "string" ? decodeMetric(v as WireMetric) : v;
  return typeof d === "number" ? d : undefined;
}

const kindOf = (v: number): NonFinite => (Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");

/** Extra series aligned with the rows (index i belongs to rows[i]), reduced as if they were metrics of the rows: a smoothed curve. */
export type ExtraColumns = Record<string, readonly (number | null | undefined)[]>;

/** Adds value `v` of metric `key` at epoch `e` to the stats (rows come in epoch order). */
function addValue(fields: Record<string, FieldStats>, key: string, e: number, v: number): void {
  let f = fields[key];
  if (!f) fields[key] = f = { first: e, last: e, min: null, minAt: null, max: null, maxAt: null, runs: [] };
  if (Number.isFinite(v)) {
    if (f.min === null || v < f.min) (f.min = v), (f.minAt = e);
    if (f.max === null || v > f.max) (f.max = v), (f.maxAt = e);
  } else {
    const kind = kindOf(v);
    const run = f.runs[f.runs.length - 1];
    // The run goes on when the previous row holding this metric was the run's last and had the same value.
    if (run && run[0] === kind && run[2] === f.last) run[2] = e;
    else f.runs.push([kind, e, e]);
  }
  f.last = e;
}

/**
 * Summary of rows[start, end), ascending by their `key` (distinct). Every field but the key, `epoch` and `timestamp`
 * whose value is a number or a wire string is a metric; `extra` columns count as metrics too.
 */
export function summarizeRows<T extends KeyedRow>(
  rows: readonly T[],
  start = 0,
  end = rows.length,
  extra?: ExtraColumns,
  key: SeriesKey = "epoch",
): SpanSummary {
  const fields: Record<string, FieldStats> = {};
  const notFields = NOT_FIELDS[key];
  // Indexed, not destructured per row: the extra columns' loop was half a smoothed reduction's cost.
  const names = extra ? Object.keys(extra) : [];
  const cols = names.map((k) => extra![k]!);
  for (let i = start; i < end; i++) {
    const row = rows[i]! as Record<string, unknown>;
    const e = row[key] as number;
    for (const name in row) {
      if (notFields.has(name)) continue;
      const v = metricValue(row[name]);
      if (v !== undefined) addValue(fields, name, e, v);
    }
    for (let c = 0; c < cols.length; c++) {
      const v = cols[c]![i];
      if (typeof v === "number") addValue(fields, names[c]!, e, v);
    }
  }
  const at = (i: number) => (rows[i] === undefined ? 0 : keyOf(rows[i]!, key));
  return { from: at(start), to: at(end - 1), count: Math.max(0, end - start), fields };
}

/** Two adjacent spans (`a` before `b`) as one; runs that meet at the seam join. Inputs are not changed. */
export function mergeSummaries(a: SpanSummary, b: SpanSummary): SpanSummary {
  if (a.count === 0) return b;
  if (b.count === 0) return a;
  const fields: Record<string, FieldStats> = {};
  for (const [k, f] of Object.entries(a.fields))
    fields[k] = { ...f, runs: f.runs.map((r) => [...r] as [NonFinite, number, number]) };
  for (const [k, g] of Object.entries(b.fields)) {
    const f = fields[k];
    if (!f) {
      fields[k] = { ...g, runs: g.runs.map((r) => [...r] as [NonFinite, number, number]) };
      continue;
    }
    if (g.min !== null && (f.min === null || g.min < f.min)) (f.min = g.min), (f.minAt = g.minAt);
    if (g.max !== null && (f.max === null || g.max > f.max)) (f.max = g.max), (f.maxAt = g.maxAt);
    const runs = g.runs.map((r) => [...r] as [NonFinite, number, number]);
    const tail = f.runs[f.runs.length - 1];
    const head = runs[0];
    // No row holding the metric lies between f.last and g.first, so runs ending and starting there are one run.
    if (tail && head && tail[0] === head[0] && tail[2] === f.last && head[1] === g.first) {
      tail[2] = head[2];
      runs.shift();
    }
    f.runs.push(...runs);
    f.last = g.last;
  }
  return { from: a.from, to: b.to, count: a.count + b.count, fields };
}

/** Every metric name in the spans. */
function fieldNames(spans: readonly SpanSummary[]): string[] {
  const names = new Set<string>();
  for (const s of spans) for (const k in s.fields) names.add(k);
  return [...names];
}

/** First and last epoch of every non-finite run over all spans, runs joined across span seams. */
function runEnds(spans: readonly SpanSummary[], names: readonly string[]): Set<number> {
  const out = new Set<number>();
  for (const name of names) {
    let open: [NonFinite, number, number] | null = null;
    let lastSeen: number | null = null;
    for (const s of spans) {
      const f = s.fields[name];
      if (!f) continue;
      for (const r of f.runs) {
        if (open && open[0] === r[0] && open[2] === lastSeen && r[1] === f.first) {
          open[2] = r[2];
        } else {
          if (open) out.add(open[1]).add(open[2]);
          open = [...r];
        }
        lastSeen = r[2];
      }
      // A finite value after the open run's end closes it.
      if (open && f.last !== open[2]) {
        out.add(open[1]).add(open[2]);
        open = null;
      }
      lastSeen = f.last;
    }
    if (open) out.add(open[1]).add(open[2]);
  }
  return out;
}

/** The epochs one bucket (spans[start, end)) keeps: first, last, each metric's min and max row, and in "buckets" mode one row per non-finite value. */
function bucketPicks(
  spans: readonly SpanSummary[],
  start: number,
  end: number,
  names: readonly string[],
  perValue: boolean,
  into: Set<number>,
): void {
  into.add(spans[start]!.from).add(spans[end - 1]!.to);
  for (const name of names) {
    let min: number | null = null;
    let minAt: number | null = null;
    let max: number | null = null;
    let maxAt: number | null = null;
    // Only "buckets" mode needs it: otherwise a set per metric, bucket and try of the search, allocated for nothing.
    const seen = perValue ? new Set<NonFinite>() : null;
    for (let i = start; i < end; i++) {
      const f = spans[i]!.fields[name];
      if (!f) continue;
      if (f.min !== null && (min === null || f.min < min)) (min = f.min), (minAt = f.minAt);
      if (f.max !== null && (max === null || f.max > max)) (max = f.max), (maxAt = f.maxAt);
      if (seen) {
        for (const r of f.runs) {
          if (!seen.has(r[0])) seen.add(r[0]), into.add(r[1]);
        }
      }
    }
    if (minAt !== null) into.add(minAt);
    if (maxAt !== null) into.add(maxAt);
  }
}

/**
 * The epochs to keep from `spans` (adjacent, ascending) so that at most max(maxPoints, 3) remain, with the guarantee
 * in this module's header; buckets are unions of whole spans. `keepEpoch` (the best) is kept when it lies in the spans'
 * range. For a chart, callers pass spans of one row or a few rows; the store passes its blocks.
 */
export function pickEpochs(
  spans: readonly SpanSummary[],
  maxPoints: number,
  keepEpoch: number | null = null,
): Reduction {
  const live = spans.filter((s) => s.count > 0);
  if (live.length === 0) return { epochs: [], buckets: [], nonFinite: "runs" };
  const budget = Math.max(Math.floor(maxPoints), 3);
  const first = live[0]!.from;
  const last = live[live.length - 1]!.to;
  const fixed = new Set<number>([first, last]);
  if (keepEpoch !== null && keepEpoch >= first && keepEpoch <= last) fixed.add(keepEpoch);
  const names = fieldNames(live);
  const ends = runEnds(live, names);
  const withRuns = new Set([...fixed, ...ends]);
  // Half the budget at most: the runs' ends must not crowd out the buckets that keep the finite extremes.
  const runsFit = withRuns.size <= budget / 2;
  const base = runsFit ? withRuns : fixed;
  // Worst case per bucket: first, last, min and max of each metric (and three non-finite values of each in "buckets" mode).
  const perBucket = 2 + (runsFit ? 2 : 5) * names.length;

  const evaluate = (b: number): Set<number> => {
    const out = new Set(base);
    for (let i = 0; i < b; i++)
      bucketPicks(
        live,
        Math.floor((i * live.length) / b),
        Math.floor(((i + 1) * live.length) / b),
        names,
        !runsFit,
        out,
      );
    return out;
  };
  // The floor always fits; picks shared between metrics usually leave room, so look for more buckets (the count is
  // not strictly monotonic in b, so this finds a large fitting b, not always the largest).
  let lo = Math.min(live.length, Math.floor((budget - base.size) / perBucket));
  let chosen = evaluate(lo);
  let hi = live.length;
  if (lo < hi) {
    const top = evaluate(hi);
    if (top.size <= budget) (lo = hi), (chosen = top);
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    const got = evaluate(mid);
    if (got.size <= budget) (lo = mid), (chosen = got);
    else hi = mid;
  }
  const buckets: { from: number; to: number }[] = [];
  for (let i = 0; i < lo; i++) {
    buckets.push({
      from: live[Math.floor((i * live.length) / lo)]!.from,
      to: live[Math.floor(((i + 1) * live.length) / lo) - 1]!.to,
    });
  }
  return { epochs: [...chosen].sort((a, b) => a - b), buckets, nonFinite: runsFit ? "runs" : "buckets" };
}

/**
 * Spans the in-memory reducer cuts rows into: single rows up to `4 × budget` rows, chunks of a few rows beyond, so the
 * bucket search stays cheap and buckets can still be as narrow as the budget allows.
 */
export function rowSpans<T extends KeyedRow>(
  rows: readonly T[],
  maxPoints: number,
  extra?: ExtraColumns,
  key: SeriesKey = "epoch",
): SpanSummary[] {
  const units = 4 * Math.max(Math.floor(maxPoints), 3);
  const size = Math.max(1, Math.ceil(rows.length / units));
  const spans: SpanSummary[] = [];
  for (let i = 0; i < rows.length; i += size)
    spans.push(summarizeRows(rows, i, Math.min(rows.length, i + size), extra, key));
  return spans;
}

/**
 * The reduction of in-memory rows (ascending, distinct keys): the rows kept, their indices in `rows`, and the
 * reduction (null when the rows fit and all come back). `extra` columns are reduced with the rows' own metrics.
 */
export function reduceRows<T extends KeyedRow>(
  rows: readonly T[],
  maxPoints: number,
  keepEpoch: number | null = null,
  extra?: ExtraColumns,
  key: SeriesKey = "epoch",
): { rows: T[]; indices: number[]; reduction: Reduction | null } {
  if (rows.length <= Math.max(Math.floor(maxPoints), 3))
    return { rows: rows as T[], indices: rows.map((_, i) => i), reduction: null };
  const reduction = pickEpochs(rowSpans(rows, maxPoints, extra, key), maxPoints, keepEpoch);
  const keep = new Set(reduction.epochs);
  const indices: number[] = [];
  for (let i = 0; i < rows.length; i++) if (keep.has(keyOf(rows[i]!, key))) indices.push(i);
  return { rows: indices.map((i) => rows[i]!), indices, reduction };
}

/**
 * Input ascending by epoch. If length ≤ max(maxPoints, 3) it is returned as is. Otherwise the min/max-per-bucket
 * reduction of this module's header: at most max(maxPoints, 3) rows, the first, last and keepEpoch (the best) kept,
 * every bucket's extremes of every metric kept, and no NaN or ±Infinity hidden.
 */
export function downsample<T extends { epoch: number }>(
  epochs: T[],
  maxPoints: number,
  keepEpoch: number | null = null,
): T[] {
  return reduceRows(epochs, maxPoints, keepEpoch).rows;
}
