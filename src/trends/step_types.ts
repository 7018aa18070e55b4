// Plain data shapes of the step-level judgement (issue 23): one step's values as the rules read them, and every knob of
// the step rules with its default. The rules live in step_spike.ts, step_grad.ts, step_nonfinite.ts, step_overfit.ts,
// step_stall.ts, step_plateau.ts and step_slowdown.ts; step_judgement.ts composes them.

/** One stored step as the step rules read it. Values may be missing or non-finite (a diverging run reports them as they are). */
export interface StepPoint {
  step: number;
  /** The epoch the step ran in, when the trainer labels it. */
  epoch?: number;
  train_loss?: number | null;
  /** An evaluation taken at this step (sparse: every few hundred steps). */
  val_loss?: number | null;
  grad_norm?: number | null;
  /** Seconds the step took. */
  duration?: number | null;
}

/**
 * Every knob of the step rules. Windows are counted in steps (of finite values); thresholds are noise multiples (z),
 * ratios or fractions, as each says. Tuned on the TUNE half of the step corpus (bench/corpus/steps.json; docs/judgement.md
 * "Step rules" gives the figures).
 */
export interface StepConfig {
  /** Spike: finite train_loss values in the trailing baseline whose median is the level and whose step-to-step MAD is the noise. */
  spike_window: number;
  /** Spike: values the baseline needs before anything is judged against it. */
  spike_min_points: number;
  /** Spike: a value this many noise σ above the level starts a spike... */
  spike_z: number;
  /** ...and only when it is also this factor above the level (a loss trained near zero has a tiny σ). */
  spike_min_ratio: number;
  /** Spike: the pre-spike band is level + recover_z σ; recovered when the median of the last `recover_run` values is back in it. */
  recover_z: number;
  /** Spike: values after the spike whose median decides recovery. */
  recover_run: number;
  /** Spike: a spike not back in its band within this many steps is divergence. */
  recover_steps: number;
  /** Spike: ...and sooner, once the median of its last `recover_run` values has stayed this factor above the level... */
  explode_ratio: number;
  /** ...for this many steps. */
  explode_steps: number;
  /** Gradient: finite grad_norm values in the trailing baseline (judged on log grad_norm). */
  grad_window: number;
  /** Gradient: an explosion is log grad_norm this many σ above its level... */
  grad_z: number;
  /** ...and grad_norm at least this factor above its level. */
  grad_min_ratio: number;
  /**
   * Gradient: a loss spike still out of its band this many steps after it began, with a gradient explosion under way,
   * is divergence before `recover_steps` (0: never; the loss alone decides).
   */
  grad_confirm_steps: number;
  /** Overfitting: the smallest rise of validation above its best, as a fraction of the best. */
  overfit_threshold: number;
  /** Overfitting: the rise must also exceed this many noise σ of the evaluations. */
  overfit_noise_z: number;
  /** Overfitting: evaluations after the best before the rise can count. */
  overfit_evals: number;
  /** Stalled and plateau: the train loss is summarised as means of blocks of this many finite values. */
  level_block: number;
  /** Stalled: steps with a finite loss before a run can be called stalled, and the window its improvement is measured over. */
  stall_steps: number;
  /** Stalled: improvement over the window below this fraction of the first level is no learning. */
  stall_threshold: number;
  /** Stalled: a run whose best level is this fraction below its first has learned (then it can plateau, not stall). */
  learned_fraction: number;
  /** Plateau: this many steps without a new best of the monitored loss. */
  plateau_steps: number;
  /** Plateau: a new best must beat the old by this fraction. */
  plateau_delta: number;
  /** Slow-down: durations whose median is the current step time. */
  slowdown_window: number;
  /** Slow-down: the current step time this factor above the run's own typical (lowest sustained) step time. */
  slowdown_factor: number;
  /** Slow-down: over once the current step time is back below this factor of it. */
  slowdown_clear: number;
}

/**
 * Defaults: a spike is a train_loss 6 σ of the step-to-step noise (MAD over the last 64 finite values) above their median
 * and 1.1× it; recovered once the median of 3 values after it is back within the level + 3 σ, divergence when not within 50 steps
 * (one evaluation interval of the corpus), or within 10 steps of the loss staying 10× its level; a gradient explosion is grad_norm 6 σ (of log grad_norm) and 3× above its level;
 * overfitting when the 2nd or later evaluation after the best sits above it by 1 % and 2 σ of the evaluations while
 * training improves (a loss spike restarts the best);
 * stalled after 200 steps below 1 % improvement over them and 10 % overall (levels of blocks of 25 values); plateau after
 * 500 steps without a best 0.5 % lower; a slow-down when the median of the last 50 step times is 2× the lowest such
 * median so far, over below 1.5× (on the step corpus's tune half, CPU trainings sharing their cores, a 20-step median at
 * 1.5× found the injected slow-downs and 125 others; 50 steps at 2×, the same two and 60 others: step time on a shared
 * machine really does move that much).
 */
export const DEFAULT_STEP_CONFIG: StepConfig = Object.freeze({
  spike_window: 64,
  spike_min_points: 50,
  spike_z: 6,
  spike_min_ratio: 1.1,
  recover_z: 3,
  recover_run: 3,
  recover_steps: 50,
  explode_ratio: 10,
  explode_steps: 10,
  grad_window: 64,
  grad_z: 6,
  grad_min_ratio: 3,
  grad_confirm_steps: 0,
  overfit_threshold: 0.01,
  overfit_noise_z: 2,
  overfit_evals: 2,
  level_block: 25,
  stall_steps: 200,
  stall_threshold: 0.01,
  learned_fraction: 0.1,
  plateau_steps: 500,
  plateau_delta: 0.005,
  slowdown_window: 50,
  slowdown_factor: 2,
  slowdown_clear: 1.5,
});
