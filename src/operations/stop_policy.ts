/**
 * The stop signal as pure rules (issue 12): when an operation's stop policy fires, what a cancel records, and the
 * `control` a metrics reply or a 409 carries. No I/O: the operations service calls these after a write and stores the
 * decision; trainers only read it.
 */
import type {
  Control,
  StopControl,
  StopFlag,
  StopPolicy,
  StopPolicyInput,
  TrendSummarySchema,
} from "../schemas/operation.ts";
import type { Static } from "@sinclair/typebox";

type Summary = Pick<
  Static<typeof TrendSummarySchema>,
  "is_diverging" | "is_overfitting" | "is_stalled" | "is_plateaued" | "latest_epoch"
>;

/** What a write reply carries while no decision is recorded. */
export const CONTINUE: Control = { action: "continue" };

/** The stored form: min_epochs filled in, flags in the order given, each once. */
export function normalizeStopPolicy(p: StopPolicyInput): StopPolicy {
  return { on: [...new Set(p.on)], min_epochs: p.min_epochs ?? 0 };
}

/** The judgement flag behind each policy name (the summary's field; the same one the analysis route reports); null: raised on steps only. */
const FLAG_FIELD: Record<StopFlag, keyof Summary | null> = {
  diverging: "is_diverging",
  overfitting: "is_overfitting",
  stalled: "is_stalled",
  plateau: "is_plateaued",
  grad_explosion: null,
  slowdown: null,
};

/**
 * The flags of `policy.on` that the summary raises at its latest epoch, when that epoch is ≥ min_epochs; empty otherwise.
 * The judgement's flags are the stored summary's, so this is exact and costs nothing: the write path calls it on every
 * write of an operation with a policy, and builds the full judgement (for the reason) only when something fired.
 */
export function firedFlags(policy: StopPolicy, summary: Summary): StopFlag[] {
  if (summary.latest_epoch === null || summary.latest_epoch < policy.min_epochs) return [];
  return policy.on.filter((f) => {
    const field = FLAG_FIELD[f];
    return field !== null && summary[field] === true;
  });
}

/**
 * A step run's decision rule (src/store/write_steps.ts calls it in the write of every step batch of an operation with
 * a policy and no decision): ONE stop decision when a flag of `policy.on` is raised by the step judgement at an epoch ≥
 * min_epochs (the highest epoch the steps named; 0 when they name none). The reason is the step recommendation's when it
 * advises stopping, else led by the flags that fired; the decision names the step it was taken at and the checkpoint step.
 */
export function decideStepStop(
  policy: StopPolicy | null,
  flags: Record<StopFlag, boolean>,
  at: { epoch: number | null; step: number | null },
  recommendation: { action: string; reason: string; checkpoint_step: number | null },
  existing: StopControl | null,
  now: string,
): StopControl | null {
  if (existing !== null || policy === null || (at.epoch ?? 0) < policy.min_epochs) return null;
  const fired = policy.on.filter((f) => flags[f]);
  if (fired.length === 0) return null;
  return {
    action: "stop",
    reason: policyReason(fired, `step ${at.step}`, recommendation),
    checkpoint_epoch: null,
    decided_by: "stop_policy",
    epoch: at.epoch,
    step: at.step,
    checkpoint_step: recommendation.checkpoint_step,
    at: now,
  };
}

/** What the decision needs of the judgement (src/trends/analysis.ts judgeRun). */
export interface JudgementView {
  flags: { overfitting: boolean; plateau: boolean; diverging: boolean; stalled: boolean };
  recommendation: { action: string; reason: string; checkpoint_epoch: number | null };
}

/**
 * The decision rule: ONE stop decision per operation. Null when one is recorded already (`existing`), when there is no
 * policy, or when none of its flags is raised at an epoch ≥ min_epochs. The reason is the judgement's own sentence when
 * it advises stopping; when it does not (a plateau whose best was a lucky epoch reads "keep training"), the flags that
 * fired lead, so the record never reads as advice to go on.
 */
export function decideStop(
  policy: StopPolicy | null,
  summary: Summary,
  judgement: JudgementView,
  existing: StopControl | null,
  at: string,
): StopControl | null {
  if (existing !== null || policy === null) return null;
  const fired = firedFlags(policy, summary);
  if (fired.length === 0) return null;
  const r = judgement.recommendation;
  return {
    action: "stop",
    reason: policyReason(fired, `epoch ${summary.latest_epoch}`, r),
    checkpoint_epoch: r.checkpoint_epoch,
    decided_by: "stop_policy",
    epoch: summary.latest_epoch,
    at,
  };
}

/**
 * A decision's reason: the judgement's own sentence when it advises stopping; when it does not (a plateau whose best was
 * a lucky epoch reads "keep training"), the flags that fired lead, so the record never reads as advice to go on.
 */
function policyReason(fired: readonly StopFlag[], where: string, r: { action: string; reason: string }): string {
  return r.action === "stop"
    ? r.reason
    : `${fired.join(", ")} flagged at ${where} (stop policy); the judgement: ${r.reason}`;
}

/**
 * What a cancel records: who cancelled (default "api") and why, at the latest epoch (and, for a step run, its highest
 * stored step `lastStep`), advising the best epoch. The epoch and step bound what the cancelled operation still takes
 * (src/operations/lifecycle.ts canAcceptRows).
 */
export function cancelControl(
  input: { by?: string | null; reason?: string | null },
  trends: { latest_epoch: number | null; best_epoch: number | null },
  at: string,
  lastStep: number | null = null,
): StopControl {
  const by = input.by || "api";
  const reason = input.reason?.trim() ? `cancelled by ${by}: ${input.reason.trim()}` : `cancelled by ${by}`;
  return {
    action: "stop",
    reason,
    checkpoint_epoch: trends.best_epoch,
    decided_by: by,
    epoch: trends.latest_epoch,
    ...(lastStep === null ? {} : { step: lastStep }),
    at,
  };
}

/**
 * True for a control a cancel recorded (decided_by names who cancelled), false for a stop policy's decision. A host
 * relay that hears a stop in a 200 reply (the epoch a cancelled operation still took) cancels its training on the
 * first and stops it, to finish `completed`, on the second (src/host/sessions.ts heedControl).
 */
export const isCancelControl = (control: StopControl): boolean => control.decided_by !== "stop_policy";

/**
 * A cancel's control once the epoch its grace let in is stored: the checkpoint to keep is the best epoch now (the late
 * epoch may be the best). Null when nothing changes, or the control is a stop policy's (its checkpoint is the
 * judgement's, kept as decided).
 */
export function controlAfterGrace(control: StopControl, trends: { best_epoch: number | null }): StopControl | null {
  if (!isCancelControl(control) || control.checkpoint_epoch === trends.best_epoch) return null;
  return { ...control, checkpoint_epoch: trends.best_epoch };
}

/** The control a refused write (409 OPERATION_FINISHED) carries: the recorded decision, else a stop naming the status. */
export function finishedControl(
  status: string,
  control: StopControl | null,
): StopControl | { action: "stop"; reason: string } {
  return control ?? { action: "stop", reason: `operation is ${status}` };
}
