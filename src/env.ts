/**
 * A small typed reader for environment variables, shared by the server's and the host's
 * configuration. Every reader returns the fallback for an unset or empty variable, and
 * otherwise either a value of its type or a ConfigError naming the variable, the allowed
 * values and what it got. Pure: the environment is an argument.
 */
import { isIP } from "node:net";

export type Env = Record<string, string | undefined>;

/** A variable with a value the process cannot start with; the message starts with the variable's name. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    expected: string,
    got: string,
  ) {
    super(`${variable}: expected ${expected}, got ${JSON.stringify(got)}`);
    this.name = "ConfigError";
  }
}

/** The raw value, trimmed; undefined when unset or blank (a blank line in an env file means "unset", not "empty"). */
function raw(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === "" ? undefined : v;
}

export interface NumberRule {
  /** Inclusive bounds (default 0 and Number.MAX_SAFE_INTEGER). */
  min?: number;
  max?: number;
  /** Whole numbers only (counts, ports). */
  integer?: boolean;
}

/** Describes a number rule for a message: "an integer from 0 to 65535", "a number ≥ 0.1". */
function describe({ min = 0, max, integer }: NumberRule): string {
  const kind = integer ? "an integer" : "a number";
  return max === undefined ? `${kind} ≥ ${min}` : `${kind} from ${min} to ${max}`;
}

/** A finite number within the rule's bounds. `Number()` rules the syntax, so "1e3" and "0x10" count; "12abc" does not. */
export function number<F>(env: Env, name: string, fallback: F, rule: NumberRule = {}): number | F {
  const s = raw(env, name);
  if (s === undefined) return fallback;
  const v = Number(s);
  const { min = 0, max = Number.MAX_SAFE_INTEGER, integer = false } = rule;
  if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new ConfigError(name, describe(rule), s);
  }
  return v;
}

/** A TCP port: 0 (the system picks a free one) to 65535. */
export const port = (env: Env, name: string, fallback: number): number =>
  number(env, name, fallback, { min: 0, max: 65535, integer: true });

const TRUE = ["true", "1", "yes", "on"];
const FALSE = ["false", "0", "no", "off"];

/** A switch: true/1/yes/on or false/0/no/off, any case. Anything else is refused, never read as false. */
export function bool(env: Env, name: string, fallback: boolean): boolean {
  const s = raw(env, name)?.toLowerCase();
  if (s === undefined) return fallback;
  if (TRUE.includes(s)) return true;
  if (FALSE.includes(s)) return false;
  throw new ConfigError(name, `one of ${[...TRUE, ...FALSE].join(", ")}`, env[name]!.trim());
}

/** One of a fixed set of values, compared exactly. */
export function oneOf<T extends string, F>(env: Env, name: string, values: readonly T[], fallback: F): T | F {
  const s = raw(env, name);
  if (s === undefined) return fallback;
  if ((values as readonly string[]).includes(s)) return s as T;
  throw new ConfigError(name, `one of ${values.join(", ")}`, s);
}

/** Any non-blank text (paths, tokens), or the fallback. */
export const text = <F>(env: Env, name: string, fallback: F): string | F => raw(env, name) ?? fallback;

/** An absolute http(s) URL, trailing slashes dropped so paths can be appended. */
function parseUrl(name: string, s: string): string {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new ConfigError(name, "an http:// or https:// URL", s);
  }
  if ((u.protocol !== "http:" && u.protocol !== "https:") || u.hostname === "")
    throw new ConfigError(name, "an http:// or https:// URL", s);
  return s.replace(/\/+$/, "");
}

export const url = <F>(env: Env, name: string, fallback: F): string | F => {
  const s = raw(env, name);
  return s === undefined ? fallback : parseUrl(name, s);
};

/** Where the API keeps its data: a SQLite file (the default), or a PostgreSQL database that replicas share. */
export type Database = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

/**
 * A SQLite path, or a `postgres://` / `postgresql://` URL (user, password, host, port, database and `?sslmode=…` as libpq
 * reads them). A URL of another scheme is refused, never taken for a file name.
 */
export function database(env: Env, name: string, fallback: string): Database {
  const s = raw(env, name) ?? fallback;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return { kind: "sqlite", path: s };
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new ConfigError(name, "a SQLite path or a postgres:// URL", redactUrl(s));
  }
  if ((u.protocol !== "postgres:" && u.protocol !== "postgresql:") || u.hostname === "") {
    throw new ConfigError(name, "a SQLite path or a postgres:// URL", redactUrl(s));
  }
  return { kind: "postgres", url: s };
}

/** A URL as it may be printed: the password replaced by ***. */
export function redactUrl(s: string): string {
  return s.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, "$1***@");
}

/** Comma-separated URLs; empty items are skipped, so a trailing comma is harmless. */
export function urlList(env: Env, name: string): string[] {
  const s = raw(env, name);
  if (s === undefined) return [];
  return s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => parseUrl(name, x));
}

// RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens, 63 characters each.
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/**
 * An address to bind: an IPv4 or IPv6 literal ("0.0.0.0", "::") or a host name ("localhost").
 * All-numeric dotted names are IPv4 or nothing: "999.1.1.1" is refused here instead of
 * failing later at listen with a misleading "port in use".
 */
export function bindAddress(env: Env, name: string, fallback: string): string {
  const s = raw(env, name);
  if (s === undefined) return fallback;
  if (isIP(s) !== 0) return s;
  const labels = s.split(".");
  const numeric = labels.every((l) => /^\d+$/.test(l));
  if (!numeric && s.length <= 253 && labels.every((l) => LABEL.test(l))) return s;
  throw new ConfigError(name, "an IPv4 or IPv6 address (127.0.0.1, 0.0.0.0, ::) or a host name", s);
}
