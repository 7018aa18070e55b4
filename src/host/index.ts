/**
 * Entry point of the GPU host service: `bun run src/host`. Trains the sessions the
 * API sends it, in the same worker and from the same spec as a local training, and
 * relays every epoch back through the outbox. Listens on 127.0.0.1:8100 unless
 * HOST / TRAINWATCH_HOST_PORT say otherwise.
 */
import { TrainwatchClient } from "../client/api.ts";
import { selectBackend } from "../trainer/backend.ts";
import type { StartTraining } from "../trainer/worker_client.ts";
import { backendOf, createHostApp, type HostBackend } from "./app.ts";
import { loadHostConfig, type HostConfig } from "./config.ts";
import { Outbox } from "./outbox.ts";
import { Sessions } from "./sessions.ts";
import { listen, runEntry } from "../startup.ts";
import { createChildApi } from "./child_api.ts";
import { ScriptSessions } from "./script_trainings.ts";
import { loadRecipeBook } from "../recipes/book.ts";
import { LogStore } from "../script_trainings/logs.ts";
import { machineGpus } from "../script_trainings/gpus.ts";
import { killLeftovers } from "../script_trainings/runner.ts";
import pkg from "../../package.json" with { type: "json" };

export function startHost(config: HostConfig = loadHostConfig(), opts: { start?: StartTraining } = {}) {
  const clients = new Map<string, TrainwatchClient>();
  const api = (baseUrl: string) => {
    let c = clients.get(baseUrl);
    if (!c)
      clients.set(
        baseUrl,
        (c = new TrainwatchClient({ baseUrl, token: config.apiToken, timeoutMs: config.relayTimeoutMs })),
      );
    return c;
  };
  // A bad recipe file stops the start before the outbox file is locked.
  const book = loadRecipeBook(config.recipesPath);
  let sessions: Sessions | null = null;
  let scripts: ScriptSessions | null = null;
  const outbox = new Outbox({
    path: config.dbPath,
    api,
    backoff: config.backoff,
    heartbeatMs: config.heartbeatMs,
    onStop: (id, reason) => (scripts?.has(id) ? scripts.stopFromApi(id, reason) : sessions?.stopFromApi(id, reason)),
    // A built-in session heeds the API's decision (Sessions.heedControl); a script hears it from its own metrics replies (child API).
    onControl: (id, control) =>
      scripts?.has(id) ? scripts.stopFromControl(id, control) : sessions?.heedControl(id, control),
  });
  sessions = new Sessions({ outbox, modelsDir: config.modelsDir, start: opts.start });
  // Under the outbox's lock: the scripts a crashed host left are killed (the outbox fails their operations as interrupted).
  const leftovers = killLeftovers(config.logsDir);
  if (leftovers.length)
    console.warn(
      `[host] stopped what ${leftovers.length} script training(s) of the previous run left: ${leftovers.join(", ")}`,
    );
  const gpus = machineGpus(config.gpus);
  // Children report to this host on loopback, on a port of their own (see child_api.ts).
  let childUrl = "";
  scripts = new ScriptSessions({
    outbox,
    book,
    logs: new LogStore(config.logsDir),
    killGraceMs: config.killGraceMs,
    gpus,
    childUrl: () => childUrl,
  });
  const childApi = createChildApi(scripts, config.maxBodyBytes);

  // The same selection the worker makes, run once here so /health can answer before the first training;
  // it logs a line for every backend it skips. A session's own report takes over once one has started.
  let probed: HostBackend = { backend: null, backend_fallback_reason: "still detecting", gpu: null, gpu_visible: null };
  const detected = selectBackend().then(
    (b) => (probed = backendOf(b)),
    (err: Error) => (probed = { backend: null, backend_fallback_reason: err.message, gpu: null, gpu_visible: null }),
  );
  const backend = (): HostBackend => {
    const last = sessions!.lastStart;
    return last ? backendOf(last) : probed;
  };

  const app = createHostApp({
    sessions,
    outbox,
    token: config.hostToken,
    version: pkg.version,
    backend,
    apiUrl: config.apiUrl,
    maxBodyBytes: config.maxBodyBytes,
    dataDir: config.dataDir,
    maxModelMb: config.maxModelMb,
    scripts,
  });
  try {
    listen(app, { hostname: config.host, port: config.port, portVariable: "TRAINWATCH_HOST_PORT" });
    listen(childApi, { hostname: "127.0.0.1", port: 0, portVariable: "TRAINWATCH_HOST_PORT" });
    childUrl = `http://127.0.0.1:${childApi.server!.port}`;
  } catch (err) {
    // The child API can only fail after the main port is bound: that one is released too.
    if (app.server) void app.stop(true).catch(() => {});
    outbox.stop(); // releases the outbox file at once, PID file included
    throw err;
  }
  const url = `http://${config.host}:${app.server!.port}`;
  console.log(`trainwatch host listening on ${url} (relay outbox ${config.dbPath})`);
  if (book.source)
    console.log(
      `[host] recipes: ${
        book
          .list()
          .map((r) => r.name)
          .join(", ") || "none"
      } from ${book.source}; GPUs for them: ${gpus.length ? gpus.map((g) => `${g.id}${g.name ? ` (${g.name})` : ""}`).join(", ") : "none"}`,
    );
  void detected.then((b) =>
    console.log(
      b.backend
        ? `[host] training backend: ${b.backend}${b.gpu ? ` on ${b.gpu}` : b.gpu_visible ? ` (${b.gpu_visible} present but unused)` : ""}${b.backend_fallback_reason ? ` (fell back: ${b.backend_fallback_reason})` : ""}`
        : `[host] no training backend: ${b.backend_fallback_reason}`,
    ),
  );

  /** Stops trainings (they end failed, "interrupted: training host stopped"), gives the relay a moment, then closes. */
  const stop = async (flushMs = 3000) => {
    await Promise.all([sessions!.shutdown(), scripts!.shutdown()]);
    await Promise.race([outbox.idle(), Bun.sleep(flushMs)]);
    await app.stop();
    await childApi.stop(true);
    outbox.stop();
  };
  return { app, url, sessions, scripts, outbox, stop };
}

if (import.meta.main) runEntry(() => startHost());
