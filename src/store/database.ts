/**
 * Opens a SQLite file for one process alone: the API's store and the host's relay outbox
 * both go through here. Two processes on one database would each "recover" the other's
 * live work (the second server's restart recovery fails the first one's trainings), so the
 * file is locked for the life of the connection and a second opener is refused.
 */
import { Database } from "bun:sqlite";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { StartupError } from "../errors.ts";

/** The database is held by another process; the message names the file, the holder's PID and the variable. */
export class DatabaseLockedError extends StartupError {
  constructor(
    readonly path: string,
    readonly holderPid: number | null,
    variable: string,
  ) {
    const who =
      holderPid === null
        ? "another process"
        : holderPid === process.pid
          ? "this process (opened twice)"
          : `another process (pid ${holderPid})`;
    super(`database ${path} is in use by ${who}; stop it or set ${variable} to another file`);
    this.name = "DatabaseLockedError";
  }
}

export interface OpenOptions {
  /** The variable that names this file, for the refusal ("TRAINWATCH_DB", "TRAINWATCH_HOST_DB"). */
  variable: string;
}

/** `<db>.lock`: the holder's PID, for the refusal message only. The lock itself is SQLite's. */
export const lockFileOf = (path: string) => `${path}.lock`;

/**
 * Opens `path` (":memory:" included) with WAL and synchronous=FULL, creating the file and its
 * directories. A file is opened in `locking_mode=EXCLUSIVE` and written once at once, so this
 * connection takes SQLite's exclusive lock and keeps it until close. The kernel drops that lock
 * when the process ends, however it ends (SIGKILL included), so nothing stale is left to clean up
 * and a reused PID can never hold it, which a PID file alone cannot promise. A second opener,
 * in this process or another, gets DatabaseLockedError.
 */
export function openDatabase(path: string, opts: OpenOptions): Database {
  if (path === ":memory:") {
    const db = new Database(path, { create: true, strict: true });
    db.run("PRAGMA journal_mode = WAL");
    db.run("PRAGMA synchronous = FULL");
    return db;
  }
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { create: true, strict: true });
  try {
    // Before WAL is entered, so the WAL index lives in this process's memory, not in a shared -shm file.
    db.run("PRAGMA locking_mode = EXCLUSIVE");
    // Fail at once rather than wait: the holder keeps the lock for its whole life.
    db.run("PRAGMA busy_timeout = 0");
    db.run("PRAGMA journal_mode = WAL");
    // An exclusive-mode connection takes its locks on first use and keeps them; a write takes the strongest.
    db.run("BEGIN IMMEDIATE");
    db.run("COMMIT");
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code?.startsWith("SQLITE_BUSY"))
      throw new DatabaseLockedError(path, holderPid(path), opts.variable);
    throw err;
  }
  db.run("PRAGMA synchronous = FULL");
  writeFileSync(lockFileOf(path), `${process.pid}\n`);
  return db;
}

/**
 * Applies `migrations[user_version…]` in order, each in its own transaction with the version bump, so a crash between
 * two leaves the file at the last one applied (PRAGMA user_version). The API's store and the host's outbox both migrate here.
 */
export function migrate(db: Database, migrations: readonly string[]): void {
  const { user_version } = db.query<{ user_version: number }, []>("PRAGMA user_version").get()!;
  for (let v = user_version; v < migrations.length; v++) {
    db.transaction(() => {
      db.run(migrations[v]!);
      db.run(`PRAGMA user_version = ${v + 1}`);
    })();
  }
}

/** Closes a database opened by openDatabase and removes its PID file when it is still this process's. */
export function closeDatabase(db: Database, path: string): void {
  db.close();
  if (path === ":memory:") return;
  if (holderPid(path) === process.pid) rmSync(lockFileOf(path), { force: true });
}

/** The PID in `<db>.lock`, or null when there is none (not written yet, or removed). */
function holderPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(lockFileOf(path), "utf8"), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
