// Which epoch's weights to go back to. The epoch's own validation value is the best evidence of how good its weights are
// (measured on the judgement corpus, smoothing over neighbours raised the held-out regret), except for a lucky epoch: an
// isolated dip far below both neighbours, beyond what the curve's noise explains. And when Trainwatch holds the files,
// the advice must name a checkpoint that exists.

import { isFiniteLoss, RECENT_EPOCHS } from "./history.ts";
import { noiseSigma } from "./noise.ts";
import type { EpochPoint, Monitor } from "./types.ts";

/** An epoch this many noise σ below both neighbours is a lucky dip, scored as its better neighbour (6: on the judgement
 * corpus smaller values rejected real dips, raising the regret; larger ones changed nothing). */
export const LUCKY_DIP_SIGMA = 6;

/**
 * One stored epoch as the checkpoint choice sees it: its finite monitored value, and the finite monitored values of the
 * stored epochs just before and after it (null when there is none, or it is not finite).
 */
export interface CheckpointPoint {
  epoch: number;
  value: number;
  prev: number | null;
  next: number | null;
}

/** The noise σ a lucky dip is measured against: noise.ts noiseSigma over the last RECENT_EPOCHS (64) stored epochs' `monitor`; 0 when too few. */
export function checkpointNoise(recent: readonly EpochPoint[], monitor: Monitor): number {
  return noiseSigma(recent.slice(-RECENT_EPOCHS).map((p) => p[monitor])) ?? 0;
}

/**
 * A point's score (lower is better): its own value, except a lucky dip (below both neighbours by more than
 * LUCKY_DIP_SIGMA (6) × `sigma`), which scores as the lower of its neighbours. A missing or non-finite neighbour never
 * makes a point lucky.
 */
export function checkpointScore(p: CheckpointPoint, sigma: number): number {
  const lucky = p.prev !== null && p.next !== null && Math.min(p.prev, p.next) - p.value > LUCKY_DIP_SIGMA * sigma;
  return lucky ? Math.min(p.prev!, p.next!) : p.value;
}

/** The stored epochs with a finite monitored value as CheckpointPoints; `epochs` ascending. */
export function checkpointPoints(epochs: readonly EpochPoint[], monitor: Monitor): CheckpointPoint[] {
  const at = (i: number) => {
    const v = epochs[i]?.[monitor];
    return isFiniteLoss(v) ? v : null;
  };
  const points: CheckpointPoint[] = [];
  for (let i = 0; i < epochs.length; i++) {
    const v = at(i);
    if (v !== null) points.push({ epoch: epochs[i]!.epoch, value: v, prev: at(i - 1), next: at(i + 1) });
  }
  return points;
}

/**
 * Score of each stored epoch with a finite monitored value (keys are epoch numbers): checkpointScore with the noise of
 * the last RECENT_EPOCHS (64) stored epochs (checkpointNoise). `epochs` ascending.
 */
export function checkpointScores(epochs: readonly EpochPoint[], monitor: Monitor): Map<number, number> {
  const sigma = checkpointNoise(epochs, monitor);
  return new Map(checkpointPoints(epochs, monitor).map((p) => [p.epoch, checkpointScore(p, sigma)]));
}

/**
 * The point to restore among `points` (the candidates: each an epoch that may be chosen), the one with the lowest
 * checkpointScore; ties go to the lower own value, then the earlier epoch. null when `points` is empty.
 */
export function chooseAmong(points: readonly CheckpointPoint[], sigma: number): CheckpointPoint | null {
  let chosen: CheckpointPoint | null = null;
  let bestScore = Infinity;
  for (const p of [...points].sort((a, b) => a.epoch - b.epoch)) {
    const s = checkpointScore(p, sigma);
    if (chosen === null || s < bestScore || (s === bestScore && p.value < chosen.value)) (bestScore = s), (chosen = p);
  }
  return chosen;
}

/**
 * The epoch to restore: among `candidates` (epochs that have a checkpoint; null = any stored epoch, as for an external
 * trainer that may have kept any), chooseAmong with the noise of the last RECENT_EPOCHS (64) stored epochs. Candidates
 * without a finite monitored value are never chosen. null when none qualifies. `epochs` ascending.
 */
export function chooseCheckpoint(
  epochs: readonly EpochPoint[],
  monitor: Monitor | null,
  candidates: readonly number[] | null,
): number | null {
  return chooseCheckpointPoint(epochs, monitor, candidates)?.epoch ?? null;
}

/** chooseCheckpoint's chosen point (its epoch and monitored value), or null. */
export function chooseCheckpointPoint(
  epochs: readonly EpochPoint[],
  monitor: Monitor | null,
  candidates: readonly number[] | null,
): CheckpointPoint | null {
  if (monitor === null) return null;
  const points = checkpointPoints(epochs, monitor);
  const wanted = candidates === null ? null : new Set(candidates);
  return chooseAmong(
    wanted === null ? points : points.filter((p) => wanted.has(p.epoch)),
    checkpointNoise(epochs, monitor),
  );
}
