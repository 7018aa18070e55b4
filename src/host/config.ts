/** Host service configuration, read once from the environment with the server's readers (env.ts). Pure: takes the env as an argument. */
import { loadConfig, seconds } from "../config.ts";
import { port, text, url, type Env } from "../env.ts";

export interface HostConfig {
  /** Bind address (HOST, default 127.0.0.1). */
  host: string;
  /** TRAINWATCH_HOST_PORT, default 8100. */
  port: number;
  /** The relay outbox file (TRAINWATCH_HOST_DB, default ./data/host.db). */
  dbPath: string;
  modelsDir: string;
  /** CSV datasets are read only from inside this directory (TRAINWATCH_DATA_DIR, default ./data/datasets). */
  dataDir: string;
  /** TRAINWATCH_MAX_MODEL_MB: this host's memory budget per training (default 1536). */
  maxModelMb: number;
  /** Required as bearer on the host's routes when set (TRAINWATCH_HOST_TOKEN). */
  hostToken: string | null;
  /** Sent to the API (TRAINWATCH_TOKEN). */
  apiToken: string | null;
  /** TRAINWATCH_URL: overrides the api_url each session names (for an API behind NAT or a proxy). */
  apiUrl: string | null;
  /** Per relay call (TRAINWATCH_RELAY_TIMEOUT seconds, default 5). */
  relayTimeoutMs: number;
  /** TRAINWATCH_HEARTBEAT_INTERVAL seconds, default 10. */
  heartbeatMs: number;
  /** Relay retry backoff: TRAINWATCH_RELAY_BACKOFF_MIN / _MAX seconds, default 0.25 → 5. */
  backoff: { initialMs: number; maxMs: number };
  maxBodyBytes: number;
  /** Script trainings: this host's recipe file, logs folder, kill grace and GPUs (as on the API; see config.ts). */
  recipesPath: string | null;
  logsDir: string;
  killGraceMs: number;
  gpus: string[] | null;
}

/**
 * Reads the host's configuration; throws a ConfigError with the variable's name on a bad value.
 * The variables both processes share (HOST, the tokens, TRAINWATCH_BACKEND, …) are checked by loadConfig.
 */
export function loadHostConfig(env: Env = process.env): HostConfig {
  const shared = loadConfig(env);
  const initialMs = seconds(env, "TRAINWATCH_RELAY_BACKOFF_MIN", 0.25, 0.001);
  return {
    host: shared.host,
    port: port(env, "TRAINWATCH_HOST_PORT", 8100),
    dbPath: text(env, "TRAINWATCH_HOST_DB", "./data/host.db"),
    modelsDir: shared.modelsDir,
    dataDir: shared.dataDir,
    maxModelMb: shared.maxModelMb,
    hostToken: shared.hostToken,
    apiToken: shared.token,
    apiUrl: url(env, "TRAINWATCH_URL", null),
    relayTimeoutMs: shared.relayTimeoutMs,
    heartbeatMs: shared.heartbeatMs,
    backoff: { initialMs, maxMs: Math.max(initialMs, seconds(env, "TRAINWATCH_RELAY_BACKOFF_MAX", 5, 0.001)) },
    maxBodyBytes: shared.maxBodyBytes,
    recipesPath: shared.recipesPath,
    // Its own default folder: an API on the same machine must not find the host's pid files among its leftovers.
    logsDir: text(env, "TRAINWATCH_LOGS_DIR", "./data/host-logs"),
    killGraceMs: shared.killGraceMs,
    gpus: shared.gpus,
  };
}
