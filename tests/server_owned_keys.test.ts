// Keys the server owns (issue 20, defects 1 and 3): no client request sets where an operation runs or which host the API
// contacts, the API contacts only the hosts it was configured with (a real listener stands for a forged host and must
// receive nothing), and the liveness watchdog reads the server's own columns, one operation at a time.
import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { SQL } from "bun";
import { join } from "node:path";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { HostPool } from "../src/host_pool/pool.ts";
import { startHostWatchdog, type WatchdogOptions } from "../src/host_pool/watchdog.ts";
import { OWN_METADATA_KEYS } from "../src/operations/ownership.ts";
import { OperationsService } from "../src/operations/service.ts";
import { MIGRATIONS } from "../src/store/migrations.ts";
import { PG_MIGRATIONS } from "../src/store/pg_migrations.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { HOST_UNREACHABLE } from "../src/operations/liveness.ts";
import { summarizeTrends } from "../src/trends/index.ts";
import { Dispatcher } from "../src/trainer/dispatcher.ts";
import { LocalTrainer } from "../src/trainer/local.ts";
import { dropSchema, schemaName, withPostgres } from "./fixtures/postgres.ts";
import { scriptedTrainer } from "./fixtures/trainer.ts";
import { json, req, tempDir } from "./helpers.ts";
import { nested } from "./store_contract.ts";

/** The host the API is configured with (TRAINING_HOST_URL); nothing in these tests reaches it either. */
const CONFIGURED = "http://127.0.0.1:9";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A real listener standing for the host a request names: records every request that reaches it. */
function forgedHost() {
  const received: string[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(r) {
      received.push(`${r.method} ${new URL(r.url).pathname} (authorization: ${r.headers.get("authorization")})`);
      return Response.json({ success: false, error: { code: "NOT_FOUND", message: "forged" } }, { status: 404 });
    },
  });
  cleanups.push(() => server.stop(true));
  return { url: `http://127.0.0.1:${server.port}`, received };
}

/** The server's wiring with one configured host and its token, on an in-memory store. */
function api() {
  const models = tempDir("trainwatch-models-");
  const config = loadConfig({ TRAINWATCH_MODELS_DIR: models.dir });
  const store = new SqliteStore(":memory:");
  const operations = new OperationsService(store);
  const pool = new HostPool({ urls: [CONFIGURED], token: "host-secret", apiUrl: () => "http://api.test" });
  const local = new LocalTrainer(operations, { maxConcurrent: 1, modelsDir: models.dir, start: scriptedTrainer() });
  const app = createApp({ store, operations, config, trainers: new Dispatcher(operations, local, pool, config) });
  cleanups.push(
    () => store.close(),
    () => models.cleanup(),
  );
  return { app, store, operations, pool };
}

/** A watchdog checked by hand on `clock`, heartbeats late after 1.5 s, failing after 60 s of silence. */
function watchdog(operations: OperationsService, clock: { now: number }, extra: Partial<WatchdogOptions> = {}) {
  const lines: string[] = [];
  const wd = startHostWatchdog(operations, {
    timeoutMs: 60_000,
    heartbeatMs: 1000,
    intervalMs: 3_600_000,
    now: () => clock.now,
    log: (line) => lines.push(line),
    ...extra,
  });
  cleanups.push(() => wd.stop());
  return { check: () => wd.check(), lines };
}

describe("keys the server owns", () => {
  test("POST /operations refuses each of them in metadata with a 400 naming it, and registers nothing", async () => {
    const { app, store } = api();
    for (const key of OWN_METADATA_KEYS.filter((k) => k !== "pid")) {
      const { status, body } = await json(
        app.handle(req("POST", "/api/v1/operations", { operation_type: "training", metadata: { [key]: "x" } })),
      );
      expect(status).toBe(400);
      expect(body.error.details.field).toBe(`body.metadata.${key}`);
      expect(body.error.message).toBe(`body.metadata.${key}: set by Trainwatch, not by a client`);
    }
    expect((await store.listOperations({ limit: 10, offset: 0 })).total).toBe(0);
  });

  test("a registering trainer keeps its own keys and its pid; the operation is external", async () => {
    const { app } = api();
    const { status, body } = await json(
      app.handle(
        req("POST", "/api/v1/operations", {
          operation_type: "training",
          metadata: { pid: 4242, gpu: "H100", nested: { location: "host", host: "http://elsewhere" } },
        }),
      ),
    );
    expect(status).toBe(201);
    expect(body.data.metadata).toEqual({
      pid: 4242,
      gpu: "H100",
      nested: { location: "host", host: "http://elsewhere" },
      location: "external",
    });
  });

  test("PATCH …/metadata refuses the same keys, pid included", async () => {
    const { app, operations } = api();
    const op = await operations.createOperation({ operation_type: "training", metadata: { location: "external" } });
    for (const key of OWN_METADATA_KEYS) {
      const { status, body } = await json(
        app.handle(req("PATCH", `/api/v1/operations/${op.operation_id}/metadata`, { [key]: 1 })),
      );
      expect(status).toBe(400);
      expect(body.error.details.field).toBe(`body.${key}`);
    }
  });
});

describe("the API contacts only the hosts it was configured with", () => {
  test("the issue's forgery answers 4xx at every step and the forged host receives nothing", async () => {
    const forged = forgedHost();
    const { app, store, operations, pool } = api();
    const repro = await json(
      app.handle(
        req("POST", "/api/v1/operations", {
          operation_type: "training",
          metadata: { location: "host", host: forged.url, checkpoints: [{ epoch: 1, kind: "best", path: "x" }] },
        }),
      ),
    );
    expect(repro.status).toBe(400);
    expect(repro.body.error.details.field).toBe("body.metadata.location");
    // What the client can register instead is external: no host's report in a heartbeat (a client's heartbeat is `{}`),
    // no checkpoint or log from a host.
    const external = (
      await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training", metadata: { a: 1 } })))
    ).body.data.operation_id as string;
    for (const [method, path, body] of [
      ["POST", `/api/v1/operations/${external}/heartbeat`, { checkpoints: [{ epoch: 1, kind: "best", path: "x" }] }],
      ["GET", `/api/v1/operations/${external}/checkpoints/1`],
      ["GET", `/api/v1/operations/${external}/logs`],
    ] as const) {
      const { status } = await json(app.handle(req(method, path, body)));
      expect(`${method} ${path} → ${status}`).toMatch(/→ 4\d\d$/);
    }
    // A row naming the forged host as the server before this fix stored it (a backfilled database keeps it).
    const row = await store.createOperation({
      operation_type: "training",
      metadata: { location: "host", host: forged.url, checkpoints: [{ epoch: 1, kind: "best", path: "x" }] },
    });
    const id = row.operation_id;
    const clock = { now: Date.now() };
    const wd = watchdog(operations, clock, { probe: (h, op) => pool.probeSession(h, op) });
    const firstCheck = await wd.check();
    expect(forged.received).toEqual([]);
    expect(firstCheck).toEqual([]);
    const checkpoint = await json(app.handle(req("GET", `/api/v1/operations/${id}/checkpoints/1`)));
    expect(checkpoint.status).toBe(404);
    expect(checkpoint.body.error.message).toContain(`names the training host ${forged.url}, which is not one of`);
    expect((await app.handle(req("GET", `/api/v1/operations/${id}/logs`))).status).toBe(404);
    expect((await app.handle(req("GET", `/api/v1/operations/${id}/logs/stream`))).status).toBe(404);
    clock.now += 61_000;
    expect(await wd.check()).toEqual([id]);
    expect((await store.getOperation(id))!.error_message).toBe(
      `${HOST_UNREACHABLE}: no epoch or heartbeat from ${forged.url} for 60 s; it does not answer either (operation ${id} names the training host ${forged.url}, which is not one of this server's (TRAINING_HOST_URL: ${CONFIGURED}); it is not contacted)`,
    );
    const other = await store.createOperation({
      operation_type: "training",
      metadata: { location: "host", host: forged.url },
    });
    const cancel = await json(app.handle(req("DELETE", `/api/v1/operations/${other.operation_id}`)));
    expect(cancel.status).toBe(200);
    expect(cancel.body.data.metadata.cancel).toMatchObject({ host_unknown: true, host: forged.url });
    expect(forged.received).toEqual([]);
  });
});

describe("the watchdog reads the server's columns, one operation at a time", () => {
  test("metadata nested 1,500 levels deep, the dead host's own included, does not keep its training running", async () => {
    const store = new SqliteStore(":memory:");
    cleanups.push(() => store.close());
    const operations = new OperationsService(store);
    const clock = { now: 1_000_000 };
    const deep = await operations.createOperation({
      operation_type: "training",
      metadata: { location: "external", deep: nested(1500) },
    });
    const dead = await operations.createOperation({
      operation_type: "training",
      metadata: { location: "host", host: "http://gpu-dead:8100" },
    });
    // What a script on that host may patch in: SQLite's json_extract fails on it ("malformed JSON").
    await operations.mergeMetadata(dead.operation_id, { debug: nested(1500) });
    for (const op of [deep, dead]) await store.touch(op.operation_id, clock.now);
    const wd = watchdog(operations, clock);
    clock.now += 61_000;
    expect(await wd.check()).toEqual([dead.operation_id]);
    expect((await store.getOperation(dead.operation_id))!.failure_code).toBe("host_unreachable");
    expect((await store.getOperation(deep.operation_id))!.status).toBe("running");
  });

  test("an operation that cannot be read is logged with its id, and the others are still checked", async () => {
    const store = new SqliteStore(":memory:");
    cleanups.push(() => store.close());
    const operations = new OperationsService(store);
    const clock = { now: 1_000_000 };
    const host = (n: number) =>
      operations.createOperation({
        operation_type: "training",
        metadata: { location: "host", host: `http://gpu-${n}` },
      });
    const [broken, dead] = [await host(1), await host(2)];
    for (const op of [broken, dead]) await store.touch(op.operation_id, clock.now);
    store.db.query("UPDATE operations SET metadata = '{not json' WHERE operation_id = ?").run(broken.operation_id);
    const wd = watchdog(operations, clock);
    clock.now += 61_000;
    expect(await wd.check()).toEqual([dead.operation_id]);
    expect(wd.lines.filter((l) => l.includes("check failed"))).toEqual([
      expect.stringMatching(new RegExp(`^\\[watchdog\\] ${broken.operation_id}: check failed: .*JSON`)),
    ]);
  });

  test("an operation never heard from is reported silent since it started, not since 1970", async () => {
    const store = new SqliteStore(":memory:");
    cleanups.push(() => store.close());
    const operations = new OperationsService(store);
    const op = await operations.createOperation({
      operation_type: "training",
      metadata: { location: "host", host: "http://gpu-a:8100" },
    });
    const clock = { now: Date.parse(op.started_at!) + 12_000 };
    const wd = watchdog(operations, clock, { probe: async () => ({ kind: "gone" }) });
    expect(await wd.check()).toEqual([op.operation_id]);
    expect((await store.getOperation(op.operation_id))!.error_message).toBe(
      "training host http://gpu-a:8100 no longer has this training (it answered 404 after 12 s without a heartbeat): it was restarted or lost the session",
    );
  });
});

/** Rows as a server before the placement columns stored them: [operation_id, metadata]. */
const OLD_ROWS: [string, string][] = [
  ["op_host", JSON.stringify({ location: "host", host: "http://gpu-1:8100", spec: {} })],
  ["op_host_number", JSON.stringify({ location: "host", host: 8100 })],
  ["op_local", JSON.stringify({ location: "local", host: "http://ignored" })],
  ["op_import", JSON.stringify({ location: "import" })],
  ["op_mars", JSON.stringify({ location: "mars" })],
  ["op_none", JSON.stringify({ lr: 0.1 })],
  ["op_malformed", '{"location": "host", '],
];
/** What the backfill makes of each: [operation_id, location, host]. */
const BACKFILLED = [
  ["op_host", "host", "http://gpu-1:8100"],
  ["op_host_number", "host", null],
  ["op_local", "local", null],
  ["op_import", "import", null],
  ["op_mars", "external", null],
  ["op_none", null, null],
  ["op_malformed", "external", null],
];

describe("the placement migration backfills from the blob, and a blob it cannot read is external", () => {
  test("SQLite (migration 5)", async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, "v4.db");
    const old = new Database(path, { create: true });
    for (const m of MIGRATIONS.slice(0, 4)) old.run(m);
    old.run("PRAGMA user_version = 4");
    const deep = JSON.stringify({ location: "host", host: "http://gpu-1:8100", deep: nested(1500) });
    for (const [id, metadata] of [...OLD_ROWS, ["op_deep", deep] as [string, string]]) {
      old.run(
        `INSERT INTO operations (operation_id, operation_type, status, created_at, metadata, summary)
         VALUES (?, 'training', 'running', '2026-01-01T00:00:00.000Z', ?, ?)`,
        [id, metadata, JSON.stringify(summarizeTrends([]))],
      );
    }
    old.close();
    const store = new SqliteStore(path);
    cleanups.push(() => store.close());
    const rows = store.db.query("SELECT operation_id, location, host FROM operations ORDER BY id").values();
    expect(rows).toEqual([...BACKFILLED, ["op_deep", "external", null]]);
    expect(await store.staleHostOperations(1)).toEqual(["op_host", "op_host_number"]);
  });
});

await withPostgres("the PostgreSQL placement migration", (url) => {
  describe("the placement migration on PostgreSQL", () => {
    test(`migration ${PG_MIGRATIONS.length} backfills the same way; a blob too deep for PostgreSQL to parse is external`, async () => {
      const schema = schemaName();
      cleanups.push(() => dropSchema(url, schema));
      const old = new SQL(url, { max: 1 });
      await old.unsafe(`CREATE SCHEMA "${schema}"; SET search_path TO "${schema}"`);
      for (const m of PG_MIGRATIONS.slice(0, 2)) await old.unsafe(m);
      await old.unsafe(
        "CREATE TABLE trainwatch_schema_version (version integer NOT NULL); INSERT INTO trainwatch_schema_version VALUES (2)",
      );
      // Past PostgreSQL's stack depth limit: `metadata::json` fails on it.
      const deep = JSON.stringify({ location: "host", host: "http://gpu-1:8100", deep: nested(20_000) });
      for (const [id, metadata] of [...OLD_ROWS, ["op_deep", deep] as [string, string]]) {
        await old`INSERT INTO operations (operation_id, operation_type, status, created_at, metadata, summary)
                  VALUES (${id}, 'training', 'running', now(), ${metadata}, ${JSON.stringify(summarizeTrends([]))})`;
      }
      await old.close();
      const store = await PostgresStore.open(url, { schema });
      cleanups.push(() => store.close());
      const check = new SQL(url, { max: 1 });
      const rows = await check
        .unsafe(`SELECT operation_id, location, host FROM "${schema}".operations ORDER BY id`)
        .values();
      await check.close();
      expect(rows).toEqual([...BACKFILLED, ["op_deep", "external", null]]);
      expect(await store.staleHostOperations(1)).toEqual(["op_host", "op_host_number"]);
    });
  });
});
