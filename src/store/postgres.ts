/**
 * PostgreSQL implementation of the Store, on Bun's built-in client (`SQL` from "bun": a pool, named prepared
 * statements, transactions, LISTEN/NOTIFY; no extra dependency). Same semantics as the SQLite store: every write is
 * one transaction that locks the operation's row (`FOR UPDATE`), so writers on several replicas serialise per
 * operation and "a refused request stores nothing" holds; epochs are upserted per (operation, epoch), a batch's last
 * copy of an epoch winning; NaN and ±Infinity are float8 values, never NULL; the trend summary is kept incrementally
 * from the stored rule state and the recent tail, so a write costs O(batch), not O(history).
 */
import { SQL, type TransactionSQL } from "bun";
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { notFound } from "../errors.ts";
import {
  admitMetricNames,
  encodeEpoch,
  encodeMetric,
  MAX_EPOCH,
  type EpochRecord,
  type WireEpoch,
} from "../schemas/epoch.ts";
import { canAcceptMetrics, canFinish, isRevivable, operationFinished } from "../operations/lifecycle.ts";
import {
  FINISHED,
  type Operation,
  type OperationStatus,
  type StopControl,
  type StopPolicy,
} from "../schemas/operation.ts";
import {
  DEFAULT_TREND_CONFIG,
  EMPTY_SUMMARY,
  type EpochPoint,
  type TrendConfig,
  type TrendState,
  type TrendSummary,
} from "../trends/types.ts";
import { analyzeTrends, tailSize } from "../trends/summary.ts";
import { summarizeRows, type SpanSummary } from "../trends/downsample.ts";
import { appendToBlock, BLOCK, blockCover, blockOf, byBlock } from "./blocks.ts";
import { PG_MIGRATIONS } from "./pg_migrations.ts";
import { placementOf } from "../operations/ownership.ts";
import {
  appendedSummary,
  customColumn,
  type EpochColumns,
  type OperationColumns,
  parseJson,
  planAppend,
  projection,
  byFieldList,
  rowToWire,
  toOperation,
  type Liveness,
  writeResult,
} from "./rows.ts";
import { newOperationId } from "./ids.ts";
import type {
  BatchProgress,
  Fields,
  FinishOptions,
  ListFilter,
  NewOperation,
  Replay,
  SharedStore,
  Store,
  StoreChange,
  WriteResult,
} from "./store.ts";

export interface PostgresOptions {
  trends?: TrendConfig;
  /** As for SqliteStore: silence after which a running host training reads `stale` (default 15 s), and the clock. */
  liveness?: Liveness;
  /** The schema that holds the tables (default "public"); created when missing. Tests give each case its own. */
  schema?: string;
  /** Connections in the pool (default 10). */
  max?: number;
  /**
   * This process as one of the replicas on the database: its id (the owner of the local trainings it runs) and how
   * long its lease on them lasts unless renewed (renewLeases). Default: a random id and 15 s.
   */
  replica?: { id: string; leaseMs: number };
}

/** A replica id for a process that names none: unique, and readable in an operation's error message. */
export const randomReplicaId = () => `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;

/** The largest NOTIFY payload PostgreSQL takes is 8,000 bytes; room for the JSON around the epochs. */
const INLINE_BYTES = 7_000;

/** A schema name we can interpolate: lower-case letters, digits and underscores. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,51}$/;

/** The schema is newer than this server knows (a newer version migrated it): refuse rather than misread it. */
export class SchemaTooNewError extends Error {
  constructor(found: number, known: number) {
    super(`the PostgreSQL schema is at version ${found}, newer than this server's ${known}; upgrade the server`);
    this.name = "SchemaTooNewError";
  }
}

/** timestamptz arrives as a Date and int8 as a string; the rest as both stores keep it. */
interface OpRow extends Omit<OperationColumns, "created_at" | "started_at" | "completed_at" | "last_seen_at"> {
  /** int8 arrives as a string; it only ever goes back as a parameter. */
  id: string;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  last_seen_at: string | null;
  best_json: string | null;
  epoch_version: string;
  owner: string | null;
  lease_until: string | null;
  /** The custom metric names, a sorted JSON array (Store.metricNames). */
  metric_names: string;
}

type EpochRow = EpochColumns<number>;

type Tx = TransactionSQL;
const iso = (d: Date | null) => (d === null ? null : d.toISOString());
const ms = (v: string | null) => (v === null ? null : Number(v));

export class PostgresStore implements Store, SharedStore {
  private readonly trendCfg: TrendConfig;
  private readonly tail: number;
  private readonly liveness: Liveness;
  private readonly batchProgress = new Map<string, BatchProgress>();
  /** The NOTIFY channel: one per schema, so deployments (and tests) sharing a database do not hear each other. */
  readonly channel: string;
  private readonly now: () => number;

  private constructor(
    readonly sql: SQL,
    readonly schema: string,
    opts: PostgresOptions,
  ) {
    this.trendCfg = opts.trends ?? DEFAULT_TREND_CONFIG;
    this.tail = tailSize(this.trendCfg);
    this.liveness = opts.liveness ?? { lateAfterMs: 15_000 };
    this.now = this.liveness.now ?? Date.now;
    this.replica = opts.replica ?? { id: randomReplicaId(), leaseMs: 15_000 };
    this.channel = `trainwatch_${schema}`;
  }

  readonly replica: { id: string; leaseMs: number };
  /** Every PostgreSQL store is shared: another replica may open the same schema at any time. */
  readonly shared: SharedStore = this;

  get replicaId(): string {
    return this.replica.id;
  }

  /** Connects, creates the schema when missing and applies the migrations it lacks. */
  static async open(url: string, opts: PostgresOptions = {}): Promise<PostgresStore> {
    const schema = opts.schema ?? "public";
    if (!SCHEMA_NAME.test(schema))
      throw new Error(`schema: expected lower-case letters, digits and _, got ${JSON.stringify(schema)}`);
    const sql = new SQL(url, {
      max: opts.max ?? 10,
      connection: { search_path: schema, application_name: "trainwatch" },
    });
    try {
      await migrate(sql, schema);
    } catch (err) {
      await sql.close();
      throw err;
    }
    return new PostgresStore(sql, schema, opts);
  }

  private toOperation(r: OpRow): Operation {
    const cols = {
      ...r,
      created_at: r.created_at.toISOString(),
      started_at: iso(r.started_at),
      completed_at: iso(r.completed_at),
      last_seen_at: ms(r.last_seen_at),
    };
    return toOperation(cols, this.batchProgress.get(r.operation_id), this.liveness);
  }

  private async row(q: SQL, operationId: string, lock = false): Promise<OpRow> {
    const rows: OpRow[] = lock
      ? await q`SELECT * FROM operations WHERE operation_id = ${operationId} FOR UPDATE`
      : await q`SELECT * FROM operations WHERE operation_id = ${operationId}`;
    if (rows.length === 0) throw notFound(operationId);
    return rows[0]!;
  }

  async createOperation(input: NewOperation): Promise<Operation> {
    const now = new Date();
    const id = newOperationId(input.operation_type, now);
    const status = input.status ?? "running";
    const at = now.toISOString();
    // An owned operation is leased from its first moment: a replica that dies right after creating it still loses it.
    const owner = input.owned ? this.replica : null;
    const placement = placementOf(input.metadata ?? {});
    const rows = await this.sql.begin(async (tx) => {
      const [inserted] = await Promise.all([
        tx<OpRow[]>`
        INSERT INTO operations (operation_id, operation_type, name, status, created_at, started_at, total_epochs_planned, metadata, summary,
                                config, stop_policy, owner, lease_until, location, host)
        VALUES (${id}, ${input.operation_type}, ${input.name ?? null}, ${status}, ${at}, ${status === "running" ? at : null},
                ${input.total_epochs_planned ?? null}, ${JSON.stringify(input.metadata ?? {})}, ${JSON.stringify(EMPTY_SUMMARY)},
                ${input.config ? JSON.stringify(input.config) : null}, ${input.stop_policy ? JSON.stringify(input.stop_policy) : null},
                ${owner?.id ?? null}, ${owner ? this.now() + owner.leaseMs : null}, ${placement.location}, ${placement.host})
        RETURNING *`,
        this.notifyStatus(tx, id, false),
      ]);
      return inserted;
    });
    return this.toOperation(rows[0]!);
  }

  /** The status change of `operationId`, told to every replica on commit. */
  private notifyStatus(q: SQL, operationId: string, finished: boolean) {
    return q`SELECT pg_notify(${this.channel}, ${JSON.stringify({ k: "s", o: operationId, f: finished ? 1 : 0 })})`;
  }

  /**
   * Tells every replica's streams that `operationId` changed without a write: a host training that turned stale, say.
   * Writes tell them by themselves, in their own transaction.
   */
  async publishStatus(operationId: string): Promise<void> {
    await this.notifyStatus(this.sql, operationId, false);
  }

  async discardOperation(operationId: string): Promise<boolean> {
    // One statement: the removal is told to every replica exactly when it happened.
    const r = await this.sql`
      WITH gone AS (
        DELETE FROM operations WHERE operation_id = ${operationId} AND status = 'pending'
          AND NOT EXISTS (SELECT 1 FROM epochs WHERE epochs.op = operations.id)
        RETURNING 1)
      SELECT pg_notify(${this.channel}, ${JSON.stringify({ k: "r", o: operationId })}) FROM gone`;
    if (r.count > 0) this.batchProgress.delete(operationId);
    return r.count > 0;
  }

  async getOperation(operationId: string): Promise<Operation | null> {
    const rows: OpRow[] = await this.sql`SELECT * FROM operations WHERE operation_id = ${operationId}`;
    return rows.length ? this.toOperation(rows[0]!) : null;
  }

  async listOperations(f: ListFilter): Promise<{ items: Operation[]; total: number }> {
    const status = f.status ?? null;
    const type = f.operation_type ?? null;
    // One statement for every filter combination: a NULL parameter matches everything.
    const [count, rows] = await Promise.all([
      this.sql`SELECT count(*)::int AS n FROM operations
               WHERE (${status}::text IS NULL OR status = ${status}) AND (${type}::text IS NULL OR operation_type = ${type})`,
      this.sql`SELECT * FROM operations
               WHERE (${status}::text IS NULL OR status = ${status}) AND (${type}::text IS NULL OR operation_type = ${type})
               ORDER BY id DESC LIMIT ${f.limit} OFFSET ${f.offset}`,
    ]);
    return { items: (rows as OpRow[]).map((r) => this.toOperation(r)), total: (count as { n: number }[])[0]!.n };
  }

  async writeEpochs(operationId: string, epochs: EpochRecord[]): Promise<WriteResult> {
    // The rows are built before the transaction opens, so the row lock is held only for the database's part.
    const batch = epochRows(epochs);
    const groups = byBlock(epochs);
    const touched = [...groups.keys()];
    return this.sql.begin(async (tx) => {
      // Pipelined: the block read runs once the lock is granted, so it sees the last writer's blocks.
      const [ops, stored] = await Promise.all([
        tx<OpRow[]>`SELECT * FROM operations WHERE operation_id = ${operationId} FOR UPDATE`,
        tx<{ block: number; summary: string }[]>`
          SELECT block, summary FROM epoch_blocks
          WHERE op = (SELECT id FROM operations WHERE operation_id = ${operationId}) AND block = ANY(${tx.array(touched, "INT4")})`,
      ]);
      const op = ops[0];
      if (!op) throw notFound(operationId);
      if (!canAcceptMetrics(op)) throw operationFinished(operationId, op.status, parseJson<StopControl>(op.control));
      // Before any row: a batch past the name limit is refused whole (the row lock orders concurrent writers' names).
      const names = admitMetricNames(() => JSON.parse(op.metric_names) as string[], epochs);
      const revived = isRevivable(op);
      const append = planAppend(op, epochs, batch.count, batch.minEpoch, this.tail);
      const prevBlocks = new Map(stored.map((b) => [b.block, JSON.parse(b.summary) as SpanSummary]));
      const blocks = new Map<number, SpanSummary | null>();
      for (const [b, rows] of groups) blocks.set(b, appendToBlock(prevBlocks.get(b) ?? null, rows));
      const redo = [...blocks].filter(([, v]) => v === null).map(([b]) => b);

      // Epochs past every stored one cannot conflict (the row lock keeps others out): they are COPYed, PostgreSQL's fast
      // path, ~3× cheaper on the server than the upsert a re-post needs (16.6 ms → 5.8 ms for 1,000 rows on the VM), in
      // the binary format: no float printed here and parsed there (text COPY 1.3 ms + 3.1 ms → binary 0.4 ms + 2.6 ms).
      const fresh = latestEpoch(op) === null || batch.minEpoch > latestEpoch(op)!;
      if (batch.count > 0 && fresh) {
        const copy =
          tx`COPY epochs (op, ts, train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration, epoch, custom) FROM STDIN (FORMAT binary)`
            .writable()
            .getWriter();
        await copy.write(batch.copyBinary(op.id));
        await copy.close();
      }
      // Pipelined after the insert: the reads see the batch's rows.
      const [, tailRows, history, redoRows] = await Promise.all([
        batch.count > 0 && !fresh
          ? tx`
          INSERT INTO epochs (op, ts, train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration, epoch, custom)
          SELECT ${op.id}, r.ts, r.tl, r.vl, r.ta, r.va, r.lr, r.du, r.e, r.c
          FROM json_to_recordset(${batch.json()}::text::json)
            AS r(e integer, tl float8, vl float8, ta float8, va float8, lr float8, du float8, ts bigint, c text)
          ON CONFLICT (op, epoch) DO UPDATE SET
            ts = excluded.ts, train_loss = excluded.train_loss, val_loss = excluded.val_loss,
            train_accuracy = excluded.train_accuracy, val_accuracy = excluded.val_accuracy,
            learning_rate = excluded.learning_rate, duration = excluded.duration, custom = excluded.custom`
          : null,
        append && append.tail === null
          ? tx<
              EpochPoint[]
            >`SELECT epoch, train_loss, val_loss FROM epochs WHERE op = ${op.id} ORDER BY epoch DESC LIMIT ${this.tail}`
          : null,
        append
          ? null
          : tx<EpochPoint[]>`SELECT epoch, train_loss, val_loss FROM epochs WHERE op = ${op.id} ORDER BY epoch`,
        redo.length > 0
          ? tx<
              EpochRow[]
            >`SELECT e.epoch, e.train_loss, e.val_loss, e.train_accuracy, e.val_accuracy, e.learning_rate, e.duration, e.ts, e.custom
              FROM unnest(${tx.array(redo, "INT4")}) AS b(block)
              JOIN epochs e ON e.op = ${op.id} AND e.epoch BETWEEN b.block * ${BLOCK}::integer AND b.block * ${BLOCK}::integer + ${BLOCK - 1}::integer
              ORDER BY e.epoch`
          : null,
      ]);

      let trends: TrendSummary;
      let state: TrendState;
      if (append) {
        state = append.state;
        trends = appendedSummary(append, append.tail ?? tailRows!.reverse(), this.trendCfg);
      } else {
        ({ state, summary: trends } = analyzeTrends(history!, this.trendCfg));
      }
      if (redoRows) {
        const wire = redoRows.map(toWire);
        for (const b of redo) {
          const lo = wire.findIndex((r) => blockOf(r.epoch) === b);
          let hi = lo;
          while (hi < wire.length && blockOf(wire[hi]!.epoch) === b) hi++;
          blocks.set(b, summarizeRows(wire, lo, hi));
        }
      }
      const blockJson = JSON.stringify([...blocks].map(([b, summary]) => ({ b, s: JSON.stringify(summary) })));
      const wasPending = op.status === "pending";
      const now = new Date();
      const version = Number(op.epoch_version) + 1;
      await Promise.all([
        // One statement for the summary, the revive, the start, the liveness stamp and the epoch version.
        tx`
          UPDATE operations SET summary = ${JSON.stringify(trends)}, best_json = ${JSON.stringify(state)}, last_seen_at = ${now.getTime()},
            epoch_version = ${version}, metric_names = coalesce(${names && JSON.stringify(names)}, metric_names),
            status = CASE WHEN ${revived || wasPending} THEN 'running' ELSE status END,
            error_message = CASE WHEN ${revived} THEN NULL ELSE error_message END,
            failure_code = CASE WHEN ${revived} THEN NULL ELSE failure_code END,
            completed_at = CASE WHEN ${revived} THEN NULL ELSE completed_at END,
            started_at = CASE WHEN ${wasPending} THEN ${now.toISOString()}::timestamptz ELSE started_at END
          WHERE id = ${op.id}`,
        blocks.size > 0
          ? tx`
          INSERT INTO epoch_blocks (op, block, summary)
          SELECT ${op.id}, r.b, r.s FROM json_to_recordset(${blockJson}::text::json) AS r(b integer, s text)
          ON CONFLICT (op, block) DO UPDATE SET summary = excluded.summary`
          : null,
        tx`SELECT pg_notify(${this.channel}, ${epochsPayload(operationId, version, trends, epochs, batch.minEpoch)})`,
        revived || wasPending ? this.notifyStatus(tx, operationId, false) : null,
      ]);
      return writeResult(op, epochs.length, trends, revived, version);
    });
  }

  async readEpochs(
    operationId: string,
    sinceEpoch = -1,
    untilEpoch = MAX_EPOCH,
    fields?: Fields,
  ): Promise<WireEpoch[]> {
    const { columns, toWire } = projected(fields);
    const rows = await this.sql<EpochRow[]>`
      SELECT ${this.sql.unsafe(columns)} FROM operations o JOIN epochs e ON e.op = o.id
        WHERE o.operation_id = ${operationId} AND e.epoch > ${sinceEpoch} AND e.epoch <= ${untilEpoch} ORDER BY e.epoch`;
    // No rows: an unknown operation, or none yet; only then does telling them apart cost a second query.
    if (rows.length === 0) await this.row(this.sql, operationId);
    return rows.map(toWire);
  }

  async readEpochPage(operationId: string, afterEpoch: number, limit: number): Promise<WireEpoch[]> {
    const { columns, toWire } = projected(undefined);
    const rows = await this.sql<EpochRow[]>`
      SELECT ${this.sql.unsafe(columns)} FROM operations o JOIN epochs e ON e.op = o.id
        WHERE o.operation_id = ${operationId} AND e.epoch > ${afterEpoch} ORDER BY e.epoch LIMIT ${limit}`;
    if (rows.length === 0) await this.row(this.sql, operationId);
    return rows.map(toWire);
  }

  async metricNames(operationId: string): Promise<string[]> {
    const rows: { metric_names: string }[] = await this
      .sql`SELECT metric_names FROM operations WHERE operation_id = ${operationId}`;
    if (rows.length === 0) throw notFound(operationId);
    return JSON.parse(rows[0]!.metric_names) as string[];
  }

  async readEpochsBefore(operationId: string, epoch: number, limit: number, fields?: Fields): Promise<WireEpoch[]> {
    const { columns, toWire } = projected(fields);
    const rows = await this.sql<EpochRow[]>`
      SELECT ${this.sql.unsafe(columns)} FROM operations o JOIN epochs e ON e.op = o.id
        WHERE o.operation_id = ${operationId} AND e.epoch < ${epoch} ORDER BY e.epoch DESC LIMIT ${limit}`;
    if (rows.length === 0) await this.row(this.sql, operationId);
    return rows.reverse().map(toWire);
  }

  async readEpochsAt(operationId: string, epochs: readonly number[], fields?: Fields): Promise<WireEpoch[]> {
    const op = await this.row(this.sql, operationId);
    if (epochs.length === 0) return [];
    const { columns, toWire } = projected(fields);
    const rows = await this.sql<EpochRow[]>`
      SELECT ${this.sql.unsafe(columns)} FROM epochs e WHERE op = ${op.id} AND epoch = ANY(${this.sql.array([...epochs], "INT4")}) ORDER BY epoch`;
    return rows.map(toWire);
  }

  async epochSpans(operationId: string, fromEpoch: number, toEpoch: number): Promise<SpanSummary[]> {
    const op = await this.row(this.sql, operationId);
    const { blocks, edges } = blockCover(fromEpoch, toEpoch);
    const edge = async ([from, to]: [number, number]) =>
      summarizeRows(
        (
          await this.sql<
            EpochRow[]
          >`SELECT epoch, train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration, ts, custom FROM epochs WHERE op = ${op.id} AND epoch >= ${from} AND epoch <= ${to} ORDER BY epoch`
        ).map(toWire),
      );
    const [whole, ...edgeSpans] = await Promise.all([
      blocks
        ? this.sql<
            { summary: string }[]
          >`SELECT summary FROM epoch_blocks WHERE op = ${op.id} AND block >= ${blocks[0]} AND block <= ${blocks[1]} ORDER BY block`
        : [],
      ...edges.map(edge),
    ]);
    const spans = whole.map((b) => JSON.parse(b.summary) as SpanSummary);
    // The edges are the range's first and last parts: before and after the whole blocks.
    if (blocks === null) spans.push(...edgeSpans);
    else {
      for (let i = 0; i < edges.length; i++) {
        if (edges[i]![0] < blocks[0] * BLOCK) spans.unshift(edgeSpans[i]!);
        else spans.push(edgeSpans[i]!);
      }
    }
    return spans.filter((s) => s.count > 0);
  }

  async markStarted(operationId: string): Promise<Operation> {
    return this.sql.begin(async (tx) => {
      const rows = await tx<OpRow[]>`
        UPDATE operations SET status = 'running', started_at = ${new Date().toISOString()}
          WHERE operation_id = ${operationId} AND status = 'pending' RETURNING *`;
      if (rows.length === 0) return this.toOperation(await this.row(tx, operationId));
      await this.notifyStatus(tx, operationId, false);
      return this.toOperation(rows[0]!);
    });
  }

  async finish(
    operationId: string,
    status: "completed" | "failed" | "cancelled",
    opts: FinishOptions = {},
  ): Promise<Operation> {
    return this.sql.begin(async (tx) => this.finishIn(tx, operationId, status, opts));
  }

  private async finishIn(
    tx: Tx,
    operationId: string,
    status: "completed" | "failed" | "cancelled",
    opts: FinishOptions,
  ): Promise<Operation> {
    const op = await this.row(tx, operationId, true);
    this.batchProgress.delete(operationId);
    if (!canFinish(op)) throw operationFinished(operationId, op.status, parseJson<StopControl>(op.control));
    const now = new Date().toISOString();
    const rows: OpRow[] = await tx`
      UPDATE operations SET status = ${status}, completed_at = ${now}, error_message = ${opts.error_message ?? null},
        failure_code = ${status === "failed" ? (opts.failure_code ?? null) : null},
        result = coalesce(${opts.result ? JSON.stringify(opts.result) : null}::text, result),
        started_at = coalesce(started_at, ${now}::timestamptz),
        control = coalesce(${opts.control ? JSON.stringify(opts.control) : null}::text, control)
      WHERE id = ${op.id} RETURNING *`;
    await this.notifyStatus(tx, operationId, true);
    return this.toOperation(rows[0]!);
  }

  async mergeMetadata(operationId: string, patch: Record<string, unknown>): Promise<Operation> {
    return this.sql.begin(async (tx) => {
      const op = await this.row(tx, operationId, true);
      // Merged here, not with jsonb ||, so the keys keep the order they were written in (as on SQLite).
      const merged = { ...(JSON.parse(op.metadata) as Record<string, unknown>), ...patch };
      const p = placementOf(patch, op);
      const [rows] = await Promise.all([
        tx<
          OpRow[]
        >`UPDATE operations SET metadata = ${JSON.stringify(merged)}, location = ${p.location}, host = ${p.host}
                    WHERE id = ${op.id} RETURNING *`,
        this.notifyStatus(tx, operationId, false),
      ]);
      return this.toOperation(rows[0]!);
    });
  }

  async setStopPolicy(operationId: string, policy: StopPolicy | null): Promise<Operation> {
    return this.sql.begin(async (tx) => {
      const op = await this.row(tx, operationId, true);
      if (FINISHED.has(op.status)) throw operationFinished(operationId, op.status, parseJson<StopControl>(op.control));
      const [rows] = await Promise.all([
        tx<
          OpRow[]
        >`UPDATE operations SET stop_policy = ${policy ? JSON.stringify(policy) : null} WHERE id = ${op.id} RETURNING *`,
        this.notifyStatus(tx, operationId, false),
      ]);
      return this.toOperation(rows[0]!);
    });
  }

  async setControl(operationId: string, control: StopControl): Promise<void> {
    await this.sql.begin(async (tx) => {
      const r =
        await tx`UPDATE operations SET control = ${JSON.stringify(control)} WHERE operation_id = ${operationId}`;
      if (r.count === 0) throw notFound(operationId);
      await this.notifyStatus(tx, operationId, false);
    });
  }

  async setResult(operationId: string, result: Record<string, unknown>): Promise<void> {
    const r = await this.sql`
      WITH kept AS (UPDATE operations SET result = ${JSON.stringify(result)} WHERE operation_id = ${operationId} RETURNING 1)
      SELECT pg_notify(${this.channel}, ${this.changedPayload(operationId)}) FROM kept`;
    if (r.count === 0) throw notFound(operationId);
  }

  /** Kept in memory, as on SQLite: it changes up to 4 times a second per training and means nothing after a restart. */
  async setBatchProgress(operationId: string, progress: BatchProgress | null): Promise<void> {
    const rows: { status: OperationStatus }[] = await this
      .sql`SELECT status FROM operations WHERE operation_id = ${operationId}`;
    if (rows.length === 0) throw notFound(operationId);
    if (FINISHED.has(rows[0]!.status)) return; // a late report from a worker that is stopping
    if (progress) this.batchProgress.set(operationId, progress);
    else this.batchProgress.delete(operationId);
    // Other replicas keep it in memory too, from this notification; nothing is written.
    await this.sql`SELECT pg_notify(${this.channel}, ${JSON.stringify({ k: "p", o: operationId, p: progress })})`;
  }

  /** Told to every replica (lists show `last_seen_at` and `stale`): one heartbeat per host training every 10 s. */
  async touch(operationId: string, atMs = Date.now()): Promise<void> {
    const r = await this.sql`
      WITH seen AS (UPDATE operations SET last_seen_at = ${atMs} WHERE operation_id = ${operationId} RETURNING 1)
      SELECT pg_notify(${this.channel}, ${this.changedPayload(operationId)}) FROM seen`;
    if (r.count === 0) throw notFound(operationId);
  }

  /** A change lists show that is no status change; the statement that makes it sends it, so it is told on commit. */
  private changedPayload(operationId: string): string {
    return JSON.stringify({ k: "c", o: operationId });
  }

  async staleHostOperations(cutoffMs: number): Promise<string[]> {
    const rows: { operation_id: string }[] = await this.sql`
      SELECT operation_id FROM operations WHERE status = 'running'
        AND location = 'host' AND coalesce(last_seen_at, 0) < ${cutoffMs}
      ORDER BY id`;
    return rows.map((r) => r.operation_id);
  }

  async failInterrupted(where: (op: Operation) => boolean, message: string): Promise<string[]> {
    // Only this replica's own: another's trainings are its business until its lease runs out.
    const rows: OpRow[] = await this
      .sql`SELECT * FROM operations WHERE status IN ('pending', 'running') AND owner = ${this.replica.id} ORDER BY id`;
    const ids = rows
      .map((r) => this.toOperation(r))
      .filter(where)
      .map((o) => o.operation_id);
    for (const id of ids) await this.finish(id, "failed", { error_message: message });
    return ids;
  }

  /**
   * Hears every replica's changes (this one's included) in commit order. `onResync` runs after the listening connection
   * was lost and is back: notifications sent meanwhile are gone, so whoever relays them must catch up from the tables.
   * Resolves once the server listens; call the result to stop.
   */
  async listen(onChange: (c: StoreChange) => void, onResync: () => void): Promise<() => Promise<void>> {
    let first = true;
    const sub = await this.sql.listen(
      this.channel,
      (payload) => {
        const c = decodeChange(payload);
        if (c.kind === "progress") {
          if (c.progress) this.batchProgress.set(c.operation_id, c.progress);
          else this.batchProgress.delete(c.operation_id);
        } else if ((c.kind === "status" && c.finished) || c.kind === "removed")
          this.batchProgress.delete(c.operation_id);
        onChange(c);
      },
      () => {
        if (!first) onResync();
        first = false;
      },
    );
    return () => sub.unlisten();
  }

  /**
   * A stream's replay, read in one snapshot: the operation, its epochs after `sinceEpoch`, and the epoch version they
   * reflect (live epochs batches with a higher version are what the replay lacks).
   */
  async readReplay(operationId: string, sinceEpoch = -1): Promise<Replay> {
    return this.sql.begin("isolation level repeatable read read only", async (tx) => {
      const op = await this.row(tx, operationId);
      const rows = await tx<EpochRow[]>`
        SELECT epoch, train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration, ts, custom
          FROM epochs WHERE op = ${op.id} AND epoch > ${sinceEpoch} ORDER BY epoch`;
      return { operation: this.toOperation(op), epochs: rows.map(toWire), version: Number(op.epoch_version) };
    });
  }

  /** Extends this replica's lease on the unfinished operations it owns; returns how many. */
  async renewLeases(): Promise<number> {
    const r = await this.sql`
      UPDATE operations SET lease_until = ${this.now() + this.replica.leaseMs}
        WHERE owner = ${this.replica.id} AND status IN ('pending', 'running')`;
    return r.count;
  }

  /** Unfinished operations whose owner let its lease run out (another replica, dead or cut off), oldest first. */
  async expiredLeases(): Promise<{ operation_id: string; owner: string }[]> {
    return this.sql<{ operation_id: string; owner: string }[]>`
      SELECT operation_id, owner FROM operations
        WHERE owner IS NOT NULL AND status IN ('pending', 'running') AND lease_until < ${this.now()}
        ORDER BY id`;
  }

  /** Unfinished operations this replica id owns: after a restart under the same id, what its previous life left running. */
  async ownedUnfinished(): Promise<string[]> {
    const rows = await this.sql<{ operation_id: string }[]>`
      SELECT operation_id FROM operations WHERE owner = ${this.replica.id} AND status IN ('pending', 'running') ORDER BY id`;
    return rows.map((r) => r.operation_id);
  }

  async close(): Promise<void> {
    await this.sql.close();
  }
}

/** Applies the migrations a database lacks, in one transaction under an advisory lock (replicas may start together). */
async function migrate(sql: SQL, schema: string): Promise<void> {
  await sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext(${`trainwatch.migrate.${schema}`}))`;
    await tx`CREATE TABLE IF NOT EXISTS trainwatch_schema_version (version integer NOT NULL)`;
    const rows: { version: number }[] = await tx`SELECT version FROM trainwatch_schema_version`;
    const from = rows[0]?.version ?? 0;
    if (from > PG_MIGRATIONS.length) throw new SchemaTooNewError(from, PG_MIGRATIONS.length);
    for (let v = from; v < PG_MIGRATIONS.length; v++) await tx.unsafe(PG_MIGRATIONS[v]!);
    if (rows.length === 0) await tx`INSERT INTO trainwatch_schema_version (version) VALUES (${PG_MIGRATIONS.length})`;
    else if (from < PG_MIGRATIONS.length)
      await tx`UPDATE trainwatch_schema_version SET version = ${PG_MIGRATIONS.length}`;
  });
}

/** An epochs notification: the epochs themselves when the payload stays small, else the range to read. */
function epochsPayload(
  operationId: string,
  version: number,
  trends: TrendSummary,
  epochs: readonly EpochRecord[],
  minEpoch: number,
): string {
  let max = -1;
  for (const e of epochs) if (e.epoch > max) max = e.epoch;
  const head = { k: "e", o: operationId, v: version, t: trends, r: [minEpoch, max] };
  // ~150 bytes an epoch of the standard fields: only a batch of a few dozen can go whole.
  if (epochs.length <= 40) {
    const inline = JSON.stringify({ ...head, w: epochs.map(encodeEpoch) });
    if (inline.length <= INLINE_BYTES) return inline;
  }
  return JSON.stringify(head);
}

function decodeChange(payload: string): StoreChange {
  const m = JSON.parse(payload) as {
    k: string;
    o: string;
    v: number;
    t: TrendSummary;
    r: [number, number];
    w?: WireEpoch[];
    f: number;
    p: BatchProgress | null;
  };
  if (m.k === "e")
    return { kind: "epochs", operation_id: m.o, version: m.v, trends: m.t, epochs: m.w ?? null, range: m.r };
  if (m.k === "p") return { kind: "progress", operation_id: m.o, progress: m.p };
  if (m.k === "c") return { kind: "changed", operation_id: m.o };
  if (m.k === "r") return { kind: "removed", operation_id: m.o };
  return { kind: "status", operation_id: m.o, finished: m.f === 1 };
}

/** The stored summary's latest epoch: every stored epoch is at most this. */
const latestEpoch = (op: { summary: string }): number | null => (JSON.parse(op.summary) as TrendSummary).latest_epoch;

const encoder = new TextEncoder();
/** COPY's binary format starts with this signature, then a 32-bit flags field and a 32-bit header extension length. */
const COPY_SIGNATURE = new Uint8Array([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]);

/**
 * A batch's rows, one epoch named twice keeping its last copy (an upsert may touch a row once per statement; SQLite's
 * INSERT OR REPLACE keeps the last), in either form the write sends:
 * - copyBinary: COPY's binary format, for appends: int8, float8 (NaN and ±Infinity included) and int4 as the server
 *   keeps them, big-endian, and the custom column's JSON as UTF-8;
 * - json: one parameter for json_to_recordset, for upserts: ten columns of a thousand rows in one value, which
 *   PostgreSQL parses in one pass (a multi-row VALUES would need 10,000 parameters, and 10,000 epochs overflow the
 *   65,535 limit). Non-finite values travel as "NaN"/"Infinity"/"-Infinity", which float8 reads back as the same numbers.
 * An unusable timestamp (NaN ms) goes as NULL either way, and the NOT NULL column refuses the whole batch.
 */
function epochRows(epochs: readonly EpochRecord[]) {
  const last = new Map<number, number>();
  for (let i = 0; i < epochs.length; i++) last.set(epochs[i]!.epoch, i);
  const rows: { e: EpochRecord; ts: number }[] = [];
  let minEpoch = Infinity;
  let lastIso = "";
  let lastMs = 0;
  for (let i = 0; i < epochs.length; i++) {
    const e = epochs[i]!;
    // Batches usually share one server timestamp: parse it once.
    if (e.timestamp_ms !== undefined) lastMs = e.timestamp_ms;
    else if (e.timestamp !== lastIso) (lastIso = e.timestamp), (lastMs = Date.parse(e.timestamp));
    if (last.get(e.epoch) !== i) continue;
    if (e.epoch < minEpoch) minEpoch = e.epoch;
    rows.push({ e, ts: lastMs });
  }
  return {
    count: rows.length,
    minEpoch,
    copyBinary(op: string): Uint8Array {
      const customs = rows.map(({ e }) => {
        const c = customColumn(e.custom);
        return c === null ? null : encoder.encode(c);
      });
      let size = 11 + 4 + 4 + 2;
      for (const c of customs) size += 110 + (c?.length ?? 0);
      const buf = new Uint8Array(size);
      const v = new DataView(buf.buffer);
      buf.set(COPY_SIGNATURE, 0);
      let at = 19; // signature, flags, header extension: zeros
      const opId = BigInt(op);
      const f8 = (x: number | null | undefined) => {
        if (x === null || x === undefined) v.setInt32(at, -1), (at += 4);
        else v.setInt32(at, 8), v.setFloat64(at + 4, x), (at += 12);
      };
      for (let i = 0; i < rows.length; i++) {
        const { e, ts } = rows[i]!;
        v.setInt16(at, 10);
        v.setInt32(at + 2, 8);
        v.setBigInt64(at + 6, opId);
        at += 14;
        // An int8 from a number without a BigInt per row: ms timestamps are integers far below 2^53.
        if (Number.isFinite(ts)) {
          const hi = Math.floor(ts / 2 ** 32);
          v.setInt32(at, 8), v.setInt32(at + 4, hi), v.setUint32(at + 8, ts - hi * 2 ** 32), (at += 12);
        } else v.setInt32(at, -1), (at += 4);
        f8(e.train_loss);
        f8(e.val_loss);
        f8(e.train_accuracy);
        f8(e.val_accuracy);
        f8(e.learning_rate);
        f8(e.duration);
        v.setInt32(at, 4);
        v.setInt32(at + 4, e.epoch);
        at += 8;
        const c = customs[i];
        if (c === null || c === undefined) v.setInt32(at, -1), (at += 4);
        else v.setInt32(at, c.length), buf.set(c, at + 4), (at += 4 + c.length);
      }
      v.setInt16(at, -1);
      return buf.subarray(0, at + 2);
    },
    json(): string {
      return JSON.stringify(
        rows.map(({ e, ts }) => ({
          e: e.epoch,
          tl: encodeMetric(e.train_loss) ?? null,
          vl: encodeMetric(e.val_loss) ?? null,
          ta: encodeMetric(e.train_accuracy) ?? null,
          va: encodeMetric(e.val_accuracy) ?? null,
          lr: encodeMetric(e.learning_rate) ?? null,
          du: encodeMetric(e.duration) ?? null,
          ts,
          c: customColumn(e.custom),
        })),
      );
    },
  };
}

/** float8 holds NaN and ±Infinity as numbers: encodeMetric spells them out. */
const toWire = rowToWire(encodeMetric);

const ALL_COLUMNS =
  "e.epoch, e.train_loss, e.val_loss, e.train_accuracy, e.val_accuracy, e.learning_rate, e.duration, e.ts, e.custom";
const projectedOn = byFieldList((fields) => {
  const { columns, toWire } = projection(fields, encodeMetric);
  return { columns: columns.map((c) => `e.${c}`).join(", "), toWire };
});

/** The select list and row conversion of a read of `fields` (every column without); the names come from STANDARD_FIELDS, never from the request. */
function projected(fields: Fields | undefined): { columns: string; toWire: (r: EpochRow) => WireEpoch } {
  return fields ? projectedOn(fields) : { columns: ALL_COLUMNS, toWire };
}
