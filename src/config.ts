/**
 * Server configuration, read once from the environment through the typed readers in env.ts.
 * Pure: takes the env as an argument. A bad value throws a ConfigError naming the variable.
 */
import { cpus } from "node:os";
import {
  ConfigError,
  bindAddress,
  bool,
  database,
  number,
  oneOf,
  port,
  text,
  url,
  urlList,
  type Database,
  type Env,
} from "./env.ts";
import { BACKEND_NAMES, type BackendName } from "./trainer/types.ts";
import { DEFAULT_TREND_CONFIG, type TrendConfig } from "./trends/types.ts";
import { DEFAULT_CLIENT_LIVENESS, type ClientLiveness } from "./operations/liveness.ts";
import { ALERT_EVENTS, type AlertEvent } from "./schemas/alert.ts";
import { DEFAULT_GROUP_COMMIT_MS } from "./store/pg_group.ts";
import { DEFAULT_ALERT_ON, parseEvents } from "./alerts/rules.ts";

export interface Config {
  host: string;
  port: number;
  /** TRAINWATCH_DB: a SQLite file for one process, or a PostgreSQL database for replicas. */
  db: Database;
  /**
   * TRAINWATCH_DB_DIRECT: a direct URL of TRAINWATCH_DB's PostgreSQL database when TRAINWATCH_DB goes through a
   * transaction-mode pooler (pgbouncer): the listening connection and the jobs lock take it; null: no pooler.
   */
  directDb: string | null;
  /**
   * TRAINWATCH_STEP_RETENTION_DAYS: a finished run's step rows are removed this many days after it finished (its
   * epochs, trends, step judgement and step chart blocks stay); null (unset): kept for ever.
   */
  stepRetentionDays: number | null;
  /** TRAINWATCH_REPLICA_ID: this replica's name on a PostgreSQL database; null: a random one per start. */
  replicaId: string | null;
  /** TRAINWATCH_LEASE: how long a replica's local trainings outlive it before another replica marks them interrupted. */
  leaseMs: number;
  /** TRAINWATCH_PG_GROUP_COMMIT_MS: on PostgreSQL, how long a write waits at most to share a transaction (0: never). */
  groupCommitMs: number;
  modelsDir: string;
  /** CSV datasets are read only from inside this directory (TRAINWATCH_DATA_DIR). */
  dataDir: string;
  token: string | null;
  maxBodyBytes: number;
  maxLocalTrainings: number;
  /** Largest estimated memory of one training, in MB (TRAINWATCH_MAX_MODEL_MB); bigger specs are refused (400). */
  maxModelMb: number;
  useHostService: boolean;
  hostUrls: string[];
  hostToken: string | null;
  hostTimeoutMs: number;
  /** TRAINWATCH_HEARTBEAT_INTERVAL: how often a host heartbeats while it trains (its setting; the API expects the same). */
  heartbeatMs: number;
  relayTimeoutMs: number;
  /**
   * A client run's liveness (src/operations/liveness.ts): TRAINWATCH_CLIENT_HEARTBEAT (the interval the server tells
   * Python clients to heartbeat at, default 15 s), TRAINWATCH_STALE_AFTER (60 s), TRAINWATCH_LOST_AFTER (300 s),
   * TRAINWATCH_HUNG_AFTER (300 s); heartbeat < stale < lost, or a ConfigError.
   */
  clientHeartbeatMs: number;
  client: ClientLiveness;
  /** The API's URL as training hosts reach it (TRAINWATCH_PUBLIC_URL); null: the bound address. */
  publicUrl: string | null;
  /** TRAINWATCH_BACKEND: forces the TF.js backend of every training; null: the best available. */
  backend: BackendName | null;
  /** TRAINWATCH_RECIPES: the recipe file of script trainings; null: ./trainwatch.recipes.json when it exists. */
  recipesPath: string | null;
  /** TRAINWATCH_LOGS_DIR: where script trainings' output is kept (default ./data/logs). */
  logsDir: string;
  /** TRAINWATCH_KILL_GRACE: how long a stopped script has after SIGTERM before SIGKILL (default 10 s). */
  killGraceMs: number;
  /** TRAINWATCH_GPUS: the GPU ids script trainings get ([] none); null: ask nvidia-smi. */
  gpus: string[] | null;
  /** TRAINWATCH_TENSORBOARD_DIR: where every operation's epochs are mirrored as TensorBoard event files; null: off. */
  tensorboardDir: string | null;
  trends: TrendConfig;
  /** Alerts (issue 24): where they are sent and which events alert on every run unless it says otherwise. */
  alerts: AlertConfig;
  /** The Slurm executor (docs/clusters.md); null when TRAINWATCH_SLURM_URL is unset. */
  slurm: SlurmConfig | null;
}

/** Where the Slurm executor submits (slurmrestd) and how often it reads the queue. */
export interface SlurmConfig {
  /** TRAINWATCH_SLURM_URL: slurmrestd's base URL. */
  url: string;
  /** TRAINWATCH_SLURM_USER: the Slurm user the token is for; jobs run as this user. */
  user: string;
  /** TRAINWATCH_SLURM_TOKEN: the JWT (`scontrol token`) ... */
  token: string | null;
  /** ... or TRAINWATCH_SLURM_TOKEN_FILE: a file holding it, re-read when it changes. */
  tokenFile: string | null;
  /** TRAINWATCH_SLURM_POLL: how often the queue is read for the unfinished Slurm trainings (default 5 s). */
  pollMs: number;
  /** TRAINWATCH_SLURM_LOG_DIR: where jobs write their output (a folder the nodes and the API share); null: the recipe's cwd. */
  logDir: string | null;
}

/** The TRAINWATCH_SLURM_* variables; null without TRAINWATCH_SLURM_URL, a ConfigError naming what is missing. */
export function slurmConfig(env: Env): SlurmConfig | null {
  const slurmUrl = url(env, "TRAINWATCH_SLURM_URL", null);
  if (slurmUrl === null) return null;
  const user = text(env, "TRAINWATCH_SLURM_USER", null);
  if (user === null)
    throw new ConfigError("TRAINWATCH_SLURM_USER", "the Slurm user of the token (set with TRAINWATCH_SLURM_URL)", "");
  const token = text(env, "TRAINWATCH_SLURM_TOKEN", null);
  const tokenFile = text(env, "TRAINWATCH_SLURM_TOKEN_FILE", null);
  if (token === null && tokenFile === null)
    throw new ConfigError(
      "TRAINWATCH_SLURM_TOKEN",
      "a JWT from `scontrol token`, or TRAINWATCH_SLURM_TOKEN_FILE naming a file holding one",
      "",
    );
  return {
    url: slurmUrl,
    user,
    token,
    tokenFile,
    pollMs: seconds(env, "TRAINWATCH_SLURM_POLL", 5, 0.05),
    logDir: text(env, "TRAINWATCH_SLURM_LOG_DIR", null),
  };
}

/** The server's alert channels and default events (docs/alerts.md). */
export interface AlertConfig {
  /** TRAINWATCH_ALERT_WEBHOOK: a generic receiver's URL (JSON body); null: none. */
  webhook: string | null;
  /** TRAINWATCH_ALERT_WEBHOOK_SECRET: the HMAC-SHA256 key of the X-Trainwatch-Signature header; null: unsigned. */
  secret: string | null;
  /** TRAINWATCH_ALERT_SLACK_WEBHOOK: a Slack incoming webhook's URL; null: none. */
  slack: string | null;
  /** TRAINWATCH_ALERT_ON: the events that alert by default (default diverging,failed,lost,hung; "none" for none). */
  on: AlertEvent[];
}

/** TRAINWATCH_ALERT_ON: a comma-separated list of events, or "none"; the default when unset. */
export function alertEvents(env: Env, name: string): AlertEvent[] {
  const s = text(env, name, null);
  if (s === null) return [...DEFAULT_ALERT_ON];
  const events = parseEvents(s);
  if (events === null) throw new ConfigError(name, `a comma-separated list of ${ALERT_EVENTS.join(", ")}, or none`, s);
  return events;
}

/** TRAINWATCH_GPUS: a count ("2" → 0 and 1), ids or UUIDs ("0,2", "GPU-8f…"), or "none"; null when unset. */
export function gpuList(env: Env, name: string): string[] | null {
  const s = text(env, name, null);
  if (s === null) return null;
  if (s.toLowerCase() === "none") return [];
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n > 64) throw new ConfigError(name, "a GPU count from 0 to 64, ids like 0,1, or none", s);
    return Array.from({ length: n }, (_, i) => String(i));
  }
  const ids = s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  if (ids.length === 0 || !ids.every((id) => /^[A-Za-z0-9-]{1,64}$/.test(id)) || new Set(ids).size !== ids.length) {
    throw new ConfigError(name, "a GPU count from 0 to 64, ids like 0,1, or none", s);
  }
  return ids;
}

/** A numeric variable ≥ min, or the fallback when unset; throws a ConfigError naming the variable. */
export const num = (env: Env, name: string, fallback: number, min = 0): number => number(env, name, fallback, { min });

/** A whole number of epochs, items or slots ≥ min. */
export const count = (env: Env, name: string, fallback: number, min: number): number =>
  number(env, name, fallback, { min, integer: true });

/** Seconds as milliseconds. Timers beyond a day are a typo, and setTimeout overflows past 2^31 ms (~24.8 days). */
export const seconds = (env: Env, name: string, fallback: number, min: number): number =>
  number(env, name, fallback, { min, max: 86_400 }) * 1000;

/**
 * TRAINWATCH_CLIENT_HEARTBEAT, TRAINWATCH_STALE_AFTER, TRAINWATCH_LOST_AFTER and TRAINWATCH_HUNG_AFTER, in ms; a
 * ConfigError unless heartbeat < stale < lost (a stale limit inside one heartbeat would flag every healthy run).
 */
export function clientLiveness(env: Env): { clientHeartbeatMs: number; client: ClientLiveness } {
  const d = DEFAULT_CLIENT_LIVENESS;
  const heartbeat = seconds(env, "TRAINWATCH_CLIENT_HEARTBEAT", 15, 0.01);
  const staleAfterMs = seconds(env, "TRAINWATCH_STALE_AFTER", d.staleAfterMs / 1000, 0.01);
  const lostAfterMs = seconds(env, "TRAINWATCH_LOST_AFTER", d.lostAfterMs / 1000, 0.01);
  const hungAfterMs = seconds(env, "TRAINWATCH_HUNG_AFTER", d.hungAfterMs / 1000, 0.01);
  if (!(heartbeat < staleAfterMs))
    throw new ConfigError(
      "TRAINWATCH_STALE_AFTER",
      `more seconds than TRAINWATCH_CLIENT_HEARTBEAT (${heartbeat / 1000})`,
      String(staleAfterMs / 1000),
    );
  if (!(staleAfterMs < lostAfterMs))
    throw new ConfigError(
      "TRAINWATCH_LOST_AFTER",
      `more seconds than TRAINWATCH_STALE_AFTER (${staleAfterMs / 1000})`,
      String(lostAfterMs / 1000),
    );
  return { clientHeartbeatMs: heartbeat, client: { staleAfterMs, lostAfterMs, hungAfterMs } };
}

/** TRAINWATCH_DB_DIRECT: a postgres:// URL beside a PostgreSQL TRAINWATCH_DB, or null when unset. */
export function directDatabase(env: Env): string | null {
  const direct = database(env, "TRAINWATCH_DB_DIRECT", "");
  if (direct.kind === "sqlite" && direct.path === "") return null;
  if (direct.kind !== "postgres") throw new ConfigError("TRAINWATCH_DB_DIRECT", "a postgres:// URL", direct.path);
  if (database(env, "TRAINWATCH_DB", "./data/trainwatch.db").kind !== "postgres")
    throw new ConfigError(
      "TRAINWATCH_DB_DIRECT",
      "unset unless TRAINWATCH_DB is a postgres:// URL (a pooler's)",
      "set",
    );
  return direct.url;
}

/** Reads the configuration; throws a ConfigError with the variable's name on a bad value. */
export function loadConfig(env: Env = process.env): Config {
  const t = DEFAULT_TREND_CONFIG;
  return {
    host: bindAddress(env, "HOST", "127.0.0.1"),
    port: port(env, "PORT", 8000),
    db: database(env, "TRAINWATCH_DB", "./data/trainwatch.db"),
    directDb: directDatabase(env),
    stepRetentionDays: number(env, "TRAINWATCH_STEP_RETENTION_DAYS", null, { min: 0.001, max: 36_500 }),
    replicaId: text(env, "TRAINWATCH_REPLICA_ID", null),
    leaseMs: seconds(env, "TRAINWATCH_LEASE", 15, 1),
    groupCommitMs: number(env, "TRAINWATCH_PG_GROUP_COMMIT_MS", DEFAULT_GROUP_COMMIT_MS, { min: 0, max: 1000 }),
    modelsDir: text(env, "TRAINWATCH_MODELS_DIR", "./data/models"),
    dataDir: text(env, "TRAINWATCH_DATA_DIR", "./data/datasets"),
    token: text(env, "TRAINWATCH_TOKEN", null),
    // Bun's own cap is this plus 1 MB and must stay below 4 GiB.
    maxBodyBytes: number(env, "TRAINWATCH_MAX_BODY_BYTES", 5 * 1024 * 1024, { min: 1, max: 2 ** 31, integer: true }),
    maxLocalTrainings: number(env, "TRAINWATCH_MAX_LOCAL_TRAININGS", cpus().length || 1, {
      min: 1,
      max: 1024,
      integer: true,
    }),
    // 2 GB per training: the estimate's 1536 MB, plus the worker's ~70 MB with TF.js loaded, plus the 12 % the estimate
    // fell short by on a 25 M-parameter model (bench/model_memory.ts).
    maxModelMb: number(env, "TRAINWATCH_MAX_MODEL_MB", 1536, { min: 1, max: 1_048_576 }),
    useHostService: bool(env, "USE_TRAINING_HOST_SERVICE", false),
    hostUrls: urlList(env, "TRAINING_HOST_URL"),
    hostToken: text(env, "TRAINWATCH_HOST_TOKEN", null),
    hostTimeoutMs: seconds(env, "TRAINWATCH_HOST_TIMEOUT", 60, 0.1),
    heartbeatMs: seconds(env, "TRAINWATCH_HEARTBEAT_INTERVAL", 10, 0.01),
    relayTimeoutMs: seconds(env, "TRAINWATCH_RELAY_TIMEOUT", 5, 0.1),
    ...clientLiveness(env),
    publicUrl: url(env, "TRAINWATCH_PUBLIC_URL", null),
    backend: oneOf(env, "TRAINWATCH_BACKEND", BACKEND_NAMES, null),
    recipesPath: text(env, "TRAINWATCH_RECIPES", null),
    logsDir: text(env, "TRAINWATCH_LOGS_DIR", "./data/logs"),
    killGraceMs: seconds(env, "TRAINWATCH_KILL_GRACE", 10, 0),
    gpus: gpuList(env, "TRAINWATCH_GPUS"),
    tensorboardDir: text(env, "TRAINWATCH_TENSORBOARD_DIR", null),
    trends: {
      ...t,
      plateau_patience: count(env, "TRAINWATCH_PLATEAU_PATIENCE", t.plateau_patience, 1),
      overfit_window: count(env, "TRAINWATCH_OVERFIT_WINDOW", t.overfit_window, 2),
      overfit_threshold: num(env, "TRAINWATCH_OVERFIT_THRESHOLD", t.overfit_threshold, 0),
      overfit_noise_z: num(env, "TRAINWATCH_OVERFIT_NOISE_Z", t.overfit_noise_z, 0),
      diverge_window: count(env, "TRAINWATCH_DIVERGE_WINDOW", t.diverge_window, 2),
      diverge_threshold: num(env, "TRAINWATCH_DIVERGE_THRESHOLD", t.diverge_threshold, 0),
      explode_factor: num(env, "TRAINWATCH_EXPLODE_FACTOR", t.explode_factor, 1),
      stall_window: count(env, "TRAINWATCH_STALL_WINDOW", t.stall_window, 2),
      stall_threshold: num(env, "TRAINWATCH_STALL_THRESHOLD", t.stall_threshold, 0),
    },
    alerts: {
      webhook: url(env, "TRAINWATCH_ALERT_WEBHOOK", null),
      secret: text(env, "TRAINWATCH_ALERT_WEBHOOK_SECRET", null),
      slack: url(env, "TRAINWATCH_ALERT_SLACK_WEBHOOK", null),
      on: alertEvents(env, "TRAINWATCH_ALERT_ON"),
    },
    slurm: slurmConfig(env),
  };
}
