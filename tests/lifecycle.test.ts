// The operation lifecycle rules (src/operations/lifecycle.ts): what each status accepts, which failures a host's
// relay may undo (by failure_code, never by message prose), the one "finished" error, and the progress maths.
import { describe, expect, test } from "bun:test";
import { TrainwatchError } from "../src/errors.ts";
import {
  HOST_FAILURES,
  canAcceptMetrics,
  canCancel,
  canHeartbeat,
  isRevivable,
  operationFinished,
  progressPercentage,
} from "../src/operations/lifecycle.ts";

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
