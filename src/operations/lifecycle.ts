/**
 * The operation lifecycle as pure rules: which status may take metrics, heartbeats or a cancel, which failures a
 * relay may undo, what a cancelled operation still takes (the epoch in progress when the cancel arrived), how far along an operation is (progress.ts), and the one "operation is finished" error. No I/O: the store,
 * the routes and the trainers ask these functions instead of writing the rules again.
 */
import { TrainwatchError } from "../errors.ts";
import {
  FINISHED,
  HOST_FAILURES,
  LOST,
  REPORTED_FAILURES,
  SCHEDULER_FAILURES,
  TERMINATED,
  TRAINER_ERROR,
  type FailureCode,
  type OperationStatus,
  type StopControl,
} from "../schemas/operation.ts";
import { finishedControl } from "./stop_policy.ts";

// The failure codes are declared once, with the operation's schema that lists them (src/schemas/operation.ts).
export { HOST_FAILURES, LOST, REPORTED_FAILURES, SCHEDULER_FAILURES, TERMINATED, TRAINER_ERROR, type FailureCode };

/** The failures a sign of life undoes: the host ones, and a client run's `lost`. */
const REVIVABLE: readonly string[] = [...HOST_FAILURES, LOST];

/** What the rules read of an operation: its status and, when failed, the stored `failure_code` (never the prose). */
export interface LifecycleState {
  status: OperationStatus | string;
  failure_code: string | null;
}

export const isFinished = (status: string): boolean => FINISHED.has(status as OperationStatus);

/**
 * True for the finished states a sign of life may undo: failed because of the link to the host (a HOST_FAILURES code),
 * or a client run failed `lost` whose trainer speaks again.
 */
export const isRevivable = (op: LifecycleState): boolean =>
  op.status === "failed" && REVIVABLE.includes(op.failure_code ?? "");

/** Epochs are taken while pending or running, and by a revivable failure (the write revives it). */
export const canAcceptMetrics = (op: LifecycleState): boolean => !isFinished(op.status) || isRevivable(op);

/** What the cancel grace reads of an operation: its lifecycle state and its recorded stop decision. */
export interface GraceState extends LifecycleState {
  control: Pick<StopControl, "epoch" | "step"> | null;
}

/**
 * The last epoch a cancelled operation still takes: the one that was in progress when the cancel arrived, so the
 * epoch a trainer finishes after the stop (having heard it, or not yet) is stored and judged instead of dropped.
 * It is the epoch after `control.epoch` (the latest stored epoch the cancel recorded); when none was stored, 1 (the
 * first epoch, whether the run counts from 0 or from 1). Null when there is no grace: the operation is not
 * cancelled, or its cancel recorded no control (a trainer that finished itself as cancelled).
 */
export function cancelGraceEpoch(op: GraceState): number | null {
  if (op.status !== "cancelled" || op.control === null) return null;
  return op.control.epoch === null ? 1 : op.control.epoch + 1;
}

/**
 * Whether a write of `rows` (epochs, or steps) is taken: always while the operation takes metrics
 * (canAcceptMetrics); by a cancelled one when every row lies within its grace (cancelGraceEpoch): an epoch ≤ the grace
 * epoch, a step naming an epoch ≤ it (that epoch's steps up to its end), a step naming none only up to the highest
 * step stored at the cancel (`control.step`: a re-post). A batch with any row beyond is refused whole, with
 * OPERATION_FINISHED as before; the status stays cancelled either way, and the reply carries the cancel's `control`.
 */
export function canAcceptRows(op: GraceState, rows: readonly { epoch?: number; step?: number }[]): boolean {
  if (canAcceptMetrics(op)) return true;
  const epoch = cancelGraceEpoch(op);
  if (epoch === null) return false;
  const step = op.control?.step ?? -1;
  return rows.every((r) => (r.epoch === undefined ? (r.step ?? Infinity) <= step : r.epoch <= epoch));
}

/** True when a write taken by `op` is a cancelled operation's grace (canAcceptRows took it past canAcceptMetrics). */
export const takesByGrace = (op: GraceState): boolean => !canAcceptMetrics(op) && cancelGraceEpoch(op) !== null;

/** A heartbeat (a host's or a client's) is taken on the same terms as epochs: a heartbeat to a revivable failure revives it. */
export const canHeartbeat = canAcceptMetrics;

/** Only an operation that has not finished can be cancelled. */
export const canCancel = (op: LifecycleState): boolean => !isFinished(op.status);

/** A finish is taken by an unfinished operation, and by a revivable failure (the host reports after all). */
export const canFinish = canAcceptMetrics;

/**
 * A scheduler's word on a run its trainer already finished `terminated`. At a time limit or a preemption Slurm signals
 * the job before it kills it, so the Python client's goodbye (failed, terminated) is stored before the scheduler's
 * state says why; the cause only the scheduler knows (a SCHEDULER_FAILURES code) then refines that failure, keeping
 * when it ended. True for a `failed` finish with a scheduler's code on an operation failed `terminated`; nothing else
 * reopens a final failure.
 */
export function refinesTermination(
  op: LifecycleState,
  status: string,
  failureCode: string | null | undefined,
): boolean {
  return (
    op.status === "failed" &&
    op.failure_code === TERMINATED &&
    status === "failed" &&
    (SCHEDULER_FAILURES as readonly string[]).includes(failureCode ?? "")
  );
}

/**
 * The one "operation is finished" error (409 OPERATION_FINISHED), whichever write it refused. Its details carry the
 * status and the `control` a trainer reads to stop: the recorded decision, else a stop naming the status.
 */
export function operationFinished(
  operationId: string,
  status: string,
  control: StopControl | null = null,
): TrainwatchError {
  return new TrainwatchError("OPERATION_FINISHED", `operation ${operationId} is already ${status}`, {
    operation_id: operationId,
    status,
    control: finishedControl(status, control),
  });
}

// How far along an operation is has its own pure module, which the dashboard runs too.
export { progressPercentage } from "./progress.ts";
