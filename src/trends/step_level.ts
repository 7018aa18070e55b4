// The training loss of a step run summarised coarsely: the mean of each block of `level_block` finite values. The
// stalled and plateau rules read these levels instead of single steps, whose small-batch noise would hide a trend.

import { isFiniteLoss } from "./history.ts";
import type { StepPoint } from "./step_types.ts";

/** The block being filled: its sum, how many values, its last step. */
export interface OpenBlock {
  sum: number;
  n: number;
  step: number;
}

export const emptyBlock = (): OpenBlock => ({ sum: 0, n: 0, step: -1 });

/**
 * Feeds the finite train_loss values of `rows` into `block` (mutated); calls `done(step, mean)` for each block of `size`
 * values it completes, in order. Deterministic in the values alone, whatever the batching.
 */
export function feedBlocks(
  block: OpenBlock,
  rows: readonly StepPoint[],
  size: number,
  done: (step: number, mean: number) => void,
): void {
  for (const row of rows) {
    const x = row.train_loss;
    if (!isFiniteLoss(x)) continue;
    block.sum += x;
    block.n++;
    block.step = row.step;
    if (block.n >= size) {
      done(block.step, block.sum / block.n);
      block.sum = 0;
      block.n = 0;
    }
  }
}
