// One contract for every Store implementation, run once per implementation (tests/store.sqlite.test.ts,
// tests/store.postgres.test.ts), the way Hono runs one router suite over each of its routers: what a route, a trainer
// or the relay may rely on, whatever holds the data. Implementation details (files, WAL, pools) are tested beside each.
import { afterEach, describe, expect, test } from "bun:test";
import { MAX_METRIC_NAMES, type EpochRecord } from "../src/schemas/epoch.ts";
import type { Store } from "../src/store/store.ts";
import { BLOCK } from "../src/store/blocks.ts";
import { summarizeRows, summarizeTrends } from "../src/trends/index.ts";
import { DEFAULT_TREND_CONFIG, type TrendConfig } from "../src/trends/types.ts";
import { stepsContract } from "./store_contract_steps.ts";
import { cancelControl } from "../src/operations/stop_policy.ts";
import { systemContract } from "./store_contract_system.ts";
import { alertsContract } from "./store_contract_alerts.ts";
import { executorsContract } from "./store_contract_executors.ts";
import { searchContract } from "./store_contract_search.ts";

export interface OpenOptions {
  trends?: TrendConfig;
  liveness?: { lateAfterMs: number; now?: () => number };
}

/** A store on a fresh, empty database, and a way back to the same data through a new connection. */
export interface OpenedStore {
  store: Store;
  /** Closes `store` and opens the same database again. */
  reopen(): Promise<Store>;
}

export interface StoreFactory {
  open(opts?: OpenOptions): Promise<OpenedStore>;
  /** Releases whatever the test's open() calls made (stores, files, schemas); runs after each test. */
  cleanup(): Promise<void>;
}

export const TS = "2026-11-26T15:30:00.000Z";
/** Epochs from … from + count − 1: losses falling, val_loss turning up after epoch 30. */
export const curve = (from: number, count: number): EpochRecord[] =>
  Array.from({ length: count }, (_, i) => {
    const e = from + i;
    return {
      epoch: e,
      timestamp: TS,
      train_loss: 1 / (e + 1),
      val_loss: 1.2 / (e + 1) + (e > 30 ? 0.01 * (e - 30) : 0),
    };
  });

/** A JSON value nested `depth` objects deep. */
export function nested(depth: number): unknown {
  let v: unknown = "bottom";
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

/** Epochs with custom metrics of every kind (a null, a NaN, a slash, upper case) and without: a migration's fixture. */
export const NAMED: { epochs: EpochRecord[]; names: string[] } = {
  epochs: [
    { epoch: 0, timestamp: TS, train_loss: 1, custom: { "lr/head": 0.1, zeta: Number.NaN } },
    { epoch: 1, timestamp: TS, custom: { alpha: null, Beta: 2 } },
    { epoch: 2, timestamp: TS, train_loss: 0.5 },
  ],
  // JavaScript's order (code units): upper case first.
  names: ["Beta", "alpha", "lr/head", "zeta"],
};

/** Stored epochs as plain objects: custom metrics are keys of their own, which the wire type only allows loosely. */
const wire = async (s: Store, id: string) => (await s.readEpochs(id)) as Record<string, unknown>[];

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; details?: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected a rejection, got a result");
}

/**
 * Writes that touch chart blocks every way a store must handle: appends, re-posts, earlier epochs, NaN/Infinity,
 * a custom metric, and repeats of one epoch in one batch. Shared with the SQLite-only block tests (tests/store.test.ts).
 */
export async function writeBlockScenario(s: Pick<Store, "writeEpochs">, id: string): Promise<void> {
  const at = (e: number, loss: number, extra: Partial<EpochRecord> = {}): EpochRecord => ({
    epoch: e,
    timestamp: TS,
    train_loss: loss,
    ...extra,
  });
  await s.writeEpochs(
    id,
    Array.from({ length: 300 }, (_, i) => at(i, 1 / (i + 1))),
  );
  for (let e = 300; e < 310; e++) await s.writeEpochs(id, [at(e, e === 305 ? Number.NaN : 0.01)]);
  await s.writeEpochs(id, [at(12, 50), at(140, Number.POSITIVE_INFINITY, { custom: { grad_norm: 3 } })]);
  await s.writeEpochs(id, [at(1000, 0.5), at(999, Number.NaN), at(999, 0.25)]);
  await s.writeEpochs(id, [at(5, Number.NaN), at(6, Number.NaN), at(7, Number.NaN)]);
}

export function storeContract(name: string, factory: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    afterEach(() => factory.cleanup());
    const open = async (opts?: OpenOptions) => (await factory.open(opts)).store;
    stepsContract(open);
    systemContract(open);
    alertsContract(open);
    executorsContract(open);
    searchContract(open);

    describe("operations", () => {
      test("a new operation is running (or pending) with empty trends, and reads back the same", async () => {
        const s = await open();
        const op = await s.createOperation({
          operation_type: "training",
          name: "run 1",
          total_epochs_planned: 50,
          metadata: { lr: 0.1, nested: { a: [1, 2] } },
        });
        expect(op).toMatchObject({
          operation_type: "training",
          name: "run 1",
          status: "running",
          completed_at: null,
          error_message: null,
          failure_code: null,
          last_seen_at: null,
          stale: false,
          metadata: { lr: 0.1, nested: { a: [1, 2] } },
          result: null,
          progress: { percentage: 0, current_epoch: null, total_epochs: 50, epochs_completed: 0 },
          trends: { total_epochs_completed: 0, latest_epoch: null, best_epoch: null, monitor: null },
        });
        expect(op.operation_id).toMatch(/^op_training_\d{8}_\d{6}_[0-9a-f]{8}$/);
        expect(Date.parse(op.created_at)).toBeGreaterThan(0);
        expect(op.started_at).toBe(op.created_at);
        expect(await s.getOperation(op.operation_id)).toEqual(op);

        const pending = await s.createOperation({ operation_type: "training", status: "pending" });
        expect(pending).toMatchObject({ status: "pending", started_at: null, name: null, metadata: {} });
        expect(await s.getOperation("op_nope")).toBeNull();
      });

      test("lists newest first, filters by status and type, pages with a total", async () => {
        const s = await open();
        const a = await s.createOperation({ operation_type: "training" });
        const b = await s.createOperation({ operation_type: "eval" });
        const c = await s.createOperation({ operation_type: "training", status: "pending" });
        await s.finish(a.operation_id, "completed");
        const all = await s.listOperations({ limit: 10, offset: 0 });
        expect(all.total).toBe(3);
        expect(all.items.map((o) => o.operation_id)).toEqual([c.operation_id, b.operation_id, a.operation_id]);
        const page = await s.listOperations({ limit: 1, offset: 1 });
        expect(page).toMatchObject({ total: 3, items: [{ operation_id: b.operation_id }] });
        expect(
          (await s.listOperations({ status: "completed", limit: 10, offset: 0 })).items.map((o) => o.operation_id),
        ).toEqual([a.operation_id]);
        expect((await s.listOperations({ operation_type: "training", limit: 10, offset: 0 })).total).toBe(2);
        expect(
          await s.listOperations({ operation_type: "training", status: "pending", limit: 10, offset: 0 }),
        ).toMatchObject({
          total: 1,
          items: [{ operation_id: c.operation_id }],
        });
        expect(await s.listOperations({ status: "failed", limit: 10, offset: 0 })).toEqual({ items: [], total: 0 });
      });

      test("markStarted moves pending to running once; mergeMetadata merges in order", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training", status: "pending", metadata: { a: 1, b: 2 } });
        const started = await s.markStarted(op.operation_id);
        expect(started.status).toBe("running");
        expect(started.started_at).not.toBeNull();
        expect(await s.markStarted(op.operation_id)).toEqual(started);
        const merged = await s.mergeMetadata(op.operation_id, { b: 3, c: { gpu: "A100" } });
        expect(merged.metadata).toEqual({ a: 1, b: 3, c: { gpu: "A100" } });
        expect(Object.keys(merged.metadata)).toEqual(["a", "b", "c"]);
        expect((await s.getOperation(op.operation_id))!.metadata).toEqual(merged.metadata);
      });

      test("finish records status, time, error, failure code and result; a second finish is refused", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training", status: "pending" });
        const done = await s.finish(op.operation_id, "failed", {
          error_message: "boom",
          failure_code: "host_unreachable",
          result: { acc: 0.5 },
        });
        expect(done).toMatchObject({
          status: "failed",
          error_message: "boom",
          failure_code: "host_unreachable",
          result: { acc: 0.5 },
        });
        expect(done.completed_at).not.toBeNull();
        expect(done.started_at).not.toBeNull(); // a pending operation that finishes counts as started then

        const other = await s.createOperation({ operation_type: "training" });
        await s.setResult(other.operation_id, { kept: true });
        const completed = await s.finish(other.operation_id, "completed", { failure_code: "host_unreachable" });
        expect(completed).toMatchObject({
          status: "completed",
          failure_code: null,
          result: { kept: true },
          progress: { percentage: 100 },
        });
        const again = await rejection(s.finish(other.operation_id, "cancelled"));
        expect(again.code).toBe("OPERATION_FINISHED");
        expect(again.details).toMatchObject({ status: "completed" });
        expect((await s.getOperation(other.operation_id))!.status).toBe("completed");
      });

      test("setResult works after a cancel; every write to an unknown id is OPERATION_NOT_FOUND", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        await s.finish(op.operation_id, "cancelled");
        await s.setResult(op.operation_id, { best: 3 });
        expect((await s.getOperation(op.operation_id))!.result).toEqual({ best: 3 });
        const calls: [string, () => Promise<unknown>][] = [
          ["writeEpochs", () => s.writeEpochs("op_missing", curve(0, 1))],
          ["readEpochs", () => s.readEpochs("op_missing")],
          ["markStarted", () => s.markStarted("op_missing")],
          ["finish", () => s.finish("op_missing", "completed")],
          ["mergeMetadata", () => s.mergeMetadata("op_missing", { a: 1 })],
          ["setResult", () => s.setResult("op_missing", {})],
          ["setBatchProgress", () => s.setBatchProgress("op_missing", null)],
          ["touch", () => s.touch("op_missing")],
        ];
        for (const [what, call] of calls)
          expect([what, (await rejection(call())).code]).toEqual([what, "OPERATION_NOT_FOUND"]);
      });

      test("discardOperation removes only a pending operation without epochs", async () => {
        const s = await open();
        const a = await s.createOperation({ operation_type: "training", status: "pending" });
        expect(await s.discardOperation(a.operation_id)).toBe(true);
        expect(await s.getOperation(a.operation_id)).toBeNull();
        expect(await s.discardOperation(a.operation_id)).toBe(false);

        const running = await s.createOperation({ operation_type: "training" });
        expect(await s.discardOperation(running.operation_id)).toBe(false);
        const cancelled = await s.createOperation({ operation_type: "training", status: "pending" });
        await s.finish(cancelled.operation_id, "cancelled");
        expect(await s.discardOperation(cancelled.operation_id)).toBe(false);
        expect((await s.getOperation(cancelled.operation_id))!.status).toBe("cancelled");
      });

      test("batch progress shows while running, is cleared by null, and is ignored once finished", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training", total_epochs_planned: 10 });
        await s.writeEpochs(op.operation_id, curve(0, 2));
        await s.setBatchProgress(op.operation_id, { epoch: 2, batch: 5, batches: 10 });
        expect((await s.getOperation(op.operation_id))!.progress).toEqual({
          percentage: 25,
          current_epoch: 1,
          total_epochs: 10,
          epochs_completed: 2,
          batch: { epoch: 2, batch: 5, batches: 10 },
        });
        await s.setBatchProgress(op.operation_id, null);
        expect((await s.getOperation(op.operation_id))!.progress.batch).toBeUndefined();
        await s.setBatchProgress(op.operation_id, { epoch: 2, batch: 1, batches: 10 });
        await s.finish(op.operation_id, "completed");
        await s.setBatchProgress(op.operation_id, { epoch: 2, batch: 9, batches: 10 });
        expect((await s.getOperation(op.operation_id))!.progress.batch).toBeUndefined();
      });
    });

    describe("stop policy and control", () => {
      const control = (reason: string) => ({
        action: "stop" as const,
        reason,
        checkpoint_epoch: 3,
        decided_by: "stop_policy",
        epoch: 4,
        at: TS,
      });

      test("config and stop policy are kept as given; a write reports the policy and the decision it locked", async () => {
        const s = await open();
        const policy = { on: ["plateau" as const, "diverging" as const], min_epochs: 5 };
        const op = await s.createOperation({
          operation_type: "training",
          config: { lr: 0.1, layers: [64, 32] },
          stop_policy: policy,
        });
        expect(op).toMatchObject({ config: { lr: 0.1, layers: [64, 32] }, stop_policy: policy, control: null });
        expect(await s.writeEpochs(op.operation_id, curve(0, 2))).toMatchObject({ stopPolicy: policy, control: null });
        await s.setControl(op.operation_id, control("plateau"));
        expect((await s.getOperation(op.operation_id))!.control).toEqual(control("plateau"));
        expect(await s.writeEpochs(op.operation_id, curve(2, 1))).toMatchObject({
          stopPolicy: policy,
          control: control("plateau"),
        });
        const bare = await s.createOperation({ operation_type: "training" });
        expect(bare).toMatchObject({ config: null, stop_policy: null, control: null });
        expect((await rejection(s.setControl("op_missing", control("x")))).code).toBe("OPERATION_NOT_FOUND");
      });

      test("the policy is set and cleared while the operation runs, refused once it finished", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training", status: "pending" });
        const policy = { on: ["stalled" as const], min_epochs: 0 };
        expect((await s.setStopPolicy(op.operation_id, policy)).stop_policy).toEqual(policy);
        expect((await s.setStopPolicy(op.operation_id, null)).stop_policy).toBeNull();
        await s.finish(op.operation_id, "cancelled", { control: control("cancelled by api: enough") });
        const err = await rejection(s.setStopPolicy(op.operation_id, policy));
        expect(err.code).toBe("OPERATION_FINISHED");
        expect(err.details).toMatchObject({ status: "cancelled", control: control("cancelled by api: enough") });
        expect((await s.getOperation(op.operation_id))!.stop_policy).toBeNull();
      });

      test("a finish records its decision, or keeps the one recorded before; refusals carry it", async () => {
        const s = await open();
        const a = await s.createOperation({ operation_type: "training" });
        await s.setControl(a.operation_id, control("overfitting"));
        expect((await s.finish(a.operation_id, "completed")).control).toEqual(control("overfitting"));
        const refused = await rejection(s.writeEpochs(a.operation_id, curve(0, 1)));
        expect(refused.details).toMatchObject({ status: "completed", control: control("overfitting") });
        const b = await s.createOperation({ operation_type: "training" });
        expect(
          (await s.finish(b.operation_id, "cancelled", { control: control("cancelled by mcp: x") })).control,
        ).toEqual(control("cancelled by mcp: x"));
        expect((await rejection(s.finish(b.operation_id, "completed"))).details).toMatchObject({
          control: control("cancelled by mcp: x"),
        });
      });
    });

    describe("the epoch a trainer finishes after a cancel", () => {
      test("a cancelled operation stores the epoch in progress at the cancel, judges it, advises its checkpoint, and refuses a later one", async () => {
        const s = await open();
        const id = (await s.createOperation({ operation_type: "training" })).operation_id;
        await s.writeEpochs(id, curve(0, 3));
        const cancel = cancelControl({ by: "test" }, (await s.getOperation(id))!.trends, TS);
        expect(cancel).toMatchObject({ epoch: 2, checkpoint_epoch: 2 });
        const finished = await s.finish(id, "cancelled", { control: cancel });
        // Epoch 3 was running when the cancel came; it is better than every stored epoch.
        const moved = { ...cancel, checkpoint_epoch: 3 };
        const res = await s.writeEpochs(id, curve(3, 1));
        expect(res).toMatchObject({ stored: 1, revived: false, control: moved });
        expect(res.trends).toMatchObject({ latest_epoch: 3, best_epoch: 3, total_epochs_completed: 4 });
        expect(await s.getOperation(id)).toMatchObject({
          status: "cancelled",
          completed_at: finished.completed_at,
          control: moved,
          trends: { latest_epoch: 3, best_epoch: 3 },
        });
        expect((await s.readEpochs(id)).map((e) => e.epoch)).toEqual([0, 1, 2, 3]);
        // A re-post of it (a retry) is taken too; the epoch after it began after the cancel: refused, nothing stored.
        expect((await s.writeEpochs(id, curve(3, 1))).stored).toBe(1);
        for (const batch of [curve(4, 1), curve(3, 2)]) {
          const err = await rejection(s.writeEpochs(id, batch));
          expect(err.code).toBe("OPERATION_FINISHED");
          expect(err.details).toMatchObject({ status: "cancelled", control: moved });
        }
        expect((await s.readEpochs(id)).map((e) => e.epoch)).toEqual([0, 1, 2, 3]);
      });
    });

    describe("epochs", () => {
      test("round-trips every field in wire form, ascending, after since_epoch", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        await s.writeEpochs(op.operation_id, [
          { epoch: 2, timestamp: "2026-11-26T15:30:02.000Z", train_loss: 0.5, custom: { "grad/norm": 1.5, zero: 0 } },
          {
            epoch: 0,
            timestamp: "2026-11-26T15:30:00.000Z",
            train_loss: 1,
            val_loss: 1.1,
            train_accuracy: 0.2,
            val_accuracy: 0.25,
            learning_rate: 0.01,
            duration: 1.5,
          },
          { epoch: 1, timestamp: "2026-11-26T15:30:01.123Z", train_loss: 0.7, val_loss: null },
        ]);
        expect(await wire(s, op.operation_id)).toEqual([
          {
            epoch: 0,
            train_loss: 1,
            val_loss: 1.1,
            train_accuracy: 0.2,
            val_accuracy: 0.25,
            learning_rate: 0.01,
            duration: 1.5,
            timestamp: "2026-11-26T15:30:00.000Z",
          },
          { epoch: 1, train_loss: 0.7, timestamp: "2026-11-26T15:30:01.123Z" },
          { epoch: 2, train_loss: 0.5, "grad/norm": 1.5, zero: 0, timestamp: "2026-11-26T15:30:02.000Z" },
        ]);
        expect((await s.readEpochs(op.operation_id, 0)).map((e) => e.epoch)).toEqual([1, 2]);
        expect(await s.readEpochs(op.operation_id, 2)).toEqual([]);
        const empty = await s.createOperation({ operation_type: "training" });
        expect(await s.readEpochs(empty.operation_id)).toEqual([]);
      });

      test("NaN and ±Infinity are data (never null), in standard and custom fields, and the summary sees them", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        const res = await s.writeEpochs(op.operation_id, [
          { epoch: 0, timestamp: TS, train_loss: 1, val_loss: 1 },
          {
            epoch: 1,
            timestamp: TS,
            train_loss: Number.NaN,
            val_loss: Number.POSITIVE_INFINITY,
            learning_rate: Number.NEGATIVE_INFINITY,
            custom: { grad_norm: Number.NaN, up: Number.POSITIVE_INFINITY, nothing: null },
          },
        ]);
        expect((await wire(s, op.operation_id))[1]).toEqual({
          epoch: 1,
          train_loss: "NaN",
          val_loss: "Infinity",
          learning_rate: "-Infinity",
          grad_norm: "NaN",
          up: "Infinity",
          nothing: null,
          timestamp: TS,
        });
        expect(res.trends).toMatchObject({
          is_diverging: true,
          best_epoch: 0,
          latest_epoch: 1,
          total_epochs_completed: 2,
        });
        expect(res.trends).toEqual(
          summarizeTrends([
            { epoch: 0, train_loss: 1, val_loss: 1 },
            { epoch: 1, train_loss: Number.NaN, val_loss: Number.POSITIVE_INFINITY },
          ]),
        );
      });

      test("re-posting an epoch replaces it whole; posting the same batch twice stores it once", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        const batch = curve(0, 5);
        await s.writeEpochs(op.operation_id, batch);
        const first = await s.getOperation(op.operation_id);
        expect((await s.writeEpochs(op.operation_id, batch)).stored).toBe(5);
        expect(await s.readEpochs(op.operation_id)).toHaveLength(5);
        expect((await s.getOperation(op.operation_id))!.trends).toEqual(first!.trends);

        await s.writeEpochs(op.operation_id, [{ epoch: 3, timestamp: TS, train_loss: 9, custom: { extra: 1 } }]);
        await s.writeEpochs(op.operation_id, [{ epoch: 2, timestamp: TS, val_loss: 0.01 }]);
        const rows = await wire(s, op.operation_id);
        expect(rows[2]).toEqual({ epoch: 2, val_loss: 0.01, timestamp: TS });
        expect(rows[3]).toEqual({ epoch: 3, train_loss: 9, extra: 1, timestamp: TS });
        const history = batch.map((e) =>
          e.epoch === 3 ? { epoch: 3, train_loss: 9 } : e.epoch === 2 ? { epoch: 2, val_loss: 0.01 } : e,
        );
        expect((await s.getOperation(op.operation_id))!.trends).toEqual(summarizeTrends(history));
      });

      test("a batch naming one epoch twice keeps the last copy", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        const res = await s.writeEpochs(op.operation_id, [
          { epoch: 0, timestamp: TS, train_loss: 1 },
          { epoch: 1, timestamp: TS, train_loss: 0.9 },
          { epoch: 0, timestamp: TS, train_loss: 0.5, custom: { second: 1 } },
        ]);
        expect(res.stored).toBe(3);
        expect(await wire(s, op.operation_id)).toEqual([
          { epoch: 0, train_loss: 0.5, second: 1, timestamp: TS },
          { epoch: 1, train_loss: 0.9, timestamp: TS },
        ]);
        expect(res.trends).toEqual(
          summarizeTrends([
            { epoch: 0, train_loss: 0.5 },
            { epoch: 1, train_loss: 0.9 },
          ]),
        );
      });

      test("the incrementally kept trend summary matches a full recompute, whatever the write pattern", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        const history = curve(0, 120);
        // Single epochs, batches shorter and longer than the rules' tail, one out of order.
        const chunks = [
          [0, 1],
          [1, 7],
          [7, 30],
          [30, 31],
          [31, 60],
          [60, 61],
          [61, 100],
        ] as const;
        for (const [a, b] of chunks) {
          await s.writeEpochs(op.operation_id, history.slice(a, b));
          expect((await s.getOperation(op.operation_id))!.trends).toEqual(summarizeTrends(history.slice(0, b)));
        }
        await s.writeEpochs(op.operation_id, history.slice(100, 120).reverse());
        expect((await s.getOperation(op.operation_id))!.trends).toEqual(summarizeTrends(history));

        history[12] = { ...history[12]!, val_loss: 0.001 };
        await s.writeEpochs(op.operation_id, [history[12]!]);
        expect((await s.getOperation(op.operation_id))!.trends).toEqual(summarizeTrends(history));

        const resumed = { epoch: 121, timestamp: TS, train_loss: Number.NaN };
        const res = await s.writeEpochs(op.operation_id, [resumed]);
        expect(res.trends).toEqual(summarizeTrends([...history, resumed]));
        expect((await s.getOperation(op.operation_id))!.trends).toEqual(res.trends);
      });

      test("a train-only run that gains val_loss switches monitor and recomputes", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        const trainOnly = curve(0, 30).map(({ val_loss: _, ...e }) => e);
        await s.writeEpochs(op.operation_id, trainOnly);
        expect((await s.getOperation(op.operation_id))!.trends.monitor).toBe("train_loss");
        const later = curve(30, 25);
        const res = await s.writeEpochs(op.operation_id, later);
        expect(res.trends.monitor).toBe("val_loss");
        expect(res.trends).toEqual(summarizeTrends([...trainOnly, ...later]));
      });

      test("the trend config applies: a shorter patience plateaus sooner", async () => {
        const s = await open({ trends: { ...DEFAULT_TREND_CONFIG, plateau_patience: 3 } });
        const op = await s.createOperation({ operation_type: "training" });
        const flat = [1, 0.5, 0.6, 0.6, 0.6].map((v, epoch) => ({ epoch, timestamp: TS, train_loss: v }));
        expect((await s.writeEpochs(op.operation_id, flat)).trends).toMatchObject({
          best_epoch: 1,
          epochs_since_improvement: 3,
          is_plateaued: true,
        });
      });

      test("the first write starts a pending operation and reports the change; later writes do not", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training", status: "pending" });
        const first = await s.writeEpochs(op.operation_id, curve(0, 2));
        expect(first).toMatchObject({ stored: 2, revived: false, statusChanged: true });
        const now = (await s.getOperation(op.operation_id))!;
        expect(now.status).toBe("running");
        expect(now.started_at).not.toBeNull();
        expect(Date.parse(now.last_seen_at!)).toBeGreaterThan(Date.now() - 60_000);
        expect(await s.writeEpochs(op.operation_id, curve(2, 1))).toMatchObject({
          revived: false,
          statusChanged: false,
        });
      });

      test("a write revives a host-unreachable failure, and no other finished operation", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training", metadata: { location: "host" } });
        await s.writeEpochs(op.operation_id, curve(0, 3));
        await s.finish(op.operation_id, "failed", {
          error_message: "training host unreachable",
          failure_code: "host_unreachable",
        });
        const res = await s.writeEpochs(op.operation_id, curve(3, 2));
        expect(res).toMatchObject({ revived: true, statusChanged: true, stored: 2 });
        expect(await s.getOperation(op.operation_id)).toMatchObject({
          status: "running",
          error_message: null,
          failure_code: null,
          completed_at: null,
        });

        await s.finish(op.operation_id, "failed", { error_message: "worker crashed" });
        expect((await rejection(s.writeEpochs(op.operation_id, curve(5, 1)))).code).toBe("OPERATION_FINISHED");
      });
    });

    describe("chart reads", () => {
      test("ranges, the epochs before one, and a chosen set read what is stored", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        await s.writeEpochs(
          op.operation_id,
          curve(0, 50).filter((e) => e.epoch % 5 !== 0),
        );
        const epochs = async (p: Promise<{ epoch: number }[]>) => (await p).map((e) => e.epoch);
        expect(await epochs(s.readEpochs(op.operation_id, 9, 14))).toEqual([11, 12, 13, 14]);
        expect(await epochs(s.readEpochs(op.operation_id, 45))).toEqual([46, 47, 48, 49]);
        expect(await epochs(s.readEpochsBefore(op.operation_id, 20, 4))).toEqual([16, 17, 18, 19]);
        expect(await epochs(s.readEpochsBefore(op.operation_id, 3, 10))).toEqual([1, 2]);
        expect(await epochs(s.readEpochsAt(op.operation_id, [49, 3, 5, 7, 1000]))).toEqual([3, 7, 49]);
        expect(await s.readEpochsAt(op.operation_id, [])).toEqual([]);
        expect((await s.readEpochsAt(op.operation_id, [7]))[0]).toEqual(
          (await s.readEpochs(op.operation_id, 6, 7))[0]!,
        );
        for (const call of [
          () => s.readEpochsBefore("op_missing", 5, 5),
          () => s.readEpochsAt("op_missing", [1]),
          () => s.epochSpans("op_missing", 0, 9),
        ]) {
          expect((await rejection(call())).code).toBe("OPERATION_NOT_FOUND");
        }
      });

      test("a read of fields is the full read restricted to them (key order, NaN, ±Infinity, null and custom metrics kept)", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        const odd = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
        await s.writeEpochs(
          op.operation_id,
          Array.from({ length: 40 }, (_, e): EpochRecord => {
            const custom: Record<string, number | null> = {};
            if (e % 4 !== 3) custom.grad_norm = e % 7 === 0 ? odd[e % 3]! : e % 9 === 0 ? null : 0.1 + e / 3;
            if (e % 2 === 0) custom["acc/top5"] = e === 10 ? Number.NaN : 1 - 1 / (e + 3);
            return {
              epoch: e,
              timestamp: new Date(Date.parse(TS) + e * 1000).toISOString(),
              train_loss: e % 5 === 0 ? odd[e % 3]! : 1 / (e + 1),
              ...(e % 3 === 0 ? {} : { val_loss: e === 8 ? Number.NaN : 1.1 / (e + 1) }),
              learning_rate: e === 20 ? Number.NEGATIVE_INFINITY : 0.001,
              ...(Object.keys(custom).length > 0 && { custom }),
            };
          }),
        );
        const id = op.operation_id;
        const restrict = (rows: object[], fields: string[]) =>
          rows.map((r) => {
            const out: Record<string, unknown> = { epoch: (r as { epoch: number }).epoch };
            for (const f of fields) {
              const v = (r as Record<string, unknown>)[f];
              if (v !== undefined) out[f] = v;
            }
            return out;
          });
        // JSON as the wire sends it: key order counts, and "NaN" / "Infinity" stay the strings they are.
        const same = (got: object[], full: object[], fields: string[]) =>
          expect(JSON.stringify(got)).toBe(JSON.stringify(restrict(full, fields)));
        for (const fields of [
          ["val_loss"],
          ["train_loss"],
          ["grad_norm"],
          ["acc/top5", "train_loss"],
          ["grad_norm", "learning_rate", "timestamp", "val_loss"],
          ["epoch", "timestamp"],
          ["no_such_metric"],
        ]) {
          same(await s.readEpochs(id, -1, undefined, fields), await s.readEpochs(id), fields);
          same(await s.readEpochs(id, 9, 30, fields), await s.readEpochs(id, 9, 30), fields);
          same(await s.readEpochsBefore(id, 25, 12, fields), await s.readEpochsBefore(id, 25, 12), fields);
          same(
            await s.readEpochsAt(id, [0, 7, 8, 14, 35, 99], fields),
            await s.readEpochsAt(id, [0, 7, 8, 14, 35, 99]),
            fields,
          );
        }
        // The values are the data's: a projection that dropped NaN, ±Infinity or a custom null would differ above, and here.
        const grad = (await s.readEpochs(id, -1, undefined, ["grad_norm"])) as Record<string, unknown>[];
        expect(grad.slice(0, 4)).toEqual([
          { epoch: 0, grad_norm: "NaN" },
          { epoch: 1, grad_norm: 0.1 + 1 / 3 },
          { epoch: 2, grad_norm: 0.1 + 2 / 3 },
          { epoch: 3 },
        ]);
        expect(grad[28]).toEqual({ epoch: 28, grad_norm: "Infinity" });
        expect(grad[14]).toEqual({ epoch: 14, grad_norm: "-Infinity" });
        expect(grad[9]).toEqual({ epoch: 9, grad_norm: null });
        expect((await s.readEpochs(id, 4, 6, ["train_loss"]))[0]).toEqual({ epoch: 5, train_loss: "-Infinity" });
        expect(await s.readEpochsAt(id, [], ["val_loss"])).toEqual([]);
        for (const call of [
          () => s.readEpochs("op_missing", -1, undefined, ["val_loss"]),
          () => s.readEpochsBefore("op_missing", 5, 5, ["val_loss"]),
          () => s.readEpochsAt("op_missing", [1], ["grad_norm"]),
        ]) {
          expect((await rejection(call())).code).toBe("OPERATION_NOT_FOUND");
        }
      });

      test("every write keeps each block's summary equal to a summary of its rows: appends, re-posts, earlier epochs, repeats", async () => {
        const s = await open();
        const id = (await s.createOperation({ operation_type: "training" })).operation_id;
        await writeBlockScenario(s, id);
        const rows = await s.readEpochs(id);
        for (const b of new Set(rows.map((r) => Math.floor(r.epoch / BLOCK)))) {
          const inBlock = rows.filter((r) => Math.floor(r.epoch / BLOCK) === b);
          expect([b, await s.epochSpans(id, b * BLOCK, b * BLOCK + BLOCK - 1)]).toEqual([b, [summarizeRows(inBlock)]]);
        }
        expect((await s.epochSpans(id, 0, 2000)).reduce((n, sp) => n + sp.count, 0)).toBe(rows.length);
      });

      test("spans cover exactly the range asked for, edges summarised from rows", async () => {
        const s = await open();
        const id = (await s.createOperation({ operation_type: "training" })).operation_id;
        await s.writeEpochs(
          id,
          Array.from({ length: 1000 }, (_, i) => ({ epoch: i, timestamp: TS, train_loss: i })),
        );
        for (const [from, to] of [
          [0, 999],
          [5, 900],
          [130, 250],
          [200, 210],
          [0, 0],
          [999, 5000],
        ] as const) {
          const spans = await s.epochSpans(id, from, to);
          expect(spans[0]!.from).toBe(from);
          expect(spans[spans.length - 1]!.to).toBe(Math.min(to, 999));
          expect(spans.reduce((n, sp) => n + sp.count, 0)).toBe((await s.readEpochs(id, from - 1, to)).length);
          for (let i = 1; i < spans.length; i++) expect(spans[i]!.from).toBeGreaterThan(spans[i - 1]!.to);
        }
        expect(await s.epochSpans(id, 2000, 3000)).toEqual([]);
      });
    });

    describe("custom metric names and paged reads", () => {
      /** Metric names that sort as numbered: m000, m001, … */
      const metric = (i: number) => `m${String(i).padStart(3, "0")}`;
      const withNames = (epoch: number, names: readonly string[]): EpochRecord => ({
        epoch,
        timestamp: TS,
        train_loss: 1 / (epoch + 1),
        custom: Object.fromEntries(names.map((n) => [n, epoch])),
      });
      const LIMIT = Array.from({ length: MAX_METRIC_NAMES }, (_, i) => metric(i));

      test("an operation holds at most MAX_METRIC_NAMES custom names: exactly the limit is stored, one past it is refused whole, known names pass", async () => {
        const opened = await factory.open();
        const s = opened.store;
        const id = (await s.createOperation({ operation_type: "training" })).operation_id;
        expect(await s.metricNames(id)).toEqual([]);
        // One new name per epoch up to one short of the limit, then a batch that brings exactly the last one.
        await s.writeEpochs(
          id,
          LIMIT.slice(0, -1).map((n, i) => withNames(i, [n])),
        );
        await s.writeEpochs(id, [withNames(MAX_METRIC_NAMES - 1, [LIMIT.at(-1)!, metric(0)])]);
        expect(await s.metricNames(id)).toEqual(LIMIT);
        const before = await s.getOperation(id);

        // Past it: the third epoch of the batch names a new metric; the known names before it do not save the batch.
        const err = await rejection(
          s.writeEpochs(id, [
            withNames(1000, [metric(3)]),
            withNames(1001, []),
            withNames(1002, [metric(7), "zz_new"]),
          ]),
        );
        expect(err.code).toBe("VALIDATION_ERROR");
        expect(err.details).toMatchObject({ field: "body.epochs.2.zz_new", limit: MAX_METRIC_NAMES, epoch: 1002 });
        expect(err.message).toContain(`at most ${MAX_METRIC_NAMES} distinct custom metric names`);
        expect(await s.readEpochs(id, 999)).toEqual([]);
        expect(await s.getOperation(id)).toEqual(before);
        expect(await s.metricNames(id)).toEqual(LIMIT);

        // Re-posting known names, every one of them in one epoch or some in a replaced epoch, passes.
        await s.writeEpochs(id, [withNames(MAX_METRIC_NAMES, LIMIT), withNames(0, [metric(5), metric(200)])]);
        expect(await s.metricNames(id)).toEqual(LIMIT);
        expect((await s.readEpochs(id)).length).toBe(MAX_METRIC_NAMES + 1);

        // The names are stored, not remembered: a new connection refuses the same batch.
        const again = await opened.reopen();
        expect(await again.metricNames(id)).toEqual(LIMIT);
        expect((await rejection(again.writeEpochs(id, [withNames(2000, ["zz_new"])]))).code).toBe("VALIDATION_ERROR");
      });

      test("the kept names are every custom name the epochs hold, whatever the write pattern", async () => {
        const s = await open();
        const id = (await s.createOperation({ operation_type: "training" })).operation_id;
        await s.writeEpochs(id, [withNames(5, ["b", "a/x"]), withNames(1, ["c"])]);
        await s.writeEpochs(id, [withNames(2, [])]);
        await s.writeEpochs(id, [
          withNames(9, ["a/x", "Z", "lr-head"]),
          { ...withNames(3, []), custom: { nan: Number.NaN } },
        ]);
        const other = (await s.createOperation({ operation_type: "training" })).operation_id;
        await writeBlockScenario(s, other);
        expect(await s.metricNames(other)).toEqual(["grad_norm"]);
        const held = new Set((await s.readEpochs(id)).flatMap((e) => Object.keys(e)));
        for (const f of ["epoch", "timestamp", "train_loss"]) held.delete(f);
        expect(await s.metricNames(id)).toEqual([...held].sort());
        expect(await s.metricNames(id)).toEqual(["Z", "a/x", "b", "c", "lr-head", "nan"]);
      });

      test("concurrent writes of new names never take an operation past the limit", async () => {
        const s = await open();
        const id = (await s.createOperation({ operation_type: "training" })).operation_id;
        const half = MAX_METRIC_NAMES / 2 + 1;
        const results = await Promise.allSettled(
          [0, 1].map((w) =>
            s.writeEpochs(id, [
              withNames(
                w,
                Array.from({ length: half }, (_, i) => `w${w}_${i}`),
              ),
            ]),
          ),
        );
        expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
        expect((await s.metricNames(id)).length).toBe(half);
        expect(await s.readEpochs(id)).toHaveLength(1);
      });

      test("pages read every epoch once, ascending, in wire form as the full read, across gaps in the numbering", async () => {
        const s = await open();
        const id = (await s.createOperation({ operation_type: "training" })).operation_id;
        const epochs = [0, 1, 2, 7, 8, 50, 51, 52, 1000, 2 ** 31 - 1];
        await s.writeEpochs(id, [
          ...epochs.map((e) => withNames(e, e % 2 ? ["odd"] : [])),
          { epoch: 8, timestamp: TS, val_loss: Number.NaN, train_loss: Number.POSITIVE_INFINITY },
        ]);
        const all = await s.readEpochs(id);
        for (const size of [1, 3, 10, 11]) {
          const pages: unknown[][] = [];
          let after = -1;
          for (;;) {
            const page = await s.readEpochPage(id, after, size);
            if (page.length > 0) pages.push(page);
            if (page.length < size) break;
            after = page.at(-1)!.epoch;
          }
          expect(pages.flat()).toEqual(all);
          expect(pages.every((p) => p.length <= size)).toBe(true);
        }
        expect(await s.readEpochPage(id, 2 ** 31 - 1, 5)).toEqual([]);
        expect((await rejection(s.readEpochPage("op_missing", -1, 5))).code).toBe("OPERATION_NOT_FOUND");
        expect((await rejection(s.metricNames("op_missing"))).code).toBe("OPERATION_NOT_FOUND");
      });
    });

    describe("a refused request stores nothing", () => {
      test("a write to a finished operation is OPERATION_FINISHED and leaves epochs, trends and status as they were", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        await s.writeEpochs(op.operation_id, curve(0, 3));
        for (const status of ["completed", "cancelled"] as const) {
          const o = status === "completed" ? op : await s.createOperation({ operation_type: "training" });
          await s.finish(o.operation_id, status);
          const before = await s.getOperation(o.operation_id);
          const err = await rejection(s.writeEpochs(o.operation_id, curve(3, 40)));
          expect(err.code).toBe("OPERATION_FINISHED");
          expect(err.details).toMatchObject({ operation_id: o.operation_id, status });
          expect(await s.getOperation(o.operation_id)).toEqual(before);
          expect(await s.readEpochs(o.operation_id)).toHaveLength(status === "completed" ? 3 : 0);
        }
      });

      test("a batch that fails part-way leaves nothing: no epoch, no summary, no start, no revive", async () => {
        const opened = await factory.open();
        const s = opened.store;
        const op = await s.createOperation({ operation_type: "training" });
        await s.writeEpochs(op.operation_id, curve(0, 3));
        const before = await s.getOperation(op.operation_id);
        // Epochs 3…9 come before the 8th record's unusable timestamp, which the store cannot keep.
        const batch = curve(3, 40);
        batch[7] = { ...batch[7]!, timestamp: "not a date" };
        await rejection(s.writeEpochs(op.operation_id, batch));
        expect((await s.readEpochs(op.operation_id)).map((e) => e.epoch)).toEqual([0, 1, 2]);
        expect(await s.getOperation(op.operation_id)).toEqual(before);

        const pending = await s.createOperation({ operation_type: "training", status: "pending" });
        await rejection(s.writeEpochs(pending.operation_id, batch));
        expect(await s.getOperation(pending.operation_id)).toMatchObject({
          status: "pending",
          started_at: null,
          last_seen_at: null,
        });

        const lost = await s.createOperation({ operation_type: "training", metadata: { location: "host" } });
        await s.finish(lost.operation_id, "failed", {
          error_message: "training host unreachable",
          failure_code: "host_unreachable",
        });
        await rejection(s.writeEpochs(lost.operation_id, batch));
        expect(await s.getOperation(lost.operation_id)).toMatchObject({
          status: "failed",
          failure_code: "host_unreachable",
        });

        // And a new connection sees the same.
        const again = await opened.reopen();
        expect((await again.readEpochs(op.operation_id)).map((e) => e.epoch)).toEqual([0, 1, 2]);
        expect((await again.getOperation(op.operation_id))!.trends).toEqual(before!.trends);
      });
    });

    describe("concurrency and durability", () => {
      test("concurrent writes to one operation all land, and the summary counts each once", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        const history = curve(0, 200);
        await Promise.all(
          Array.from({ length: 20 }, (_, i) => s.writeEpochs(op.operation_id, history.slice(i * 10, i * 10 + 10))),
        );
        expect(await s.readEpochs(op.operation_id)).toHaveLength(200);
        expect((await s.getOperation(op.operation_id))!.trends).toEqual(summarizeTrends(history));
      });

      test("concurrent finishes: exactly one wins, the others are OPERATION_FINISHED", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        const results = await Promise.allSettled([
          s.finish(op.operation_id, "completed"),
          s.finish(op.operation_id, "cancelled"),
          s.finish(op.operation_id, "failed", { error_message: "x" }),
        ]);
        expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        for (const r of results)
          if (r.status === "rejected") expect((r.reason as { code: string }).code).toBe("OPERATION_FINISHED");
      });

      test("reopening keeps operations, epochs and trends, and keeps accepting writes where it left off", async () => {
        const opened = await factory.open();
        const first = opened.store;
        const op = await first.createOperation({
          operation_type: "training",
          name: "keep me",
          total_epochs_planned: 50,
        });
        await first.writeEpochs(op.operation_id, curve(0, 40));
        const before = await first.getOperation(op.operation_id);
        const epochsBefore = await first.readEpochs(op.operation_id);
        const second = await opened.reopen();
        expect(await second.getOperation(op.operation_id)).toEqual(before);
        expect(await second.readEpochs(op.operation_id)).toEqual(epochsBefore);
        expect((await second.listOperations({ limit: 10, offset: 0 })).total).toBe(1);
        expect((await second.writeEpochs(op.operation_id, curve(40, 5))).trends).toEqual(summarizeTrends(curve(0, 45)));
      });
    });

    describe("liveness and recovery", () => {
      test("touch stamps last_seen_at; only running host operations silent past the cutoff are stale", async () => {
        let now = 1_000_000;
        const s = await open({ liveness: { lateAfterMs: 15_000, now: () => now } });
        const host = await s.createOperation({ operation_type: "training", metadata: { location: "host" } });
        const local = await s.createOperation({ operation_type: "training", metadata: { location: "local" } });
        const done = await s.createOperation({ operation_type: "training", metadata: { location: "host" } });
        await s.finish(done.operation_id, "completed");
        for (const o of [host, local, done]) await s.touch(o.operation_id, 1_000_000);
        expect((await s.getOperation(host.operation_id))!.last_seen_at).toBe(new Date(1_000_000).toISOString());
        expect(await s.staleHostOperations(1_000_000)).toEqual([]);
        expect(await s.staleHostOperations(1_000_001)).toEqual([host.operation_id]);
        now = 1_015_000;
        expect((await s.getOperation(host.operation_id))!.stale).toBe(false);
        now = 1_015_001;
        expect((await s.getOperation(host.operation_id))!.stale).toBe(true);
        expect((await s.getOperation(local.operation_id))!.stale).toBe(false);
        const never = await s.createOperation({ operation_type: "training", metadata: { location: "host" } });
        expect(await s.staleHostOperations(1)).toEqual([never.operation_id]);
      });

      test("a client heartbeat (touch with watch) makes a run watched from its first one; only running watched runs are listed for the watchdog", async () => {
        let now = Date.now();
        const s = await open({ liveness: { lateAfterMs: 15_000, now: () => now } });
        const client = await s.createOperation({ operation_type: "training", metadata: { location: "external" } });
        const quiet = await s.createOperation({ operation_type: "training", metadata: { location: "external" } });
        const done = await s.createOperation({ operation_type: "training", metadata: { location: "external" } });
        for (const o of [client, quiet, done]) await s.markStarted(o.operation_id);
        await s.touch(client.operation_id, now, true);
        await s.touch(done.operation_id, now, true);
        await s.finish(done.operation_id, "completed");
        // An epoch (no heartbeat) is no client's heartbeat: never watched, never stale, never listed.
        await s.touch(quiet.operation_id, now);
        await s.touch(client.operation_id, now + 5_000, true); // a later heartbeat keeps watched_at
        expect(await s.watchedOperations()).toEqual([
          {
            operation_id: client.operation_id,
            status: "running",
            location: "external",
            last_seen_at: now + 5_000,
            watched_at: now,
            cadence: null,
          },
        ]);
        now += 5_000 + 60_001; // past TRAINWATCH_STALE_AFTER's default (60 s)
        const op = (await s.getOperation(client.operation_id))!;
        expect(op.stale).toBe(true);
        expect(op.liveness).toMatchObject({ stale: true, hung: false, silent_s: 60.001 });
        expect((await s.getOperation(quiet.operation_id))!).toMatchObject({ stale: false, liveness: null });
      });

      test("epoch and step writes keep the row cadence; an empty write (a revive) and a step write's derived epochs add nothing", async () => {
        const s = await open();
        const op = await s.createOperation({ operation_type: "training" });
        const id = op.operation_id;
        await s.touch(id, Date.now(), true);
        await s.writeEpochs(id, curve(0, 1));
        const first = (await s.watchedOperations())[0]!.cadence;
        expect(JSON.parse(first!)).toMatchObject({ intervals: [], longest_ms: 0 });
        await Bun.sleep(3); // a later millisecond: a write in the same one adds no interval
        await s.writeEpochs(id, curve(1, 1));
        await s.writeEpochs(id, []);
        await Bun.sleep(3);
        await s.writeSteps(id, [{ step: 0, epoch: 2, timestamp: TS, train_loss: 1 }]);
        await Bun.sleep(3);
        // Closes epoch 2: its derived epoch record is written in the same write, and is no row of its own.
        await s.writeSteps(id, [{ step: 1, epoch: 3, timestamp: TS, train_loss: 0.9 }]);
        expect((await s.readEpochs(id)).map((e) => e.epoch)).toEqual([0, 1, 2]);
        const c = JSON.parse((await s.watchedOperations())[0]!.cadence!);
        expect(c.intervals).toHaveLength(3);
        expect(c.longest_ms).toBe(Math.max(...c.intervals));
        expect(c.intervals.every((ms: number) => ms >= 3)).toBe(true);
      });

      test("metadata nested 20,000 levels deep is stored, and the silent host operations are still found", async () => {
        // Past SQLite's JSON depth (1,000) and PostgreSQL's stack depth limit (~14,000 here): a query on the blob fails.
        const s = await open();
        const deep = await s.createOperation({ operation_type: "training", metadata: { deep: nested(20_000) } });
        const host = await s.createOperation({
          operation_type: "training",
          metadata: { location: "host", host: "http://gpu-1:8100" },
        });
        await s.touch(host.operation_id, 1_000);
        await s.touch(deep.operation_id, 1_000);
        expect(await s.staleHostOperations(2_000)).toEqual([host.operation_id]);
        expect((await s.getOperation(deep.operation_id))!.metadata.location).toBeUndefined();
      });

      test("location and host are the server's: read from where they were written, a merge moves them", async () => {
        const s = await open();
        const op = await s.createOperation({
          operation_type: "training",
          status: "pending",
          metadata: { location: "host" },
        });
        expect(await s.staleHostOperations(1)).toEqual([]);
        await s.markStarted(op.operation_id);
        expect(await s.staleHostOperations(1)).toEqual([op.operation_id]);
        const placed = await s.mergeMetadata(op.operation_id, { host: "http://gpu-2:8100", gpu: "H100" });
        expect(placed.metadata).toEqual({ location: "host", host: "http://gpu-2:8100", gpu: "H100" });
        // A location that is no known one names nothing the server contacts.
        const odd = await s.createOperation({
          operation_type: "training",
          metadata: { location: "mars", host: "http://x" },
        });
        expect(odd.metadata).toEqual({ location: "external" });
        const local = await s.createOperation({
          operation_type: "training",
          metadata: { location: "local", host: "http://x" },
        });
        expect(local.metadata).toEqual({ location: "local" });
      });

      test("failInterrupted fails the unfinished operations the predicate picks, and nothing else", async () => {
        const s = await open();
        const owned = (location: string, status?: "pending") =>
          s.createOperation({ operation_type: "training", status, metadata: { location }, owned: true });
        const local = await owned("local");
        const queued = await owned("local", "pending");
        const host = await owned("host");
        const done = await owned("local");
        await s.finish(done.operation_id, "completed");
        const ids = await s.failInterrupted((o) => o.metadata.location === "local", "interrupted by a restart");
        expect(ids.sort()).toEqual([local.operation_id, queued.operation_id].sort());
        for (const id of ids)
          expect(await s.getOperation(id)).toMatchObject({
            status: "failed",
            error_message: "interrupted by a restart",
            failure_code: null,
          });
        expect((await s.getOperation(host.operation_id))!.status).toBe("running");
        expect((await s.getOperation(done.operation_id))!.status).toBe("completed");
      });
    });
  });
}
