// The Store contract's part for executors (issue 25): the operation's executor, its external id, and why a pending one
// waits. Run over SQLite and PostgreSQL through tests/store_contract.ts.
import { describe, expect, test } from "bun:test";
import type { Store } from "../src/store/store.ts";

export function executorsContract(open: () => Promise<Store>): void {
  describe("executor and external id", () => {
    test("an operation records the executor it was created with, and none when created without", async () => {
      const s = await open();
      const recipe = await s.createOperation({ operation_type: "training", status: "pending", executor: "slurm" });
      const client = await s.createOperation({ operation_type: "training" });
      expect(recipe).toMatchObject({ executor: "slurm", external_id: null });
      expect(await s.getOperation(client.operation_id)).toMatchObject({ executor: null, external_id: null });
      expect((await s.listOperations({ limit: 10, offset: 0 })).items.map((o) => o.executor).sort()).toEqual([
        null,
        "slurm",
      ]);
    });

    test("setExecution sets what it names and keeps the rest; null clears", async () => {
      const s = await open();
      const { operation_id: id } = await s.createOperation({
        operation_type: "training",
        status: "pending",
        executor: "slurm",
      });
      let op = await s.setExecution(id, { external_id: "4242" });
      expect(op).toMatchObject({ executor: "slurm", external_id: "4242" });
      op = await s.setExecution(id, { pending_reason: "Resources", queue_position: 2 });
      expect(op).toMatchObject({ external_id: "4242", pending_reason: "Resources", queue_position: 2 });
      expect(await s.getOperation(id)).toMatchObject({ pending_reason: "Resources", queue_position: 2 });
      op = await s.setExecution(id, { queue_position: null });
      expect(op.pending_reason).toBe("Resources");
      expect(op.queue_position).toBeUndefined();
    });

    test("the pending reason and queue position show only while pending", async () => {
      const s = await open();
      const { operation_id: id } = await s.createOperation({ operation_type: "training", status: "pending" });
      await s.setExecution(id, { pending_reason: "Priority", queue_position: 1 });
      const started = await s.markStarted(id);
      expect(started.status).toBe("running");
      expect(started).not.toHaveProperty("pending_reason");
      expect(started).not.toHaveProperty("queue_position");
      const done = await s.finish(id, "completed");
      expect(done).not.toHaveProperty("pending_reason");
    });

    test("a scheduler's cause refines a terminated goodbye, keeping when it ended; any other finish after it is refused", async () => {
      const s = await open();
      const { operation_id: id } = await s.createOperation({ operation_type: "training", executor: "slurm" });
      const goodbye = await s.finish(id, "failed", { error_message: "stopped by SIGTERM", failure_code: "terminated" });
      await expect(s.finish(id, "failed", { error_message: "x", failure_code: "trainer_error" })).rejects.toMatchObject(
        {
          code: "OPERATION_FINISHED",
        },
      );
      await expect(s.finish(id, "completed")).rejects.toMatchObject({ code: "OPERATION_FINISHED" });
      const refined = await s.finish(id, "failed", {
        error_message: "Slurm job 7 reached its time limit",
        failure_code: "time_limit",
      });
      expect(refined).toMatchObject({
        status: "failed",
        failure_code: "time_limit",
        error_message: "Slurm job 7 reached its time limit",
        completed_at: goodbye.completed_at,
      });
      expect(await s.getOperation(id)).toMatchObject({
        failure_code: "time_limit",
        completed_at: goodbye.completed_at,
      });
      await expect(s.finish(id, "failed", { failure_code: "preempted" })).rejects.toMatchObject({
        code: "OPERATION_FINISHED",
      });
    });

    test("unfinishedOf lists one executor's pending and running operations, in id order, nothing else", async () => {
      const s = await open();
      const make = (executor?: string) =>
        s.createOperation({ operation_type: "training", status: "pending", ...(executor ? { executor } : {}) });
      const a = await make("slurm");
      const b = await make("slurm");
      const done = await make("slurm");
      await make("local");
      await make();
      await s.markStarted(b.operation_id);
      await s.finish(done.operation_id, "completed");
      expect((await s.unfinishedOf("slurm")).map((o) => [o.operation_id, o.status])).toEqual([
        [a.operation_id, "pending"],
        [b.operation_id, "running"],
      ]);
      expect(await s.unfinishedOf("host")).toEqual([]);
    });

    test("cancelsOwed lists one executor's cancelled operations whose cancel note says the stop is owed", async () => {
      const s = await open();
      const cancelled = async (executor: string, cancel: Record<string, unknown>) => {
        const { operation_id: id } = await s.createOperation({
          operation_type: "training",
          status: "pending",
          executor,
        });
        await s.finish(id, "cancelled");
        await s.mergeMetadata(id, { cancel });
        return id;
      };
      const owed = await cancelled("slurm", { slurm: "not cancelled yet", owed: 7 });
      await cancelled("slurm", { slurm: "the word owed in a note is no debt" });
      await cancelled("slurm", { slurm: "job 8 cancelled" });
      await cancelled("host", { host: "unreachable", owed: null });
      const { operation_id: pending } = await s.createOperation({
        operation_type: "training",
        status: "pending",
        executor: "slurm",
      });
      await s.mergeMetadata(pending, { cancel: { owed: 9 } });
      expect((await s.cancelsOwed("slurm")).map((o) => o.operation_id)).toEqual([owed]);
      await s.mergeMetadata(owed, { cancel: { slurm: "job 7 cancelled" } });
      expect(await s.cancelsOwed("slurm")).toEqual([]);
    });

    test("setExecution of an unknown operation is OPERATION_NOT_FOUND", async () => {
      const s = await open();
      await expect(s.setExecution("op_training_20260101_000000_00000000", { external_id: "1" })).rejects.toMatchObject({
        code: "OPERATION_NOT_FOUND",
      });
    });
  });
}
