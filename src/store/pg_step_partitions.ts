/**
 * The PostgreSQL step table's partitions (migration 14): `steps` is range-partitioned on `op`, partition k
 * (`steps_p<k>`) holding operation ids k·ops … k·ops + ops − 1 (ops from step_partitioning, 1,024 unless a test changed
 * it before the first operation), and `steps_legacy` the rows stored before the migration (every id below
 * legacy_upto). A partition exists before any step of its ids can arrive: creating an operation makes sure of its own
 * and the next one (so the DDL runs once per `ops` operations, ahead of need), under an advisory lock, created apart and
 * then attached, which takes SHARE UPDATE EXCLUSIVE on `steps` and so never waits for, nor blocks, step writes.
 * Retention (pruneSteps) removes the step rows of finished runs: a partition whose every id is an expired finished
 * run (or was never used) is truncated whole, the expired runs of any other partition are deleted row by row.
 */
import type { SQL, TransactionSQL } from "bun";
import { FINISHED } from "../schemas/operation.ts";
import type { StepsPruned } from "./store.ts";

/** How the partitions are laid out, as migration 14 recorded it; null on a table that is not partitioned. */
interface Layout {
  ops: number;
  legacyUpto: number;
}

const FINISHED_LIST = [...FINISHED];
/** SQLSTATE lock_not_available: lock_timeout ran out. */
const LOCK_NOT_AVAILABLE = "55P03";

/** Partition k's table name: k is an integer computed here, never a value a client sent. */
const partitionName = (k: number) => `steps_p${k}`;

export class StepPartitions {
  /** The highest partition index known to exist: creating an operation below it costs no query. */
  private ensured = -1;

  private constructor(
    private readonly sql: SQL,
    private readonly schema: string,
    private readonly layout: Layout | null,
  ) {}

  /** Reads the layout of the schema the connection's search_path names (after the migrations). */
  static async open(sql: SQL, schema: string): Promise<StepPartitions> {
    const [kind] = await sql<{ relkind: string }[]>`SELECT relkind FROM pg_class WHERE oid = 'steps'::regclass`;
    // A plain table (a bench's baseline of the layout before migration 14) has no partition to keep.
    if (kind?.relkind !== "p") return new StepPartitions(sql, schema, null);
    const [row] = await sql<{ ops: number; legacy_upto: string }[]>`SELECT ops, legacy_upto FROM step_partitioning`;
    const layout = { ops: row!.ops, legacyUpto: Number(row!.legacy_upto) };
    const parts = new StepPartitions(sql, schema, layout);
    // An operation created by a replica that died before making sure of its partition gets it here.
    const last = await lastId(sql);
    if (last !== null) await parts.ensure(last);
    return parts;
  }

  /** Makes sure the partitions of operation `id` (an int8 as a string) and of the ids after it exist. */
  async ensure(id: string): Promise<void> {
    const layout = this.layout;
    if (layout === null) return;
    const k = Math.floor(Number(id) / layout.ops);
    if (k + 1 <= this.ensured) return;
    const first = Math.max(k, Math.ceil(layout.legacyUpto / layout.ops));
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtext(${`trainwatch.step_partitions.${this.schema}`}))`;
      for (let p = first; p <= k + 1; p++) {
        const name = partitionName(p);
        const [found] = await tx<{ exists: boolean }[]>`SELECT to_regclass(${name}) IS NOT NULL AS exists`;
        if (found!.exists) continue;
        await tx.unsafe(`CREATE TABLE ${name} (LIKE steps INCLUDING DEFAULTS)`);
        await tx.unsafe(
          `ALTER TABLE steps ATTACH PARTITION ${name} FOR VALUES FROM (${p * layout.ops}) TO (${(p + 1) * layout.ops})`,
        );
      }
    });
    this.ensured = k + 1;
  }

  /**
   * Removes the step rows of the runs finished before `cutoffMs` that still have them, marking each pruned at `nowMs`.
   * A partition every id of which is a finished run that finished before the cutoff or wrote no step (or a discarded
   * operation) is truncated, unless an earlier round did; the other such runs are deleted one transaction each, so no
   * lock is held long. A partition some read holds past lock_timeout is left to the next round.
   */
  async prune(cutoffMs: number, nowMs: number): Promise<StepsPruned> {
    const expired = await this.sql<{ id: string; operation_id: string }[]>`
      SELECT id, operation_id FROM operations
      WHERE status = ANY(${this.sql.array(FINISHED_LIST, "TEXT")}) AND completed_at < ${new Date(cutoffMs).toISOString()}::timestamptz
        AND steps_completed > 0 AND steps_pruned_at IS NULL
      ORDER BY id`;
    const out: StepsPruned = { operations: [], partitions: [] };
    if (expired.length === 0) return out;
    const layout = this.layout;
    const rest = new Map(expired.map((r) => [r.id, r.operation_id]));
    if (layout !== null) {
      for (const part of await this.wholeParts(layout, cutoffMs)) {
        const ids = expired.filter((r) => Number(r.id) >= part.from && Number(r.id) < part.to);
        if (ids.length === 0) continue; // truncated by an earlier round: nothing left in it
        const done = await this.sql
          .begin(async (tx) => {
            // A partition a long read holds is left to row deletes: writers never queue behind the TRUNCATE for long.
            await tx`SET LOCAL lock_timeout = '2s'`;
            // Every operation row of the partition locked, as a step write locks its own first: none can write into it
            // now, and one revived since the round began is seen here and keeps its partition.
            const ops = await tx<{ id: string; expired: boolean }[]>`
              SELECT id, ${expiredOrEmpty(tx, cutoffMs)} AS expired FROM operations
              WHERE id >= ${part.from} AND id < ${part.to} ORDER BY id FOR UPDATE`;
            if (ops.some((o) => !o.expired)) return null;
            const pruned = await markPruned(tx, ids, cutoffMs, nowMs);
            await tx.unsafe(`TRUNCATE ${part.name}`);
            return pruned;
          })
          .catch((err) => {
            if ((err as { errno?: string }).errno === LOCK_NOT_AVAILABLE) return null;
            throw err;
          });
        if (done === null) continue;
        for (const r of ids) rest.delete(r.id);
        out.partitions.push(part.name);
        out.operations.push(...done);
      }
    }
    for (const [id, operationId] of rest) {
      const pruned = await this.sql.begin(async (tx) => {
        const marked = await markPruned(tx, [{ id, operation_id: operationId }], cutoffMs, nowMs);
        if (marked.length > 0) await tx`DELETE FROM steps WHERE op = ${id}`;
        return marked;
      });
      out.operations.push(...pruned);
    }
    out.operations.sort();
    return out;
  }

  /**
   * The partitions every id of which is expired or holds no step (expiredOrEmpty): below the identity's last value (ids
   * past it may still come), the legacy one included. One query over the operations, grouped by partition.
   */
  private async wholeParts(layout: Layout, cutoffMs: number): Promise<{ name: string; from: number; to: number }[]> {
    const rows = await this.sql<{ k: string; blocking: string }[]>`
      SELECT (id / ${layout.ops})::bigint AS k, count(*) FILTER (WHERE NOT ${expiredOrEmpty(this.sql, cutoffMs)}) AS blocking
      FROM operations GROUP BY 1`;
    const last = await lastId(this.sql);
    const next = last === null ? 0 : Number(last) + 1;
    const out: { name: string; from: number; to: number }[] = [];
    const free = new Set(rows.filter((r) => Number(r.blocking) === 0).map((r) => Number(r.k)));
    const legacyParts = Math.ceil(layout.legacyUpto / layout.ops);
    // The legacy partition: every id below its bound.
    if (layout.legacyUpto > 0 && layout.legacyUpto <= next) {
      let whole = true;
      for (let k = 0; k < legacyParts && whole; k++) whole = free.has(k) || !rows.some((r) => Number(r.k) === k);
      if (whole) out.push({ name: "steps_legacy", from: 0, to: layout.legacyUpto });
    }
    for (const k of free) {
      if (k < legacyParts || (k + 1) * layout.ops > next) continue;
      out.push({ name: partitionName(k), from: k * layout.ops, to: (k + 1) * layout.ops });
    }
    return out.sort((a, b) => a.from - b.from);
  }
}

/** The last operation id the identity handed out (int8 text), or null before the first. */
async function lastId(sql: SQL): Promise<string | null> {
  const [row] = await sql<{ last: string | null }[]>`
    SELECT pg_sequence_last_value(pg_get_serial_sequence('operations', 'id')) AS last`;
  return row!.last;
}

/**
 * The SQL condition of an operation row whose steps a truncation may take: finished, and before the cutoff or with no
 * step (a pruned run finished again after a revive counts from its new completion).
 */
const expiredOrEmpty = (q: SQL, cutoffMs: number) => q`
  (status = ANY(${q.array(FINISHED_LIST, "TEXT")})
   AND (steps_completed = 0 OR completed_at < ${new Date(cutoffMs).toISOString()}::timestamptz))`;

/** Marks the runs of `ids` that are still unpruned, finished before the cutoff, as pruned; their public ids. */
async function markPruned(
  tx: TransactionSQL,
  ids: readonly { id: string; operation_id: string }[],
  cutoffMs: number,
  nowMs: number,
): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await tx<{ operation_id: string }[]>`
    UPDATE operations SET steps_pruned_at = ${nowMs}
    WHERE id = ANY(${tx.array(
      ids.map((r) => r.id),
      "INT8",
    )}) AND steps_pruned_at IS NULL AND status = ANY(${tx.array(FINISHED_LIST, "TEXT")})
      AND completed_at < ${new Date(cutoffMs).toISOString()}::timestamptz
    RETURNING operation_id`;
  return rows.map((r) => r.operation_id);
}
