// The judgement of a step run, kept on write: every step rule's state in one plain-JSON object that each write advances
// over the rows it stored (work proportional to the rows written), and the verdict read from it (what GET …/analysis,
// the stop policy, MCP and the dashboard report). Pure: src/store/write_steps.ts advances it in the write's transaction.

import { advanceNonFinite, emptyNonFiniteState, nonFiniteVerdict, type NonFiniteState } from "./step_nonfinite.ts";
import {
  cloneOverfitState,
  emptyOverfitState,
  overfitStep,
  overfitVerdict,
  restartOverfit,
  type OverfitState,
  type OverfitVerdict,
} from "./step_overfit.ts";
import { advancePlateau, emptyPlateauState, plateauVerdict, type PlateauState } from "./step_plateau.ts";
import {
  advanceSlowdown,
  emptySlowdownState,
  slowdownVerdict,
  type SlowdownEvent,
  type SlowdownState,
} from "./step_slowdown.ts";
import {
  cloneSpikeState,
  declareSpikeDiverged,
  emptySpikeState,
  spikeStep,
  spikeVerdict,
  type SpikeEvent,
  type SpikeState,
} from "./step_spike.ts";
import { cloneGradState, emptyGradState, gradStep, gradVerdict, type GradEvent, type GradState } from "./step_grad.ts";
import { advanceStall, emptyStallState, stallVerdict, type StallState, type StallVerdict } from "./step_stall.ts";
import { DEFAULT_STEP_CONFIG, type StepConfig, type StepPoint } from "./step_types.ts";
import type { WireMetric } from "./wire.ts";

/** Every step rule's state; `last_step` orders the rows: a step at or before it is not judged again. */
export interface StepJudgementState {
  /** The highest step judged, -1 before any. */
  last_step: number;
  /** Steps judged. */
  steps: number;
  /** The highest epoch a judged step named (the stop policy's min_epochs), null when none. */
  epoch: number | null;
  spike: SpikeState;
  grad: GradState;
  non_finite: NonFiniteState;
  overfit: OverfitState;
  stall: StallState;
  plateau: PlateauState;
  slowdown: SlowdownState;
  /** The divergence a gradient explosion confirmed early (grad_confirm_steps), as the spike it cut short. */
  grad_confirmed: boolean;
  /** The lowest finite evaluation so far: [step, val_loss]. */
  best_eval: [number, number] | null;
  /** The lowest evaluation before the watched spike began. */
  spike_best: [number, number] | null;
  /** The lowest evaluation before the divergence began (the checkpoint to go back to); null before one (or none before it). */
  diverged_best: [number, number] | null;
  /** Whether a divergence began (diverged_best is then final). */
  diverged: boolean;
}

export const emptyStepJudgement = (): StepJudgementState => ({
  last_step: -1,
  steps: 0,
  epoch: null,
  spike: emptySpikeState(),
  grad: emptyGradState(),
  non_finite: emptyNonFiniteState(),
  overfit: emptyOverfitState(),
  stall: emptyStallState(),
  plateau: emptyPlateauState(),
  slowdown: emptySlowdownState(),
  grad_confirmed: false,
  best_eval: null,
  spike_best: null,
  diverged_best: null,
  diverged: false,
});

/**
 * The state after `rows` (any order): the steps past `prev.last_step`, ascending, advance every rule; a step at or before
 * it (a re-post, a late row) is not judged again. Advancing batch by batch equals advancing once over all the rows.
 */
export function advanceStepJudgement(
  prev: StepJudgementState,
  rows: readonly StepPoint[],
  cfg: StepConfig = DEFAULT_STEP_CONFIG,
): StepJudgementState {
  let fresh = rows.filter((r) => r.step > prev.last_step);
  if (fresh.length === 0) return prev;
  for (let i = 1; i < fresh.length; i++)
    if (fresh[i]!.step <= fresh[i - 1]!.step) {
      // Out of order or repeated within the batch: the last copy of a step wins, ascending.
      fresh = [...new Map(fresh.map((r) => [r.step, r])).values()].sort((a, b) => a.step - b.step);
      break;
    }
  const spike = cloneSpikeState(prev.spike);
  const grad = cloneGradState(prev.grad);
  const overfit = cloneOverfitState(prev.overfit);
  let confirmed = prev.grad_confirmed;
  let epoch = prev.epoch;
  let { best_eval, spike_best, diverged_best, diverged } = prev;
  for (const row of fresh) {
    const opened = spike.count;
    const nonFinite = [row.train_loss, row.val_loss].some((v) => typeof v === "number" && !Number.isFinite(v));
    if (nonFinite && !diverged) (diverged = true), (diverged_best = best_eval);
    spikeStep(spike, row, cfg);
    gradStep(grad, row, cfg);
    if (spike.count > opened) (spike_best = best_eval), restartOverfit(overfit);
    overfitStep(overfit, row);
    // The gradient confirms a loss spike early: both under way, the loss still out of its band.
    const watching = spike.open ? spike.spikes[spike.spikes.length - 1]! : null;
    if (cfg.grad_confirm_steps > 0 && watching && grad.open && row.step - watching.step >= cfg.grad_confirm_steps) {
      declareSpikeDiverged(spike, row.step);
      confirmed = true;
    }
    if (spike.diverged && !diverged) (diverged = true), (diverged_best = spike_best);
    const v = row.val_loss;
    if (typeof v === "number" && Number.isFinite(v) && (best_eval === null || v < best_eval[1]))
      best_eval = [row.step, v];
    if (row.epoch !== undefined && (epoch === null || row.epoch > epoch)) epoch = row.epoch;
  }
  return {
    last_step: fresh[fresh.length - 1]!.step,
    steps: prev.steps + fresh.length,
    epoch,
    spike,
    grad,
    non_finite: advanceNonFinite(prev.non_finite, fresh),
    overfit,
    stall: advanceStall(prev.stall, fresh, cfg),
    plateau: advancePlateau(prev.plateau, fresh, cfg),
    slowdown: advanceSlowdown(prev.slowdown, fresh, cfg),
    grad_confirmed: confirmed,
    best_eval,
    spike_best,
    diverged_best,
    diverged,
  };
}

/** The step flags: the analysis route's `flags` for a step run, and what a stop policy names. */
export interface StepFlags {
  diverging: boolean;
  overfitting: boolean;
  stalled: boolean;
  plateau: boolean;
  /** A loss spike is being watched (not yet recovered, not yet divergence). */
  spike: boolean;
  /** grad_norm is far above its recent level now. */
  grad_explosion: boolean;
  /** The step time is well above the run's typical step time now. */
  slowdown: boolean;
}

/** Where and how a step run diverged. */
export interface StepDivergence {
  /** non_finite: a NaN/±Infinity loss; spike: a spike that did not recover in time; spike_with_gradient: one the gradient confirmed early. */
  kind: "non_finite" | "spike" | "spike_with_gradient";
  /** The step it began: the non-finite loss's, or the spike's first. */
  step: number;
  /** The last step before it with a finite train_loss (the checkpoint to go back to is the last one before `step`). */
  before_step: number | null;
  /** The step it was judged divergence. */
  decided_step: number;
  /** non_finite: the field and value; spike: its size (× the level before it). */
  metric: "train_loss" | "val_loss" | null;
  value: WireMetric | null;
  size: number | null;
  /** Only non-finite losses were ever reported. */
  only_non_finite: boolean;
}

export interface StepVerdict {
  steps_judged: number;
  last_step: number | null;
  flags: StepFlags;
  divergence: StepDivergence | null;
  /** The monitored loss: val_loss once the run evaluates, else the training level. */
  monitor: "val_loss" | "train_loss" | null;
  /** The best monitored step (the lowest evaluation; without evaluations the lowest training level) and value. */
  best_step: number | null;
  best_value: number | null;
  /** The step whose checkpoint to go back to: the best before a divergence began, else the best; null when none. */
  checkpoint_step: number | null;
  spikes: SpikeEvent[];
  spike_count: number;
  grad_explosions: GradEvent[];
  slowdowns: SlowdownEvent[];
  /** The typical step time in seconds (the slow-down rule's reference); null before one. */
  typical_step_time: number | null;
  overfit: OverfitVerdict;
  stall: StallVerdict;
  plateau: { monitor: "val_loss" | "train_loss" | null; best_step: number | null; steps_since_best: number | null };
}

/** The verdict of a state: flags, where things happened in steps, and the checkpoint step. */
export function stepVerdict(s: StepJudgementState, cfg: StepConfig = DEFAULT_STEP_CONFIG): StepVerdict {
  const nf = nonFiniteVerdict(s.non_finite);
  const sp = spikeVerdict(s.spike);
  const gr = gradVerdict(s.grad);
  const sl = slowdownVerdict(s.slowdown);
  const of = overfitVerdict(s.overfit, cfg);
  const st = stallVerdict(s.stall, cfg);
  const pl = plateauVerdict(s.plateau, cfg);
  let divergence: StepDivergence | null = null;
  const d = sp.diverged;
  if (nf.diverged && (d === null || nf.diverged.step <= d.step)) {
    divergence = {
      kind: "non_finite",
      step: nf.diverged.step,
      before_step: nf.diverged.before_step,
      decided_step: nf.diverged.step,
      metric: nf.diverged.field,
      value: nf.diverged.value,
      size: null,
      only_non_finite: nf.only_non_finite,
    };
  } else if (d) {
    divergence = {
      kind: s.grad_confirmed ? "spike_with_gradient" : "spike",
      step: d.step,
      before_step: d.before_step,
      decided_step: d.end_step ?? d.step,
      metric: "train_loss",
      value: null,
      size: d.size,
      only_non_finite: false,
    };
  }
  const evaluated = s.best_eval !== null;
  const best_step = evaluated ? s.best_eval![0] : (s.plateau.best_train?.step ?? null);
  const best_value = evaluated ? s.best_eval![1] : (s.plateau.best_train?.value ?? null);
  const checkpoint_step = divergence === null ? best_step : (s.diverged_best?.[0] ?? divergence.before_step);
  return {
    steps_judged: s.steps,
    last_step: s.last_step < 0 ? null : s.last_step,
    flags: {
      diverging: divergence !== null,
      // Divergence explains everything after it: the other rules' flags would only restate it.
      overfitting: divergence === null && of.overfitting,
      stalled: divergence === null && st.stalled,
      plateau: divergence === null && pl.plateau,
      spike: sp.watching !== null,
      grad_explosion: gr.exploding !== null,
      slowdown: sl.slowing !== null,
    },
    divergence,
    monitor: evaluated ? "val_loss" : best_step !== null ? "train_loss" : null,
    best_step,
    best_value,
    checkpoint_step,
    spikes: sp.spikes,
    spike_count: sp.count,
    grad_explosions: gr.events,
    slowdowns: sl.events,
    typical_step_time: sl.typical,
    overfit: of,
    stall: st,
    plateau: { monitor: pl.monitor, best_step: pl.best_step, steps_since_best: pl.steps_since_best },
  };
}
