// Shared test helpers: an in-process app on an in-memory database, request builders,
// and a real server process on a free port for the few end-to-end tests.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, type Trainers } from "../src/app.ts";
import { createHostApp } from "../src/host/app.ts";
import type { Outbox } from "../src/host/outbox.ts";
import type { Sessions } from "../src/host/sessions.ts";
import { loadConfig } from "../src/config.ts";
import { OperationsService } from "../src/operations/service.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import type { Store } from "../src/store/store.ts";
import { Dispatcher } from "../src/trainer/dispatcher.ts";
import type { Executor } from "../src/executors/executor.ts";
import { freePort, runBun, spawnEntry, type SpawnedEntry } from "./fixtures/spawn.ts";
import { LocalTrainer, type StartTraining } from "../src/trainer/local.ts";

/**
 * The app on a fresh ":memory:" SQLite store. `env` is read like the server's
 * environment (e.g. `{ TRAINWATCH_TOKEN: "t" }`); nothing is read from process.env.
 */
export function makeApp(env: Record<string, string> = {}, trainers?: Trainers) {
  const config = loadConfig(env);
  const store = new SqliteStore(":memory:", config.trends);
  const app = createApp({ store, config, trainers });
  return { app, store, config };
}

/** The host's app with no sessions behind it: enough for what happens before a handler runs. */
export const bareHostApp = (token: string | null) =>
  createHostApp({
    sessions: {} as Sessions,
    outbox: {} as Outbox,
    token,
    version: "test",
    dataDir: "/nonexistent",
    maxModelMb: 1536,
    backend: () => ({ backend: null, backend_fallback_reason: null, gpu: null, gpu_visible: null }),
  });

/**
 * The server's wiring (src/server.ts) on an in-memory database: a real LocalTrainer with real workers (or `start`, a
 * stand-in) saving models in a fresh temporary folder. `env` as for makeApp; `close` removes the folder.
 */
export function localTrainingApp(
  opts: { env?: Record<string, string>; start?: StartTraining; executors?: (store: Store) => Executor[] } = {},
) {
  const models = tempDir("trainwatch-models-");
  const config = loadConfig({ TRAINWATCH_MODELS_DIR: models.dir, ...opts.env });
  const store = new SqliteStore(":memory:", config.trends);
  const operations = new OperationsService(store, { trends: config.trends });
  const local = new LocalTrainer(operations, {
    maxConcurrent: config.maxLocalTrainings,
    modelsDir: config.modelsDir,
    start: opts.start,
  });
  const trainers = new Dispatcher(operations, local, null, config);
  for (const e of opts.executors?.(store) ?? []) trainers.executors.register(e);
  const app = createApp({ store, operations, config, trainers });
  const close = () => {
    store.close();
    models.cleanup();
  };
  return { app, store, operations, local, models, close };
}

/**
 * A Request for `app.handle`. A string body is sent as is (for malformed JSON);
 * anything else is JSON-encoded. The host must be "localhost": Elysia 404s a bare host.
 */
export function req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Request {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??= "application/json";
  }
  return new Request(`http://localhost${path}`, init);
}

/** Status and parsed JSON of a response (`body` is null when the reply is not JSON). */
export async function json<T = any>(res: Response | Promise<Response>): Promise<{ status: number; body: T }> {
  const r = await res;
  const text = await r.text();
  let body: T;
  try {
    body = JSON.parse(text) as T;
  } catch {
    body = null as T;
  }
  return { status: r.status, body };
}

export { until } from "./fixtures/poll.ts";

export { captureOutput, freePort, runBun } from "./fixtures/spawn.ts";

/** A fresh temporary directory, removed by the returned `cleanup`. */
export function tempDir(prefix = "trainwatch-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ServerProcess {
  /** Base URL to fetch, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  proc: ReturnType<typeof Bun.spawn>;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, wait for exit, remove the temporary database directory. */
  stop(): Promise<void>;
}

/**
 * Spawns `bun run src/server.ts` and resolves once /api/v1/health answers.
 * Defaults: a free PORT, TRAINWATCH_DB in a fresh temp dir, and no HOST or
 * TRAINWATCH_TOKEN inherited from the outer environment. `env` overrides them.
 */
export async function startServerProcess(env: Record<string, string> = {}, timeoutMs = 20_000): Promise<ServerProcess> {
  const tmp = tempDir();
  try {
    const p = await spawnEntry({
      entry: "src/server.ts",
      drop: ["HOST", "PORT", "TRAINWATCH_DB", "TRAINWATCH_TOKEN"],
      env: { PORT: String(freePort()), TRAINWATCH_DB: join(tmp.dir, "trainwatch.db"), ...env },
      // The log line carries the bound port, so PORT=0 works too.
      url: (out) => /listening on (http:\/\/\S+)/.exec(out)?.[1]?.replace("//0.0.0.0:", "//127.0.0.1:") ?? null,
      health: "/api/v1/health",
      timeoutMs,
    });
    const stop = async () => {
      await p.stop();
      tmp.cleanup();
    };
    return { ...p, port: Number(new URL(p.url).port), stop };
  } catch (err) {
    tmp.cleanup();
    throw err;
  }
}

export type HostProcess = SpawnedEntry;

/** Spawns `bun run src/host` on a free port with its outbox in `dir`; resolves once /health answers. */
export function startHostProcess(
  dir: string,
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<HostProcess> {
  return spawnEntry({
    entry: "src/host",
    drop: [
      "HOST",
      "TRAINWATCH_HOST_PORT",
      "TRAINWATCH_HOST_DB",
      "TRAINWATCH_TOKEN",
      "TRAINWATCH_HOST_TOKEN",
      "TRAINWATCH_URL",
    ],
    env: {
      TRAINWATCH_HOST_PORT: "0",
      TRAINWATCH_HOST_DB: join(dir, "host.db"),
      TRAINWATCH_MODELS_DIR: join(dir, "models"),
      ...env,
    },
    url: (out) => /host listening on (http:\/\/\S+)/.exec(out)?.[1] ?? null,
    health: "/health",
    headers: env.TRAINWATCH_HOST_TOKEN ? { authorization: `Bearer ${env.TRAINWATCH_HOST_TOKEN}` } : {},
    timeoutMs,
  });
}

/**
 * Runs an entry point (`src/server.ts`, `src/host`) that is expected to refuse its start, with
 * `env` over the outer environment; resolves with its exit code and everything it printed.
 */
export async function runRefusedStart(
  entry: string,
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<{ code: number | null; output: string }> {
  const r = await runBun(["run", entry], { ...process.env, ...env }, timeoutMs);
  return { code: r.code, output: r.stdout + r.stderr };
}
