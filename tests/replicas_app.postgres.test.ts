// Two API replicas in one process, each with its own PostgresStore, operations service and app, on one schema: a write
// on one reaches the other's SSE streams, a reconnect with Last-Event-ID resumes with no gap and no duplicate also while
// writes go on, leases hand a dead replica's local trainings to the others only after the lease, a restart fails only
// its own, and one replica at a time runs the once-only jobs.
import { afterEach, describe, expect, test } from "bun:test";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { OperationsService } from "../src/operations/service.ts";
import { leaseLost, startReplica, type Leader, type LeaderJob } from "../src/operations/replicas.ts";
import { Leadership } from "../src/store/pg_leader.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { Dispatcher, INTERRUPTED } from "../src/trainer/dispatcher.ts";
import { LocalTrainer } from "../src/trainer/local.ts";
import { dropSchema, schemaName, withPostgres } from "./fixtures/postgres.ts";
import { until } from "./fixtures/poll.ts";
import { SQL } from "bun";
import { json, req, startServerProcess } from "./helpers.ts";
import { SseReader } from "./sse.ts";

const TS = "2026-11-26T15:30:00.000Z";
const epochs = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({
    epoch: from + i,
    timestamp: TS,
    train_loss: 1 / (from + i + 1),
    val_loss: 1.1 / (from + i + 1),
  }));

await withPostgres("the replica app tests", (url) => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  let now = 1_800_000_000_000;
  const clock = () => now;

  /** A replica: store, service (relaying), app; `kill` drops it without any shutdown work, as SIGKILL would. */
  async function replica(schema: string, id: string, leaseMs = 15_000) {
    const config = loadConfig({});
    const store = await PostgresStore.open(url, {
      schema,
      replica: { id, leaseMs },
      liveness: { lateAfterMs: 15_000, now: clock },
    });
    const operations = new OperationsService(store, { trends: config.trends });
    await operations.start();
    const app = createApp({ store, operations, config });
    let alive = true;
    const kill = async () => {
      if (!alive) return;
      alive = false;
      await operations.stop();
      await store.close();
    };
    cleanups.push(kill);
    const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
      app.handle(req(method, `/api/v1${path}`, body, headers));
    return { store, operations, app, api, kill, id };
  }

  async function pair(leaseMs?: number) {
    const schema = schemaName();
    cleanups.push(() => dropSchema(url, schema));
    return { a: await replica(schema, "a", leaseMs), b: await replica(schema, "b", leaseMs), schema };
  }

  const register = async (r: Awaited<ReturnType<typeof replica>>) =>
    (await json(r.api("POST", "/operations", { operation_type: "training" }))).body.data.operation_id as string;
  const post = async (r: Awaited<ReturnType<typeof replica>>, id: string, from: number, count: number) => {
    const res = await json(r.api("POST", `/operations/${id}/metrics`, { epochs: epochs(from, count) }));
    expect(res.status).toBe(200);
  };
  /** The replica loop of `r` on a 15 s lease, quiet, with an hour-long timer: the tests tick it by hand. */
  const loopOf = (r: Awaited<ReturnType<typeof replica>>, leader: Leader, jobs?: LeaderJob[]) =>
    startReplica(r.operations, r.store, { leaseMs: 15_000, leader, jobs, intervalMs: 3_600_000, log: () => {} });

  describe("live streams across replicas", () => {
    test("epochs posted to one replica arrive on the other's stream, and its end when the operation finishes there", async () => {
      const { a, b } = await pair();
      const id = await register(a);
      await post(a, id, 0, 3);
      const sse = new SseReader(await b.api("GET", `/operations/${id}/metrics/stream`));
      try {
        await sse.until(() => sse.epochs().length === 3, 10_000, "the replay");
        await post(a, id, 3, 2); // small: the epochs travel in the notification
        await post(a, id, 5, 500); // big: the notification names the range, b reads it
        await sse.until(() => sse.epochs().length === 505, 10_000, "the live epochs");
        expect(sse.epochs()).toEqual(Array.from({ length: 505 }, (_, i) => i));
        expect(sse.events.filter((e) => e.event === "trends").at(-1)!.data.total_epochs_completed).toBe(505);
        expect((await json(a.api("POST", `/operations/${id}/complete`, { status: "completed" }))).status).toBe(200);
        await sse.end(10_000);
        expect(sse.events.at(-1)).toMatchObject({ event: "end", data: { status: "completed" } });
      } finally {
        await sse.cancel();
      }
    });

    test("steps posted to one replica arrive on the other's stream as `steps` events, with the epochs they close", async () => {
      const { a, b } = await pair();
      const id = await register(a);
      const sse = new SseReader(await b.api("GET", `/operations/${id}/metrics/stream`));
      const steps = (from: number, count: number, epoch: number) =>
        Array.from({ length: count }, (_, i) => ({ step: from + i, epoch, train_loss: 1 / (from + i + 1) }));
      const sent = (body: unknown) => json(a.api("POST", `/operations/${id}/steps`, body));
      try {
        await sse.until(() => sse.events.some((e) => e.event === "status"), 10_000, "the replay");
        expect((await sent({ steps: steps(0, 2, 0) })).status).toBe(200); // small: in the notification
        expect((await sent({ steps: steps(2, 500, 0) })).status).toBe(200); // big: b reads the range
        expect((await sent({ steps: steps(502, 1, 1) })).status).toBe(200); // closes epoch 0
        const stepsOf = () => sse.events.filter((e) => e.event === "steps").flatMap((e) => e.data.steps);
        await sse.until(() => stepsOf().length === 503 && sse.epochs().length === 1, 10_000, "the live steps");
        expect(stepsOf().map((s: { step: number }) => s.step)).toEqual(Array.from({ length: 503 }, (_, i) => i));
        expect(sse.events.filter((e) => e.event === "steps").map((e) => e.data.version)).toEqual([1, 2, 3]);
        expect(sse.epochs()).toEqual([0]);
      } finally {
        await sse.cancel();
      }
    });

    test("the global stream of one replica hears operations created and finished on the other", async () => {
      const { a, b } = await pair();
      const all = new SseReader(await b.api("GET", "/stream"));
      try {
        await all.until(() => all.comments.includes("connected"), 10_000, "the global stream");
        const id = await register(a);
        await all.until(
          () => all.events.some((e) => e.event === "operation" && e.data.operation_id === id),
          10_000,
          "the new operation",
        );
        await json(a.api("DELETE", `/operations/${id}`, { by: "api", reason: "enough" }));
        await all.until(
          () =>
            all.events.some(
              (e) => e.event === "operation" && e.data.operation_id === id && e.data.status === "cancelled",
            ),
          10_000,
          "the cancel",
        );
      } finally {
        await all.cancel();
      }
    });

    /** The `/stream` events about `id` on `sse`, of one kind. */
    const about = (sse: SseReader, event: string, id: string) =>
      sse.events.filter((e) => e.event === event && e.data.operation_id === id);

    test("a heartbeat's liveness and a late result, written on one replica, reach the global stream of both", async () => {
      const { a, b } = await pair();
      const streams = [new SseReader(await a.api("GET", "/stream")), new SseReader(await b.api("GET", "/stream"))];
      try {
        for (const s of streams) await s.until(() => s.comments.includes("connected"), 10_000, "the global stream");
        const id = await register(a);
        // Each wait first lets the event before settle: a status event reads the operation, and would carry a change
        // made before that read, proving nothing about the change's own event.
        for (const s of streams) await s.until(() => about(s, "operation", id).length > 0, 10_000, "the creation");
        const seenAt = Date.parse("2026-11-26T16:00:00.000Z");
        await a.operations.touch(id, seenAt);
        for (const s of streams)
          await s.until(
            () => about(s, "operation", id).some((e) => e.data.last_seen_at === new Date(seenAt).toISOString()),
            10_000,
            "the touch",
          );
        // A trainer reporting how its cancel ended: the operation is cancelled already, its result is the news.
        await json(a.api("DELETE", `/operations/${id}`));
        for (const s of streams)
          await s.until(
            () => about(s, "operation", id).some((e) => e.data.status === "cancelled"),
            10_000,
            "the cancel",
          );
        const done = await json(
          a.api("POST", `/operations/${id}/complete`, { status: "cancelled", result: { checkpoints: [3] } }),
        );
        expect(done.status).toBe(200);
        for (const s of streams)
          await s.until(
            () => about(s, "operation", id).some((e) => e.data.result?.checkpoints?.[0] === 3),
            10_000,
            "the late result",
          );
      } finally {
        for (const s of streams) await s.cancel();
      }
    });

    test("an operation discarded on one replica is `removed` once from the global stream of both", async () => {
      const { a, b } = await pair();
      const streams = [new SseReader(await a.api("GET", "/stream")), new SseReader(await b.api("GET", "/stream"))];
      try {
        for (const s of streams) await s.until(() => s.comments.includes("connected"), 10_000, "the global stream");
        const doomed = (await a.operations.createOperation({ operation_type: "training", status: "pending" }))
          .operation_id;
        for (const s of streams) await s.until(() => about(s, "operation", doomed).length > 0, 10_000, "the creation");
        expect(await a.operations.discardOperation(doomed)).toBe(true);
        for (const s of streams) await s.until(() => about(s, "removed", doomed).length > 0, 10_000, "the removal");
        // A marker written after the removal: once it arrives, everything about the removal has.
        const marker = await register(b);
        for (const s of streams) {
          await s.until(() => about(s, "operation", marker).length > 0, 10_000, "the marker");
          expect(about(s, "removed", doomed).map((e) => e.data)).toEqual([{ operation_id: doomed }]);
        }
      } finally {
        for (const s of streams) await s.cancel();
      }
    });

    test("a writer behind a round-robin client, streams reconnecting to either replica with Last-Event-ID: no gap, no duplicate", async () => {
      const { a, b } = await pair();
      const id = await register(a);
      // One writer, each epoch to the next replica in turn (a round-robin balancer), without pause, while streams come and
      // go on both replicas, each round's reconnect on the other one than the last.
      let written = 0;
      let writing = true;
      const writer = (async () => {
        while (writing) await post(written % 2 ? b : a, id, written++, 1);
      })();
      try {
        const seen: number[] = [];
        let last: number | null = null;
        for (let round = 0; round < 8; round++) {
          const headers: Record<string, string> = last === null ? {} : { "last-event-id": String(last) };
          const on = round % 2 ? a : b;
          const sse = new SseReader(await on.api("GET", `/operations/${id}/metrics/stream`, undefined, headers));
          const target = written + 5;
          await sse.until(() => sse.epochs().length > 0 && sse.epochs().at(-1)! >= target, 20_000, `epoch ${target}`);
          await sse.cancel();
          seen.push(...sse.epochs());
          last = sse.events.filter((e) => e.event === "epoch").at(-1)!.id;
        }
        expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i));
      } finally {
        writing = false;
        await writer;
      }
    });
  });

  describe("local trainings and leases", () => {
    /** A local training stand-in that runs until told otherwise, reporting nothing. */
    const idleTrainer = () => ({ cancel() {}, done: new Promise<never>(() => {}) });

    async function withTrainer(r: Awaited<ReturnType<typeof replica>>) {
      const local = new LocalTrainer(r.operations, {
        maxConcurrent: 4,
        modelsDir: "/nonexistent",
        start: idleTrainer as never,
      });
      const config = loadConfig({});
      return new Dispatcher(r.operations, local, null, config);
    }
    const SPEC = {
      dataset: { kind: "synthetic", generator: "spirals", samples: 40 },
      training: { epochs: 5 },
    } as const;

    test("a dead replica's local training is marked interrupted after its lease, not before, by another replica", async () => {
      const { a, b } = await pair(15_000);
      const op = await (await withTrainer(a)).start(SPEC as never, "local");
      const watch = new SseReader(await b.api("GET", `/operations/${op.operation_id}/metrics/stream`));
      const leader: Leader = { check: async () => true, close: async () => {} };
      const onB = loopOf(b, leader);
      cleanups.push(() => onB.stop());
      try {
        await a.kill(); // SIGKILL: no shutdown, no renewal ever again
        now += 14_999;
        expect(await onB.tick()).toEqual([]);
        expect((await b.store.getOperation(op.operation_id))!.status).toBe("pending");
        now += 2;
        expect(await onB.tick()).toEqual([op.operation_id]);
        expect(await b.store.getOperation(op.operation_id)).toMatchObject({
          status: "failed",
          error_message: leaseLost("a", 15_000),
        });
        await watch.end(10_000);
        expect(watch.events.at(-1)).toMatchObject({ event: "end", data: { status: "failed" } });
      } finally {
        await watch.cancel();
      }
    });

    test("a live replica's renewals keep its trainings; a restart of another fails only that one's own", async () => {
      const { a, b, schema } = await pair(15_000);
      const op = await (await withTrainer(a)).start(SPEC as never, "local");
      const leader: Leader = { check: async () => true, close: async () => {} };
      const onA = loopOf(a, leader);
      const onB = loopOf(b, leader);
      cleanups.push(
        () => onA.stop(),
        () => onB.stop(),
      );
      for (let i = 0; i < 5; i++) {
        now += 10_000;
        await onA.tick(); // renews
        expect(await onB.tick()).toEqual([]);
      }
      // b restarts (under its own id) and recovers: a's training is not its to fail.
      await b.kill();
      const b2 = await replica(schema, "b");
      expect(await (await withTrainer(b2)).recoverInterrupted()).toEqual([]);
      expect((await b2.store.getOperation(op.operation_id))!.status).toBe("pending");
      // a restarts under the same id: what it ran before is failed at once.
      await onA.stop();
      await a.kill();
      const a2 = await replica(schema, "a");
      expect(await (await withTrainer(a2)).recoverInterrupted()).toEqual([op.operation_id]);
      expect(await a2.store.getOperation(op.operation_id)).toMatchObject({
        status: "failed",
        error_message: INTERRUPTED,
      });
    });

    test("a cancel on another replica stops the training where it runs", async () => {
      const { a, b } = await pair();
      let cancelled = false;
      const local = new LocalTrainer(a.operations, {
        maxConcurrent: 1,
        modelsDir: "/nonexistent",
        start: (() => ({ cancel: () => void (cancelled = true), done: new Promise<never>(() => {}) })) as never,
      });
      const op = await new Dispatcher(a.operations, local, null, loadConfig({})).start(SPEC as never, "local");
      expect((await json(b.api("DELETE", `/operations/${op.operation_id}`))).status).toBe(200);
      await until("a's trainer told to stop", () => cancelled);
    });
  });

  describe("two server processes on one database (src/server.ts, as a user starts them)", () => {
    test("a write on one streams from the other; SIGKILL one during a local training and the other marks it interrupted after the lease, its stored epochs kept", async () => {
      const database = `tw_${schemaName()}`;
      const admin = new SQL(url, { max: 1 });
      await admin.unsafe(`CREATE DATABASE "${database}"`);
      cleanups.push(async () => {
        await admin.unsafe(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
        await admin.close();
      });
      const dbUrl = new URL(url);
      dbUrl.pathname = `/${database}`;
      const env = (id: string) => ({
        TRAINWATCH_DB: dbUrl.toString(),
        TRAINWATCH_REPLICA_ID: id,
        TRAINWATCH_LEASE: "2",
      });
      const a = await startServerProcess(env("api-a"));
      cleanups.push(() => a.stop());
      const b = await startServerProcess(env("api-b"));
      cleanups.push(() => b.stop());
      const call = async (base: string, method: string, path: string, body?: unknown) => {
        const res = await fetch(`${base}/api/v1${path}`, {
          method,
          headers: { "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as any };
      };

      const id = (await call(a.url, "POST", "/operations", { operation_type: "training" })).body.data
        .operation_id as string;
      const sse = new SseReader(await fetch(`${b.url}/api/v1/operations/${id}/metrics/stream`));
      try {
        await sse.until(() => sse.events.some((e) => e.event === "trends"), 20_000, "the replay");
        expect((await call(a.url, "POST", `/operations/${id}/metrics`, { epochs: epochs(0, 3) })).status).toBe(200);
        await sse.until(() => sse.epochs().length === 3, 20_000, "the epochs posted to a");
      } finally {
        await sse.cancel();
      }

      const training = {
        dataset: { kind: "synthetic", generator: "spirals", samples: 200 },
        training: { epochs: 5000 },
        target: "local",
      };
      const local = (await call(a.url, "POST", "/trainings", training)).body.data.operation_id as string;
      await until(
        "a few epochs of the local training",
        async () => (await call(b.url, "GET", `/operations/${local}`)).body.data.progress.epochs_completed >= 3,
        60_000,
      );
      a.proc.kill("SIGKILL");
      await a.proc.exited;
      const stored = (await call(b.url, "GET", `/operations/${local}/metrics`)).body.data.metrics.epochs
        .length as number;
      expect((await call(b.url, "GET", `/operations/${local}`)).body.data.status).toBe("running"); // not at once
      const failed = await until(
        "b to mark it interrupted",
        async () => {
          const op = (await call(b.url, "GET", `/operations/${local}`)).body.data;
          return op.status === "failed" && op;
        },
        20_000,
      );
      expect(failed.error_message).toBe(leaseLost("api-a", 2_000));
      expect((await call(b.url, "GET", `/operations/${local}/metrics`)).body.data.metrics.epochs.length).toBe(stored);
    }, 120_000);
  });

  describe("once-only jobs", () => {
    test("one replica at a time runs them; when it goes another takes over", async () => {
      const { a, b, schema } = await pair();
      const runs: string[] = [];
      const job = (who: string): LeaderJob => ({
        start: () => runs.push(`${who} start`),
        stop: () => runs.push(`${who} stop`),
      });
      const onA = loopOf(a, Leadership.open(url, schema, "jobs"), [job("a")]);
      const onB = loopOf(b, Leadership.open(url, schema, "jobs"), [job("b")]);
      cleanups.push(() => onB.stop());
      await onA.tick();
      await onB.tick();
      await onA.tick();
      expect([onA.leading, onB.leading]).toEqual([true, false]);
      expect(runs).toEqual(["a start"]);
      await onA.stop(); // its lock goes with its connection
      await until("b takes over", async () => (await onB.tick(), onB.leading));
      expect(runs).toEqual(["a start", "a stop", "b start"]);
    });
  });
});
