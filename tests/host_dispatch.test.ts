// The API and GPU hosts wired in process (tests/fixtures/hosts.ts: fetch routed to app.handle, a scripted trainer in
// place of the worker): heartbeat route, host choice, cancel, 503, watchdog.
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { OperationsService } from "../src/operations/service.ts";
import { startHostWatchdog } from "../src/host_pool/watchdog.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { HOST_UNREACHABLE } from "../src/operations/liveness.ts";
import type { Checkpoint } from "../src/schemas/checkpoint.ts";
import { untar } from "../src/tar.ts";
import { checkpointDir } from "../src/trainer/checkpoints.ts";
import { API, world } from "./fixtures/hosts.ts";
import { diverging, scriptedTrainer } from "./fixtures/trainer.ts";
import { json, req, tempDir, until } from "./helpers.ts";

const spec = (epochs: number) => ({
  dataset: { kind: "synthetic" as const, generator: "spirals" as const, samples: 40 },
  training: { epochs },
});

describe("host dispatch in process", () => {
  test("a host training relays every epoch and completes; the operation records where it ran", async () => {
    const w = world(["http://gpu-a.test"]);
    const { status, body } = await json(w.app.handle(req("POST", "/api/v1/trainings", spec(6))));
    expect(status).toBe(202);
    const id = body.data.operation_id as string;
    expect(body.data.status).toBe("running");
    expect(body.data.metadata).toMatchObject({ location: "host", host: "http://gpu-a.test" });
    await until(
      "w.store.getOperation(id)!.status === 'completed'",
      async () => (await w.store.getOperation(id))!.status === "completed",
    );
    await w.hosts[0]!.outbox.idle();
    const op = (await w.store.getOperation(id))!;
    expect((await w.store.readEpochs(id)).map((e) => e.epoch)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(op.metadata).toMatchObject({
      backend: "scripted",
      task: "regression",
      samples_train: 8,
      batches_per_epoch: 2,
    });
    expect(op.result).toMatchObject({ stop_reason: "completed", epochs_run: 6 });
  });

  test("the API picks the host with the fewest active sessions", async () => {
    const w = world(["http://gpu-a.test", "http://gpu-b.test"], { trainerMs: 200 });
    const a = await json(w.app.handle(req("POST", "/api/v1/trainings", spec(50))));
    const b = await json(w.app.handle(req("POST", "/api/v1/trainings", spec(50))));
    expect(a.body.data.metadata.host).toBe("http://gpu-a.test");
    expect(b.body.data.metadata.host).toBe("http://gpu-b.test");
    for (const x of [a, b]) await json(w.app.handle(req("DELETE", `/api/v1/operations/${x.body.data.operation_id}`)));
  });

  test("an unreachable host is skipped for a reachable one", async () => {
    const w = world(["http://gpu-down.test", "http://gpu-b.test"]);
    w.apps["http://gpu-down.test"] = null;
    const { status, body } = await json(w.app.handle(req("POST", "/api/v1/trainings", spec(2))));
    expect(status).toBe(202);
    expect(body.data.metadata.host).toBe("http://gpu-b.test");
  });

  test("with no host reachable: a clear 503, and the refused training stores nothing", async () => {
    const w = world(["http://gpu-a.test"]);
    w.apps["http://gpu-a.test"] = null;
    for (let i = 0; i < 3; i++) {
      const { status, body } = await json(w.app.handle(req("POST", "/api/v1/trainings", spec(2))));
      expect(status).toBe(503);
      expect(body.error.code).toBe("HOST_UNAVAILABLE");
      expect(body.error.message).toContain("no training host reachable");
      expect(body.error.message).toContain("http://gpu-a.test");
      expect(body.error.details.operation_id).toBeUndefined();
    }
    expect((await w.store.listOperations({ limit: 10, offset: 0 })).total).toBe(0);
  });

  test("a host that answers /health but refuses the session: 503 naming it, and nothing is stored", async () => {
    const w = world(["http://gpu-a.test"]);
    const real = w.apps["http://gpu-a.test"]!;
    w.apps["http://gpu-a.test"] = {
      handle: (r) =>
        new URL(r.url).pathname === "/sessions"
          ? Promise.resolve(
              Response.json(
                { success: false, error: { code: "INTERNAL_ERROR", message: "disk full", details: null } },
                { status: 500 },
              ),
            )
          : real.handle(r),
    };
    const { status, body } = await json(w.app.handle(req("POST", "/api/v1/trainings", spec(2))));
    expect(status).toBe(503);
    expect(body.error.message).toContain("http://gpu-a.test");
    expect(body.error.message).toContain("disk full");
    expect((await w.store.listOperations({ limit: 10, offset: 0 })).total).toBe(0);
  });

  test("a CSV path is checked in the host's own data directory: outside it is a 400 naming body.dataset.path, inside it trains", async () => {
    const w = world(["http://gpu-a.test"]);
    const out = await json(
      w.app.handle(req("POST", "/api/v1/trainings", { dataset: { kind: "csv", path: "../helpers.ts", label: "y" } })),
    );
    expect(out.status).toBe(400);
    expect(out.body.error.details.field).toBe("body.dataset.path");
    expect(out.body.error.message).toContain("outside the data directory");
    expect(out.body.error.message).toContain("http://gpu-a.test");
    const ok = await json(
      w.app.handle(
        req("POST", "/api/v1/trainings", {
          dataset: { kind: "csv", path: "flowers.csv", label: "species" },
          training: { epochs: 1 },
        }),
      ),
    );
    expect(ok.status).toBe(202);
  });

  test("cancel through the API stops the host's session", async () => {
    const w = world(["http://gpu-a.test"], { trainerMs: 20 });
    const id = (await json(w.app.handle(req("POST", "/api/v1/trainings", spec(500))))).body.data.operation_id as string;
    await until("w.store.readEpochs(id).length >= 2", async () => (await w.store.readEpochs(id)).length >= 2);
    const { status, body } = await json(w.app.handle(req("DELETE", `/api/v1/operations/${id}`)));
    expect(status).toBe(200);
    expect(body.data.status).toBe("cancelled");
    await until(
      "w.hosts[0]!.sessions.get(id).status === 'cancelled'",
      () => w.hosts[0]!.sessions.get(id).status === "cancelled",
    );
  });

  test("cancel with the host unreachable still cancels, with a note; the host stops at its next relay (409)", async () => {
    const w = world(["http://gpu-a.test"], { trainerMs: 20 });
    const id = (await json(w.app.handle(req("POST", "/api/v1/trainings", spec(500))))).body.data.operation_id as string;
    await until("w.store.readEpochs(id).length >= 1", async () => (await w.store.readEpochs(id)).length >= 1);
    const hostApp = w.apps["http://gpu-a.test"]!;
    w.apps["http://gpu-a.test"] = null; // the API can no longer reach the host; the host still reaches the API
    const { body } = await json(w.app.handle(req("DELETE", `/api/v1/operations/${id}`)));
    expect(body.data.status).toBe("cancelled");
    expect(body.data.metadata.cancel).toMatchObject({ host_unreachable: true, host: "http://gpu-a.test" });
    await until(
      "w.hosts[0]!.sessions.get(id).status === 'cancelled'",
      () => w.hosts[0]!.sessions.get(id).status === "cancelled",
    );
    w.apps["http://gpu-a.test"] = hostApp;
  });
});

describe("checkpoints of host trainings", () => {
  const models = tempDir("trainwatch-host-ckpt-");
  afterAll(() => models.cleanup());
  const download = async (app: { handle(r: Request): Promise<Response> }, id: string, epoch: number) =>
    app.handle(req("GET", `/api/v1/operations/${id}/checkpoints/${epoch}`));

  test("listed in metadata while training and in the result at the end; the API downloads each from the host", async () => {
    const w = world(["http://gpu-a.test"], {
      start: scriptedTrainer({ ms: 20, checkpoints: true }),
      modelsDir: models.dir,
    });
    const id = (await json(w.app.handle(req("POST", "/api/v1/trainings", spec(8))))).body.data.operation_id as string;
    await until("Array.isArray(w.store.getOperation(id)!.metadata.checkpoints)", async () =>
      Array.isArray((await w.store.getOperation(id))!.metadata.checkpoints),
    );
    expect(
      ((await w.store.getOperation(id))!.metadata.checkpoints as Checkpoint[]).map((c) => [c.kind, c.epoch]),
    ).toEqual([
      ["best", 1],
      ["last", 2],
    ]);
    await until(
      "w.store.getOperation(id)!.status === 'completed'",
      async () => (await w.store.getOperation(id))!.status === "completed",
    );
    const checkpoints = ((await w.store.getOperation(id))!.result as { checkpoints: Checkpoint[] }).checkpoints;
    expect(checkpoints).toEqual([
      { epoch: 1, kind: "best", path: checkpointDir(models.dir, id, 1) },
      { epoch: 7, kind: "last", path: checkpointDir(models.dir, id, 7) },
    ]);
    const res = await download(w.app, id, 7);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="${id}-epoch-7.tar"`);
    const files = untar(new Uint8Array(await res.arrayBuffer()));
    expect(files.map((f) => JSON.parse(new TextDecoder().decode(f.data)))).toEqual(
      ["model.json", "weights.bin", "preprocessing.json"].map((file) => ({ file, epoch: 7 })),
    );
  });

  test("a host training cancelled through the API still reports its checkpoints", async () => {
    const w = world(["http://gpu-a.test"], {
      start: scriptedTrainer({ ms: 20, checkpoints: true }),
      modelsDir: models.dir,
    });
    const id = (await json(w.app.handle(req("POST", "/api/v1/trainings", spec(500))))).body.data.operation_id as string;
    await until("w.store.readEpochs(id).length >= 4", async () => (await w.store.readEpochs(id)).length >= 4);
    expect((await json(w.app.handle(req("DELETE", `/api/v1/operations/${id}`)))).body.data.status).toBe("cancelled");
    await until("Array.isArray(w.store.getOperation(id)!.result?.checkpoints)", async () =>
      Array.isArray((await w.store.getOperation(id))!.result?.checkpoints),
    );
    const op = (await w.store.getOperation(id))!;
    expect(op.status).toBe("cancelled");
    const [best, last] = (op.result as { checkpoints: Checkpoint[] }).checkpoints;
    expect(best).toMatchObject({ kind: "best", epoch: 1 });
    expect(last!.epoch).toBeGreaterThanOrEqual(3);
    expect((await download(w.app, id, last!.epoch)).status).toBe(200);
  });

  test("a checkpoint the host no longer has is a 404 CHECKPOINT_NOT_FOUND; an unreachable host a 503 naming it", async () => {
    const w = world(["http://gpu-a.test"], { start: scriptedTrainer({ checkpoints: true }), modelsDir: models.dir });
    const id = (await json(w.app.handle(req("POST", "/api/v1/trainings", spec(4))))).body.data.operation_id as string;
    await until(
      "w.store.getOperation(id)!.status === 'completed'",
      async () => (await w.store.getOperation(id))!.status === "completed",
    );
    rmSync(checkpointDir(models.dir, id, 3), { recursive: true });
    const gone = await json(download(w.app, id, 3));
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe("CHECKPOINT_NOT_FOUND");
    expect(gone.body.error.message).toContain("http://gpu-a.test");
    w.apps["http://gpu-a.test"] = null;
    const down = await json(download(w.app, id, 1));
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe("HOST_UNAVAILABLE");
    expect(down.body.error.message).toContain("http://gpu-a.test");
  });
});

describe("host trainings honour the stop policy", () => {
  const models = tempDir("trainwatch-host-stop-");
  afterAll(() => models.cleanup());

  test("a diverging host training stops once a metrics reply carries the decision, and finishes completed with its checkpoints", async () => {
    const w = world(["http://gpu-a.test"], {
      start: scriptedTrainer({ curve: diverging, ms: 20, checkpoints: true }),
      modelsDir: models.dir,
    });
    const id = (await json(w.app.handle(req("POST", "/api/v1/trainings", spec(200))))).body.data.operation_id as string;
    expect(
      (await json(w.app.handle(req("PUT", `/api/v1/operations/${id}/stop_policy`, { on: ["diverging"] })))).status,
    ).toBe(200);
    await until("the host session to complete", () => w.hosts[0]!.sessions.get(id).status === "completed");
    await until("the API to record completed", async () => (await w.store.getOperation(id))!.status === "completed");
    const op = (await w.store.getOperation(id))!;
    expect(op.control).toMatchObject({ action: "stop", decided_by: "stop_policy" });
    const fired = op.control!.epoch!;
    expect(fired).toBeGreaterThanOrEqual(3);
    // The host hears it on the reply to the batch holding the epoch that fired; a relay round trip lets at most a few more through.
    const run = op.result as { stop_reason: string; epochs_run: number; checkpoints: Checkpoint[] };
    expect(run.stop_reason).toBe("stop_requested");
    expect(run.epochs_run).toBeLessThanOrEqual(fired + 3);
    expect((await w.store.readEpochs(id)).length).toBe(run.epochs_run);
    expect(run.checkpoints.map((c) => c.kind)).toEqual(["best", "last"]);
  });

  test("a decision made between epochs (a policy set on a run already diverging) reaches the host on its heartbeat", async () => {
    const w = world(["http://gpu-a.test"], {
      start: scriptedTrainer({ curve: diverging, ms: 150 }),
      modelsDir: models.dir,
    });
    const id = (await json(w.app.handle(req("POST", "/api/v1/trainings", spec(200))))).body.data.operation_id as string;
    await until("epoch 3 (diverging) to arrive", async () => (await w.store.getOperation(id))!.trends.is_diverging);
    const set = await json(w.app.handle(req("PUT", `/api/v1/operations/${id}/stop_policy`, { on: ["diverging"] })));
    const fired = set.body.data.control.epoch as number;
    await until("the host session to complete", () => w.hosts[0]!.sessions.get(id).status === "completed");
    await until("the API to record completed", async () => (await w.store.getOperation(id))!.status === "completed");
    // Heartbeats go every 20 ms, epochs every 150 ms: the epoch in flight when the word came is the last.
    expect((await w.store.readEpochs(id)).length).toBeLessThanOrEqual(fired + 2);
    expect((await w.store.getOperation(id))!.result).toMatchObject({ stop_reason: "stop_requested" });
  });
});

describe("a host that stops relaying shows at once", () => {
  async function running(w: ReturnType<typeof world>, epochs = 500) {
    const id = (await json(w.app.handle(req("POST", "/api/v1/trainings", spec(epochs))))).body.data
      .operation_id as string;
    await until("w.store.readEpochs(id).length >= 2", async () => (await w.store.readEpochs(id)).length >= 2);
    return id;
  }
  /** Ends a cut-off host's training and closes its outbox (its relay is down: the API hears nothing of it). */
  async function retire(host: ReturnType<typeof world>["hosts"][number], id: string) {
    host.sessions.stopFromApi(id, "test over");
    await until("host.sessions.get(id).status !== 'running'", () => host.sessions.get(id).status !== "running");
    host.outbox.stop();
  }
  const get = async (w: ReturnType<typeof world>, id: string) =>
    (await json(w.app.handle(req("GET", `/api/v1/operations/${id}`)))).body.data;

  test("while heartbeats arrive the operation shows last_seen_at and is not stale; once they are late it is stale at once", async () => {
    const w = world(["http://gpu-a.test"], { trainerMs: 20 });
    const id = await running(w);
    const first = await get(w, id);
    // Heartbeats move last_seen_at on: a later one arrives (an order, not a latency; bench/latency.ts has figures).
    const fresh = await until("a heartbeat after the first read", async () => {
      const op = await get(w, id);
      return Date.parse(op.last_seen_at) > Date.parse(first.last_seen_at) ? op : undefined;
    });
    // Not stale for lateAfterMs (1.5 s) of silence: the store's clock held there, whatever the machine's pace.
    const flowing = w.clock.now;
    w.clock.now = () => Date.parse(fresh.last_seen_at) + 1500;
    expect(await get(w, id)).toMatchObject({ status: "running", stale: false, failure_code: null });
    w.clock.now = flowing;
    w.hosts[0]!.relay.down = true;
    w.clock.shift = 1600; // 1.6 heartbeat intervals of silence, on the store's clock
    expect(await get(w, id)).toMatchObject({ status: "running", stale: true });
    await retire(w.hosts[0]!, id);
  });

  test("a host that answers but no longer has the session fails the operation within two heartbeat intervals, naming the host", async () => {
    const w = world(["http://gpu-a.test"], { trainerMs: 20 });
    const id = await running(w);
    const old = w.hosts[0]!;
    old.relay.down = true; // the old host process is gone …
    w.makeHost("http://gpu-a.test"); // … and a new one answers on its URL, without the session
    const wd = w.watchdog();
    try {
      expect(await wd.check()).toEqual([]); // not late yet
      w.clock.shift = 1600;
      expect(await wd.check()).toEqual([id]);
      const op = await get(w, id);
      expect(op).toMatchObject({ status: "failed", failure_code: "host_lost_session", stale: false });
      expect(op.error_message).toContain("training host http://gpu-a.test no longer has this training");
    } finally {
      wd.stop();
      await retire(old, id);
    }
  });

  test("a silent host is stale but kept until TRAINWATCH_HOST_TIMEOUT, then failed with its URL and the timeout", async () => {
    const w = world(["http://gpu-a.test"], { trainerMs: 20 });
    const id = await running(w);
    w.hosts[0]!.relay.down = true;
    w.apps["http://gpu-a.test"] = null; // the host does not answer either
    const wd = w.watchdog();
    try {
      w.clock.shift = 1600;
      expect(await wd.check()).toEqual([]);
      expect(await get(w, id)).toMatchObject({ status: "running", stale: true });
      w.clock.shift = 61_000;
      expect(await wd.check()).toEqual([id]);
      const op = await get(w, id);
      expect(op.failure_code).toBe("host_unreachable");
      expect(op.error_message).toStartWith(
        `${HOST_UNREACHABLE}: no epoch or heartbeat from http://gpu-a.test for 60 s; it does not answer either`,
      );
    } finally {
      wd.stop();
      await retire(w.hosts[0]!, id);
    }
  });
});

describe("an API/host token mismatch is reported as such", () => {
  const auth = { authorization: "Bearer api-secret" };

  test("the host reports the refused token on /health and the session; the API fails the operation naming the token problem, and a fixed token brings it back", async () => {
    const w = world(["http://gpu-a.test"], { apiToken: "api-secret", relayToken: "wrong-token" });
    const started = await json(w.app.handle(req("POST", "/api/v1/trainings", spec(6), auth)));
    expect(started.status).toBe(202);
    const id = started.body.data.operation_id as string;
    const host = w.hosts[0]!;
    await until("host.sessions.get(id).status === 'completed'", () => host.sessions.get(id).status === "completed"); // the host trains on; nothing arrives
    const health = await json(host.app.handle(req("GET", "/health")));
    expect(health.body.data.relay_problems).toEqual([
      expect.objectContaining({
        api_url: API,
        refused: true,
        status: 401,
        message: expect.stringContaining("set the same TRAINWATCH_TOKEN"),
      }),
    ]);
    const session = await json(host.app.handle(req("GET", `/sessions/${id}`)));
    expect(session.body.data.relay.problem).toMatchObject({ refused: true, status: 401 });
    expect(session.body.data.relay.pending).toBeGreaterThan(0); // kept, not dropped

    const wd = w.watchdog();
    try {
      w.clock.shift = 1600;
      expect(await wd.check()).toEqual([id]);
      const op = (await w.store.getOperation(id))!;
      expect(op).toMatchObject({ status: "failed", failure_code: "host_token_refused" });
      expect(op.error_message).toBe(
        "training host http://gpu-a.test cannot deliver: the API refused its token (401); set the same TRAINWATCH_TOKEN on the API and on the host",
      );
      expect(await w.store.readEpochs(id)).toEqual([]);

      host.relay.token = "api-secret"; // fixed: the kept epochs and the final status go through
      await until(
        "w.store.getOperation(id)!.status === 'completed'",
        async () => (await w.store.getOperation(id))!.status === "completed",
      );
      expect((await w.store.readEpochs(id)).map((e) => e.epoch)).toEqual([0, 1, 2, 3, 4, 5]);
      expect((await json(host.app.handle(req("GET", "/health")))).body.data.relay_problems).toEqual([]);
    } finally {
      wd.stop();
    }
  });
});

describe("heartbeat route", () => {
  async function api() {
    const store = new SqliteStore(":memory:");
    const operations = new OperationsService(store);
    const app = createApp({ store, operations, config: loadConfig({}) });
    const op = await store.createOperation({
      operation_type: "training",
      status: "pending",
      total_epochs_planned: 4,
      metadata: { location: "host" },
    });
    return { app, store, operations, id: op.operation_id };
  }
  const beat = (app: Awaited<ReturnType<typeof api>>["app"], id: string, body?: unknown) =>
    json(app.handle(req("POST", `/api/v1/operations/${id}/heartbeat`, body)));

  test("a heartbeat marks the operation running, refreshes liveness and stores batch progress", async () => {
    const t = await api();
    const { status, body } = await beat(t.app, t.id, { progress: { epoch: 0, batch: 5, batches: 10 } });
    expect(status).toBe(200);
    // Issue 12: the reply also carries the operation's control, on which a host stops.
    expect(body.data).toEqual({
      operation_id: t.id,
      status: "running",
      revived: false,
      control: { action: "continue" },
      // A host heartbeats at its own TRAINWATCH_HEARTBEAT_INTERVAL, which the reply repeats.
      heartbeat_interval_s: expect.any(Number),
    });
    const op = (await t.store.getOperation(t.id))!;
    expect(op.progress.batch).toEqual({ epoch: 0, batch: 5, batches: 10 });
    expect(op.progress.percentage).toBe(12.5);
    expect(await t.store.staleHostOperations(Date.now() - 60_000)).toEqual([]);
  });

  test("the start report lands in metadata under the names a local training uses", async () => {
    const t = await api();
    await beat(t.app, t.id, {
      started: {
        backend: "tensorflow-gpu",
        backend_fallback_reason: null,
        gpu: "NVIDIA H100",
        task: "classification",
        classes: ["0", "1"],
        samples_train: 80,
        samples_val: 20,
        batches_per_epoch: 3,
      },
    });
    expect((await t.store.getOperation(t.id))!.metadata).toMatchObject({
      location: "host",
      backend: "tensorflow-gpu",
      gpu: "NVIDIA H100",
      classes: ["0", "1"],
      batches_per_epoch: 3,
    });
  });

  test("an empty object is a plain heartbeat; a finished operation answers 409; an unknown one 404", async () => {
    const t = await api();
    expect((await beat(t.app, t.id, {})).status).toBe(200);
    await t.operations.finish(t.id, "cancelled");
    const gone = await beat(t.app, t.id, {});
    expect(gone.status).toBe(409);
    expect(gone.body.error.code).toBe("OPERATION_FINISHED");
    expect((await beat(t.app, "op_training_nope", {})).status).toBe(404);
  });

  test("a heartbeat brings a host-unreachable operation back to running", async () => {
    const t = await api();
    await t.store.markStarted(t.id);
    await t.store.writeEpochs(t.id, [{ epoch: 0, train_loss: 1, timestamp: new Date().toISOString() }]);
    await t.operations.finish(t.id, "failed", { error_message: HOST_UNREACHABLE, failure_code: "host_unreachable" });
    const { status, body } = await beat(t.app, t.id, {});
    expect(status).toBe(200);
    expect(body.data).toMatchObject({ status: "running", revived: true });
    const op = (await t.store.getOperation(t.id))!;
    expect(op.error_message).toBeNull();
    expect(op.trends.total_epochs_completed).toBe(1);
  });
});

describe("liveness watchdog", () => {
  test('a silent host operation becomes failed with "training host unreachable", its URL and the timeout; local ones are left alone', async () => {
    const store = new SqliteStore(":memory:");
    const operations = new OperationsService(store);
    let now = 1_000_000;
    const host = (
      await store.createOperation({ operation_type: "training", metadata: { location: "host", host: "http://gpu" } })
    ).operation_id;
    const local = (await store.createOperation({ operation_type: "training", metadata: { location: "local" } }))
      .operation_id;
    await store.touch(host, now);
    await store.touch(local, now);
    const wd = startHostWatchdog(operations, {
      timeoutMs: 60_000,
      intervalMs: 3_600_000,
      now: () => now,
      log: () => {},
    });
    try {
      now += 59_000;
      expect(await wd.check()).toEqual([]);
      now += 2_000;
      expect(await wd.check()).toEqual([host]);
      expect(await store.getOperation(host)).toMatchObject({
        status: "failed",
        failure_code: "host_unreachable",
        error_message: `${HOST_UNREACHABLE}: no epoch or heartbeat from http://gpu for 60 s`,
      });
      expect((await store.getOperation(local))!.status).toBe("running");
    } finally {
      wd.stop();
    }
  });

  test("right after an API restart every host gets a full timeout before anything is failed", async () => {
    const store = new SqliteStore(":memory:");
    const operations = new OperationsService(store);
    let now = 1_000_000;
    const id = (await store.createOperation({ operation_type: "training", metadata: { location: "host" } }))
      .operation_id;
    await store.touch(id, now - 3_600_000); // silent for an hour while the API was down
    const wd = startHostWatchdog(operations, {
      timeoutMs: 60_000,
      intervalMs: 3_600_000,
      now: () => now,
      log: () => {},
    });
    try {
      expect(await wd.check()).toEqual([]);
      now += 30_000;
      await store.touch(id, now); // the host's relay gets through
      now += 45_000;
      expect(await wd.check()).toEqual([]);
      expect((await store.getOperation(id))!.status).toBe("running");
    } finally {
      wd.stop();
    }
  });
});
