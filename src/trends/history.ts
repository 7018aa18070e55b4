// Turns raw epoch lists (any order, possibly re-posted epochs) into the ascending, de-duplicated form every rule assumes.

/** True for a real, finite number; rejects null, undefined, NaN and ±Infinity. */
export function isFiniteLoss(v: number | null | undefined): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** Sorts by epoch number ascending; when an epoch appears more than once the last occurrence wins (a re-post replaces it). */
export function normalizeHistory<T extends { epoch: number }>(history: readonly T[]): T[] {
  const byEpoch = new Map<number, T>();
  for (const point of history) byEpoch.set(point.epoch, point);
  return [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
}

/** The (epoch, value) pairs of `field` where it is finite, in the given order: what every line fit runs on. */
export function finiteSeries<T extends { epoch: number }>(
  epochs: readonly T[],
  field: keyof T,
): { xs: number[]; ys: number[] } {
  const xs: number[] = [];
  const ys: number[] = [];
  for (const p of epochs) {
    const v = p[field] as number | null | undefined;
    if (isFiniteLoss(v)) xs.push(p.epoch), ys.push(v);
  }
  return { xs, ys };
}

/**
 * The most recent stored epochs a judgement reads besides the state kept on write (64): the noise a lucky checkpoint is
 * measured against (checkpoint.ts) and the level since the best (recommend.ts levelChange) look no further back, so a
 * read costs the same at any length. Every judgement corpus run is shorter, so on them this is the whole history.
 */
export const RECENT_EPOCHS = 64;
