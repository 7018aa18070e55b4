/**
 * The SQLite store's system series (issue 24, migration 11): its batch insert and reads over `system_samples`, keyed
 * by (op, ts). The chart read probes the key once per time bucket (src/schemas/system.ts systemBuckets), so its cost
 * is the points asked for times a B-tree descent, whatever the run's length. Statements are prepared once.
 */
import type { Database, Statement } from "bun:sqlite";
import { systemBuckets, type SystemRecord } from "../schemas/system.ts";
import type { SystemRange } from "./store.ts";

/** Rows per multi-row INSERT. */
const CHUNK = 100;
const END = Number.MAX_SAFE_INTEGER;

export class SqliteSystem {
  private readonly q: {
    insert: Statement<unknown, (number | string)[]>;
    insertChunk: Statement<unknown, (number | string)[]>;
    range: Statement<SystemRecord, [number, number, number, number]>;
    first: Statement<{ ts: number }, [number, number, number]>;
    last: Statement<{ ts: number }, [number, number, number]>;
    inBucket: Statement<SystemRecord, [number, number, number]>;
    latest: Statement<SystemRecord, [number]>;
  };

  constructor(db: Database) {
    const insert = "INSERT OR REPLACE INTO system_samples (op, ts, sample) VALUES";
    this.q = {
      insert: db.query(`${insert} (?, ?, ?)`),
      insertChunk: db.query(`${insert} ${Array(CHUNK).fill("(?, ?, ?)").join(", ")}`),
      range: db.query("SELECT ts, sample FROM system_samples WHERE op = ? AND ts > ? AND ts <= ? ORDER BY ts LIMIT ?"),
      first: db.query("SELECT ts FROM system_samples WHERE op = ? AND ts > ? AND ts <= ? ORDER BY ts LIMIT 1"),
      last: db.query("SELECT ts FROM system_samples WHERE op = ? AND ts > ? AND ts <= ? ORDER BY ts DESC LIMIT 1"),
      inBucket: db.query(
        "SELECT ts, sample FROM system_samples WHERE op = ? AND ts >= ? AND ts < ? ORDER BY ts LIMIT 1",
      ),
      latest: db.query("SELECT ts, sample FROM system_samples WHERE op = ? ORDER BY ts DESC LIMIT 1"),
    };
  }

  /** Stores `rows` of operation `op` (inside the store's transaction); a re-posted instant replaces its sample. */
  insert(op: number, rows: readonly SystemRecord[]): void {
    let i = 0;
    for (; i + CHUNK <= rows.length; i += CHUNK) {
      const args: (number | string)[] = [];
      for (let j = i; j < i + CHUNK; j++) args.push(op, rows[j]!.ts, rows[j]!.sample);
      this.q.insertChunk.run(...args);
    }
    for (; i < rows.length; i++) this.q.insert.run(op, rows[i]!.ts, rows[i]!.sample);
  }

  read(op: number, r: SystemRange): SystemRecord[] {
    return this.q.range.all(op, r.since ?? -1, r.until ?? END, r.limit);
  }

  chart(op: number, r: Omit<SystemRange, "limit">, maxPoints: number): SystemRecord[] {
    const since = r.since ?? -1;
    const until = r.until ?? END;
    const first = this.q.first.get(op, since, until);
    if (!first) return [];
    const last = this.q.last.get(op, since, until)!;
    const { width, points } = systemBuckets(first.ts, last.ts, maxPoints);
    const out: SystemRecord[] = [];
    for (let b = 0; b < points; b++) {
      const lo = first.ts + b * width;
      const row = this.q.inBucket.get(op, lo, Math.min(lo + width, last.ts + 1));
      if (row) out.push(row);
    }
    return out;
  }

  latest(op: number): SystemRecord | null {
    return this.q.latest.get(op) ?? null;
  }
}
