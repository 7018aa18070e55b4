/**
 * The PostgreSQL store's announcements, sent after the commit instead of inside it. A transaction that NOTIFYs takes a
 * database-wide lock at commit and holds it until its commit record is flushed, so notifying writes committed one at a
 * time, each waiting out its own WAL flush (docs/scaling.md measured 33–74 % of busy backends waiting on it). Here a
 * write commits without notifying, and its payloads go out afterwards in a statement of their own: one NOTIFY
 * statement for every commit that finished while the previous one was on its way, committed asynchronously
 * (`synchronous_commit` off for that statement alone: it writes no data, and a notification never outlives a crash
 * anyway), so the lock is held for microseconds, on a connection of its own, so that an announcement never queues
 * behind the writes waiting for the pool. What this costs the streams, notifications that arrive out of version
 * order or never (a replica dying between its commit and its NOTIFY), is made good by the relay
 * (src/operations/stream_order.ts).
 */
import type { SQL } from "bun";

/**
 * A seam for the race tests: called with each statement's payloads before it is sent. Resolving `false` drops them (a
 * replica that died between commit and NOTIFY); a promise that resolves later holds them (a late notification).
 */
export type AnnounceHook = (payloads: readonly string[]) => boolean | Promise<boolean>;

/** The most payloads one statement sends: a NOTIFY queue page is 8 kB, and a statement of thousands holds the lock longer. */
const MAX_PER_STATEMENT = 500;

export class Announcer {
  private queue: string[] = [];
  /** Payloads queued and sent since the start: a waiter is done once `sent` reaches the count its own made. */
  private queued = 0;
  private sent = 0;
  /** In queue order, so in order of `upTo`. */
  private waiters: { upTo: number; resolve: () => void }[] = [];
  private sending: Promise<void> | null = null;

  constructor(
    private readonly sql: SQL,
    private readonly channel: string,
    private readonly hook: AnnounceHook | null = null,
  ) {}

  /**
   * Sends `payloads` (a committed transaction's, in order) to every replica; resolves once they are sent, or failed
   * (logged: the data is committed, and the relay's version check covers a notification that never comes).
   */
  announce(payloads: readonly string[]): Promise<void> {
    if (payloads.length === 0) return Promise.resolve();
    for (const p of payloads) this.queue.push(p);
    this.queued += payloads.length;
    const upTo = this.queued;
    const sent = new Promise<void>((resolve) => this.waiters.push({ upTo, resolve }));
    this.sending ??= this.drain();
    return sent;
  }

  /** Sends what queued, one statement at a time, until nothing is left: commits that finish meanwhile share the next. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const payloads = this.queue.splice(0, MAX_PER_STATEMENT);
      try {
        if (this.hook === null || (await this.hook(payloads)))
          await this.sql`
            SELECT set_config('synchronous_commit', 'off', true), pg_notify(${this.channel}, p)
            FROM unnest(${this.sql.array(payloads, "TEXT")}) WITH ORDINALITY AS n(p, i) ORDER BY i`;
      } catch (err) {
        console.error(`[postgres] announcing ${payloads.length} change(s) failed (streams will replay them):`, err);
      }
      // Each write is released once its own payloads are out, whatever keeps queuing behind them.
      this.sent += payloads.length;
      while (this.waiters.length > 0 && this.waiters[0]!.upTo <= this.sent) this.waiters.shift()!.resolve();
    }
    this.sending = null;
  }

  /** Sends what is queued, then closes the connection. */
  async close(): Promise<void> {
    await this.sending;
    await this.sql.close();
  }
}

/** Where a transaction's payloads collect until it commits (and are dropped when it rolls back). */
export type Notices = string[];
