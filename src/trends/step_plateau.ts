// Plateau rule on step scale: the monitored loss (validation when the run evaluates, else the training level of
// step_level.ts) has set no new best for `plateau_steps` steps.

import { isFiniteLoss } from "./history.ts";
import { emptyBlock, feedBlocks, type OpenBlock } from "./step_level.ts";
import { DEFAULT_STEP_CONFIG, type StepConfig, type StepPoint } from "./step_types.ts";

export interface PlateauState {
  block: OpenBlock;
  /** The best validation and the best training level: step and value. */
  best_val: { step: number; value: number } | null;
  best_train: { step: number; value: number } | null;
  /** The last step seen. */
  last_step: number | null;
}

export const emptyPlateauState = (): PlateauState => ({
  block: emptyBlock(),
  best_val: null,
  best_train: null,
  last_step: null,
});

/** A new best beats the old by more than `delta` of it. */
const beats = (v: number, best: { value: number } | null, delta: number) =>
  best === null || v < best.value - delta * Math.abs(best.value);

/** Advances the rule over `rows` (ascending, each step once). */
export function advancePlateau(
  prev: PlateauState,
  rows: readonly StepPoint[],
  cfg: StepConfig = DEFAULT_STEP_CONFIG,
): PlateauState {
  const s: PlateauState = { ...prev, block: { ...prev.block } };
  feedBlocks(s.block, rows, cfg.level_block, (step, level) => {
    if (beats(level, s.best_train, cfg.plateau_delta)) s.best_train = { step, value: level };
  });
  for (const row of rows) {
    s.last_step = row.step;
    const v = row.val_loss;
    if (isFiniteLoss(v) && beats(v, s.best_val, cfg.plateau_delta)) s.best_val = { step: row.step, value: v };
  }
  return s;
}

/** plateau: the last step is at least `plateau_steps` (500) past the monitored best (a best is `plateau_delta`, 0.5 %, lower). */
export function plateauVerdict(
  s: PlateauState,
  cfg: StepConfig = DEFAULT_STEP_CONFIG,
): {
  plateau: boolean;
  monitor: "val_loss" | "train_loss" | null;
  best_step: number | null;
  steps_since_best: number | null;
} {
  const best = s.best_val ?? s.best_train;
  const monitor = s.best_val ? "val_loss" : s.best_train ? "train_loss" : null;
  const since = best === null || s.last_step === null ? null : s.last_step - best.step;
  return {
    plateau: since !== null && since >= cfg.plateau_steps,
    monitor,
    best_step: best?.step ?? null,
    steps_since_best: since,
  };
}
