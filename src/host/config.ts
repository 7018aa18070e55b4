/** Host service configuration, read once from the environment. Pure: takes the env as an argument. */
import { loadConfig, num } from "../config.ts";

type Env = Record<string, string | undefined>;

export interface HostConfig {
  /** Bind address (HOST, default 127.0.0.1). */
  host: string;
  /** TRAINWATCH_HOST_PORT, default 8100. */
  port: number;
  /** The relay outbox file (TRAINWATCH_HOST_DB, default ./data/host.db). */
  dbPath: string;
  modelsDir: string;
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
}

/** Reads the host's configuration; throws with the variable's name on a bad value. */
export function loadHostConfig(env: Env = process.env): HostConfig {
  const shared = loadConfig(env);
  const initialMs = num(env, "TRAINWATCH_RELAY_BACKOFF_MIN", 0.25, 0.001) * 1000;
  return {
    host: shared.host,
    port: num(env, "TRAINWATCH_HOST_PORT", 8100, 0),
    dbPath: env.TRAINWATCH_HOST_DB || "./data/host.db",
    modelsDir: shared.modelsDir,
    hostToken: shared.hostToken,
    apiToken: shared.token,
    apiUrl: env.TRAINWATCH_URL?.replace(/\/+$/, "") || null,
    relayTimeoutMs: shared.relayTimeoutMs,
    heartbeatMs: num(env, "TRAINWATCH_HEARTBEAT_INTERVAL", 10, 0.01) * 1000,
    backoff: { initialMs, maxMs: Math.max(initialMs, num(env, "TRAINWATCH_RELAY_BACKOFF_MAX", 5, 0.001) * 1000) },
    maxBodyBytes: shared.maxBodyBytes,
  };
}
