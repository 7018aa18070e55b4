// Overfitting rule on a step run's sparse evaluations: validation now sits above its best evaluation by more than the
// evaluations' own noise explains, while the training loss has kept falling since. The best evaluation is also the step
// whose checkpoint the advice names.

import { isFiniteLoss } from "./history.ts";
import { median, noiseSigma } from "./noise.ts";
import { DEFAULT_STEP_CONFIG, type StepConfig, type StepPoint } from "./step_types.ts";

/** Evaluations whose second differences estimate the noise. */
export const EVAL_NOISE_WINDOW = 16;
/** Evaluations after the best whose mean is "where validation is now". */
export const EVAL_LEVEL = 3;
/** Finite train_loss values whose median is the training level at an evaluation. */
export const TRAIN_LEVEL_WINDOW = 16;

export interface OverfitState {
  /** The last EVAL_NOISE_WINDOW finite evaluations: [step, val_loss]. */
  evals: [number, number][];
  /** Finite evaluations seen. */
  count: number;
  /** The lowest finite val_loss (first of equals), with the training level then (null without train_loss). */
  best: { step: number; value: number; train: number | null } | null;
  /** The last EVAL_LEVEL evaluations after the best, and how many there are in all. */
  after: [number, number][];
  after_count: number;
  /** The last TRAIN_LEVEL_WINDOW finite train_loss values. */
  train: number[];
}

export const emptyOverfitState = (): OverfitState => ({
  evals: [],
  count: 0,
  best: null,
  after: [],
  after_count: 0,
  train: [],
});

/** Advances the rule over `rows` (ascending, each step once; the training level includes the evaluation's own step). */
export function advanceOverfit(prev: OverfitState, rows: readonly StepPoint[]): OverfitState {
  const s = cloneOverfitState(prev);
  for (const row of rows) overfitStep(s, row);
  return s;
}

/** A copy `overfitStep` may mutate. */
export const cloneOverfitState = (prev: OverfitState): OverfitState => ({
  ...prev,
  evals: prev.evals.slice(),
  after: prev.after.slice(),
  train: prev.train.slice(),
});

/** One row of advanceOverfit, mutating `s`. */
export function overfitStep(s: OverfitState, row: StepPoint): void {
  if (isFiniteLoss(row.train_loss)) {
    s.train.push(row.train_loss);
    if (s.train.length > TRAIN_LEVEL_WINDOW) s.train.shift();
  }
  const v = row.val_loss;
  if (!isFiniteLoss(v)) return;
  s.count++;
  s.evals.push([row.step, v]);
  if (s.evals.length > EVAL_NOISE_WINDOW) s.evals.shift();
  if (s.best === null || v < s.best.value) {
    s.best = { step: row.step, value: v, train: s.train.length > 0 ? median(s.train) : null };
    s.after = [];
    s.after_count = 0;
  } else {
    s.after.push([row.step, v]);
    if (s.after.length > EVAL_LEVEL) s.after.shift();
    s.after_count++;
  }
}

/**
 * Forgets the best (mutating `s`): a loss spike knocked validation up, so a rise above the best before it is the spike's,
 * not overfitting; the next evaluation starts a new best (step_judgement.ts calls it when a spike begins).
 */
export function restartOverfit(s: OverfitState): void {
  s.best = null;
  s.after = [];
  s.after_count = 0;
}

export interface OverfitVerdict {
  overfitting: boolean;
  best_step: number | null;
  best_value: number | null;
  /** (the latest evaluation − best) ÷ |best|; null without one after the best. */
  rise: number | null;
  /** The rise that counts: max(overfit_threshold, overfit_noise_z × σ ÷ |best|); null before 4 evaluations. */
  margin: number | null;
  /** Training level now ÷ at the best − 1 (negative: training improved since); null without train_loss. */
  train_change: number | null;
  evals_after: number;
}

/**
 * overfitting: at least `overfit_evals` (2) evaluations after the best; the latest of them above the best by more than
 * max(`overfit_threshold` (1 %), `overfit_noise_z` (2) × the evaluations' relative noise σ, noise.ts over the last 16); and
 * the training level (median of the last 16 train_loss) below its level at the best evaluation. (The latest rather than a
 * mean: on the step corpus's tune half a mean of 3 called overfitting 1-2 evaluations later, and no healthy run's
 * evaluation rose more than 0.6 % above its best.)
 */
export function overfitVerdict(s: OverfitState, cfg: StepConfig = DEFAULT_STEP_CONFIG): OverfitVerdict {
  const best = s.best;
  const none: OverfitVerdict = {
    overfitting: false,
    best_step: best?.step ?? null,
    best_value: best?.value ?? null,
    rise: null,
    margin: null,
    train_change: null,
    evals_after: s.after_count,
  };
  if (best === null || s.after.length === 0 || best.value === 0) return none;
  const rise = (s.after[s.after.length - 1]![1] - best.value) / Math.abs(best.value);
  const sigma = s.evals.length >= 4 ? noiseSigma(s.evals.map(([, v]) => v)) : null;
  const margin =
    sigma === null ? null : Math.max(cfg.overfit_threshold, (cfg.overfit_noise_z * sigma) / Math.abs(best.value));
  const train_change =
    best.train !== null && best.train !== 0 && s.train.length > 0 ? median(s.train) / best.train - 1 : null;
  const overfitting =
    margin !== null &&
    s.after_count >= cfg.overfit_evals &&
    rise > margin &&
    (train_change === null ? best.train === null : train_change < 0);
  return { ...none, overfitting, rise, margin, train_change };
}
