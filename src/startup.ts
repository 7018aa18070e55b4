/**
 * How the two entry points (`bun run src/server.ts`, `bun run src/host`) start and refuse to
 * start. A start that fails for a reason a person can fix (a bad variable, a port in use, a
 * database another process holds) prints one line naming it and exits 1, with no stack.
 */
import type { AnyElysia } from "elysia";
import { ConfigError } from "./env.ts";
import { StartupError } from "./errors.ts";
import { SERVER_BODY_CAP } from "./http/index.ts";

export interface ListenOptions {
  hostname: string;
  port: number;
  /** The variable that sets the port, for the message ("PORT", "TRAINWATCH_HOST_PORT"). */
  portVariable: string;
}

/**
 * Listens, or throws a StartupError naming the address. Elysia's Bun adapter asks for
 * SO_REUSEPORT, which lets a second process bind a port that is in use and take half of
 * its connections; this turns it off, so a port in use fails the start. Bun's body cap is lifted (SERVER_BODY_CAP).
 */
export function listen(app: AnyElysia, opts: ListenOptions): void {
  const { portVariable, ...serve } = opts;
  try {
    // No body cap of Bun's own: it would answer a bare 413; the app refuses past its limit, in the envelope.
    app.listen({ ...serve, reusePort: false, maxRequestBodySize: SERVER_BODY_CAP });
  } catch (err) {
    const code = (err as { code?: string }).code;
    const where = `${opts.hostname}:${opts.port}`;
    if (code === "EADDRINUSE")
      throw new StartupError(
        `port ${opts.port} on ${opts.hostname} is already in use by another process; stop it or set ${portVariable} to another port`,
      );
    if (code === "EADDRNOTAVAIL")
      throw new StartupError(`HOST ${opts.hostname} is not an address of this machine (listening on ${where})`);
    if (code === "EACCES")
      throw new StartupError(
        `permission denied listening on ${where} (ports below 1024 need privileges; set ${portVariable})`,
      );
    throw err;
  }
}

/** The line printed for a refused start, or null for an error that is a bug (that one keeps its stack). */
export function startupLine(err: unknown): string | null {
  if (err instanceof ConfigError) return `configuration error: ${err.message}`;
  if (err instanceof StartupError) return `cannot start: ${err.message}`;
  return null;
}

/** Runs an entry point's start; a refused start prints its one line to stderr and exits 1. */
export function main<T>(start: () => T): T {
  try {
    return start();
  } catch (err) {
    refused(err);
  }
}

/** A refused start's one line and exit 1; an error that is a bug is thrown on, with its stack. */
function refused(err: unknown): never {
  const line = startupLine(err);
  if (line === null) throw err;
  console.error(line);
  process.exit(1);
}

/**
 * Runs an entry point's start (as `main`; it may be async) and its `stop` on SIGINT or SIGTERM, then exits 0: both
 * entry points end so.
 */
export function runEntry(
  start: () => { stop: () => Promise<unknown> } | Promise<{ stop: () => Promise<unknown> }>,
): void {
  // Called at once: a synchronous start refuses before anything it began asynchronously gets to print.
  const started = Promise.resolve(main(start)).catch((err) => refused(err));
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      console.log(`received ${sig}, shutting down`);
      void started.then(({ stop }) => stop()).finally(() => process.exit(0));
    });
  }
}
