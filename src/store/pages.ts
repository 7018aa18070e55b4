/**
 * A run's stored epochs read page by page, for the full-history downloads (metrics.csv, metrics.json, tfevents): with
 * src/http/download.ts's stream pulling one page per chunk, a download holds about one page in memory whatever the
 * run's length, and a slow reader holds the reads back instead of queueing the file.
 */
import { STANDARD_FIELDS, type WireEpoch } from "../schemas/epoch.ts";
import type { WireStep } from "../schemas/step.ts";
import { keyOf, type KeyedRow, type SeriesKey } from "../trends/downsample.ts";
import type { SystemSample } from "../schemas/system.ts";
import type { StoreReader } from "./store.ts";

/** Cells (epochs × fields) a page of a download reads at most; ~200,000 cells of a dense run are ~10 MB of objects. */
const PAGE_CELLS = 200_000;
/** Epochs a page reads at most (a run of the standard fields alone: 5,000 epochs, ~40,000 cells). */
export const MAX_PAGE_EPOCHS = 5_000;

/**
 * Epochs per page of a download of a run with `customNames` custom metric names: fewer for a wide run, so a page
 * stays near PAGE_CELLS cells (at the 256-name limit, 757 epochs), never under 100 nor over MAX_PAGE_EPOCHS.
 */
export const pageEpochs = (customNames: number): number =>
  Math.max(100, Math.min(MAX_PAGE_EPOCHS, Math.floor(PAGE_CELLS / (2 + STANDARD_FIELDS.length + customNames))));

/** Every stored epoch of an operation, ascending, in pages of `size` (Store.readEpochPage); no page is empty. */
export function epochPages(store: StoreReader, operationId: string, size: number): AsyncGenerator<WireEpoch[]> {
  return pages((after) => store.readEpochPage(operationId, after, size), "epoch", size);
}

/** Every stored step of an operation, ascending, in pages of `size` (Store.readStepPage); no page is empty. */
export function stepPages(store: StoreReader, operationId: string, size: number): AsyncGenerator<WireStep[]> {
  return pages((after) => store.readStepPage(operationId, after, size), "step", size);
}

/** Samples a page of a system download reads (a sample of 8 GPUs is ~1 KB of objects). */
export const SYSTEM_PAGE = 1_000;

/** Every stored system sample of an operation, ascending, in pages of SYSTEM_PAGE (Store.readSystemSamples). */
export async function* systemPages(store: StoreReader, operationId: string): AsyncGenerator<SystemSample[]> {
  let since = -1;
  for (;;) {
    const page = await store.readSystemSamples(operationId, { since, limit: SYSTEM_PAGE });
    if (page.length > 0) yield page;
    if (page.length < SYSTEM_PAGE) return;
    since = Date.parse(page[page.length - 1]!.timestamp);
  }
}

async function* pages<R extends KeyedRow>(
  read: (after: number) => Promise<R[]>,
  key: SeriesKey,
  size: number,
): AsyncGenerator<R[]> {
  let after = -1;
  for (;;) {
    const page = await read(after);
    if (page.length > 0) yield page;
    if (page.length < size) return;
    after = keyOf(page[page.length - 1]!, key);
  }
}
