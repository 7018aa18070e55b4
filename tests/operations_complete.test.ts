// The rules of a trainer's "I finished" report (OperationsService.complete, behind POST /operations/{id}/complete),
// checked on the service over an in-memory store: the defaults of error_message and failure_code per status, and
// `cancelled` on an operation already cancelled recording only the result.
import { afterEach, describe, expect, test } from "bun:test";
import { OperationsService } from "../src/operations/service.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { TrainwatchError } from "../src/errors.ts";

let store: SqliteStore;
afterEach(() => store?.close());

async function running() {
  store = new SqliteStore(":memory:");
  const operations = new OperationsService(store);
  const op = await operations.createOperation({ operation_type: "training", status: "running" });
  return { operations, id: op.operation_id };
}

/** The TrainwatchError code `p` rejects with. */
async function codeOf(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (e) {
    return e instanceof TrainwatchError ? e.code : String(e);
  }
}

describe("OperationsService.complete", () => {
  test("failed without a message reads 'failed' and keeps the trainer's failure code", async () => {
    const { operations, id } = await running();
    const op = await operations.complete(id, { status: "failed", failure_code: "trainer_error" });
    expect(op).toMatchObject({ status: "failed", error_message: "failed", failure_code: "trainer_error" });
  });

  test("completed keeps a message when given and never carries a failure code", async () => {
    const { operations, id } = await running();
    const op = await operations.complete(id, {
      status: "completed",
      error_message: "stopped early",
      failure_code: "trainer_error",
      result: { best: 3 },
    });
    expect(op).toMatchObject({ status: "completed", error_message: "stopped early", failure_code: null });
    expect(op.result).toEqual({ best: 3 });
  });

  test("cancelled on a cancelled operation records only the result, and a repeat replaces it", async () => {
    const { operations, id } = await running();
    const cancelled = await operations.cancel(id, { by: "api" });
    const first = await operations.complete(id, { status: "cancelled", result: { checkpoints: [1] } });
    const again = await operations.complete(id, { status: "cancelled", result: { checkpoints: [1, 2] } });
    expect(first).toMatchObject({
      status: "cancelled",
      completed_at: cancelled.completed_at,
      control: cancelled.control,
    });
    expect(again.result).toEqual({ checkpoints: [1, 2] });
    expect(await operations.complete(id, { status: "cancelled" })).toEqual(again);
  });

  test("any other report on a finished operation is OPERATION_FINISHED; an unknown id OPERATION_NOT_FOUND", async () => {
    const { operations, id } = await running();
    await operations.complete(id, { status: "completed" });
    expect(await codeOf(operations.complete(id, { status: "cancelled", result: {} }))).toBe("OPERATION_FINISHED");
    expect(await codeOf(operations.complete("op_nope", { status: "completed" }))).toBe("OPERATION_NOT_FOUND");
  });
});
