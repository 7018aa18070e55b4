/**
 * Entry point: `bun run src/server.ts`. Reads the environment, opens (and locks) the SQLite
 * store, builds the app and listens (127.0.0.1:8000 unless HOST/PORT say otherwise). A bad
 * variable, a database another process holds or a port in use stops it with one line.
 */
import { createApp } from "./app.ts";
import { loadConfig, type Config } from "./config.ts";
import { OperationsService } from "./operations/service.ts";
import { SqliteStore } from "./store/sqlite.ts";
import { lateAfterMs } from "./store/store.ts";
import { Dispatcher } from "./trainer/dispatcher.ts";
import { hostPoolFromConfig } from "./hosts/pool.ts";
import { startHostWatchdog } from "./hosts/watchdog.ts";
import { LocalTrainer } from "./trainer/local.ts";
import { listen, runEntry } from "./startup.ts";
import { loadRecipeBook } from "./scripts/recipes_file.ts";
import { LogStore } from "./scripts/logs.ts";
import { machineGpus } from "./scripts/gpus.ts";
import { killLeftovers } from "./scripts/runner.ts";
import { ScriptTrainer } from "./scripts/trainer.ts";

export function startServer(config: Config = loadConfig()) {
  // A bad recipe file stops the start before anything is opened.
  const book = loadRecipeBook(config.recipesPath);
  // First: the lock on the database comes before anything reads or recovers it.
  const store = new SqliteStore(config.dbPath, config.trends, { lateAfterMs: lateAfterMs(config.heartbeatMs) });
  const operations = new OperationsService(store, { trends: config.trends });
  // Under the lock: what the scripts of a crashed run left is killed before their operations are failed.
  const leftovers = killLeftovers(config.logsDir);
  const gpus = machineGpus(config.gpus);
  const local = new LocalTrainer(operations, { maxConcurrent: config.maxLocalTrainings, modelsDir: config.modelsDir, gpus: gpus.map((g) => g.id) });
  // Hosts are told where to relay once the server is listening (see `url` below); a local script reaches it on loopback.
  const loopback = () => url.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:").replace("//:::", "//[::1]:");
  const hosts = hostPoolFromConfig(config, () => config.publicUrl ?? loopback());
  const scripts = new ScriptTrainer(operations, local, {
    book,
    logs: new LogStore(config.logsDir),
    killGraceMs: config.killGraceMs,
    apiUrl: loopback,
    token: config.token,
    gpuNames: Object.fromEntries(gpus.map((g) => [g.id, g.name])),
  });
  const trainers = new Dispatcher(operations, local, hosts, config, scripts);
  if (book.source) console.log(`recipes: ${book.list().length} from ${book.source}${gpus.length ? `; GPUs ${gpus.map((g) => g.id).join(",")}` : ""}`);
  if (leftovers.length) console.warn(`stopped what ${leftovers.length} script training(s) of the previous run left: ${leftovers.join(", ")}`);
  const interrupted = trainers.recoverInterrupted();
  if (interrupted.length) console.warn(`marked ${interrupted.length} interrupted local training(s) failed: ${interrupted.join(", ")}`);
  const app = createApp({ store, operations, config, trainers });
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
  const watchdog = startHostWatchdog(operations, {
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
  return { app, store, operations, trainers, url, stop };
}

if (import.meta.main) runEntry(() => startServer());
