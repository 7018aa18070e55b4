// Which epoch's weights to go back to. The epoch's own validation value is the best evidence of how good its weights are
// (measured on the judgement corpus, smoothing over neighbours raised the held-out regret), except for a lucky epoch: an
// isolated dip far below both neighbours, beyond what the curve's noise explains. And when Trainwatch holds the files,
// the advice must name a checkpoint that exists.

import { isFiniteLoss } from "./history.ts";
import { noiseSigma } from "./noise.ts";
import type { EpochPoint, Monitor } from "./types.ts";

/** An epoch this many noise σ below both neighbours is a lucky dip, scored as its better neighbour (6: on the judgement
 * corpus smaller values rejected real dips, raising the regret; larger ones changed nothing). */
export const LUCKY_DIP_SIGMA = 6;

/**
 * Score of each stored epoch with a finite monitored value (lower is better; keys are epoch numbers): its own value, except
 * a lucky dip (below both stored neighbours by more than LUCKY_DIP_SIGMA (6) × the series' noise σ, noise.ts), which scores
 * as the lower of its neighbours. Non-finite neighbours never make an epoch lucky.
 */
export function checkpointScores(epochs: readonly EpochPoint[], monitor: Monitor): Map<number, number> {
  const scores = new Map<number, number>();
  const sigma = noiseSigma(epochs.map((p) => p[monitor])) ?? 0;
  const at = (i: number) => {
    const v = epochs[i]?.[monitor];
    return isFiniteLoss(v) ? v : null;
  };
  for (let i = 0; i < epochs.length; i++) {
    const v = at(i);
    if (v === null) continue;
    const before = at(i - 1);
    const after = at(i + 1);
    const lucky = before !== null && after !== null && Math.min(before, after) - v > LUCKY_DIP_SIGMA * sigma;
    scores.set(epochs[i]!.epoch, lucky ? Math.min(before, after) : v);
  }
  return scores;
}

/**
 * The epoch to restore: among `candidates` (epochs that have a checkpoint; null = any stored epoch, as for an external
 * trainer that may have kept any), the one with the lowest checkpointScores value; ties go to the lower own value, then the
 * earlier epoch. Candidates without a finite monitored value are never chosen. null when none qualifies. `epochs` ascending.
 */
export function chooseCheckpoint(
  epochs: readonly EpochPoint[],
  monitor: Monitor | null,
  candidates: readonly number[] | null,
): number | null {
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
    if (chosen === null || s < bestScore || (s === bestScore && v < bestOwn))
      (bestScore = s), (bestOwn = v), (chosen = epoch);
  }
  return chosen;
}
