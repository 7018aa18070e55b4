/**
 * One replica at a time for a job that must not run twice (the host watchdog: a host training is failed once): the
 * holder of a PostgreSQL session advisory lock. The lock lives on a connection of its own, so the server drops it
 * the moment that connection ends, however the replica ends (SIGKILL included), and another replica takes it at its
 * next check. A reconnect is a new session without the lock: each check compares the backend pid it locked with.
 */
import { SQL } from "bun";

/** Both halves of the two-key advisory lock: the first says "trainwatch", the second names the job in its schema. */
const LOCK = (schema: string, job: string) => [`trainwatch`, `${schema}.${job}`] as const;

export class Leadership {
  private pid: number | null = null;
  private closed = false;

  private constructor(
    private readonly sql: SQL,
    private readonly keys: readonly [string, string],
  ) {}

  /** A candidate for `job` in `schema`; it leads after a check() that returns true. */
  static open(url: string, schema: string, job: string): Leadership {
    // Keepalives: a replica whose machine vanishes (no FIN, no RST) lets go within ~25 s instead of the kernel's 2 hours.
    const connection = {
      application_name: `trainwatch ${job} lock`,
      tcp_keepalives_idle: 10,
      tcp_keepalives_interval: 5,
      tcp_keepalives_count: 3,
    };
    return new Leadership(new SQL(url, { max: 1, connection }), LOCK(schema, job));
  }

  /** Whether this replica holds the lock now (taking it when it is free). A database error reads as "not leading". */
  async check(): Promise<boolean> {
    if (this.closed) return false;
    try {
      if (this.pid !== null) {
        const [{ pid }] = await this.sql`SELECT pg_backend_pid() AS pid`;
        if (pid === this.pid) return true;
        this.pid = null; // the connection was replaced: its lock went with the old session
      }
      const [k1, k2] = this.keys;
      const [row] = await this
        .sql`SELECT pg_try_advisory_lock(hashtext(${k1}), hashtext(${k2})) AS got, pg_backend_pid() AS pid`;
      if (row.got) this.pid = row.pid as number;
      return this.pid !== null;
    } catch {
      this.pid = null;
      return false;
    }
  }

  get leading(): boolean {
    return this.pid !== null;
  }

  /** Gives the lock up (closing its connection releases it). */
  async close(): Promise<void> {
    this.closed = true;
    this.pid = null;
    await this.sql.close();
  }
}
