/** Server configuration, read once from the environment. Pure: takes the env as an argument. */
import { DEFAULT_TREND_CONFIG, type TrendConfig } from "./trends/types.ts";
import { cpus } from "node:os";

export interface Config {
  host: string;
  port: number;
  dbPath: string;
  modelsDir: string;
  token: string | null;
  maxBodyBytes: number;
  maxLocalTrainings: number;
  useHostService: boolean;
  hostUrls: string[];
  hostToken: string | null;
  hostTimeoutMs: number;
  relayTimeoutMs: number;
  /** The API's URL as training hosts reach it (TRAINWATCH_PUBLIC_URL); null: the bound address. */
  publicUrl: string | null;
  trends: TrendConfig;
}

type Env = Record<string, string | undefined>;

/** A numeric variable ≥ min, or the fallback when unset; throws naming the variable. */
export function num(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min) throw new Error(`${name}: expected a number ≥ ${min}, got "${raw}"`);
  return v;
}

/** Reads the configuration; throws with the variable's name on a bad value. */
export function loadConfig(env: Env = process.env): Config {
  const t = DEFAULT_TREND_CONFIG;
  return {
    host: env.HOST || "127.0.0.1",
    port: num(env, "PORT", 8000, 0),
    dbPath: env.TRAINWATCH_DB || "./data/trainwatch.db",
    modelsDir: env.TRAINWATCH_MODELS_DIR || "./data/models",
    token: env.TRAINWATCH_TOKEN || null,
    maxBodyBytes: num(env, "TRAINWATCH_MAX_BODY_BYTES", 5 * 1024 * 1024, 1),
    maxLocalTrainings: num(env, "TRAINWATCH_MAX_LOCAL_TRAININGS", cpus().length || 1, 1),
    useHostService: env.USE_TRAINING_HOST_SERVICE === "true",
    hostUrls: (env.TRAINING_HOST_URL || "")
      .split(",")
      .map((s) => s.trim().replace(/\/+$/, ""))
      .filter(Boolean),
    hostToken: env.TRAINWATCH_HOST_TOKEN || null,
    hostTimeoutMs: num(env, "TRAINWATCH_HOST_TIMEOUT", 60, 0.1) * 1000,
    relayTimeoutMs: num(env, "TRAINWATCH_RELAY_TIMEOUT", 5, 0.1) * 1000,
    publicUrl: env.TRAINWATCH_PUBLIC_URL?.replace(/\/+$/, "") || null,
    trends: {
      ...t,
      plateau_patience: num(env, "TRAINWATCH_PLATEAU_PATIENCE", t.plateau_patience, 1),
      overfit_window: num(env, "TRAINWATCH_OVERFIT_WINDOW", t.overfit_window, 2),
      overfit_threshold: num(env, "TRAINWATCH_OVERFIT_THRESHOLD", t.overfit_threshold, 0),
      overfit_noise_z: num(env, "TRAINWATCH_OVERFIT_NOISE_Z", t.overfit_noise_z, 0),
      diverge_window: num(env, "TRAINWATCH_DIVERGE_WINDOW", t.diverge_window, 2),
      diverge_threshold: num(env, "TRAINWATCH_DIVERGE_THRESHOLD", t.diverge_threshold, 0),
      explode_factor: num(env, "TRAINWATCH_EXPLODE_FACTOR", t.explode_factor, 1),
      stall_window: num(env, "TRAINWATCH_STALL_WINDOW", t.stall_window, 2),
      stall_threshold: num(env, "TRAINWATCH_STALL_THRESHOLD", t.stall_threshold, 0),
    },
  };
}
