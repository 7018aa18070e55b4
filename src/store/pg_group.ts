/**
 * Group commit for the PostgreSQL store: the writes of different operations that a replica receives at about the same
 * time share one transaction, so one WAL flush and one announcement serve many trainings. A write never waits for
 * company: while fewer than `slots` transactions of writes are in flight (most of the pool) it starts at once, alone;
 * only the writes that would have waited for a connection anyway, those that arrive while every slot is busy, queue,
 * and start together as the next group when a slot frees, or after the window (`windowMs`) at the latest, beyond the
 * slots. So grouping adds no wait to a replica with connections to spare, and under load it turns a queue of single
 * writes into one transaction, one flush, one announcement (bench/store.ts measured it: docs/scaling.md). Each write of a group runs in a savepoint of its own, so one that fails its checks (a finished operation,
 * the metric-name bound) fails alone with its own error and the others commit; a write is acknowledged only once its
 * group committed. Within a group the writes go in operation-id order (a same operation's in arrival order), so two
 * groups, on this replica or another, lock operation rows in one order and cannot deadlock with each other; a write of a
 * group that still loses a deadlock or a serialisation conflict (to a statement that locks several rows in another
 * order, the lease renewal's) is written again alone, as it would have been without grouping. SQLite needs none of this:
 * one process, whose writes are serial already.
 */
import type { SQL, TransactionSQL } from "bun";

/** A write of a group: its operation (the lock order) and its work in the transaction, with the payloads it announces. */
interface Queued<T = unknown> {
  operationId: string;
  work: (tx: TransactionSQL, notices: string[]) => Promise<T>;
  resolve: (v: { value: T; notices: string[] }) => void;
  reject: (err: unknown) => void;
}

export interface GroupCommitOptions {
  /**
   * The longest a write that found every slot busy waits for one before it starts beyond them (ms;
   * TRAINWATCH_PG_GROUP_COMMIT_MS, default 0). 0: no grouping, every write is a transaction of its own.
   */
  windowMs: number;
  /**
   * The most writes one transaction holds (default 32): a group holds its rows' locks until the last is written, and
   * each savepoint that writes takes a subtransaction id (PostgreSQL caches 64 per backend before others' snapshots slow).
   */
  maxWrites?: number;
  /** Transactions of writes in flight before writes queue for a group (default 8: a pool of 10 keeps 2 for reads). */
  slots?: number;
}

/**
 * Off by default: on the development VM (2 vCPUs, loopback, fsync on) grouping gained no throughput once the NOTIFY
 * was off the commit path (PostgreSQL already shares one WAL flush among concurrent commits) and raised the p99 of
 * single-epoch writes, since a group's writes run one after the other (docs/scaling.md). Worth trying where a flush
 * is slow (network disks): 2–5 ms.
 */
export const DEFAULT_GROUP_COMMIT_MS = 0;

export class GroupCommit {
  private readonly queue: Queued[] = [];
  private inFlight = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly maxWrites: number;
  /** Groups committed and writes in them, for the bench. */
  readonly stats = { groups: 0, writes: 0 };

  constructor(
    private readonly sql: SQL,
    private readonly opts: GroupCommitOptions,
  ) {
    this.maxWrites = opts.maxWrites ?? 32;
    this.slots = Math.max(1, opts.slots ?? 8);
  }

  private readonly slots: number;

  /**
   * Runs `work` in a transaction, alone or with others; resolves with its value and the payloads it collected, once
   * that transaction committed. Rejects with work's own error when it failed (nothing of it is stored).
   */
  run<T>(
    operationId: string,
    work: (tx: TransactionSQL, notices: string[]) => Promise<T>,
  ): Promise<{ value: T; notices: string[] }> {
    if (this.opts.windowMs <= 0) return this.alone(work);
    return new Promise((resolve, reject) => {
      this.queue.push({ operationId, work, resolve, reject } as Queued);
      if (this.inFlight < this.slots) this.start();
      else this.timer ??= setTimeout(() => ((this.timer = null), this.start()), this.opts.windowMs);
    });
  }

  private async alone<T>(work: Queued<T>["work"]): Promise<{ value: T; notices: string[] }> {
    const notices: string[] = [];
    const value = await this.sql.begin((tx) => work(tx, notices));
    return { value, notices };
  }

  /** Starts a group of what queued (up to maxWrites; the rest waits for the next). */
  private start(): void {
    if (this.queue.length === 0) return;
    if (this.timer) clearTimeout(this.timer), (this.timer = null);
    const group = this.queue.splice(0, this.maxWrites);
    this.inFlight++;
    void this.commit(group).finally(() => {
      this.inFlight--;
      if (this.queue.length > 0 && this.inFlight < this.slots) this.start();
    });
  }

  private async commit(group: Queued[]): Promise<void> {
    // Stable: a same operation's writes keep their order.
    const ordered = group.map((q, i) => ({ q, i })).sort((a, b) => cmp(a.q.operationId, b.q.operationId) || a.i - b.i);
    const done: { q: Queued; value: unknown; notices: string[] }[] = [];
    const failed: { q: Queued; err: unknown }[] = [];
    // A SAVEPOINT or RELEASE that failed: the cause the group reports, not the "no such savepoint" that follows it.
    let pipelined: unknown = null;
    try {
      if (ordered.length === 1) {
        // A lone write needs no savepoint: its failure rolls back a transaction that holds nothing else.
        const q = ordered[0]!.q;
        const notices: string[] = [];
        try {
          const value = await this.sql.begin((tx) => q.work(tx, notices));
          done.push({ q, value, notices });
        } catch (err) {
          failed.push({ q, err });
        }
      } else {
        await this.sql.begin(async (tx) => {
          for (const [i, { q }] of ordered.entries()) {
            const notices: string[] = [];
            // SAVEPOINT and RELEASE go out pipelined with the write's own statements (not awaited on their own: two
            // round trips a write saved); a failure rolls back to it, and the transaction goes on.
            const quiet = (p: PromiseLike<unknown>) =>
              void Promise.resolve(p).catch((err) => {
                pipelined ??= err;
              });
            quiet(tx.unsafe(`SAVEPOINT w${i}`));
            try {
              const value = await q.work(tx, notices);
              quiet(tx.unsafe(`RELEASE SAVEPOINT w${i}`));
              done.push({ q, value, notices });
            } catch (err) {
              await tx.unsafe(`ROLLBACK TO SAVEPOINT w${i}`);
              failed.push({ q, err });
            }
          }
        });
      }
    } catch (err) {
      // The commit itself failed (the connection, the server, a savepoint): nothing of the group is stored.
      const cause = pipelined ?? err;
      for (const d of done) d.q.reject(cause);
      for (const f of failed) f.q.reject(f.err);
      return;
    }
    this.stats.groups++;
    this.stats.writes += group.length;
    for (const d of done) d.q.resolve({ value: d.value, notices: d.notices });
    for (const f of failed) {
      if (!transient(f.err) || ordered.length === 1) f.q.reject(f.err);
      else this.alone(f.q.work).then(f.q.resolve, f.q.reject);
    }
  }
}

/** A deadlock, a serialisation failure or a lock not available: the write itself is fine, its company was not. */
const transient = (err: unknown): boolean => {
  const state = (err as { errno?: unknown } | null)?.errno;
  return state === "40P01" || state === "40001" || state === "55P03";
};

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
