/**
 * Entry point: `bun run src/server.ts`. Reads the environment, opens (and locks) the SQLite
 * store, builds the app and listens (127.0.0.1:8000 unless HOST/PORT say otherwise). A bad
 * variable, a database another process holds or a port in use stops it with one line.
 */
import { createApp } from "./app.ts";
import { loadConfig, type Config } from "./config.ts";
import { Hub } from "./hub.ts";
import { SqliteStore } from "./store/sqlite.ts";
import { lateAfterMs } from "./store/store.ts";
import { Dispatcher } from "./trainer/dispatcher.ts";
import { hostPoolFromConfig } from "./hosts/pool.ts";
import { startHostWatchdog } from "./hosts/watchdog.ts";
import { LocalTrainer } from "./trainer/local.ts";
import { listen, runEntry } from "./startup.ts";

export function startServer(config: Config = loadConfig()) {
  // First: the lock on the database comes before anything reads or recovers it.
  const store = new SqliteStore(config.dbPath, config.trends, { lateAfterMs: lateAfterMs(config.heartbeatMs) });
  const hub = new Hub(store);
  const local = new LocalTrainer(hub, { maxConcurrent: config.maxLocalTrainings, modelsDir: config.modelsDir });
  // Hosts are told where to relay once the server is listening (see `url` below).
  const hosts = hostPoolFromConfig(config, () => config.publicUrl ?? url.replace("//0.0.0.0:", "//127.0.0.1:"));
  const trainers = new Dispatcher(hub, local, hosts, config);
  const interrupted = trainers.recoverInterrupted();
  if (interrupted.length) console.warn(`marked ${interrupted.length} interrupted local training(s) failed: ${interrupted.join(", ")}`);
  const app = createApp({ store, hub, config, trainers });
  try {
    listen(app, {
      hostname: config.host,
      port: config.port,
      portVariable: "PORT",
    });
  } catch (err) {
    store.close(); // releases the database at once, PID file included
    throw err;
  }
  const url = `http://${config.host}:${app.server!.port}`;
  console.log(`trainwatch listening on ${url} (db ${config.dbPath}) — Swagger UI at ${url}/swagger`);
  const watchdog = startHostWatchdog(hub, {
    timeoutMs: config.hostTimeoutMs,
    heartbeatMs: config.heartbeatMs,
    probe: hosts ? (host, id) => hosts.probeSession(host, id) : undefined,
  });
  const stop = async () => {
    watchdog.stop();
    await trainers.shutdown();
    // true: open SSE streams would otherwise keep the server (and this promise) alive for good.
    await app.stop(true);
    store.close();
  };
  return { app, store, hub, trainers, url, stop };
}

if (import.meta.main) runEntry(() => startServer());
