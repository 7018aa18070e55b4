// Which epoch's weights to go back to. One lucky epoch on a noisy validation curve should not beat a region that is
// consistently better, and the advice must name a checkpoint that exists when Trainwatch holds the files.

import { isFiniteLoss } from "./history.ts";
import type { EpochPoint, Monitor } from "./types.ts";

/**
 * Robust score of each stored epoch with a finite monitored value: the median of its value and its stored neighbours' (one
 * each side; non-finite neighbours count as +Infinity, an edge epoch uses the two it has). An isolated lucky dip scores as
 * its neighbours do, while along a monotone stretch the median is the epoch's own value, so a smooth minimum keeps its place.
 * Lower is better. Keys are epoch numbers.
 */
export function checkpointScores(epochs: readonly EpochPoint[], monitor: Monitor): Map<number, number> {
  const scores = new Map<number, number>();
  const at = (i: number) => {
    const v = epochs[i]?.[monitor];
    return isFiniteLoss(v) ? v : Infinity;
  };
  for (let i = 0; i < epochs.length; i++) {
    const v = epochs[i]![monitor];
    if (!isFiniteLoss(v)) continue;
    const window = [at(i - 1), v, at(i + 1)].slice(i === 0 ? 1 : 0, i === epochs.length - 1 ? 2 : 3).sort((a, b) => a - b);
    // Two values (an edge): the larger, so an edge dip needs its one neighbour's support too.
    scores.set(epochs[i]!.epoch, window.length === 3 ? window[1]! : window[window.length - 1]!);
  }
  return scores;
}

/**
 * The epoch to restore: among `candidates` (epochs that have a checkpoint; null = any stored epoch, as for an external
 * trainer that may have kept any), the one with the lowest checkpointScores value; ties go to the lower own value, then the
 * earlier epoch. Candidates without a finite monitored value are never chosen. null when none qualifies. `epochs` ascending.
 */
export function chooseCheckpoint(epochs: readonly EpochPoint[], monitor: Monitor | null, candidates: readonly number[] | null): number | null {
  if (monitor === null) return null;
  const scores = checkpointScores(epochs, monitor);
  const own = new Map(epochs.map((p) => [p.epoch, p[monitor]]));
  let chosen: number | null = null;
  let bestScore = Infinity;
  let bestOwn = Infinity;
  const pool = candidates === null ? [...scores.keys()] : [...new Set(candidates)].sort((a, b) => a - b);
  for (const epoch of pool) {
    const s = scores.get(epoch);
    if (s === undefined) continue;
    const v = own.get(epoch) as number;
    // A candidate whose neighbours are not finite scores Infinity; it still beats nothing.
    if (chosen === null || s < bestScore || (s === bestScore && v < bestOwn)) (bestScore = s), (bestOwn = v), (chosen = epoch);
  }
  return chosen;
}
