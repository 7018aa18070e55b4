/**
 * The analysis of a run with the step judgement laid over it: a step run (one with a stored step judgement) is judged on
 * its steps (flags, best_step, spikes, slow-downs, divergence, the recommendation with its checkpoint step), keeping the
 * epoch judgement's facts about its derived epochs (best_epoch, trajectory, gap); an epoch run keeps its judgement, with
 * the step fields empty. A step run's stop decision comes from the same state (stepStopDecision). Pure: the analysis
 * read (src/operations/reads.ts), the step write and the operations service hand it the stored state.
 */
import type { Static } from "@sinclair/typebox";
import type { Analysis, Flags } from "../schemas/analysis.ts";
import type { OperationStatus, StopControl, StopPolicy } from "../schemas/operation.ts";
import type { Judgement } from "../trends/analysis.ts";
import { stepVerdict, type StepJudgementState } from "../trends/step_judgement.ts";
import { recommendSteps } from "../trends/step_recommend.ts";
import { decideStepStop } from "./stop_policy.ts";

/** The analysis fields the epoch judgement gives (everything but the step judgement's and the liveness). */
export type EpochAnalysis = Omit<Analysis, keyof StepFields | "flags" | "recommendation" | "liveness"> &
  Pick<Judgement, "flags" | "recommendation">;

/** The analysis judged on its epochs or steps, before the operation's liveness is laid over it (analyzeOperation). */
export type JudgedAnalysis = Omit<Analysis, "flags" | "liveness"> & { flags: Static<typeof Flags> };

type StepFields = Pick<Analysis, "judged_on" | "steps_judged" | "best_step" | "spikes" | "slowdowns" | "divergence">;

/** `base` judged on its steps when `state` is a step run's judgement (null: an epoch run, returned with empty step fields). */
export function withStepJudgement(base: EpochAnalysis, state: StepJudgementState | null): JudgedAnalysis {
  if (state === null || state.steps === 0) {
    return {
      ...base,
      flags: { ...base.flags, spike: false, grad_explosion: false, slowdown: false },
      recommendation: { ...base.recommendation, checkpoint_step: null },
      judged_on: "epochs",
      steps_judged: 0,
      best_step: null,
      spikes: [],
      slowdowns: [],
      divergence: null,
    };
  }
  const v = stepVerdict(state);
  return {
    ...base,
    flags: v.flags,
    recommendation: recommendSteps(v, base.status, base.trajectory.trajectory),
    judged_on: "steps",
    steps_judged: v.steps_judged,
    best_step: v.best_step,
    spikes: v.spikes,
    slowdowns: v.slowdowns,
    divergence: v.divergence,
  };
}

/**
 * A step run's stop decision (decideStepStop) from its step judgement `state`, for an operation with `policy` and no
 * decision yet: a flag of `policy.on` the steps raise now (a recovering spike is never one), at the latest step stored
 * and the state's epoch, with the step recommendation's reason and checkpoint step; null when none fired. The step write
 * takes it on every batch (src/store/write_steps.ts); the operations service when a policy is set on a step run whose
 * flag is already raised, so both read the same rule.
 */
export function stepStopDecision(
  policy: StopPolicy,
  state: StepJudgementState,
  status: OperationStatus,
  now: string,
): StopControl | null {
  const v = stepVerdict(state);
  const { spike: _spike, ...flags } = v.flags;
  if (!Object.values(flags).some(Boolean)) return null;
  return decideStepStop(
    policy,
    flags,
    { epoch: state.epoch, step: v.last_step },
    recommendSteps(v, status, "flat"),
    null,
    now,
  );
}
