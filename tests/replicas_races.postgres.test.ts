// The races of announcing after the commit (src/store/pg_announce.ts) and of group commit (src/store/pg_group.ts), on
// two replicas in one process (each its own PostgresStore, operations service and app, on one schema). The order of
// the announcements is driven through the store's announce hook: one held until the test releases it (a late
// notification), one dropped (a replica that died between its commit and its NOTIFY); the relay's version check is
// called by hand. Nothing here waits on a clock: every wait is for something that must happen.
import { afterEach, describe, expect, test } from "bun:test";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import type { TrainwatchError } from "../src/errors.ts";
import { OperationsService, type OperationEvent } from "../src/operations/service.ts";
import type { EpochRecord } from "../src/schemas/epoch.ts";
import type { AnnounceHook } from "../src/store/pg_announce.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { dropSchema, schemaName, withPostgres } from "./fixtures/postgres.ts";
import { until } from "./fixtures/poll.ts";
import { json, req } from "./helpers.ts";
import { SseReader } from "./sse.ts";

const TS = "2026-11-26T15:30:00.000Z";
const curve = (from: number, count: number, custom?: Record<string, number>): EpochRecord[] =>
  Array.from({ length: count }, (_, i) => ({
    epoch: from + i,
    timestamp: TS,
    train_loss: 1 / (from + i + 1),
    val_loss: 1.1 / (from + i + 1),
    ...(custom ? { custom } : {}),
  }));

/** A replica's announcements as the test steers them: the next one passes, is held until released, or is dropped. */
function gate() {
  let next: "hold" | "drop" | null = null;
  let reached: () => void = () => {};
  let release: () => void = () => {};
  const sent: string[][] = [];
  const hook: AnnounceHook = (payloads) => {
    const mode = next;
    next = null;
    if (mode === null) {
      sent.push([...payloads]);
      return true;
    }
    reached();
    if (mode === "drop") return false;
    return new Promise<boolean>((r) => {
      release = () => {
        sent.push([...payloads]);
        r(true);
      };
    });
  };
  return {
    hook,
    sent,
    /** The next announcement waits for release(); resolves once it is waiting. */
    hold(): Promise<void> {
      next = "hold";
      return new Promise((r) => (reached = r));
    },
    release: () => release(),
    /** The next announcement is never sent; resolves once it was dropped. */
    drop(): Promise<void> {
      next = "drop";
      return new Promise((r) => (reached = r));
    },
  };
}

await withPostgres("the announcement race tests", (url) => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A replica with its announcements gated, its version check only when called, and what its service relayed. */
  async function replica(schema: string, id: string, groupCommitMs?: number) {
    // A pool of 3: one slot for writes (src/store/pg_group.ts), so a second write queues while the first is in flight.
    const config = loadConfig({});
    const g = gate();
    const store = await PostgresStore.open(url, {
      schema,
      replica: { id, leaseMs: 15_000 },
      announceHook: g.hook,
      groupCommitMs,
      max: 3,
    });
    const operations = new OperationsService(store, { trends: config.trends, versionCheckMs: 0 });
    await operations.start();
    const heard: OperationEvent[] = [];
    const stopHearing = operations.subscribe("*", (e) => heard.push(e));
    const app = createApp({ store, operations, config });
    cleanups.push(async () => {
      stopHearing();
      await operations.stop();
      await store.close();
    });
    const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
      app.handle(req(method, `/api/v1${path}`, body, headers));
    return { store, operations, api, gate: g, heard };
  }
  type Replica = Awaited<ReturnType<typeof replica>>;

  async function pair(groupCommitMs?: number) {
    const schema = schemaName();
    cleanups.push(() => dropSchema(url, schema));
    return { a: await replica(schema, "a", groupCommitMs), b: await replica(schema, "b", groupCommitMs) };
  }

  const register = async (r: Replica) =>
    (await json(r.api("POST", "/operations", { operation_type: "training" }))).body.data.operation_id as string;
  const post = async (r: Replica, id: string, from: number, count: number) => {
    const res = await json(r.api("POST", `/operations/${id}/metrics`, { epochs: curve(from, count) }));
    expect(res.status).toBe(200);
  };
  /** A stream of `id` on `r`, once its replay is sent (its first status event). */
  const stream = async (r: Replica, id: string, lastEventId?: number) => {
    const headers: Record<string, string> = lastEventId === undefined ? {} : { "last-event-id": String(lastEventId) };
    const sse = new SseReader(await r.api("GET", `/operations/${id}/metrics/stream`, undefined, headers));
    await sse.until(() => sse.events.some((e) => e.event === "status"), 20_000, "the replay");
    return sse;
  };
  /** Waits until `r`'s service relayed epochs write `version` of `id`. */
  const relayed = (r: Replica, id: string, version: number) =>
    until(`epochs write ${version} relayed`, () =>
      r.heard.some((e) => e.type === "epochs" && e.operation_id === id && e.version === version),
    );

  describe("streams stay exact when announcements come late, out of order, or never", () => {
    test("two writers on one operation on two replicas, heard out of version order: every stream sends each write once, in version order", async () => {
      const { a, b } = await pair();
      const id = await register(b);
      const onA = await stream(a, id);
      const onB = await stream(b, id);
      // Write 1 commits on a, and its announcement is held; write 2, on b, is announced first.
      const held = a.gate.hold();
      const first = post(a, id, 0, 2);
      await held;
      await post(b, id, 2, 2);
      await relayed(a, id, 2);
      await relayed(b, id, 2);
      a.gate.release();
      await first;
      for (const sse of [onA, onB]) {
        await sse.until(() => sse.epochs().length >= 4, 20_000, "epochs 0–3");
        expect(sse.epochs()).toEqual([0, 1, 2, 3]);
      }
    });

    test("a replica that dies between its commit and its NOTIFY: the next write shows the gap, the version check replays it from the tables", async () => {
      const { a, b } = await pair();
      const id = await register(b);
      await post(a, id, 0, 1);
      const sse = await stream(b, id);
      const dropped = a.gate.drop();
      await post(a, id, 1, 2); // committed, never announced
      await dropped;
      await post(b, id, 3, 1);
      await relayed(b, id, 3);
      // Write 3 waits for write 2, which never comes: at the second check it is given up, and the stream closes.
      await b.operations.checkVersions();
      await b.operations.checkVersions();
      await sse.end(20_000);
      expect(sse.epochs()).toEqual([0]);
      // Its client reconnects with Last-Event-ID (to either replica) and replays what it lacks from the tables.
      const again = await stream(a, id, sse.events.filter((e) => e.event === "epoch").at(-1)!.id!);
      await again.until(() => again.epochs().length >= 3, 20_000, "epochs 1–3");
      expect([...sse.epochs(), ...again.epochs()]).toEqual([0, 1, 2, 3]);
    });

    test("the last write, which no other follows, is found by the version check alone; a stream that lacks nothing stays open", async () => {
      const { a, b } = await pair();
      const id = await register(b);
      const sse = await stream(b, id);
      const dropped = a.gate.drop();
      await post(a, id, 0, 3);
      await dropped;
      await b.operations.checkVersions();
      await b.operations.checkVersions();
      await sse.end(20_000);
      expect(sse.epochs()).toEqual([]);
      const again = await stream(b, id, -1);
      expect(again.epochs()).toEqual([0, 1, 2]);
      await b.operations.checkVersions();
      await b.operations.checkVersions();
      await post(a, id, 3, 1);
      await again.until(() => again.epochs().length >= 4, 20_000, "epoch 3 live");
      expect(again.epochs()).toEqual([0, 1, 2, 3]);
    });

    test("a finish heard before the write it follows: the stream sends that write, then ends", async () => {
      const { a, b } = await pair();
      const id = await register(b);
      const sse = await stream(b, id);
      const held = a.gate.hold();
      const write = post(a, id, 0, 2);
      await held;
      await b.operations.finish(id, "completed");
      await until("the finish relayed on b", () =>
        b.heard.some((e) => e.type === "status" && e.operation_id === id && e.operation.status === "completed"),
      );
      a.gate.release();
      await write;
      await sse.end(20_000);
      // The running operation may be sent again (its creation, relayed after the replay); the finish comes last.
      const kinds = sse.events
        .map((e) => (e.event === "status" ? e.data.status : e.event))
        .filter((k) => k !== "trends" && k !== "running");
      expect(kinds).toEqual(["epoch", "epoch", "completed", "end"]);
    });
  });

  describe("group commit", () => {
    test("writes of different operations that queue while one is written share a transaction and one announcement; one that fails its checks fails alone, with its own error", async () => {
      // One slot and a window far longer than any test: the writes queued behind the lone first one start together when
      // it commits, not on a timer.
      const { a, b } = await pair(600_000);
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await register(b));
      await b.store.finish(ids[2]!, "completed");
      const names = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`m${i}`, i]));
      // The same refusals, each a transaction of its own on b (no grouping).
      const alone = await Promise.allSettled([
        b.store.writeEpochs(ids[2]!, curve(0, 1)),
        b.store.writeEpochs(ids[3]!, curve(0, 1, names)),
      ]);
      const before = { ...a.store.group.stats };
      const sentBefore = a.gate.sent.length;
      const results = await Promise.allSettled([
        a.store.writeEpochs(ids[0]!, curve(0, 2)), // alone: nothing is in flight
        a.store.writeEpochs(ids[1]!, curve(0, 3)),
        a.store.writeEpochs(ids[2]!, curve(0, 1)), // finished
        a.store.writeEpochs(ids[3]!, curve(0, 1, names)), // past the metric-name bound
      ]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "rejected"]);
      const reason = (r: PromiseSettledResult<unknown>) => {
        const err = (r as PromiseRejectedResult).reason as TrainwatchError;
        return { code: err.code, message: err.message };
      };
      expect(reason(results[2]!)).toEqual(reason(alone[0]!));
      expect(reason(results[3]!)).toEqual(reason(alone[1]!));
      expect(reason(results[2]!).code).toBe("OPERATION_FINISHED");
      expect(reason(results[3]!).code).toBe("VALIDATION_ERROR");
      expect(a.store.group.stats).toEqual({ groups: before.groups + 2, writes: before.writes + 4 });
      // Stored: the two that passed, nothing of the two refused.
      expect((await b.store.readEpochs(ids[0]!)).length).toBe(2);
      expect((await b.store.readEpochs(ids[1]!)).length).toBe(3);
      expect(await b.store.readEpochs(ids[2]!)).toEqual([]);
      expect(await b.store.readEpochs(ids[3]!)).toEqual([]);
      // Two announcements: the lone write's, then the group's (its one committed write).
      const sent = a.gate.sent.slice(sentBefore).map((ps) => ps.map((p) => JSON.parse(p) as { k: string; o: string }));
      expect(sent.map((ps) => ps.filter((p) => p.k === "e").map((p) => p.o))).toEqual([[ids[0]!], [ids[1]!]]);
    });

    test("a lone write does not wait for the window: it starts at once", async () => {
      const { a, b } = await pair(600_000);
      const id = await register(b);
      const before = a.store.group.stats.groups;
      // Were it to wait for company, it would wait ten minutes.
      await a.store.writeEpochs(id, curve(0, 1));
      expect(a.store.group.stats.groups).toBe(before + 1);
    });
  });
});
