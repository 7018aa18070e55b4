/**
 * Chart blocks, for both stores and both series (epochs, steps): a mergeable summary (src/trends/downsample.ts
 * SpanSummary) per BLOCK consecutive epoch (or step) numbers, kept by every write, so a chart of a long run reads about count / BLOCK summaries instead of every
 * row (src/store/charts.ts). Pure: what a write does to the blocks it touches, and which blocks and edge ranges cover
 * a range of epochs; each store reads and writes its own rows around these.
 */
import { encodeEpoch, type EpochRecord } from "../schemas/epoch.ts";
import { encodeStep, type StepRecord } from "../schemas/step.ts";
import {
  keyOf,
  mergeSummaries,
  summarizeRows,
  type KeyedRow,
  type SeriesKey,
  type SpanSummary,
} from "../trends/downsample.ts";

/** In-process rows of either series. */
type Row = EpochRecord | StepRecord;
const toWire = (r: Row, key: SeriesKey): KeyedRow =>
  key === "step" ? encodeStep(r as StepRecord) : encodeEpoch(r as EpochRecord);

/**
 * Epochs per chart block: block b holds epochs b·BLOCK … b·BLOCK + BLOCK − 1. 128 keeps a million-epoch run at ~7,800
 * summaries (read and parsed in ~20 ms) and a block recomputed after a re-post at 128 rows.
 */
export const BLOCK = 128;

export const blockOf = (epoch: number) => Math.floor(epoch / BLOCK);

/** The distinct chart blocks `rows` touch (what a write locks before it builds its batch). */
export function blocksOf(rows: readonly Row[], key: SeriesKey = "epoch"): number[] {
  const out = new Set<number>();
  for (const r of rows) out.add(blockOf(keyOf(r as KeyedRow, key)));
  return [...out];
}

/**
 * A batch's rows by block, ascending within each, a block's last copy of a row kept (as the rows keep it). `key`: the
 * series (epochs by default).
 */
export function byBlock<T extends Row>(rows: readonly T[], key: SeriesKey = "epoch"): Map<number, T[]> {
  const groups = new Map<number, Map<number, T>>();
  for (const r of rows) {
    const k = keyOf(r as KeyedRow, key);
    const b = blockOf(k);
    const m = groups.get(b) ?? new Map<number, T>();
    groups.set(b, m);
    m.set(k, r);
  }
  const out = new Map<number, T[]>();
  for (const [b, m] of groups)
    out.set(
      b,
      [...m.values()].sort((x, y) => keyOf(x as KeyedRow, key) - keyOf(y as KeyedRow, key)),
    );
  return out;
}

/**
 * A block's summary after a write added `rows` (ascending) to it, when the stored one can take them: epochs past its
 * last one merge in (appends, the usual case, cost O(batch)). Null when a row replaces or precedes a stored epoch:
 * then the block is summarised again from its rows (at most BLOCK).
 */
export function appendToBlock(
  prev: SpanSummary | null,
  rows: readonly Row[],
  key: SeriesKey = "epoch",
): SpanSummary | null {
  if (prev !== null && keyOf(rows[0]! as KeyedRow, key) <= prev.to) return null;
  const added = summarizeRows(
    rows.map((r) => toWire(r, key)),
    0,
    rows.length,
    undefined,
    key,
  );
  return prev === null ? added : mergeSummaries(prev, added);
}

/**
 * The summary of block `b` from `rows` (ascending, each block's rows contiguous: a write's read-back of the blocks it
 * summarises again).
 */
export function summarizeBlock(rows: readonly KeyedRow[], b: number, key: SeriesKey = "epoch"): SpanSummary {
  const lo = rows.findIndex((r) => blockOf(keyOf(r, key)) === b);
  let hi = lo;
  while (hi < rows.length && blockOf(keyOf(rows[hi]!, key)) === b) hi++;
  return summarizeRows(rows, lo, hi, undefined, key);
}

/** The whole blocks inside fromEpoch … toEpoch, and the partial ranges at either edge (summarised from their rows). */
export function blockCover(
  fromEpoch: number,
  toEpoch: number,
): { blocks: [number, number] | null; edges: [number, number][] } {
  const firstWhole = Math.ceil(fromEpoch / BLOCK);
  const lastWhole = Math.floor((toEpoch + 1) / BLOCK) - 1;
  if (lastWhole < firstWhole) return { blocks: null, edges: [[fromEpoch, toEpoch]] };
  const edges: [number, number][] = [];
  if (fromEpoch < firstWhole * BLOCK) edges.push([fromEpoch, firstWhole * BLOCK - 1]);
  if (toEpoch > (lastWhole + 1) * BLOCK - 1) edges.push([(lastWhole + 1) * BLOCK, toEpoch]);
  return { blocks: [firstWhole, lastWhole], edges };
}

/**
 * The spans covering a range, in order, from blockCover's parts as a store read them: the whole blocks' stored summaries
 * (`whole`, ascending; none when `blocks` is null) and each edge's summary (`edgeSpans`, one per edge). Empty spans are
 * left out. Both stores and both series assemble their spans here.
 */
export function coverSpans(
  blocks: [number, number] | null,
  edges: readonly [number, number][],
  whole: readonly string[],
  edgeSpans: readonly SpanSummary[],
): SpanSummary[] {
  const spans = whole.map((summary) => JSON.parse(summary) as SpanSummary);
  // The edges are the range's first and last parts: before and after the whole blocks.
  for (let i = 0; i < edges.length; i++) {
    if (blocks !== null && edges[i]![0] < blocks[0] * BLOCK) spans.unshift(edgeSpans[i]!);
    else spans.push(edgeSpans[i]!);
  }
  return spans.filter((s) => s.count > 0);
}

/**
 * What block summaries still say about rows that are gone (a series retention pruned): a point at each key that held a
 * metric's lowest or highest finite value of a span (that value), and at the first and last key of each run of one
 * non-finite value (it, spelt as on the wire), merged by key, ascending. No timestamp: the summaries keep none.
 */
export function spanPoints(spans: readonly SpanSummary[], key: SeriesKey): KeyedRow[] {
  const points = new Map<number, Record<string, number | string>>();
  const put = (k: number, field: string, value: number | string) => {
    let p = points.get(k);
    if (!p) points.set(k, (p = { [key]: k }));
    p[field] = value;
  };
  for (const span of spans)
    for (const [field, st] of Object.entries(span.fields)) {
      if (st.minAt !== null && st.min !== null) put(st.minAt, field, st.min);
      if (st.maxAt !== null && st.max !== null) put(st.maxAt, field, st.max);
      for (const [value, first, last] of st.runs) {
        put(first, field, value);
        put(last, field, value);
      }
    }
  return [...points.keys()].sort((a, b) => a - b).map((k) => points.get(k) as KeyedRow);
}
