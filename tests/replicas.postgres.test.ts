// Two PostgresStores on one schema, as two replicas see the database: the changes each commits reach the other through
// LISTEN/NOTIFY once committed (a writer waits for its announcement, so sequential writes are heard in order), a
// stream's replay knows which writes it holds, leases run out only when not renewed, and one replica at a time holds a
// job's advisory lock. Same server as the store contract (tests/fixtures/postgres.ts).
import { afterEach, describe, expect, test } from "bun:test";
import type { EpochRecord } from "../src/schemas/epoch.ts";
import { Leadership } from "../src/store/pg_leader.ts";
import { PostgresStore, type PostgresOptions } from "../src/store/postgres.ts";
import type { StoreChange } from "../src/store/store.ts";
import { dropSchema, schemaName, withPostgres } from "./fixtures/postgres.ts";
import { until } from "./fixtures/poll.ts";

const TS = "2026-11-26T15:30:00.000Z";
const curve = (from: number, count: number): EpochRecord[] =>
  Array.from({ length: count }, (_, i) => ({
    epoch: from + i,
    timestamp: TS,
    train_loss: 1 / (from + i + 1),
    val_loss: 1.1 / (from + i + 1),
  }));

await withPostgres("the replica tests", (url) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** Two replicas ("a", "b") on a fresh schema, each hearing the changes into its own list. */
  async function replicas(opts: Omit<PostgresOptions, "schema" | "replica"> & { leaseMs?: number } = {}) {
    const schema = schemaName();
    cleanups.push(() => dropSchema(url, schema));
    const open = async (id: string) => {
      const store = await PostgresStore.open(url, {
        ...opts,
        schema,
        replica: { id, leaseMs: opts.leaseMs ?? 10_000 },
      });
      const heard: StoreChange[] = [];
      const stop = await store.listen(
        (c) => heard.push(c),
        () => heard.push({ kind: "status", operation_id: "(resync)", finished: false }),
      );
      cleanups.push(async () => {
        await stop();
        await store.close();
      });
      return { store, heard };
    };
    return { a: await open("a"), b: await open("b"), schema };
  }

  describe("changes reach every replica", () => {
    test("a write on one is heard by the other in commit order, numbered, with its epochs or their range", async () => {
      const { a, b } = await replicas();
      const op = await a.store.createOperation({ operation_type: "training" });
      await until("the creation heard on b", () =>
        b.heard.some((c) => c.kind === "status" && c.operation_id === op.operation_id),
      );
      const small = await a.store.writeEpochs(op.operation_id, curve(0, 3));
      await b.store.writeEpochs(op.operation_id, curve(3, 1000));
      await a.store.finish(op.operation_id, "completed");
      const mine = () => b.heard.filter((c) => c.operation_id === op.operation_id);
      await until("the finish heard on b", () => mine().some((c) => c.kind === "status" && c.finished));
      const epochs = mine().filter((c) => c.kind === "epochs");
      expect(epochs.map((c) => c.version)).toEqual([1, 2]);
      expect(epochs[0]).toMatchObject({
        epochs: await a.store.readEpochs(op.operation_id, -1, 2),
        range: [0, 2],
        trends: small.trends,
      });
      expect(epochs[1]).toMatchObject({ epochs: null, range: [3, 1002] });
      expect(mine().map((c) => c.kind)).toEqual(["status", "epochs", "epochs", "status"]);
      // a hears its own changes the same way.
      await until("a hears its own finish", () =>
        a.heard.some((c) => c.kind === "status" && c.operation_id === op.operation_id && c.finished),
      );
    });

    // Announced after their commits, concurrent writes on two replicas may be heard in either order: each stream puts
    // them back in version order (tests/replicas_races.postgres.test.ts).
    test("concurrent writers on both replicas: each hears every write once", async () => {
      const { a, b } = await replicas();
      const op = await a.store.createOperation({ operation_type: "training" });
      const writes = Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).store.writeEpochs(op.operation_id, curve(i * 5, 5)),
      );
      await Promise.all(writes);
      for (const r of [a, b]) {
        const versions = () =>
          r.heard
            .filter((c) => c.kind === "epochs" && c.operation_id === op.operation_id)
            .map((c) => (c as { version: number }).version);
        await until("every write heard", () => versions().length === 20);
        expect(versions().sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      }
    });

    test("batch progress set on one replica shows on the other; a refused write tells nobody", async () => {
      const { a, b } = await replicas();
      const op = await a.store.createOperation({ operation_type: "training", total_epochs_planned: 10 });
      await a.store.setBatchProgress(op.operation_id, { epoch: 0, batch: 5, batches: 10 });
      await until(
        "b sees the progress",
        async () => (await b.store.getOperation(op.operation_id))!.progress.batch?.batch === 5,
      );
      expect((await b.store.getOperation(op.operation_id))!.progress.percentage).toBe(5);
      await a.store.finish(op.operation_id, "cancelled");
      await until("b hears the cancel", () =>
        b.heard.some((c) => c.kind === "status" && c.operation_id === op.operation_id && c.finished),
      );
      const before = b.heard.length;
      await a.store.writeEpochs(op.operation_id, curve(0, 1)).catch(() => {});
      await b.store.publishStatus(op.operation_id); // a marker: everything sent before it has arrived once it does
      await until("the marker", () => b.heard.length > before && b.heard.at(-1)!.kind === "status");
      expect(b.heard.slice(before).map((c) => c.kind)).toEqual(["status"]);
    });

    test("a heartbeat's liveness, a late result and a discard are heard by the other replica; an unknown operation tells nobody", async () => {
      const { a, b } = await replicas();
      const op = await a.store.createOperation({ operation_type: "training" });
      const doomed = await a.store.createOperation({ operation_type: "training", status: "pending" });
      await a.store.touch(op.operation_id, 1_000);
      await a.store.setResult(op.operation_id, { checkpoints: [1] });
      expect(await a.store.discardOperation(doomed.operation_id)).toBe(true);
      expect(await a.store.discardOperation(doomed.operation_id)).toBe(false);
      await expect(a.store.touch("op_unknown", 1_000)).rejects.toMatchObject({ code: "OPERATION_NOT_FOUND" });
      await expect(a.store.setResult("op_unknown", {})).rejects.toMatchObject({ code: "OPERATION_NOT_FOUND" });
      await b.store.publishStatus("marker"); // everything sent before it has arrived once it does
      await until("the marker", () => b.heard.some((c) => c.operation_id === "marker"));
      expect(b.heard.map((c) => [c.kind, c.operation_id])).toEqual([
        ["status", op.operation_id],
        ["status", doomed.operation_id],
        ["changed", op.operation_id],
        ["changed", op.operation_id],
        ["removed", doomed.operation_id],
        ["status", "marker"],
      ]);
    });

    test("a replay says which epoch writes it holds", async () => {
      const { a, b } = await replicas();
      const op = await a.store.createOperation({ operation_type: "training" });
      await a.store.writeEpochs(op.operation_id, curve(0, 10));
      await a.store.writeEpochs(op.operation_id, curve(10, 10));
      const replay = await b.store.readReplay(op.operation_id, 4);
      expect(replay.version).toBe(2);
      expect(replay.epochs.map((e) => e.epoch)).toEqual(Array.from({ length: 15 }, (_, i) => i + 5));
      expect(replay.operation.trends.total_epochs_completed).toBe(20);
      expect((await b.store.readReplay(op.operation_id)).epochs).toEqual(await a.store.readEpochs(op.operation_id));
    });
  });

  describe("leases", () => {
    test("an owned operation's lease runs out only when its owner stops renewing it, and only while unfinished", async () => {
      let now = 1_000_000;
      const { a, b } = await replicas({ leaseMs: 15_000, liveness: { lateAfterMs: 15_000, now: () => now } });
      const owned = await a.store.createOperation({
        operation_type: "training",
        metadata: { location: "local" },
        owned: true,
      });
      const done = await a.store.createOperation({ operation_type: "training", owned: true });
      await a.store.finish(done.operation_id, "completed");
      const unowned = await a.store.createOperation({ operation_type: "training" });
      now += 14_000;
      expect(await b.store.expiredLeases()).toEqual([]);
      expect(await a.store.renewLeases()).toBe(1);
      now += 14_000; // 28 s after creation, 14 s after the renewal
      expect(await b.store.expiredLeases()).toEqual([]);
      now += 1_001; // the renewal's 15 s are over
      expect(await b.store.expiredLeases()).toEqual([{ operation_id: owned.operation_id, owner: "a" }]);
      expect(await b.store.ownedUnfinished()).toEqual([]);
      expect(await a.store.ownedUnfinished()).toEqual([owned.operation_id]);
      expect(await b.store.renewLeases()).toBe(0); // b owns nothing
      expect(unowned.operation_id).not.toBe(owned.operation_id);
    });
  });

  describe("leadership", () => {
    test("one replica at a time holds a job's lock; it passes on when the holder goes", async () => {
      const schema = schemaName();
      const a = Leadership.open(url, schema, "watchdog");
      const b = Leadership.open(url, schema, "watchdog");
      const other = Leadership.open(url, schema, "other-job");
      cleanups.push(async () => {
        await b.close();
        await other.close();
      });
      expect(await a.check()).toBe(true);
      expect(await b.check()).toBe(false);
      expect(await a.check()).toBe(true);
      expect(await other.check()).toBe(true);
      await a.close();
      await until("b takes over", () => b.check());
      expect(b.leading).toBe(true);
    });
  });
});
