/**
 * The PostgreSQL store's system series (issue 24, migration 10): the batch insert (one json_to_recordset parameter),
 * its NOTIFY (once committed, pg_announce.ts), and the reads over `system_samples`, keyed by (op, ts). The chart read is one statement that probes the
 * key once per time bucket (generate_series × LATERAL … LIMIT 1), so its cost does not grow with the run's length.
 */
import type { SQL, TransactionSQL } from "bun";
import { notFound } from "../errors.ts";
import { canAcceptMetrics, operationFinished } from "../operations/lifecycle.ts";
import { encodeSystemSample, systemBuckets, type SystemRecord, type SystemSample } from "../schemas/system.ts";
import { systemNotice } from "./pg_notify.ts";
import type { SystemRange } from "./store.ts";

/** int8 arrives as a string. */
type Row = { ts: string; sample: string };
const toWire = (r: Row): SystemSample => encodeSystemSample({ ts: Number(r.ts), sample: r.sample });
const END = Number.MAX_SAFE_INTEGER;

export class PgSystem {
  /** `announce`: the store's announcement of a committed change (src/store/pg_announce.ts). */
  constructor(
    private readonly sql: SQL,
    private readonly announce: (payloads: string[]) => Promise<void>,
  ) {}

  /** The operation's key; NOT_FOUND when unknown. */
  private async key(q: SQL | TransactionSQL, operationId: string): Promise<string> {
    const rows: { id: string }[] = await q`SELECT id FROM operations WHERE operation_id = ${operationId}`;
    if (rows.length === 0) throw notFound(operationId);
    return rows[0]!.id;
  }

  async write(operationId: string, rows: readonly SystemRecord[]): Promise<number> {
    const stored = await this.sql.begin(async (tx) => {
      // FOR SHARE: a finish (FOR UPDATE) waits for this write, or this write sees it finished.
      const ops: { id: string; status: string; failure_code: string | null; control: string | null }[] = await tx`
        SELECT id, status, failure_code, control FROM operations WHERE operation_id = ${operationId} FOR SHARE`;
      const op = ops[0];
      if (!op) throw notFound(operationId);
      if (!canAcceptMetrics(op)) throw operationFinished(operationId, op.status, op.control && JSON.parse(op.control));
      if (rows.length === 0) return 0;
      const set = JSON.stringify(rows.map((r) => ({ t: r.ts, s: r.sample })));
      await tx`
        INSERT INTO system_samples (op, ts, sample)
        SELECT ${op.id}, r.t, r.s FROM json_to_recordset(${set}::text::json) AS r(t bigint, s text)
        ON CONFLICT (op, ts) DO UPDATE SET sample = excluded.sample`;
      return rows.length;
    });
    if (stored > 0) await this.announce([systemNotice(operationId, rows)]);
    return stored;
  }

  async read(operationId: string, r: SystemRange): Promise<SystemSample[]> {
    const op = await this.key(this.sql, operationId);
    const rows: Row[] = await this.sql`
      SELECT ts, sample FROM system_samples WHERE op = ${op} AND ts > ${r.since ?? -1} AND ts <= ${r.until ?? END}
      ORDER BY ts LIMIT ${r.limit}`;
    return rows.map(toWire);
  }

  async chart(operationId: string, r: Omit<SystemRange, "limit">, maxPoints: number): Promise<SystemSample[]> {
    const op = await this.key(this.sql, operationId);
    const since = r.since ?? -1;
    const until = r.until ?? END;
    const ends: { first: string | null; last: string | null }[] = await this.sql`
      SELECT (SELECT ts FROM system_samples WHERE op = ${op} AND ts > ${since} AND ts <= ${until} ORDER BY ts LIMIT 1) AS first,
             (SELECT ts FROM system_samples WHERE op = ${op} AND ts > ${since} AND ts <= ${until} ORDER BY ts DESC LIMIT 1) AS last`;
    const { first, last } = ends[0]!;
    if (first === null || last === null) return [];
    const lo = Number(first);
    const hi = Number(last);
    const { width, points } = systemBuckets(lo, hi, maxPoints);
    const rows: Row[] = await this.sql`
      SELECT s.ts, s.sample FROM generate_series(0, ${points - 1}::integer) AS b(i)
      CROSS JOIN LATERAL (
        SELECT ts, sample FROM system_samples
        WHERE op = ${op} AND ts >= ${lo}::bigint + b.i * ${width}::bigint
          AND ts < least(${lo}::bigint + (b.i + 1) * ${width}::bigint, ${hi + 1}::bigint)
        ORDER BY ts LIMIT 1) s
      ORDER BY s.ts`;
    return rows.map(toWire);
  }

  async latest(operationId: string): Promise<SystemSample | null> {
    const op = await this.key(this.sql, operationId);
    const rows: Row[] = await this.sql`SELECT ts, sample FROM system_samples WHERE op = ${op} ORDER BY ts DESC LIMIT 1`;
    return rows[0] ? toWire(rows[0]) : null;
  }
}
