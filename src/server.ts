/**
 * Entry point: `bun run src/server.ts`. Reads the environment, opens the store (a SQLite file it locks, or the
 * PostgreSQL database of TRAINWATCH_DB, shared with other replicas), builds the app and listens (127.0.0.1:8000 unless
 * HOST/PORT say otherwise). A bad variable, a database another process holds or cannot be reached, or a port in use
 * stops it with one line.
 */
import { createApp } from "./app.ts";
import { loadConfig, type Config } from "./config.ts";
import { OperationsService } from "./operations/service.ts";
import { SqliteStore } from "./store/sqlite.ts";
import { PostgresStore } from "./store/postgres.ts";
import { randomReplicaId } from "./store/pg_leases.ts";
import type { Store } from "./store/store.ts";
import { lateAfterMs } from "./operations/liveness.ts";
import { redactUrl } from "./env.ts";
import { StartupError } from "./errors.ts";
import { startReplica, type Replica } from "./operations/replicas.ts";
import { Dispatcher } from "./trainer/dispatcher.ts";
import { hostPoolFromConfig } from "./host_pool/pool.ts";
import { startHostWatchdog } from "./host_pool/watchdog.ts";
import { startClientWatchdog } from "./operations/client_watchdog.ts";
import { startStepRetention } from "./operations/step_retention.ts";
import { every, leaderJob } from "./operations/periodic.ts";
import { alertSettings } from "./alerts/service.ts";
import { Deliverer, targetsOf } from "./alerts/deliver.ts";
import { LocalTrainer } from "./trainer/local.ts";
import { listen, runEntry } from "./startup.ts";
import { loadRecipeBook } from "./recipes/book.ts";
import { LogStore } from "./script_trainings/logs.ts";
import { machineGpus } from "./script_trainings/gpus.ts";
import { killLeftovers } from "./script_trainings/runner.ts";
import { ScriptTrainer } from "./script_trainings/trainer.ts";
import { feedEventStream } from "./script_trainings/log_stream.ts";
import { TensorboardMirror } from "./tensorboard/mirror.ts";
import { SlurmExecutor } from "./executors/slurm.ts";
import { SlurmRestClient } from "./executors/slurm_rest.ts";

/** The store TRAINWATCH_DB names; a PostgreSQL server that refuses or does not answer stops the start with one line. */
async function openStore(config: Config): Promise<Store> {
  const liveness = { lateAfterMs: lateAfterMs(config.heartbeatMs), client: config.client };
  if (config.db.kind === "sqlite") return new SqliteStore(config.db.path, config.trends, liveness);
  const url = config.db.url;
  try {
    return await PostgresStore.open(url, {
      trends: config.trends,
      liveness,
      replica: { id: config.replicaId ?? randomReplicaId(), leaseMs: config.leaseMs },
      ...(config.directDb !== null && { directUrl: config.directDb }),
      groupCommitMs: config.groupCommitMs,
    });
  } catch (err) {
    const password = URL.canParse(url) ? decodeURIComponent(new URL(url).password) : "";
    const why = (err instanceof Error ? err.message : String(err)).replaceAll(password || "\u0000", "***");
    throw new StartupError(`TRAINWATCH_DB ${redactUrl(url)}: ${why}`);
  }
}

/** Where the server keeps its data, for the start line (never a password). */
const describeDb = (config: Config) =>
  config.db.kind === "sqlite" ? `db ${config.db.path}` : `db ${redactUrl(config.db.url)}`;

export async function startServer(config: Config = loadConfig()) {
  // A bad recipe file stops the start before anything is opened.
  const book = loadRecipeBook(config.recipesPath);
  // First: the lock on the database comes before anything reads or recovers it.
  const store = await openStore(config);
  // The link in an alert: the public URL, else the address this server listens on (known once it listens).
  const pageBase = () => config.publicUrl ?? listeningUrl ?? `http://${config.host}:${config.port}`;
  let listeningUrl: string | null = null;
  const operations = new OperationsService(store, {
    trends: config.trends,
    alerts: alertSettings(config.alerts, pageBase),
  });
  // Sends what the outbox holds; woken by every alert recorded (on replicas: heard from any, sent by the leader).
  const targets = targetsOf(config.alerts);
  const deliverer = targets.length ? new Deliverer({ store: store.alerts, targets }) : null;
  if (deliverer) operations.alerts.onAlert(() => deliverer.wake());
  const deliveryJob = {
    start: () => deliverer?.start(),
    stop: () => void deliverer?.stop(),
  };
  // On a shared database: every replica's changes reach this one's streams, from before anything is written here.
  await operations.start();
  // Listening before anything is written, so the mirror misses no epoch of this run.
  const mirror = config.tensorboardDir ? new TensorboardMirror(operations, config.tensorboardDir) : null;
  mirror?.start();
  // Under the lock: what the scripts of a crashed run left is killed before their operations are failed.
  const leftovers = killLeftovers(config.logsDir);
  const gpus = machineGpus(config.gpus);
  const local = new LocalTrainer(operations, {
    maxConcurrent: config.maxLocalTrainings,
    modelsDir: config.modelsDir,
    gpus: gpus.map((g) => g.id),
  });
  // Hosts are told where to relay once the server is listening (`listening`, set below); a local script reaches it on
  // loopback. Neither asks before then: both are told only when a training starts.
  let listening: string | null = null;
  const loopback = () => {
    if (listening === null) throw new Error("the server's URL is asked for before it listens");
    return listening.replace("//0.0.0.0:", "//127.0.0.1:").replace("//[::]:", "//[::1]:").replace("//:::", "//[::1]:");
  };
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
  if (book.source)
    console.log(
      `recipes: ${book.list().length} from ${book.source}${gpus.length ? `; GPUs ${gpus.map((g) => g.id).join(",")}` : ""}`,
    );
  if (leftovers.length)
    console.warn(
      `stopped what ${leftovers.length} script training(s) of the previous run left: ${leftovers.join(", ")}`,
    );
  // Slurm (TRAINWATCH_SLURM_URL): registered before the recovery, which finds its jobs again.
  const slurm = config.slurm
    ? new SlurmExecutor({
        api: new SlurmRestClient({
          url: config.slurm.url,
          user: config.slurm.user,
          token: config.slurm.token ?? undefined,
          tokenFile: config.slurm.tokenFile ?? undefined,
        }),
        // Shown on the public /health: without a password a URL might carry.
        url: redactUrl(config.slurm.url),
        recipes: book,
        operations,
        // A node reaches the API at its public URL; without one, at the bound address (a one-machine cluster).
        env: (operation_id) => ({ api_url: config.publicUrl ?? loopback(), token: config.token, operation_id }),
        logDir: config.slurm.logDir,
        stream: (feed, signal) => feedEventStream(feed, signal),
      })
    : null;
  if (slurm) {
    trainers.executors.register(slurm);
    console.log(`slurm: submitting to ${redactUrl(config.slurm!.url)} as ${config.slurm!.user}`);
  }
  const interrupted = await trainers.recoverInterrupted();
  if (interrupted.length)
    console.warn(`marked ${interrupted.length} interrupted local training(s) failed: ${interrupted.join(", ")}`);
  const app = createApp({ store, operations, config, trainers });
  // The OpenAPI document is built now, once (a public route: its first visitor would pay for building it).
  await app.handle(new Request("http://localhost/swagger/json"));
  try {
    listen(app, {
      hostname: config.host,
      port: config.port,
      portVariable: "PORT",
    });
  } catch (err) {
    await operations.stop();
    await mirror?.stop();
    await store.close(); // releases the database at once, PID file included
    throw err;
  }
  const url = `http://${config.host}:${app.server!.port}`;
  listening = url;
  listeningUrl = loopback();
  const replicaNote = store.shared ? `, replica ${store.shared.replicaId}` : "";
  console.log(`trainwatch listening on ${url} (${describeDb(config)}${replicaNote}) — Swagger UI at ${url}/swagger`);
  if (mirror) console.log(`tensorboard: mirroring every operation's epochs to ${config.tensorboardDir}`);
  const watchdogJob = leaderJob(() =>
    startHostWatchdog(operations, {
      timeoutMs: config.hostTimeoutMs,
      heartbeatMs: config.heartbeatMs,
      probe: hosts ? (host, id) => hosts.probeSession(host, id) : undefined,
    }),
  );
  const clientWatchdogJob = leaderJob(() => startClientWatchdog(operations, { liveness: config.client }));
  // Reads Slurm's queue for the unfinished Slurm trainings, one request per period (SlurmExecutor.poll).
  const slurmJob = leaderJob(() => (slurm ? every(config.slurm!.pollMs, () => slurm.poll(), "[slurm] poll") : null));
  // Retention of finished runs' step rows (TRAINWATCH_STEP_RETENTION_DAYS), once an hour.
  const retentionJob = leaderJob(() =>
    config.stepRetentionDays === null ? null : startStepRetention(store, { days: config.stepRetentionDays }),
  );
  const jobs = [watchdogJob, clientWatchdogJob, deliveryJob, slurmJob, retentionJob];
  // One process: the watchdogs run here. Replicas: on the one holding the lock, with the lease sweep.
  let replica: Replica | null = null;
  if (store.shared) {
    const leader = store.shared.leadership("jobs");
    replica = startReplica(operations, store.shared, { leaseMs: config.leaseMs, leader, jobs });
    void replica.tick().catch((err) => console.error("[replica] first round failed:", err));
  } else for (const job of jobs) job.start();
  if (targets.length)
    console.log(
      `alerts: sent to ${targets.map((t) => t.channel).join(", ")} (${config.alerts.on.join(", ") || "no default events"})`,
    );
  const stop = async () => {
    // Each waits for its round in flight: nothing a watchdog or the poller writes lands after the store closes.
    await Promise.all(jobs.map((job) => job.stop()));
    // The delivery in flight, if any, ends first (its stop waits for it).
    await deliverer?.stop();
    await replica?.stop();
    await trainers.shutdown();
    // true: open SSE streams would otherwise keep the server (and this promise) alive for good.
    await app.stop(true);
    await operations.stop();
    // After the last relayed write, before the store it reads names from closes.
    await mirror?.stop();
    await store.close();
  };
  return { app, store, operations, trainers, url, stop };
}

if (import.meta.main) runEntry(() => startServer());
