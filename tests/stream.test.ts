// The live metrics stream (SSE): replay then live with nothing missed or repeated, latency, end on finish, heartbeats,
// cleanup on disconnect, and one serialisation per write however many streams are open.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { OperationsService } from "../src/operations/service.ts";
import { loadConfig } from "../src/config.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { streamRoutes } from "../src/routes/stream.ts";
import type { AppDeps } from "../src/app.ts";
import type { Fanout } from "../src/operations/fanout.ts";
import { json, makeApp, req, startServerProcess, until, type ServerProcess } from "./helpers.ts";
import { SseReader } from "./sse.ts";

type App = ReturnType<typeof makeApp>["app"];

async function register(app: App, body: Record<string, unknown> = {}): Promise<string> {
  const { status, body: res } = await json(
    app.handle(req("POST", "/api/v1/operations", { operation_type: "training", ...body })),
  );
  expect(status).toBe(201);
  return res.data.operation_id;
}

const loss = (e: number) => ({ train_loss: 1 / (e + 1), val_loss: 1.1 / (e + 1) });
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

async function post(app: App, id: string, epochs: number[]) {
  const res = await app.handle(
    req("POST", `/api/v1/operations/${id}/metrics`, { epochs: epochs.map((e) => ({ epoch: e, ...loss(e) })) }),
  );
  expect(res.status).toBe(200);
}

function open(
  app: App,
  id: string,
  opts: { since?: number; lastEventId?: number; headers?: Record<string, string> } = {},
) {
  const q = opts.since === undefined ? "" : `?since_epoch=${opts.since}`;
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.lastEventId !== undefined) headers["last-event-id"] = String(opts.lastEventId);
  return app.handle(req("GET", `/api/v1/operations/${id}/metrics/stream${q}`, undefined, headers));
}

const fanoutOf = (app: App) => (app as unknown as { decorator: { sseFanout: Fanout } }).decorator.sseFanout;
const hubListeners = (app: App) =>
  (app.decorator.deps.operations as unknown as { listeners: Map<string, Set<unknown>> }).listeners.size;

describe("metrics stream: replay and live", () => {
  test("it replays the stored epochs after since_epoch, then the trend summary, starting with the operation's status", async () => {
    const { app } = makeApp();
    const id = await register(app, { total_epochs_planned: 20 });
    await post(app, id, range(0, 10));
    const sse = new SseReader(await open(app, id, { since: 4 }));
    await sse.until(() => sse.events.some((e) => e.event === "trends"), 2000, "the replay's trends event");
    expect(sse.events[0]!.event).toBe("status");
    expect(sse.events[0]!.data.operation_id).toBe(id);
    expect(sse.epochs()).toEqual(range(5, 10));
    // Event id = epoch number, data = the epoch as GET /metrics reports it.
    const { body } = await json(app.handle(req("GET", `/api/v1/operations/${id}/metrics?since_epoch=4`)));
    expect(sse.events.filter((e) => e.event === "epoch").map((e) => e.data)).toEqual(body.data.metrics.epochs);
    expect(sse.events.filter((e) => e.event === "epoch").map((e) => e.id)).toEqual(range(5, 10));
    expect(sse.events.at(-1)!.data).toMatchObject({ best_epoch: 9, total_epochs_completed: 10, latest_epoch: 9 });
    await sse.cancel();
  });

  test("reconnecting with Last-Event-ID misses no epoch and duplicates none while epochs keep arriving", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await post(app, id, range(0, 50));
    const seen: number[] = [];

    // First connection: a writer posts 50 … 199 in batches of 10 while the reader reads; the reader drops out midway.
    const first = new SseReader(await open(app, id, { since: -1 }));
    let next = 50;
    const writer = (async () => {
      for (; next < 200; next += 10) {
        await post(app, id, range(next, next + 10));
        await Bun.sleep(1);
      }
    })();
    await first.until(() => first.epochs().length >= 120, 5000, "120 epochs on the first connection");
    await first.cancel();
    seen.push(...first.epochs());
    const lastId = first.events.filter((e) => e.id !== null).at(-1)!.id!;
    expect(lastId).toBe(seen.at(-1)!);

    // Second connection resumes after the last id the client saw; a since_epoch on the URL is overridden by Last-Event-ID.
    const second = new SseReader(await open(app, id, { since: -1, lastEventId: lastId }));
    await writer;
    await second.until(() => second.epochs().includes(199), 5000, "epoch 199 on the second connection");
    seen.push(...second.epochs());
    await second.cancel();

    expect(seen).toEqual(range(0, 200));
    expect(new Set(seen).size).toBe(seen.length);
  });

  test("a re-posted epoch arrives again with its new values", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await post(app, id, range(0, 5));
    const sse = new SseReader(await open(app, id));
    await sse.until(() => sse.epochs().length === 5, 2000, "the replay");
    await app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epoch: 2, train_loss: 9, val_loss: 9 }));
    await sse.until(() => sse.epochs().length === 6, 2000, "the re-posted epoch");
    const last = sse.events.filter((e) => e.event === "epoch").at(-1)!;
    expect(last.id).toBe(2);
    expect(last.data).toMatchObject({ epoch: 2, train_loss: 9, val_loss: 9 });
    await sse.cancel();
  });

  test("status changes arrive, and the stream ends with `end` when the operation finishes", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await post(app, id, [0, 1]);
    const sse = new SseReader(await open(app, id));
    await sse.until(() => sse.epochs().length === 2, 2000, "the replay");
    expect(fanoutOf(app).stats()).toEqual({ channels: 1, streams: 1 });
    await app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "completed" }));
    await sse.end(2000);
    const tail = sse.events.slice(-2);
    expect(tail.map((e) => e.event)).toEqual(["status", "end"]);
    expect(tail[0]!.data.status).toBe("completed");
    expect(tail[1]!.data).toEqual({ status: "completed" });
    expect(fanoutOf(app).stats()).toEqual({ channels: 0, streams: 0 });
    expect(hubListeners(app)).toBe(0);
  });

  test("a finished operation replays, sends `end` and closes at once", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await post(app, id, [0, 1, 2]);
    await app.handle(req("DELETE", `/api/v1/operations/${id}`));
    const sse = new SseReader(await open(app, id, { since: 0 }));
    await sse.end(2000);
    expect(sse.epochs()).toEqual([1, 2]);
    expect(sse.events.map((e) => e.event)).toEqual(["status", "epoch", "epoch", "trends", "end"]);
    expect(sse.events.at(-1)!.data).toEqual({ status: "cancelled" });
    expect(fanoutOf(app).stats().streams).toBe(0);
  });

  test("cancelling the reader removes the stream and its service listener", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const a = new SseReader(await open(app, id));
    const b = new SseReader(await open(app, id));
    await a.until(() => a.events.length > 0);
    await b.until(() => b.events.length > 0);
    expect(fanoutOf(app).stats()).toEqual({ channels: 1, streams: 2 });
    expect(hubListeners(app)).toBe(1); // one service listener per operation, not per stream
    await a.cancel();
    expect(fanoutOf(app).stats()).toEqual({ channels: 1, streams: 1 });
    await b.cancel();
    expect(fanoutOf(app).stats()).toEqual({ channels: 0, streams: 0 });
    expect(hubListeners(app)).toBe(0);
  });
});

describe("metrics stream: errors and auth", () => {
  test("an unknown operation is a 404 envelope, a bad Last-Event-ID a 400 naming the header", async () => {
    const { app } = makeApp();
    const missing = await json(open(app, "op_nope"));
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("OPERATION_NOT_FOUND");
    const id = await register(app);
    const bad = await json(open(app, id, { headers: { "last-event-id": "seven" } }));
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("Last-Event-ID");
  });

  test("the stream needs the same bearer token as the rest of the API", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: "s3cret" });
    const created = await json(
      app.handle(req("POST", "/api/v1/operations", { operation_type: "training" }, { authorization: "Bearer s3cret" })),
    );
    const id = created.body.data.operation_id;
    expect((await open(app, id)).status).toBe(401);
    expect((await app.handle(req("GET", "/api/v1/stream"))).status).toBe(401);
    const res = await open(app, id, { headers: { authorization: "Bearer s3cret" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    await res.body!.cancel();
  });
});

describe("stream fan-out", () => {
  test("heartbeat comments keep a quiet stream open", async () => {
    const config = loadConfig({});
    const store = new SqliteStore(":memory:", config.trends);
    const deps: AppDeps = { store, operations: new OperationsService(store), config, version: "test" };
    const app = new Elysia().use(streamRoutes(deps, { heartbeatMs: 30 }));
    const id = (await store.createOperation({ operation_type: "training" })).operation_id;
    const sse = new SseReader(await app.handle(new Request(`http://localhost/operations/${id}/metrics/stream`)));
    await sse.until(() => sse.comments.filter((c) => c === "heartbeat").length >= 2, 2000, "two heartbeats");
    await sse.cancel();
  });

  test("hundreds of open streams: each write is serialised once, and every stream gets every epoch", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await post(app, id, [0]);

    /** JSON.stringify calls made by one write. */
    const stringifyCalls = async (epoch: number) => {
      const original = JSON.stringify;
      let calls = 0;
      JSON.stringify = ((...args: Parameters<typeof JSON.stringify>) => (
        calls++, original(...args)
      )) as typeof JSON.stringify;
      try {
        await post(app, id, [epoch]);
      } finally {
        JSON.stringify = original;
      }
      return calls;
    };
    const writes = async (from: number, count: number) => {
      for (let e = from; e < from + count; e++) await post(app, id, [e]);
    };

    await writes(1, 100);
    const one = new SseReader(await open(app, id));
    const withOne = await stringifyCalls(101);
    const many = [one];
    for (let i = 1; i < 300; i++) many.push(new SseReader(await open(app, id)));
    expect(fanoutOf(app).stats()).toEqual({ channels: 1, streams: 300 });
    const withMany = await stringifyCalls(102);
    expect(withMany).toBe(withOne);

    // What 300 streams cost a write in time is a figure, not an assertion: bench/dashboard.ts (c) prints it.
    await writes(103, 100);

    await Promise.all(many.map((s) => s.until(() => s.epochs().includes(202), undefined, "epoch 202")));
    for (const s of many) {
      const got = s.epochs().filter((e) => e >= 101);
      expect(got).toEqual(range(101, 203));
    }
    await Promise.all(many.map((s) => s.cancel()));
    expect(fanoutOf(app).stats()).toEqual({ channels: 0, streams: 0 });
  });

  test("a stream that stops reading is closed once its backlog passes 8 MiB, and resumes from Last-Event-ID without a gap", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const stalled = new SseReader(await open(app, id));
    const batch = (b: number) => ({
      epochs: range(b * 5000, (b + 1) * 5000).map((e) => ({ epoch: e, ...loss(e), note_metric: e / 7 })),
    });
    let batches = 0;
    while (fanoutOf(app).stats().streams > 0 && batches < 40) {
      await app.handle(req("POST", `/api/v1/operations/${id}/metrics`, batch(batches++)));
    }
    expect(fanoutOf(app).stats()).toEqual({ channels: 0, streams: 0 });
    expect(batches).toBeLessThan(40);
    // The client drains what was queued, sees the stream close without `end`, and reconnects.
    await stalled.end(10_000);
    expect(stalled.events.some((e) => e.event === "end")).toBe(false);
    const lastId = stalled.events.filter((e) => e.id !== null).at(-1)!.id!;
    const resumed = new SseReader(await open(app, id, { lastEventId: lastId }));
    await resumed.until(() => resumed.events.some((e) => e.event === "trends"), 10_000, "the resumed replay");
    const seen = [...stalled.epochs(), ...resumed.epochs()];
    expect(seen).toEqual(range(0, batches * 5000));
    await resumed.cancel();
  });

  test("the global stream sends the whole operation on status changes and, throttled, while epochs arrive", async () => {
    const { app } = makeApp();
    const id = await register(app, { total_epochs_planned: 10 });
    const sse = new SseReader(await app.handle(req("GET", "/api/v1/stream")));
    const writing = performance.now();
    for (let e = 0; e < 5; e++) await post(app, id, [e]);
    await sse.until(() => sse.events.some((e) => e.event === "operation"), 2000, "a progress update");
    const progress = sse.events.filter((e) => e.event === "operation");
    // At most one update per 250 ms throttle window since the first write: five writes give one update, however many
    // windows a slow machine spreads them over (usually one).
    expect(progress.length).toBeLessThanOrEqual(Math.ceil((performance.now() - writing) / 250));
    // The throttle's trailing update carries the last write.
    const last = () => sse.events.filter((e) => e.event === "operation").at(-1)!.data;
    await sse.until(() => last().progress?.epochs_completed === 5, 2000, "the trailing update");
    const latest = last();
    expect(latest).toMatchObject({ operation_id: id, progress: { epochs_completed: 5, percentage: 50 } });
    await app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "completed" }));
    await sse.until(
      () => sse.events.some((e) => e.event === "operation" && e.data.status === "completed"),
      2000,
      "the completed status",
    );
    await sse.cancel();
    expect(fanoutOf(app).stats()).toEqual({ channels: 0, streams: 0 });
  });
});

describe("global stream: new operations and metadata without a poll", () => {
  test("a newly registered operation reaches an open global stream as an `operation` event", async () => {
    const { app } = makeApp();
    const sse = new SseReader(await app.handle(req("GET", "/api/v1/stream")));
    const id = await register(app, { name: "fresh", total_epochs_planned: 3 });
    await sse.until(
      () => sse.events.some((e) => e.event === "operation" && e.data.operation_id === id),
      2000,
      "the new operation",
    );
    expect(sse.events.find((e) => e.event === "operation")!.data).toMatchObject({
      operation_id: id,
      name: "fresh",
      status: "running",
    });
    await sse.cancel();
  });

  test("a host training's start report (backend, GPU) reaches an open global stream", async () => {
    const { app, store } = makeApp();
    const id = (
      await store.createOperation({ operation_type: "training", status: "pending", metadata: { location: "host" } })
    ).operation_id;
    const sse = new SseReader(await app.handle(req("GET", "/api/v1/stream")));
    const res = await app.handle(
      req("POST", `/api/v1/operations/${id}/heartbeat`, { started: { backend: "tensorflow-gpu", gpu: "NVIDIA H100" } }),
    );
    expect(res.status).toBe(200);
    const reported = () =>
      sse.events.find((e) => e.event === "operation" && e.data.metadata.backend === "tensorflow-gpu");
    await sse.until(() => reported() !== undefined, 2000, "the start report");
    expect(reported()!.data).toMatchObject({
      operation_id: id,
      status: "running",
      metadata: { location: "host", gpu: "NVIDIA H100" },
    });
    await sse.cancel();
  });
});

describe("global stream: every write of the operations service is heard", () => {
  test("a heartbeat's liveness and batch progress reach an open global stream (throttled), with no status change", async () => {
    const { app, store } = makeApp();
    const id = (
      await store.createOperation({
        operation_type: "training",
        status: "running",
        total_epochs_planned: 4,
        metadata: { location: "host" },
      })
    ).operation_id;
    const sse = new SseReader(await app.handle(req("GET", "/api/v1/stream")));
    await sse.until(() => sse.comments.length > 0, 2000, "the stream to open");
    const res = await app.handle(
      req("POST", `/api/v1/operations/${id}/heartbeat`, { progress: { epoch: 0, batch: 3, batches: 4 } }),
    );
    expect(res.status).toBe(200);
    const heard = () => sse.events.find((e) => e.event === "operation" && e.data.progress.batch?.batch === 3);
    await sse.until(() => heard() !== undefined, 5000, "the batch progress");
    expect(heard()!.data).toMatchObject({ operation_id: id, status: "running", progress: { percentage: 18.75 } });
    expect(heard()!.data.last_seen_at).not.toBeNull();
    await sse.cancel();
  });

  test("a discarded operation is announced as `removed`; interrupted-recovery is heard as each operation's status", async () => {
    const { app, store } = makeApp();
    const service = app.decorator.deps.operations;
    const doomed = (
      await service.createOperation({ operation_type: "training", status: "pending", metadata: { location: "host" } })
    ).operation_id;
    const local = (
      await service.createOperation({ operation_type: "training", status: "running", metadata: { location: "local" } })
    ).operation_id;
    const sse = new SseReader(await app.handle(req("GET", "/api/v1/stream")));
    await sse.until(() => sse.comments.length > 0, 2000, "the stream to open");
    expect(await service.discardOperation(doomed)).toBe(true);
    await sse.until(() => sse.events.some((e) => e.event === "removed"), 2000, "the removal");
    expect(sse.events.find((e) => e.event === "removed")!.data).toEqual({ operation_id: doomed });
    expect(
      await service.failInterrupted((op) => op.metadata.location === "local", "interrupted: server restarted"),
    ).toEqual([local]);
    await sse.until(
      () =>
        sse.events.some((e) => e.event === "operation" && e.data.operation_id === local && e.data.status === "failed"),
      2000,
      "the recovery",
    );
    expect(await store.getOperation(doomed)).toBeNull();
    await sse.cancel();
  });
});

describe("metrics stream over a socket", () => {
  test("a client that disconnects is forgotten: its stream and the service listener go", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (r) => app.handle(r) });
    try {
      const abort = new AbortController();
      const sse = new SseReader(
        await fetch(`http://127.0.0.1:${server.port}/api/v1/operations/${id}/metrics/stream`, { signal: abort.signal }),
      );
      await sse.until(() => sse.events.some((e) => e.event === "trends"), 2000, "the replay");
      expect(fanoutOf(app).stats().streams).toBe(1);
      abort.abort();
      await until("the aborted stream to be forgotten", () => fanoutOf(app).stats().streams === 0, 2000, 10);
      expect(fanoutOf(app).stats()).toEqual({ channels: 0, streams: 0 });
      expect(hubListeners(app)).toBe(0);
    } finally {
      server.stop(true);
    }
  });
});

describe("metrics stream over a real server process", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${server.url}/api/v1${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  test("each new epoch reaches an open stream of a real server process live, in order and once", async () => {
    const created = await (await call("POST", "/operations", { operation_type: "training" })).json();
    const id = created.data.operation_id as string;
    const sse = new SseReader(await fetch(`${server.url}/api/v1/operations/${id}/metrics/stream`));
    await sse.until(() => sse.events.some((e) => e.event === "trends"), 5000, "the replay");
    for (let e = 0; e < 30; e++) {
      const res = await call("POST", `/operations/${id}/metrics`, { epoch: e, ...loss(e) });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      await sse.until(() => sse.epochs().includes(e), 20_000, `epoch ${e}`);
    }
    // How soon each arrives is a figure, not an assertion (a GC pause on a busy 2-core runner): bench/latency.ts.
    expect(sse.epochs()).toEqual(range(0, 30));
    await call("POST", `/operations/${id}/complete`, { status: "completed" });
    await sse.end(5000);
    expect(sse.events.at(-1)!.event).toBe("end");
  });
});
