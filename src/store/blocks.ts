/**
 * Chart blocks, for both stores: a mergeable summary (src/trends/downsample.ts SpanSummary) per BLOCK consecutive
 * epoch numbers, kept by every write, so a chart of a long run reads about count / BLOCK summaries instead of every
 * row (src/store/charts.ts). Pure: what a write does to the blocks it touches, and which blocks and edge ranges cover
 * a range of epochs; each store reads and writes its own rows around these.
 */
import { encodeEpoch, type EpochRecord } from "../schemas/epoch.ts";
import { mergeSummaries, summarizeRows, type SpanSummary } from "../trends/downsample.ts";

/**
 * Epochs per chart block: block b holds epochs b·BLOCK … b·BLOCK + BLOCK − 1. 128 keeps a million-epoch run at ~7,800
 * summaries (read and parsed in ~20 ms) and a block recomputed after a re-post at 128 rows.
 */
export const BLOCK = 128;

export const blockOf = (epoch: number) => Math.floor(epoch / BLOCK);

/** A batch's epochs by block, ascending within each, a block's last copy of an epoch kept (as the rows keep it). */
export function byBlock(epochs: readonly EpochRecord[]): Map<number, EpochRecord[]> {
  const groups = new Map<number, Map<number, EpochRecord>>();
  for (const e of epochs) {
    const b = blockOf(e.epoch);
    const m = groups.get(b) ?? new Map<number, EpochRecord>();
    groups.set(b, m);
    m.set(e.epoch, e);
  }
  const out = new Map<number, EpochRecord[]>();
  for (const [b, m] of groups)
    out.set(
      b,
      [...m.values()].sort((x, y) => x.epoch - y.epoch),
    );
  return out;
}

/**
 * A block's summary after a write added `rows` (ascending) to it, when the stored one can take them: epochs past its
 * last one merge in (appends, the usual case, cost O(batch)). Null when a row replaces or precedes a stored epoch:
 * then the block is summarised again from its rows (at most BLOCK).
 */
export function appendToBlock(prev: SpanSummary | null, rows: readonly EpochRecord[]): SpanSummary | null {
  if (prev !== null && rows[0]!.epoch <= prev.to) return null;
  const added = summarizeRows(rows.map(encodeEpoch));
  return prev === null ? added : mergeSummaries(prev, added);
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
