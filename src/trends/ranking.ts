// Which of several judged runs is best, and why in one sentence: the rule behind GET /operations/compare and compare_runs.

import type { Monitor } from "./types.ts";

/** What ranking needs of each run's judgement. */
export interface RankedRun {
  operation_id: string;
  monitor: Monitor | null;
  best_epoch: number | null;
  best_value: number | null;
  epochs_to_best: number | null;
}

export interface Ranking {
  /** null when no run has a finite loss. */
  best_run: string | null;
  basis: string;
}

/**
 * Ranks runs: runs monitoring val_loss are compared among themselves when any has one (a training loss is not comparable to a
 * validation loss); the lowest best value wins, and a tie goes to the run with fewer epochs to best.
 */
export function rankRuns(runs: readonly RankedRun[]): Ranking {
  const scored = runs.filter((a) => a.best_value !== null && a.epochs_to_best !== null && a.monitor !== null);
  const monitor: Monitor | null = scored.some((a) => a.monitor === "val_loss")
    ? "val_loss"
    : scored.length
      ? "train_loss"
      : null;
  const pool = scored.filter((a) => a.monitor === monitor);
  if (pool.length === 0) return { best_run: null, basis: "No run has a finite loss yet, so none can be ranked." };
  const winner = pool.reduce((a, b) =>
    b.best_value! < a.best_value! || (b.best_value === a.best_value && b.epochs_to_best! < a.epochs_to_best!) ? b : a,
  );
  const skipped = runs.length - pool.length;
  const basis =
    `${winner.operation_id} has the lowest best ${monitor}, ${winner.best_value!.toFixed(4)} at epoch ${winner.best_epoch}` +
    (pool.length > 1 ? `, of ${pool.length} comparable runs` : "") +
    (skipped ? `; ${skipped} run(s) without a finite ${monitor} were not ranked` : "") +
    ".";
  return { best_run: winner.operation_id, basis };
}
