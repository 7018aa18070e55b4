// Stalled rule on step scale: after `stall_steps` steps the run has not learned. Its training level (step_level.ts)
// barely moved over the window and never fell far below where it started, nor did validation: a learning rate far too
// low, frozen weights, labels that carry no signal.

import { isFiniteLoss } from "./history.ts";
import { emptyBlock, feedBlocks, type OpenBlock } from "./step_level.ts";
import { DEFAULT_STEP_CONFIG, type StepConfig, type StepPoint } from "./step_types.ts";

export interface StallState {
  block: OpenBlock;
  /** The first block's level, the lowest level, and the last levels covering the window: [last step, mean]. */
  first: number | null;
  best: number | null;
  levels: [number, number][];
  /** Finite train_loss values seen. */
  finite: number;
  /** The first and the lowest finite val_loss. */
  first_val: number | null;
  best_val: number | null;
}

export const emptyStallState = (): StallState => ({
  block: emptyBlock(),
  first: null,
  best: null,
  levels: [],
  finite: 0,
  first_val: null,
  best_val: null,
});

/** Advances the rule over `rows` (ascending, each step once). */
export function advanceStall(
  prev: StallState,
  rows: readonly StepPoint[],
  cfg: StepConfig = DEFAULT_STEP_CONFIG,
): StallState {
  const s: StallState = { ...prev, block: { ...prev.block }, levels: prev.levels.slice() };
  const keep = Math.ceil(cfg.stall_steps / cfg.level_block) + 1;
  feedBlocks(s.block, rows, cfg.level_block, (step, level) => {
    if (s.first === null) s.first = level;
    if (s.best === null || level < s.best) s.best = level;
    s.levels.push([step, level]);
    if (s.levels.length > keep) s.levels.shift();
  });
  for (const row of rows) {
    if (isFiniteLoss(row.train_loss)) s.finite++;
    const v = row.val_loss;
    if (!isFiniteLoss(v)) continue;
    if (s.first_val === null) s.first_val = v;
    if (s.best_val === null || v < s.best_val) s.best_val = v;
  }
  return s;
}

export interface StallVerdict {
  stalled: boolean;
  /** (level at the window's start − level now) ÷ |first level|; null before the window is covered. */
  window_improvement: number | null;
  /** (first level − lowest level) ÷ |first level|; null before a level. */
  total_improvement: number | null;
  /** The window, in finite steps. */
  window: number;
}

/**
 * stalled: at least `stall_steps` (200) finite train_loss values; over the last `stall_steps` the level (mean of blocks of
 * `level_block` (25) values) improved by less than `stall_threshold` (1 %) of the first level; the lowest level is less than
 * `learned_fraction` (10 %) below the first; and validation (when evaluated) never got `learned_fraction` below its first.
 */
export function stallVerdict(s: StallState, cfg: StepConfig = DEFAULT_STEP_CONFIG): StallVerdict {
  const first = s.first;
  const total = first === null || s.best === null || first === 0 ? null : (first - s.best) / Math.abs(first);
  const span = Math.ceil(cfg.stall_steps / cfg.level_block);
  const covered = s.finite >= cfg.stall_steps && s.levels.length > span && first !== null && first !== 0;
  const window = covered
    ? (s.levels[s.levels.length - 1 - span]![1] - s.levels[s.levels.length - 1]![1]) / Math.abs(first!)
    : null;
  const valLearned =
    s.first_val !== null && s.best_val !== null && s.first_val !== 0
      ? (s.first_val - s.best_val) / Math.abs(s.first_val) >= cfg.learned_fraction
      : false;
  const stalled =
    window !== null && total !== null && window < cfg.stall_threshold && total < cfg.learned_fraction && !valLearned;
  return { stalled, window_improvement: window, total_improvement: total, window: cfg.stall_steps };
}
