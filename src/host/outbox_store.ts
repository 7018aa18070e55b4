/**
 * The outbox's file: every item not yet acknowledged by the API, and the trainings open on this host (so a start
 * after a crash knows which were cut off). Locked for this process (a second host on the file is refused) and
 * durable before the worker's onEpoch returns, like the API's own store: an epoch the API has not acknowledged
 * survives a crash or power loss. Versioned migrations, applied in order at open (PRAGMA user_version), like the
 * API's store.
 */
import type { Database } from "bun:sqlite";
import { closeDatabase, migrate, openDatabase } from "../store/database.ts";
import type { OutboxItem } from "./lanes.ts";

export const OUTBOX_MIGRATIONS: readonly string[] = [
  // 1: the queue and the open trainings. IF NOT EXISTS: a file written before migrations were versioned has these
  // very tables at user_version 0, and keeps its rows.
  `CREATE TABLE IF NOT EXISTS outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT, operation_id TEXT NOT NULL, api_url TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL);
   CREATE TABLE IF NOT EXISTS open_sessions (
     operation_id TEXT PRIMARY KEY, api_url TEXT NOT NULL, opened_at INTEGER NOT NULL);`,
];

/** An item as the file keeps it. */
export interface StoredItem {
  seq: number;
  operationId: string;
  apiUrl: string;
  item: OutboxItem;
}

export class OutboxStore {
  private readonly db: Database;

  constructor(private readonly path: string) {
    this.db = openDatabase(path, { variable: "TRAINWATCH_HOST_DB" });
    migrate(this.db, OUTBOX_MIGRATIONS);
  }

  /** Appends an item for `operationId`; returns its sequence number. */
  append(operationId: string, apiUrl: string, item: OutboxItem): number {
    const { lastInsertRowid } = this.db
      .query("INSERT INTO outbox (operation_id, api_url, kind, body) VALUES (?, ?, ?, ?)")
      .run(operationId, apiUrl, item.kind, JSON.stringify(item));
    return Number(lastInsertRowid);
  }

  /** Deletes the items of `operationId` through sequence number `upto` (acknowledged or dropped). */
  removeThrough(operationId: string, upto: number): void {
    this.db.query("DELETE FROM outbox WHERE operation_id = ? AND seq <= ?").run(operationId, upto);
  }

  /** Every item left, in sequence order. */
  items(): StoredItem[] {
    return this.db
      .query<{ seq: number; operation_id: string; api_url: string; body: string }, []>(
        "SELECT seq, operation_id, api_url, body FROM outbox ORDER BY seq",
      )
      .all()
      .map((r) => ({
        seq: r.seq,
        operationId: r.operation_id,
        apiUrl: r.api_url,
        item: JSON.parse(r.body) as OutboxItem,
      }));
  }

  /** A training starts on this host. */
  opened(operationId: string, apiUrl: string, at: number): void {
    this.db
      .query("INSERT OR REPLACE INTO open_sessions (operation_id, api_url, opened_at) VALUES (?, ?, ?)")
      .run(operationId, apiUrl, at);
  }

  /** A training ended (or was found cut off). */
  closed(operationId: string): void {
    this.db.query("DELETE FROM open_sessions WHERE operation_id = ?").run(operationId);
  }

  /** Trainings that were open when the file was last written. */
  openSessions(): { operationId: string; apiUrl: string }[] {
    return this.db
      .query<{ operation_id: string; api_url: string }, []>("SELECT operation_id, api_url FROM open_sessions")
      .all()
      .map((r) => ({ operationId: r.operation_id, apiUrl: r.api_url }));
  }

  /** Runs `fn` as one transaction (all its writes, or none). */
  transaction(fn: () => void): void {
    this.db.transaction(fn)();
  }

  close(): void {
    closeDatabase(this.db, this.path);
  }
}
