/**
 * How far along an operation is, as one pure rule: the store words an operation's progress with it, and the dashboard
 * runs the same module, built for the browser (src/routes/dashboard.ts), to move the bar between status events. It
 * imports nothing, so the browser build is this file alone.
 */

/** A running epoch's batch progress, as a host reports it. */
export interface BatchFraction {
  epoch: number;
  batch: number;
  batches: number;
}

/** A step run's steps: completed (highest stored step + 1) and planned (null: unknown). */
export interface StepCount {
  completed: number;
  total: number | null;
}

/**
 * Percentage done, rounded to 2 decimals: 100 once completed; for an operation with steps and a step plan, completed
 * steps over planned steps, capped at 100; else completed epochs plus the running epoch's batch fraction over the
 * planned epochs, capped at 100; 0 without a plan. The batch fraction counts only for the epoch after the last stored
 * one (a stale report for a stored epoch adds nothing).
 */
export function progressPercentage(
  status: string,
  epochsCompleted: number,
  totalEpochs: number | null,
  batch?: BatchFraction | null,
  steps?: StepCount | null,
): number {
  if (status === "completed") return 100;
  if (steps && steps.completed > 0 && steps.total)
    return Math.round(Math.min(100, (steps.completed / steps.total) * 100) * 100) / 100;
  if (!totalEpochs) return 0;
  const partial = batch && batch.batches > 0 && batch.epoch >= epochsCompleted ? batch.batch / batch.batches : 0;
  const pct = Math.min(100, ((epochsCompleted + partial) / totalEpochs) * 100);
  return Math.round(pct * 100) / 100;
}
