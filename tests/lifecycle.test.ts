// The operation lifecycle rules (src/operations/lifecycle.ts): what each status accepts, which failures a host's
// relay may undo (by failure_code, never by message prose), the one "finished" error, and the progress maths.
import { describe, expect, test } from "bun:test";
import { TrainwatchError } from "../src/errors.ts";
import {
  HOST_FAILURES,
  canAcceptMetrics,
  canAcceptRows,
  cancelGraceEpoch,
  canCancel,
  canHeartbeat,
  isRevivable,
  operationFinished,
  progressPercentage,
  refinesTermination,
  takesByGrace,
} from "../src/operations/lifecycle.ts";
import { cancelControl, controlAfterGrace, isCancelControl } from "../src/operations/stop_policy.ts";

const op = (status: string, failure_code: string | null = null) => ({ status, failure_code });

describe("lifecycle rules", () => {
  test("pending and running operations take metrics, heartbeats and a cancel", () => {
    for (const status of ["pending", "running"]) {
      expect(canAcceptMetrics(op(status))).toBe(true);
      expect(canHeartbeat(op(status))).toBe(true);
      expect(canCancel(op(status))).toBe(true);
    }
  });

  test("completed, cancelled and trainer-failed operations take nothing more", () => {
    for (const o of [op("completed"), op("cancelled"), op("failed"), op("failed", "trainer_error")]) {
      expect(canAcceptMetrics(o)).toBe(false);
      expect(canHeartbeat(o)).toBe(false);
      expect(canCancel(o)).toBe(false);
      expect(isRevivable(o)).toBe(false);
    }
  });

  test("a failure caused by the host link is revivable by its failure_code, whatever the message says", () => {
    for (const code of HOST_FAILURES) {
      expect(isRevivable(op("failed", code))).toBe(true);
      expect(canAcceptMetrics(op("failed", code))).toBe(true);
      expect(canHeartbeat(op("failed", code))).toBe(true);
      // Revivable by a relay, yet finished for a user: there is nothing to cancel.
      expect(canCancel(op("failed", code))).toBe(false);
    }
    // The code counts only on a failed operation.
    expect(isRevivable(op("completed", "host_unreachable"))).toBe(false);
  });

  test("only a scheduler's cause refines a failure, and only a client's terminated goodbye", () => {
    const goodbye = op("failed", "terminated");
    for (const code of ["time_limit", "preempted", "node_fail", "out_of_memory"])
      expect(refinesTermination(goodbye, "failed", code)).toBe(true);
    expect(refinesTermination(goodbye, "failed", "trainer_error")).toBe(false);
    expect(refinesTermination(goodbye, "failed", "lost")).toBe(false);
    expect(refinesTermination(goodbye, "cancelled", null)).toBe(false);
    expect(refinesTermination(goodbye, "completed", null)).toBe(false);
    expect(refinesTermination(op("failed", "trainer_error"), "failed", "time_limit")).toBe(false);
    expect(refinesTermination(op("cancelled"), "failed", "preempted")).toBe(false);
    expect(refinesTermination(op("running"), "failed", "time_limit")).toBe(false);
  });

  test("the finished error is a 409 OPERATION_FINISHED naming the operation and its status", () => {
    const err = operationFinished("training_x", "cancelled");
    expect(err).toBeInstanceOf(TrainwatchError);
    expect(err.code).toBe("OPERATION_FINISHED");
    expect(err.status).toBe(409);
    expect(err.message).toBe("operation training_x is already cancelled");
    // Issue 12: the details also carry the `control` a trainer stops on (a stop naming the status when none was recorded).
    expect(err.details).toEqual({
      operation_id: "training_x",
      status: "cancelled",
      control: { action: "stop", reason: "operation is cancelled" },
    });
  });
});

describe("the cancel grace: a cancelled operation still takes the epoch in progress when the cancel arrived", () => {
  const at = "2024-01-01T00:00:00.000Z";
  const cancelled = (epoch: number | null, step: number | null = null) => ({
    status: "cancelled",
    failure_code: null,
    control: cancelControl({ by: "test" }, { latest_epoch: epoch, best_epoch: epoch }, at, step),
  });

  test("epochs up to the one after the last stored at the cancel are taken; a batch with any later epoch is refused whole", () => {
    const op = cancelled(4);
    expect(cancelGraceEpoch(op)).toBe(5);
    expect(takesByGrace(op)).toBe(true);
    expect(canAcceptRows(op, [{ epoch: 5 }])).toBe(true);
    expect(canAcceptRows(op, [{ epoch: 2 }, { epoch: 4 }])).toBe(true); // re-posts
    expect(canAcceptRows(op, [{ epoch: 6 }])).toBe(false);
    expect(canAcceptRows(op, [{ epoch: 5 }, { epoch: 6 }])).toBe(false);
  });

  test("cancelled before any epoch was stored: the first epoch is taken, counted from 0 or from 1", () => {
    const op = cancelled(null);
    expect(cancelGraceEpoch(op)).toBe(1);
    expect(canAcceptRows(op, [{ epoch: 0 }])).toBe(true);
    expect(canAcceptRows(op, [{ epoch: 1 }])).toBe(true);
    expect(canAcceptRows(op, [{ epoch: 2 }])).toBe(false);
  });

  test("steps naming an epoch are taken up to the grace epoch's end; steps naming none only up to the step stored at the cancel", () => {
    const op = cancelled(2, 349);
    expect(
      canAcceptRows(op, [
        { step: 350, epoch: 3 },
        { step: 399, epoch: 3 },
      ]),
    ).toBe(true);
    expect(
      canAcceptRows(op, [
        { step: 399, epoch: 3 },
        { step: 400, epoch: 4 },
      ]),
    ).toBe(false);
    expect(canAcceptRows(op, [{ step: 349 }])).toBe(true);
    expect(canAcceptRows(op, [{ step: 350 }])).toBe(false);
    // A cancel that recorded no step (an epoch run) takes no step without an epoch.
    expect(canAcceptRows(cancelled(2), [{ step: 0 }])).toBe(false);
  });

  test("no grace without a cancel's control, nor for completed or failed operations; running ones take anything", () => {
    const control = cancelled(4).control;
    expect(cancelGraceEpoch({ status: "cancelled", failure_code: null, control: null })).toBeNull();
    expect(canAcceptRows({ status: "cancelled", failure_code: null, control: null }, [{ epoch: 0 }])).toBe(false);
    for (const status of ["completed", "failed"]) {
      expect(canAcceptRows({ status, failure_code: null, control }, [{ epoch: 5 }])).toBe(false);
      expect(takesByGrace({ status, failure_code: null, control })).toBe(false);
    }
    expect(canAcceptRows({ status: "running", failure_code: null, control }, [{ epoch: 99 }])).toBe(true);
    expect(takesByGrace({ status: "running", failure_code: null, control })).toBe(false);
    // A revivable failure takes metrics by its own rule, not by a grace.
    expect(takesByGrace({ status: "failed", failure_code: "host_unreachable", control })).toBe(false);
  });

  test("a late epoch that is the new best moves the cancel's checkpoint; a stop policy's decision keeps its own", () => {
    const control = cancelled(4).control;
    expect(controlAfterGrace(control, { best_epoch: 5 })).toEqual({ ...control, checkpoint_epoch: 5 });
    expect(controlAfterGrace(control, { best_epoch: 4 })).toBeNull();
    expect(controlAfterGrace({ ...control, decided_by: "stop_policy" }, { best_epoch: 5 })).toBeNull();
    // A host relay cancels its training on a cancel's stop, and stops it (to finish completed) on a policy's.
    expect(isCancelControl(control)).toBe(true);
    expect(isCancelControl({ ...control, decided_by: "stop_policy" })).toBe(false);
  });
});

describe("progress percentage", () => {
  test("completed epochs over planned ones, plus the running epoch's batch fraction, rounded to 2 decimals", () => {
    expect(progressPercentage("running", 5, 10)).toBe(50);
    expect(progressPercentage("running", 1, 3)).toBe(33.33);
    expect(progressPercentage("running", 2, 10, { epoch: 2, batch: 5, batches: 10 })).toBe(25);
  });

  test("a batch report for an epoch already stored adds nothing; an empty epoch counts no fraction", () => {
    expect(progressPercentage("running", 3, 10, { epoch: 1, batch: 5, batches: 10 })).toBe(30);
    expect(progressPercentage("running", 3, 10, { epoch: 3, batch: 0, batches: 0 })).toBe(30);
  });

  test("100 once completed (also short of the plan), 0 without a plan, never above 100", () => {
    expect(progressPercentage("completed", 4, 10)).toBe(100);
    expect(progressPercentage("completed", 4, null)).toBe(100);
    expect(progressPercentage("running", 7, null)).toBe(0);
    expect(progressPercentage("running", 12, 10)).toBe(100);
  });
});
