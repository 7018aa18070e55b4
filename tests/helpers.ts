// Shared test helpers: an in-process app on an in-memory database, request builders,
// and a real server process on a free port for the few end-to-end tests.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, type Trainers } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { Hub } from "../src/hub.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { Dispatcher } from "../src/trainer/dispatcher.ts";
import { LocalTrainer, type StartTraining } from "../src/trainer/local.ts";

const ROOT = join(import.meta.dir, "..");

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

/**
 * The server's wiring (src/server.ts) on an in-memory database: a real LocalTrainer with real workers (or `start`, a
 * stand-in) saving models in a fresh temporary folder. `env` as for makeApp; `close` removes the folder.
 */
export function localTrainingApp(opts: { env?: Record<string, string>; start?: StartTraining } = {}) {
  const models = tempDir("trainwatch-models-");
  const config = loadConfig({ TRAINWATCH_MODELS_DIR: models.dir, ...opts.env });
  const store = new SqliteStore(":memory:", config.trends);
  const hub = new Hub(store);
  const local = new LocalTrainer(hub, { maxConcurrent: config.maxLocalTrainings, modelsDir: config.modelsDir, start: opts.start });
  const app = createApp({ store, hub, config, trainers: new Dispatcher(hub, local, null, config) });
  const close = () => {
    store.close();
    models.cleanup();
  };
  return { app, store, hub, local, models, close };
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

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = s.port!;
  s.stop(true);
  return port;
}

/** A fresh temporary directory, removed by the returned `cleanup`. */
export function tempDir(prefix = "trainwatch-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Collects a spawned process's stdout and stderr as they arrive; call the result for the text so far. */
export function captureOutput(proc: { stdout: ReadableStream<Uint8Array>; stderr: ReadableStream<Uint8Array> }): () => string {
  let out = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    const reader = stream.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) out += decoder.decode(r.value, { stream: true });
  };
  void drain(proc.stdout);
  void drain(proc.stderr);
  return () => out;
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
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !["HOST", "PORT", "TRAINWATCH_DB", "TRAINWATCH_TOKEN"].includes(k)) base[k] = v;
  }
  const fullEnv = { ...base, PORT: String(freePort()), TRAINWATCH_DB: join(tmp.dir, "trainwatch.db"), ...env };
  const proc = Bun.spawn([process.execPath, "run", "src/server.ts"], {
    cwd: ROOT,
    env: fullEnv,
    stdout: "pipe",
    stderr: "pipe",
  });
  const output = captureOutput(proc);

  const stop = async () => {
    if (proc.exitCode === null) proc.kill("SIGTERM");
    await proc.exited;
    tmp.cleanup();
  };

  const deadline = Date.now() + timeoutMs;
  let url: string | null = null;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`server exited with ${proc.exitCode} before it was ready:\n${output()}`);
    }
    // The log line carries the bound port, so PORT=0 works too.
    url ??= /listening on (http:\/\/\S+)/.exec(output())?.[1]?.replace("//0.0.0.0:", "//127.0.0.1:") ?? null;
    if (url) {
      try {
        const res = await fetch(`${url}/api/v1/health`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return { url, port: Number(new URL(url).port), proc, output, stop };
      } catch {
        // not accepting connections yet
      }
    }
    await Bun.sleep(50);
  }
  await stop();
  throw new Error(`server not ready within ${timeoutMs} ms:\n${output()}`);
}

export interface HostProcess {
  url: string;
  proc: ReturnType<typeof Bun.spawn>;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns `bun run src/host` on a free port with its outbox in `dir`; resolves once /health answers. */
export async function startHostProcess(dir: string, env: Record<string, string> = {}, timeoutMs = 20_000): Promise<HostProcess> {
  const base: Record<string, string> = {};
  const owned = ["HOST", "TRAINWATCH_HOST_PORT", "TRAINWATCH_HOST_DB", "TRAINWATCH_TOKEN", "TRAINWATCH_HOST_TOKEN", "TRAINWATCH_URL"];
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !owned.includes(k)) base[k] = v;
  const proc = Bun.spawn([process.execPath, "run", "src/host"], {
    cwd: ROOT,
    env: { ...base, TRAINWATCH_HOST_PORT: "0", TRAINWATCH_HOST_DB: join(dir, "host.db"), TRAINWATCH_MODELS_DIR: join(dir, "models"), ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const output = captureOutput(proc);
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    await proc.exited;
  };
  const headers: Record<string, string> = env.TRAINWATCH_HOST_TOKEN ? { authorization: `Bearer ${env.TRAINWATCH_HOST_TOKEN}` } : {};
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`host exited with ${proc.exitCode}:\n${output()}`);
    const url = /host listening on (http:\/\/\S+)/.exec(output())?.[1];
    if (url) {
      const ok = await fetch(`${url}/health`, { headers, signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
      if (ok) return { url, proc, output, stop };
    }
    await Bun.sleep(50);
  }
  await stop();
  throw new Error(`host not ready within ${timeoutMs} ms:\n${output()}`);
}

/**
 * Runs an entry point (`src/server.ts`, `src/host`) that is expected to refuse its start, with
 * `env` over the outer environment; resolves with its exit code and everything it printed.
 */
export async function runRefusedStart(entry: string, env: Record<string, string>, timeoutMs = 20_000): Promise<{ code: number | null; output: string }> {
  const proc = Bun.spawn([process.execPath, "run", entry], { cwd: ROOT, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code: proc.signalCode ? null : code, output: out + err };
}
