// Starting the server and the host: configuration checked up front, naming the variable; one
// process per port and per database. Process-level where only processes show it (exit codes,
// ports, locks held by another PID).
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../src/config.ts";
import { ConfigError } from "../src/env.ts";
import { loadHostConfig } from "../src/host/config.ts";
import { startupLine } from "../src/startup.ts";
import { DatabaseLockedError, lockFileOf } from "../src/store/database.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { freePort, runRefusedStart, startHostProcess, startServerProcess, tempDir } from "./helpers.ts";

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function temp() {
  const t = tempDir("trainwatch-startup-");
  cleanups.push(t.cleanup);
  return t.dir;
}

/** The ConfigError loadConfig (or loadHostConfig) throws for `env`. */
function refusal(
  env: Record<string, string>,
  load: (env: Record<string, string>) => unknown = loadConfig,
): ConfigError {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe("configuration is checked at start and a bad value names the variable and what it allows", () => {
  const bad: [Record<string, string>, string][] = [
    [{ PORT: "99999" }, 'PORT: expected an integer from 0 to 65535, got "99999"'],
    [{ PORT: "80.5" }, "PORT: expected an integer from 0 to 65535"],
    [{ PORT: "http" }, "PORT: expected an integer"],
    [
      { HOST: "999.1.1.1" },
      'HOST: expected an IPv4 or IPv6 address (127.0.0.1, 0.0.0.0, ::) or a host name, got "999.1.1.1"',
    ],
    [{ HOST: "my host" }, "HOST: expected an IPv4 or IPv6 address"],
    [
      { USE_TRAINING_HOST_SERVICE: "maybe" },
      'USE_TRAINING_HOST_SERVICE: expected one of true, 1, yes, on, false, 0, no, off, got "maybe"',
    ],
    [
      { TRAINWATCH_BACKEND: "gpu" },
      'TRAINWATCH_BACKEND: expected one of tensorflow-gpu, tensorflow, wasm, cpu, got "gpu"',
    ],
    [
      { TRAINING_HOST_URL: "http://gpu-a:8100,gpu-b:8100" },
      'TRAINING_HOST_URL: expected an http:// or https:// URL, got "gpu-b:8100"',
    ],
    [{ TRAINING_HOST_URL: "ftp://gpu-a" }, "TRAINING_HOST_URL: expected an http:// or https:// URL"],
    [{ TRAINWATCH_PUBLIC_URL: "not a url" }, "TRAINWATCH_PUBLIC_URL: expected an http:// or https:// URL"],
    [{ TRAINWATCH_MAX_BODY_BYTES: "0" }, "TRAINWATCH_MAX_BODY_BYTES: expected an integer from 1 to"],
    [{ TRAINWATCH_MAX_BODY_BYTES: "1.5" }, "TRAINWATCH_MAX_BODY_BYTES: expected an integer"],
    [{ TRAINWATCH_MAX_LOCAL_TRAININGS: "0" }, "TRAINWATCH_MAX_LOCAL_TRAININGS: expected an integer from 1 to 1024"],
    [{ TRAINWATCH_HOST_TIMEOUT: "-1" }, "TRAINWATCH_HOST_TIMEOUT: expected a number from 0.1 to 86400"],
    [{ TRAINWATCH_HOST_TIMEOUT: "1e9" }, "TRAINWATCH_HOST_TIMEOUT: expected a number from 0.1 to 86400"],
    [{ TRAINWATCH_RELAY_TIMEOUT: "NaN" }, "TRAINWATCH_RELAY_TIMEOUT: expected a number"],
    [
      { TRAINWATCH_DB: "mysql://u:secret@db/x" },
      'TRAINWATCH_DB: expected a SQLite path or a postgres:// URL, got "mysql://u:***@db/x"',
    ],
    [{ TRAINWATCH_DB: "postgres:///nohost" }, "TRAINWATCH_DB: expected a SQLite path or a postgres:// URL"],
    [{ TRAINWATCH_LEASE: "0" }, "TRAINWATCH_LEASE: expected a number from 1 to 86400"],
    [{ TRAINWATCH_PLATEAU_PATIENCE: "2.5" }, "TRAINWATCH_PLATEAU_PATIENCE: expected an integer ≥ 1"],
    [{ TRAINWATCH_OVERFIT_WINDOW: "1" }, "TRAINWATCH_OVERFIT_WINDOW: expected an integer ≥ 2"],
  ];

  const badHost: [Record<string, string>, string][] = [
    [{ TRAINWATCH_HOST_PORT: "70000" }, "TRAINWATCH_HOST_PORT: expected an integer from 0 to 65535"],
    [{ TRAINWATCH_URL: "api:8000" }, "TRAINWATCH_URL: expected an http:// or https:// URL"],
    [{ TRAINWATCH_HEARTBEAT_INTERVAL: "0" }, "TRAINWATCH_HEARTBEAT_INTERVAL: expected a number from 0.01 to 86400"],
    [{ TRAINWATCH_RELAY_BACKOFF_MIN: "soon" }, "TRAINWATCH_RELAY_BACKOFF_MIN: expected a number"],
    // The host checks the variables it shares with the server too.
    [{ TRAINWATCH_BACKEND: "cuda" }, "TRAINWATCH_BACKEND: expected one of tensorflow-gpu, tensorflow, wasm, cpu"],
  ];
  for (const [who, load, cases] of [
    ["the server", loadConfig, bad],
    ["the host", loadHostConfig, badHost],
  ] as const) {
    for (const [env, message] of cases) {
      test(`${who} refuses ${Object.entries(env)[0]!.join("=")}`, () => {
        const err = refusal(env, load);
        expect(err.message.startsWith(message)).toBe(true);
        expect(err.variable).toBe(Object.keys(env)[0]!);
      });
    }
  }

  test("USE_TRAINING_HOST_SERVICE accepts true/false, 1/0, yes/no and on/off in any case", () => {
    for (const v of ["true", "TRUE", "1", "yes", "Yes", "on"])
      expect(loadConfig({ USE_TRAINING_HOST_SERVICE: v }).useHostService).toBe(true);
    for (const v of ["false", "False", "0", "no", "NO", "off", ""])
      expect(loadConfig({ USE_TRAINING_HOST_SERVICE: v }).useHostService).toBe(false);
    expect(loadConfig({}).useHostService).toBe(false);
  });

  test("good values are read as documented", () => {
    for (const host of ["0.0.0.0", "::", "::1", "localhost", "gpu-box.internal"])
      expect(loadConfig({ HOST: host }).host).toBe(host);
    const c = loadConfig({
      PORT: " 0 ",
      TRAINWATCH_BACKEND: "wasm",
      TRAINING_HOST_URL: "http://gpu-a:8100/, https://gpu-b/ ,",
      TRAINWATCH_HOST_TIMEOUT: "1.5",
    });
    expect(c).toMatchObject({
      port: 0,
      backend: "wasm",
      hostUrls: ["http://gpu-a:8100", "https://gpu-b"],
      hostTimeoutMs: 1500,
    });
    expect(loadConfig({}).backend).toBeNull();
    expect(loadConfig({})).toMatchObject({
      db: { kind: "sqlite", path: "./data/trainwatch.db" },
      replicaId: null,
      leaseMs: 15_000,
    });
    expect(
      loadConfig({
        TRAINWATCH_DB: "postgresql://tw:pw@db.internal:5432/trainwatch?sslmode=require",
        TRAINWATCH_REPLICA_ID: "api-1",
        TRAINWATCH_LEASE: "30",
      }),
    ).toMatchObject({
      db: { kind: "postgres", url: "postgresql://tw:pw@db.internal:5432/trainwatch?sslmode=require" },
      replicaId: "api-1",
      leaseMs: 30_000,
    });
    expect(loadHostConfig({ TRAINWATCH_URL: "http://api:8000/" }).apiUrl).toBe("http://api:8000");
  });

  test("the server process prints one line naming the variable and exits 1, with no stack", async () => {
    for (const [env, line] of [
      [{ PORT: "99999" }, 'configuration error: PORT: expected an integer from 0 to 65535, got "99999"'],
      [{ HOST: "999.1.1.1" }, "configuration error: HOST: expected an IPv4 or IPv6 address"],
    ] as const) {
      const r = await runRefusedStart("src/server.ts", { ...env, TRAINWATCH_DB: ":memory:" });
      expect(r.code).toBe(1);
      const lines = r.output.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]!.startsWith(line)).toBe(true);
    }
  });

  test("the host process does the same", async () => {
    const r = await runRefusedStart("src/host", { TRAINWATCH_BACKEND: "gpu", TRAINWATCH_HOST_DB: ":memory:" });
    expect(r.code).toBe(1);
    expect(r.output.trim()).toBe(
      'configuration error: TRAINWATCH_BACKEND: expected one of tensorflow-gpu, tensorflow, wasm, cpu, got "gpu"',
    );
  });

  test("an error that is a bug is not dressed up as a refused start", () => {
    expect(startupLine(new TypeError("x is undefined"))).toBeNull();
  });
});

describe("one database, one process", () => {
  test("a second store on an open file is refused, naming the file and the holder's PID; after close it opens", () => {
    const path = join(temp(), "tw.db");
    const first = new SqliteStore(path);
    expect(readFileSync(lockFileOf(path), "utf8").trim()).toBe(String(process.pid));
    let err: unknown = null;
    try {
      new SqliteStore(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DatabaseLockedError);
    expect((err as Error).message).toContain(`database ${path} is in use`);
    expect((err as Error).message).toContain("TRAINWATCH_DB");
    first.close();
    expect(existsSync(lockFileOf(path))).toBe(false);
    new SqliteStore(path).close();
  });

  test("a PID file left by a killed process does not block the next start", () => {
    const path = join(temp(), "tw.db");
    writeFileSync(lockFileOf(path), "999999999\n");
    const store = new SqliteStore(path);
    expect(readFileSync(lockFileOf(path), "utf8").trim()).toBe(String(process.pid));
    store.close();
  });

  test("the in-memory store needs no lock", () => {
    const a = new SqliteStore(":memory:");
    const b = new SqliteStore(":memory:");
    a.close();
    b.close();
  });
});

/** A local training long enough to still run while the test acts (~10 epochs/s on 2 cores). */
const long = {
  name: "long",
  dataset: { kind: "synthetic", generator: "spirals", samples: 600, seed: 3 },
  model: { hidden_layers: [16] },
  training: { epochs: 3000, batch_size: 4, seed: 7 },
};

describe("one port and one database per process", () => {
  test("a second server on the same port, or on the same database, is refused and the first keeps its trainings", async () => {
    const dir = temp();
    const db = join(dir, "tw.db");
    const first = await startServerProcess({ TRAINWATCH_DB: db, TRAINWATCH_MODELS_DIR: join(dir, "models") });
    cleanups.push(first.stop);
    const post = await fetch(`${first.url}/api/v1/trainings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(long),
    });
    expect(post.status).toBe(202);
    const id = ((await post.json()) as { data: { operation_id: string } }).data.operation_id;

    const samePort = await runRefusedStart("src/server.ts", {
      PORT: String(first.port),
      TRAINWATCH_DB: join(dir, "other.db"),
    });
    expect(samePort.code).toBe(1);
    expect(samePort.output.trim()).toBe(
      `cannot start: port ${first.port} on 127.0.0.1 is already in use by another process; stop it or set PORT to another port`,
    );

    const sameDb = await runRefusedStart("src/server.ts", { PORT: String(freePort()), TRAINWATCH_DB: db });
    expect(sameDb.code).toBe(1);
    expect(sameDb.output.trim()).toBe(
      `cannot start: database ${db} is in use by another process (pid ${first.proc.pid}); stop it or set TRAINWATCH_DB to another file`,
    );

    // The refused server recovered nothing: the first one's training is untouched.
    const op = (
      (await (await fetch(`${first.url}/api/v1/operations/${id}`)).json()) as {
        data: { status: string; error_message: string | null };
      }
    ).data;
    expect(["pending", "running"]).toContain(op.status);
    expect(op.error_message).toBeNull();
    expect((await fetch(`${first.url}/api/v1/operations/${id}`, { method: "DELETE" })).status).toBe(200);
  }, 60_000);

  test("a second host on the same port, or on the same outbox, is refused", async () => {
    const dir = temp();
    const host = await startHostProcess(dir);
    cleanups.push(host.stop);
    const port = new URL(host.url).port;

    const samePort = await runRefusedStart("src/host", {
      TRAINWATCH_HOST_PORT: port,
      TRAINWATCH_HOST_DB: join(dir, "other.db"),
    });
    expect(samePort.code).toBe(1);
    expect(samePort.output.trim()).toBe(
      `cannot start: port ${port} on 127.0.0.1 is already in use by another process; stop it or set TRAINWATCH_HOST_PORT to another port`,
    );

    const outbox = join(dir, "host.db");
    const sameDb = await runRefusedStart("src/host", { TRAINWATCH_HOST_PORT: "0", TRAINWATCH_HOST_DB: outbox });
    expect(sameDb.code).toBe(1);
    expect(sameDb.output.trim()).toBe(
      `cannot start: database ${outbox} is in use by another process (pid ${host.proc.pid}); stop it or set TRAINWATCH_HOST_DB to another file`,
    );
    expect((await fetch(`${host.url}/health`)).status).toBe(200);
  }, 60_000);
});
