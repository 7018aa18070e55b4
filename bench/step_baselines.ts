/**
 * What the step judgement is compared against, replayed over a step-corpus run (bench/corpus/steps.json), pure:
 *  - Keras `EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)` over the run's evaluations (one
 *    evaluation = one Keras "epoch"; src/trends/early_stopping.ts is the rule) with `TerminateOnNaN` over its steps;
 *  - a z-score alert on train_loss in the manner of W&B's automation trigger `MetricZScoreFilter` (defaults there: window
 *    30, threshold 3.0, change_dir ANY).
 * and the figures of the issue "Judge steps, on write", scored against the labels read from the held-out loss. The judgement's
 * own replay can reuse `scoreRun`/`summarise` by handing in its alarms, stops and advised step.
 */
import { earlyStoppingInit, earlyStoppingStep, type EarlyStoppingConfig } from "../src/trends/early_stopping.ts";
import {
  cellValue,
  divergent,
  type Half,
  type StepKind,
  type StepRun,
  type StepThresholds,
} from "./step_corpus_format.ts";
// The "unjustified alarm" line (2 %), one home for both corpora.
import { STILL_TO_GAIN } from "./judgement_replay.ts";

/** A stalled run must be called out by this step. */
export const STALLED_BY_STEP = 300;

/** What a watcher did over one run: every alarm (alert or stop) with its step, the step it stopped at, its advice. */
export interface WatcherVerdict {
  name: string;
  /** Steps of every alarm, ascending (a stop is an alarm too). */
  alarms: number[];
  /** Step at which the run was stopped (after that step's update); null when it ran to the end. */
  stopped_at: number | null;
  /** Step whose weights the watcher leaves the user with (a restored checkpoint, or the end); null when it gives none. */
  advised_step: number | null;
}

// ── Keras EarlyStopping + TerminateOnNaN ──

/** Keras EarlyStopping as the baseline configures it: val_loss, patience 5 evaluations, restore_best_weights. */
export const KERAS_EARLY_STOPPING: EarlyStoppingConfig = {
  monitor: "val_loss",
  patience: 5,
  min_delta: 0,
  mode: "min",
  baseline: null,
  restore_best_weights: true,
  start_from_epoch: 0,
};

/**
 * Keras `TerminateOnNaN` + `EarlyStopping(KERAS_EARLY_STOPPING)` replayed over a run. TerminateOnNaN stops at the first step
 * whose train_loss is NaN or ±inf (Keras's on_batch_end). EarlyStopping sees val_loss at each evaluation as one epoch and
 * stops when 5 evaluations in a row fail to beat the best (a NaN never improves); when it stops it restores the best
 * evaluation's weights, so that evaluation's step is the advice; otherwise (it never stopped, or TerminateOnNaN ended the
 * run first: Keras restores only on its own stop) the user keeps the last weights: the advice is the last evaluation at or
 * before the end (for a NaN stop, the weights evaluated last, already as they were).
 */
export function kerasBaseline(run: Pick<StepRun, "curves" | "evals">, cfg = KERAS_EARLY_STOPPING): WatcherVerdict {
  const nanStep = run.curves.train_loss.findIndex((c) => !Number.isFinite(cellValue(c)));
  const steps = run.evals.step;
  let state = earlyStoppingInit();
  let esStop: { step: number; restored: number } | null = null;
  for (let e = 0; e < steps.length; e++) {
    if (nanStep >= 0 && steps[e]! > nanStep) break;
    const r = earlyStoppingStep(cfg, state, e, cellValue(run.evals.val_loss[e]!));
    state = r.state;
    if (r.stop) {
      esStop = { step: steps[e]!, restored: steps[state.best_epoch]! };
      break;
    }
  }
  // The NaN step ends the epoch's batches before its evaluation runs, so a NaN at or before an ES stop step wins.
  if (nanStep >= 0 && (esStop === null || nanStep <= esStop.step)) {
    const lastEval = steps.filter((s) => s <= nanStep).at(-1) ?? null;
    return { name: "keras", alarms: [nanStep], stopped_at: nanStep, advised_step: lastEval };
  }
  if (esStop) return { name: "keras", alarms: [esStop.step], stopped_at: esStop.step, advised_step: esStop.restored };
  return { name: "keras", alarms: [], stopped_at: null, advised_step: steps.at(-1) ?? null };
}

// ── W&B-style z-score alert ──

export interface ZScoreConfig {
  /** Trailing values the mean and standard deviation are taken over (W&B MetricZScoreFilter default: 30). */
  window: number;
  /** |z| (or z, by direction) above this alerts (W&B default: 3.0). */
  threshold: number;
  /** W&B's change_dir: "any" (default) alerts on |z|, "increase" on z, "decrease" on −z. */
  direction: "any" | "increase" | "decrease";
}

export const WANDB_ZSCORE: ZScoreConfig = { window: 30, threshold: 3, direction: "any" };

/**
 * A z-score alert on train_loss: at step s, z = (x_s − mean) / std over the previous `window` finite values (population
 * std); it alerts when the direction's z exceeds `threshold`. Steps before a full window, a non-finite x_s, and a
 * zero std never alert (a NaN's z-score is NaN, which compares false, as in any threshold filter). It only alerts: it
 * never stops the run and names no checkpoint.
 */
export function zScoreAlerts(trainLoss: readonly number[], cfg = WANDB_ZSCORE): number[] {
  const alarms: number[] = [];
  const window: number[] = [];
  trainLoss.forEach((x, s) => {
    if (window.length === cfg.window && Number.isFinite(x)) {
      const mean = window.reduce((a, b) => a + b, 0) / window.length;
      const std = Math.sqrt(window.reduce((a, b) => a + (b - mean) ** 2, 0) / window.length);
      const z = std > 0 ? (x - mean) / std : 0;
      const score = cfg.direction === "any" ? Math.abs(z) : cfg.direction === "increase" ? z : -z;
      if (score > cfg.threshold) alarms.push(s);
    }
    if (Number.isFinite(x)) {
      window.push(x);
      if (window.length > cfg.window) window.shift();
    }
  });
  return alarms;
}

export function zScoreBaseline(run: Pick<StepRun, "curves">, cfg = WANDB_ZSCORE): WatcherVerdict {
  return {
    name: "zscore",
    alarms: zScoreAlerts(run.curves.train_loss.map(cellValue), cfg),
    stopped_at: null,
    advised_step: null,
  };
}

// ── Scoring against the held-out labels ──

export interface RunScore {
  id: string;
  half: Half;
  kind: StepKind;
  /** The first alarm after which the held-out loss still improved > STILL_TO_GAIN of its best so far, with that gain. */
  unjustified: { step: number; gain: number } | null;
  /**
   * Divergent runs only (null otherwise): an alarm within one evaluation interval of the onset eval step (the blow-up
   * happened in the interval before it, so [onset − eval_every, onset + eval_every]), or a stop before that interval,
   * which kept the run from diverging at all.
   */
  divergence_caught: boolean | null;
  /** NaN runs only: an alarm at the nan step exactly. */
  nan_caught: boolean | null;
  /** One per recovered spike: an alarm within [from, to + eval_every], and a stop within [from, to + recovery window]. */
  spikes: { from: number; reported: boolean; stopped: boolean }[];
  /** Overfit runs only: evaluations from the held-out best to the first alarm at or after it; null when not caught. */
  overfit_delay: number | null;
  overfit_caught: boolean | null;
  /** Stalled runs only: an alarm by STALLED_BY_STEP. */
  stalled_caught: boolean | null;
  /** Held-out loss at the advised step ÷ the run's best; null without advice or without a finite best. */
  regret: number | null;
  /** The same for the step of the lowest finite val_loss (ties: earliest). */
  lowest_val_regret: number | null;
}

/** Held-out loss at the evaluation of `step` (or the last one before it). */
function testAt(run: StepRun, step: number): number | null {
  let v: number | null = null;
  run.evals.step.forEach((s, i) => {
    if (s <= step) v = cellValue(run.evals.test_loss[i]!);
  });
  return v;
}

/** The gain the held-out loss still makes after `step`, as a fraction of its best at or before it (Infinity if none). */
export function gainAfter(run: StepRun, step: number): number {
  const before: number[] = [];
  const after: number[] = [];
  run.evals.step.forEach((s, i) => {
    const v = cellValue(run.evals.test_loss[i]!);
    if (Number.isFinite(v)) (s <= step ? before : after).push(v);
  });
  if (after.length === 0) return 0;
  if (before.length === 0) return Number.POSITIVE_INFINITY;
  const best = Math.min(...before);
  return (best - Math.min(...after)) / best;
}

function lowestValStep(run: StepRun): number | null {
  let at: number | null = null;
  let low = Number.POSITIVE_INFINITY;
  run.evals.step.forEach((s, i) => {
    const v = cellValue(run.evals.val_loss[i]!);
    if (Number.isFinite(v) && v < low) {
      low = v;
      at = s;
    }
  });
  return at;
}

function regretAt(run: StepRun, step: number | null): number | null {
  const best = run.labels.held_out_best;
  if (step === null || best === null) return null;
  const v = testAt(run, step);
  return v === null || !Number.isFinite(v) ? Number.POSITIVE_INFINITY : v / best;
}

/** Scores one watcher's verdict on one run against the run's held-out labels. */
export function scoreRun(run: StepRun, v: WatcherVerdict, t: StepThresholds): RunScore {
  const every = run.eval_every;
  const lab = run.labels;
  const first = v.alarms.find((s) => gainAfter(run, s) > STILL_TO_GAIN);
  const onset = lab.diverged_onset_step;
  const recoveryEnd = (to: number) => to + t.spike_recovery_evals * every;
  const afterBest = lab.held_out_best_step === null ? undefined : v.alarms.find((s) => s >= lab.held_out_best_step!);
  return {
    id: run.id,
    half: run.half,
    kind: run.kind,
    unjustified: first === undefined ? null : { step: first, gain: gainAfter(run, first) },
    divergence_caught:
      divergent(run) && onset !== null
        ? v.alarms.some((s) => s >= onset - every && s <= onset + every) ||
          (v.stopped_at !== null && v.stopped_at < onset - every)
        : null,
    nan_caught: run.kind === "nan" && lab.nan_step !== null ? v.alarms.includes(lab.nan_step) : null,
    spikes: lab.spikes
      .filter((s) => s.recovered)
      .map((s) => ({
        from: s.from,
        reported: v.alarms.some((a) => a >= s.from && a <= s.to + every),
        stopped: v.stopped_at !== null && v.stopped_at >= s.from && v.stopped_at <= recoveryEnd(s.to),
      })),
    overfit_caught: run.kind === "overfit" ? afterBest !== undefined : null,
    overfit_delay:
      run.kind === "overfit" && afterBest !== undefined
        ? Math.ceil((afterBest - lab.held_out_best_step!) / every)
        : null,
    stalled_caught: run.kind === "stalled" ? v.alarms.some((s) => s <= STALLED_BY_STEP) : null,
    regret: regretAt(run, v.advised_step),
    lowest_val_regret: regretAt(run, lowestValStep(run)),
  };
}

export interface HalfFigures {
  runs: number;
  unjustified: string[];
  divergence: { runs: number; caught: number; missed: string[] };
  nan: { runs: number; caught: number };
  spikes: { recovered: number; reported: number; stopped: number };
  overfit: { runs: number; caught: number; median_delay: number | null };
  stalled: { runs: number; caught: number };
  /** Median over runs with a finite best; Infinity counts (a NaN checkpoint). */
  regret_median: number | null;
  regret_max: number | null;
  lowest_val_regret_median: number | null;
}

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The figures over the scores of one half. */
export function summarise(scores: RunScore[]): HalfFigures {
  const of = <K extends keyof RunScore>(k: K) => scores.filter((s) => s[k] !== null);
  const div = of("divergence_caught");
  const spikes = scores.flatMap((s) => s.spikes);
  const overfit = of("overfit_caught");
  const regrets = scores.map((s) => s.regret).filter((r): r is number => r !== null);
  return {
    runs: scores.length,
    unjustified: scores.filter((s) => s.unjustified !== null).map((s) => s.id),
    divergence: {
      runs: div.length,
      caught: div.filter((s) => s.divergence_caught).length,
      missed: div.filter((s) => !s.divergence_caught).map((s) => s.id),
    },
    nan: { runs: of("nan_caught").length, caught: scores.filter((s) => s.nan_caught).length },
    spikes: {
      recovered: spikes.length,
      reported: spikes.filter((s) => s.reported).length,
      stopped: spikes.filter((s) => s.stopped).length,
    },
    overfit: {
      runs: overfit.length,
      caught: overfit.filter((s) => s.overfit_caught).length,
      median_delay: median(overfit.map((s) => s.overfit_delay).filter((d): d is number => d !== null)),
    },
    stalled: { runs: of("stalled_caught").length, caught: scores.filter((s) => s.stalled_caught).length },
    regret_median: median(regrets),
    regret_max: regrets.length ? Math.max(...regrets) : null,
    lowest_val_regret_median: median(scores.map((s) => s.lowest_val_regret).filter((r): r is number => r !== null)),
  };
}
