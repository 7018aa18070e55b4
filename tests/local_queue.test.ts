// The local training queue, with a scripted trainer in place of the worker:
// concurrency, FIFO order, cancel, failures and restart recovery.
import { describe, expect, test } from "bun:test";
import { OperationsService } from "../src/operations/service.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { LocalTrainer, type StartTraining } from "../src/trainer/local.ts";
import { Dispatcher, INTERRUPTED } from "../src/trainer/dispatcher.ts";
import { startWorkerTraining } from "../src/trainer/worker_client.ts";
import { scriptedTrainer } from "./fixtures/trainer.ts";
import { tempDir, until } from "./helpers.ts";

const spec = (epochs = 2) => ({
  dataset: { kind: "synthetic" as const, generator: "spirals" as const },
  training: { epochs },
});

/** The queue on its own store, with a scripted trainer whose epochs end only when a test releases them. */
function setup(maxConcurrent: number, path = ":memory:") {
  const store = new SqliteStore(path);
  const operations = new OperationsService(store);
  const trainer = scriptedTrainer({ manual: true });
  const local = new LocalTrainer(operations, { maxConcurrent, modelsDir: "/tmp/unused", start: trainer });
  const dispatcher = new Dispatcher(operations, local, null, {
    useHostService: false,
    dataDir: "./data/datasets",
    maxModelMb: 1536,
  });
  const op = async (id: string) => (await store.getOperation(id))!;
  return { store, operations, local, dispatcher, started: trainer.started, release: trainer.release, op };
}

describe("local training queue", () => {
  test("runs at most TRAINWATCH_MAX_LOCAL_TRAININGS at once; the rest wait as pending and start in order", async () => {
    const t = setup(2);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await t.dispatcher.start(spec(1))).operation_id);
    expect(t.started).toEqual(ids.slice(0, 2));
    await until(
      "the first two running",
      async () => (await t.op(ids[0]!)).status === "running" && (await t.op(ids[1]!)).status === "running",
    );
    expect((await t.op(ids[2]!)).status).toBe("pending");
    t.release(ids[1]!); // second finishes first: the third starts, not the fourth
    await until("a third training started", () => t.started.length === 3);
    expect(t.started).toEqual(ids.slice(0, 3));
    expect((await t.op(ids[1]!)).status).toBe("completed");
    t.release(ids[0]!);
    await until("the fourth training started", () => t.started.length === 4);
    expect(t.started).toEqual(ids);
  });

  test("every epoch goes through the metrics write path and the backend is recorded", async () => {
    const t = setup(1);
    const id = (await t.dispatcher.start(spec(2))).operation_id;
    t.release(id, 2);
    const op = await until(
      "the training to complete",
      async () => (await t.op(id)).result !== null && (await t.op(id)),
    );
    expect(op.status).toBe("completed");
    expect(op.metadata.backend).toBe("scripted");
    expect(op.metadata.location).toBe("local");
    expect(op.trends.total_epochs_completed).toBe(2);
    expect(op.result?.stop_reason).toBe("completed");
    expect((await t.store.readEpochs(id)).map((e) => e.epoch)).toEqual([0, 1]);
  });

  test("cancelling a queued training removes it before it starts", async () => {
    const t = setup(1);
    const a = (await t.dispatcher.start(spec(1))).operation_id;
    const b = (await t.dispatcher.start(spec(1))).operation_id;
    await t.operations.finish(b, "cancelled"); // the DELETE route's order: mark, then stop the trainer
    await t.dispatcher.cancel(await t.op(b));
    t.release(a);
    // Once a's slot is free the queue has been pumped: a queued b would have started by now.
    await until(
      "a to finish and free its slot",
      async () => (await t.op(a)).result !== null && t.local.describe().running === 0,
    );
    expect(t.local.describe()).toMatchObject({ running: 0, queued: 0 });
    expect(t.started).toEqual([a]);
    expect((await t.op(b)).status).toBe("cancelled");
  });

  test("a cancelled running training keeps its result and stays cancelled", async () => {
    const t = setup(1);
    const id = (await t.dispatcher.start(spec(5))).operation_id;
    t.release(id);
    await until("epoch 0 stored", async () => (await t.store.readEpochs(id)).length === 1);
    await t.operations.finish(id, "cancelled");
    await t.dispatcher.cancel(await t.op(id));
    await t.local.settled(id);
    const op = await until("the result recorded", async () => (await t.op(id)).result !== null && (await t.op(id)));
    expect(op.status).toBe("cancelled");
    expect(op.result?.stop_reason).toBe("cancelled");
    expect(await t.store.readEpochs(id)).toHaveLength(1);
  });

  test("a storage failure is logged with the operation id and training goes on", async () => {
    const t = setup(1);
    const id = (await t.dispatcher.start(spec(2))).operation_id;
    const original = t.store.writeEpochs.bind(t.store);
    let failOnce = true;
    t.store.writeEpochs = (opId, epochs) => {
      if (failOnce) {
        failOnce = false;
        throw new Error("disk full");
      }
      return original(opId, epochs);
    };
    const logged: string[] = [];
    const err = console.error;
    console.error = (...a: unknown[]) => void logged.push(a.join(" "));
    try {
      t.release(id, 2);
      await until("the training to complete", async () => (await t.op(id)).status === "completed");
    } finally {
      console.error = err;
    }
    expect(logged.some((l) => l.includes(id) && l.includes("disk full"))).toBe(true);
    expect((await t.store.readEpochs(id)).map((e) => e.epoch)).toEqual([1]);
  });

  test("target host on a server with no host configured is refused and stores nothing", async () => {
    const t = setup(1);
    await expect(t.dispatcher.start(spec(1), "host")).rejects.toMatchObject({
      code: "HOST_UNAVAILABLE",
      message: expect.stringContaining("TRAINING_HOST_URL"),
    });
    expect((await t.store.listOperations({ limit: 10, offset: 0 })).total).toBe(0);
  });

  test("after a restart, local trainings left running are failed as interrupted and keep their epochs", async () => {
    const tmp = tempDir();
    try {
      const db = `${tmp.dir}/tw.db`;
      const first = setup(1, db);
      const id = (await first.dispatcher.start(spec(5))).operation_id;
      const queued = (await first.dispatcher.start(spec(5))).operation_id;
      const external = (
        await first.store.createOperation({ operation_type: "training", metadata: { location: "external" } })
      ).operation_id;
      first.release(id, 2);
      await until("two epochs stored", async () => (await first.store.readEpochs(id)).length === 2);
      first.store.close(); // the server dies here

      const second = setup(1, db);
      const failed = await second.dispatcher.recoverInterrupted();
      expect(failed.sort()).toEqual([id, queued].sort());
      const op = await second.op(id);
      expect(op.status).toBe("failed");
      expect(op.error_message).toBe(INTERRUPTED);
      expect((await second.store.readEpochs(id)).map((e) => e.epoch)).toEqual([0, 1]);
      expect((await second.op(external)).status).toBe("running");
      second.store.close();
    } finally {
      tmp.cleanup();
    }
  });
});

describe("cancel terminates a worker that does not stop", () => {
  test("a worker that ignores the cancel flag is terminated after the grace, and its slot is freed only then", async () => {
    const store = new SqliteStore(":memory:");
    const operations = new OperationsService(store);
    const GRACE_MS = 300;
    const starts: { id: string; at: number }[] = [];
    const closes: { id: string; at: number }[] = [];
    const start: StartTraining = (args, events) => {
      starts.push({ id: args.operationId, at: performance.now() });
      const handle = startWorkerTraining(args, events, {
        workerUrl: new URL("./fixtures/stubborn_worker.ts", import.meta.url).href,
        cancelGraceMs: GRACE_MS,
      });
      void handle.done.then(() => closes.push({ id: args.operationId, at: performance.now() }));
      return handle;
    };
    const local = new LocalTrainer(operations, { maxConcurrent: 1, modelsDir: "/tmp/unused", start });
    const dispatcher = new Dispatcher(operations, local, null, {
      useHostService: false,
      dataDir: "./data/datasets",
      maxModelMb: 1536,
    });
    const first = (await dispatcher.start(spec(1))).operation_id;
    const second = (await dispatcher.start(spec(1))).operation_id;
    await until(
      "the stubborn worker reporting batches",
      async () => (await store.getOperation(first))!.progress.batch !== undefined,
    );

    const cancelledAt = performance.now();
    await operations.finish(first, "cancelled");
    await dispatcher.cancel((await store.getOperation(first))!);
    expect(local.describe()).toMatchObject({ running: 1, queued: 1 }); // still holding the slot
    await local.settled(first);
    const closed = closes.find((c) => c.id === first)!;
    expect(closed.at - cancelledAt).toBeGreaterThanOrEqual(GRACE_MS - 5);
    // The second training got the slot only after the first worker's thread was gone.
    await until("the second training to start", () => starts.length === 2);
    expect(starts.map((s) => s.id)).toEqual([first, second]);
    expect(starts[1]!.at).toBeGreaterThanOrEqual(closed.at);
    // The result of a terminated worker still lists the checkpoints it had reported.
    expect(await store.getOperation(first)).toMatchObject({
      status: "cancelled",
      result: {
        stop_reason: "cancelled",
        backend: "stubborn",
        checkpoints: [{ epoch: 0, kind: "last", path: "/models/stubborn/checkpoints/epoch-0" }],
      },
    });
    await local.stopAll();
  }, 30_000);
});
