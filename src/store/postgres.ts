/**
 * PostgreSQL implementation of the Store, on Bun's built-in client (`SQL` from "bun": a pool, named prepared
 * statements, transactions, LISTEN/NOTIFY; no extra dependency). Same semantics as the SQLite store: every write is
 * one transaction that locks the operation's row (`FOR UPDATE`), so writers on several replicas serialise per
 * operation and "a refused request stores nothing" holds; NaN and ±Infinity are float8 values, never NULL. This file
 * is the store's SQL; how epochs are written is src/store/write_epochs.ts, and its PostgreSQL parts have files of their
 * own: the change codec (pg_notify.ts), the COPY encoder (pg_copy.ts), migrations (pg_migrate.ts), leases
 * (pg_leases.ts) and the leadership lock (pg_leader.ts).
 */
import { PgAlerts } from "./pg_alerts.ts";
import { SQL, type TransactionSQL } from "bun";
import { notFound } from "../errors.ts";
import { encodeMetric, MAX_EPOCH, type EpochRecord, type WireEpoch } from "../schemas/epoch.ts";
import {
  FINISHED,
  type Operation,
  type OperationStatus,
  type StopControl,
  type StopPolicy,
} from "../schemas/operation.ts";
import { DEFAULT_TREND_CONFIG, type EpochPoint, type TrendConfig, type TrendState } from "../trends/types.ts";
import { encodeJudge, type JudgeState } from "../trends/judgement_state.ts";
import { tailSize } from "../trends/summary.ts";
import { summarizeRows, type SpanSummary } from "../trends/downsample.ts";
import type { StepJudgementState } from "../trends/step_judgement.ts";
import { BLOCK, blockCover, coverSpans } from "./blocks.ts";
import {
  type EpochColumns,
  type OperationColumns,
  projection,
  byFieldList,
  rowToWire,
  toOperation,
  type Liveness,
} from "./rows.ts";
import {
  executionRow,
  finishRow,
  labelsRow,
  metadataRow,
  newOperationRow,
  stopPolicyColumn,
} from "./operation_changes.ts";
import { configLeaves } from "./search_columns.ts";
import { compileSearch, pageSql } from "./search_sql.ts";
import type { LabelsInput } from "../schemas/labels.ts";
import { owesCancel } from "../operations/ownership.ts";
import { copyBinary, recordsetJson } from "./pg_copy.ts";
import { lockWithBlocks } from "./pg_lock.ts";
import { migrate } from "./pg_migrate.ts";
import { Leadership } from "./pg_leader.ts";
import {
  expiredLeases,
  leaseUntil,
  ownedUnfinished,
  randomReplicaId,
  renewLeases,
  type ReplicaLease,
} from "./pg_leases.ts";
import { changedNotice, decodeChange, epochsNotice, progressNotice, removedNotice, statusNotice } from "./pg_notify.ts";
import { Announcer, type AnnounceHook, type Notices } from "./pg_announce.ts";
import { DEFAULT_GROUP_COMMIT_MS, GroupCommit } from "./pg_group.ts";
import { runAsync, writeEpochs, type EpochWriter } from "./write_epochs.ts";
import { closeSteps, writeSteps } from "./write_steps.ts";
import { PgSteps } from "./pg_steps.ts";
import { PgSystem } from "./pg_system.ts";
import { StepPartitions } from "./pg_step_partitions.ts";
import type { SystemRecord, SystemSample } from "../schemas/system.ts";
import type { StepRecord, WireStep } from "../schemas/step.ts";
import type {
  BatchProgress,
  EpochEnd,
  StepWriteResult,
  StepsPruned,
  Fields,
  ExecutionPatch,
  FinishOptions,
  Leader,
  JudgementRow,
  ListFilter,
  NewOperation,
  Replay,
  SharedStore,
  Store,
  StoreChange,
  SystemRange,
  Versions,
  WatchedRow,
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
  replica?: ReplicaLease;
  /**
   * A direct connection's URL (no pooler), when `url` goes through a transaction-mode pooler (pgbouncer): the
   * listening connection and the leadership lock need a session of their own, so they take this one, and the pool's
   * queries run unprepared (a pooler before pgbouncer 1.21 cannot keep a named prepared statement on one server
   * connection). Default: `url` itself, prepared.
   */
  directUrl?: string;
  /**
   * Group commit (src/store/pg_group.ts): how long a write that found every write slot busy waits at most for one, in
   * ms (TRAINWATCH_PG_GROUP_COMMIT_MS, default 0: off, every write is a transaction of its own).
   */
  groupCommitMs?: number;
  /** Tests only: sees (and may hold or drop) each announcement before it is sent (src/store/pg_announce.ts). */
  announceHook?: AnnounceHook;
}

/** A schema name we can interpolate: lower-case letters, digits and underscores. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,51}$/;

/** timestamptz arrives as a Date and int8 as a string; the rest as both stores keep it. */
interface OpRow
  extends Omit<OperationColumns, "created_at" | "started_at" | "completed_at" | "last_seen_at" | "watched_at"> {
  /** int8 arrives as a string; it only ever goes back as a parameter. */
  id: string;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  last_seen_at: string | null;
  watched_at: string | null;
  best_json: string | null;
  /** The judgement kept on write (JSON); null before migration 8 (PostgreSQL 6) kept one. */
  judgement: Uint8Array | null;
  epoch_version: string;
  step_version: string;
  owner: string | null;
  lease_until: string | null;
  /** The custom metric names, a sorted JSON array (Store.metricNames). */
  metric_names: string;
  step_state: string | null;
  /** src/trends/step_judgement.ts StepJudgementState as JSON; null before any step (migration 7). */
  step_judgement: string | null;
  /** The run's alert rules as JSON (migration 11); null: the server's defaults. */
  alert_rules: string | null;
}

type EpochRow = EpochColumns<number>;

type Tx = TransactionSQL;
const iso = (d: Date | null) => (d === null ? null : d.toISOString());
const ms = (v: string | null) => (v === null ? null : Number(v));
/** The write versions a row holds (int8 as strings). */
const versionsOf = (r: { epoch_version: string; step_version: string }): Versions => ({
  epochs: Number(r.epoch_version),
  steps: Number(r.step_version),
});

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
    /** The direct URL (no pooler): a leadership lock takes a connection of its own (src/store/pg_leader.ts). */
    private readonly url: string,
    /** Where the listening connection comes from: the pool's own SQL, or one on the direct URL behind a pooler. */
    private readonly listener: SQL,
    /** The step table's partitions (src/store/pg_step_partitions.ts). */
    private readonly partitions: StepPartitions,
    opts: PostgresOptions,
  ) {
    this.trendCfg = opts.trends ?? DEFAULT_TREND_CONFIG;
    this.tail = tailSize(this.trendCfg);
    this.liveness = opts.liveness ?? { lateAfterMs: 15_000 };
    this.now = this.liveness.now ?? Date.now;
    this.replica = opts.replica ?? { id: randomReplicaId(), leaseMs: 15_000 };
    this.channel = `trainwatch_${schema}`;
    // A connection of its own: an announcement never waits behind the writes queued for the pool.
    const announcing = new SQL(url, { max: 1, connection: { application_name: "trainwatch announce" } });
    this.announcer = new Announcer(announcing, this.channel, opts.announceHook ?? null);
    // Two of the pool's connections stay for reads while every other one writes.
    const slots = Math.max(1, (opts.max ?? 10) - 2);
    this.group = new GroupCommit(sql, { windowMs: opts.groupCommitMs ?? DEFAULT_GROUP_COMMIT_MS, slots });
    this.steps = new PgSteps(sql, (notices, id) => this.notifyStatus(notices, id, false));
    this.system = new PgSystem(sql, (p) => this.announcer.announce(p));
    this.alerts = new PgAlerts(sql, (p) => this.announcer.announce(p));
  }

  /** Sends each committed write's notifications, after its commit (src/store/pg_announce.ts). */
  private readonly announcer: Announcer;
  /** Groups the epoch and step writes of different operations into shared transactions (src/store/pg_group.ts). */
  readonly group: GroupCommit;

  /** `fn` in a transaction of its own; what it announces goes out once it committed. */
  private async begin<T>(fn: (tx: Tx, notices: Notices) => Promise<T>): Promise<T> {
    const notices: Notices = [];
    const value = await this.sql.begin((tx) => fn(tx, notices));
    await this.announcer.announce(notices);
    return value;
  }

  /** `fn` in a transaction it may share with other operations' writes (GroupCommit); announced once committed. */
  private async grouped<T>(operationId: string, fn: (tx: Tx, notices: Notices) => Promise<T>): Promise<T> {
    const { value, notices } = await this.group.run(operationId, fn);
    await this.announcer.announce(notices);
    return value;
  }

  /** The system series' SQL (src/store/pg_system.ts). */
  private readonly system: PgSystem;

  writeSystemSamples(operationId: string, rows: readonly SystemRecord[]): Promise<number> {
    return this.system.write(operationId, rows);
  }

  readSystemSamples(operationId: string, range: SystemRange): Promise<SystemSample[]> {
    return this.system.read(operationId, range);
  }

  systemChart(operationId: string, range: Omit<SystemRange, "limit">, maxPoints: number): Promise<SystemSample[]> {
    return this.system.chart(operationId, range, maxPoints);
  }

  latestSystemSample(operationId: string): Promise<SystemSample | null> {
    return this.system.latest(operationId);
  }

  /** The alert outbox (src/store/alerts.ts AlertStore), in its own file. */
  readonly alerts: PgAlerts;

  /** The step tables' SQL (src/store/pg_steps.ts). */
  private readonly steps: PgSteps;

  readonly replica: ReplicaLease;
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
    const direct = opts.directUrl ?? url;
    const pooled = direct !== url;
    const connection = { search_path: schema, application_name: "trainwatch" };
    const sql = new SQL(url, { max: opts.max ?? 10, prepare: !pooled, connection });
    const listener = pooled ? new SQL(direct, { max: 1, connection }) : sql;
    try {
      await checkSearchPath(sql, schema);
      await migrate(sql, schema);
      const partitions = await StepPartitions.open(sql, schema);
      return new PostgresStore(sql, schema, direct, listener, partitions, opts);
    } catch (err) {
      await sql.close();
      if (pooled) await listener.close();
      throw err;
    }
  }

  private toOperation(r: OpRow): Operation {
    const cols = {
      ...r,
      created_at: r.created_at.toISOString(),
      started_at: iso(r.started_at),
      completed_at: iso(r.completed_at),
      last_seen_at: ms(r.last_seen_at),
      watched_at: ms(r.watched_at),
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
    const r = newOperationRow(input, new Date());
    // An owned operation is leased from its first moment: a replica that dies right after creating it still loses it.
    const owner = input.owned ? this.replica : null;
    const rows = await this.begin(async (tx, notices) => {
      this.notifyStatus(notices, r.operation_id, false);
      const [inserted] = await Promise.all([
        tx<OpRow[]>`
        INSERT INTO operations (operation_id, operation_type, name, status, created_at, started_at, total_epochs_planned,
                                total_steps_planned, metadata, summary, config, stop_policy, owner, lease_until, location, host,
                                alert_rules, executor, tags, group_name)
        VALUES (${r.operation_id}, ${r.operation_type}, ${r.name}, ${r.status}, ${r.created_at}, ${r.started_at},
                ${r.total_epochs_planned}, ${r.total_steps_planned}, ${r.metadata}, ${r.summary}, ${r.config}, ${r.stop_policy},
                ${owner?.id ?? null}, ${owner ? leaseUntil(owner, this.now()) : null}, ${r.location}, ${r.host},
                ${r.alert_rules}, ${r.executor}, ${r.tags}, ${r.group_name})
        RETURNING *`,
      ]);
      const id = (inserted as OpRow[])[0]!.id;
      const leaves = configLeaves(input.config);
      await Promise.all([
        this.saveTags(tx, id, JSON.parse(r.tags) as string[], false),
        leaves.length > 0
          ? tx`INSERT INTO operation_config (op, path, kind, num, str)
               SELECT ${id}, c.path, c.kind, c.num, c.str
               FROM json_to_recordset(${JSON.stringify(leaves)}::text::json) AS c(path text, kind text, num float8, str text)`
          : null,
      ]);
      return inserted;
    });
    // Before the first step can arrive: the partition of its id, and the next one ahead (DDL once per partition).
    await this.partitions.ensure(rows[0]!.id);
    return this.toOperation(rows[0]!);
  }

  /** Replaces the operation's rows in operation_tags (the search's index of tags); `stored`: it may have some. */
  private saveTags(tx: SQL, opId: string, tags: readonly string[], stored: boolean) {
    return Promise.all([
      stored ? tx`DELETE FROM operation_tags WHERE op = ${opId}` : null,
      tags.length > 0
        ? tx`INSERT INTO operation_tags (tag, op) SELECT t, ${opId} FROM unnest(${tx.array([...tags], "TEXT")}::text[]) AS t`
        : null,
    ]);
  }

  async setLabels(operationId: string, patch: LabelsInput): Promise<Operation> {
    const rows = await this.begin(async (tx, notices) => {
      const op = await this.row(tx, operationId, true);
      const next = labelsRow(op, patch);
      await this.saveTags(tx, op.id, next.tags, true);
      this.notifyStatus(notices, operationId, false);
      return tx<OpRow[]>`UPDATE operations SET tags = ${JSON.stringify(next.tags)}, group_name = ${next.group}
                         WHERE id = ${op.id} RETURNING *`;
    });
    return this.toOperation(rows[0]!);
  }

  /**
   * The status change of `operationId`, told to every replica once committed; a finish carries the versions it
   * follows, so no replica ends a stream before the writes it has not relayed yet.
   */
  private notifyStatus(notices: Notices, operationId: string, finished: boolean, after?: OpRow) {
    notices.push(statusNotice(operationId, finished, after && versionsOf(after)));
  }

  /**
   * Tells every replica's streams that `operationId` changed without a write: a host training that turned stale, say.
   * Writes tell them by themselves, once committed.
   */
  async publishStatus(operationId: string): Promise<void> {
    await this.announcer.announce([statusNotice(operationId, false)]);
  }

  async discardOperation(operationId: string): Promise<boolean> {
    const r = await this.sql`
      DELETE FROM operations WHERE operation_id = ${operationId} AND status = 'pending'
        AND NOT EXISTS (SELECT 1 FROM epochs WHERE epochs.op = operations.id)`;
    if (r.count === 0) return false;
    this.batchProgress.delete(operationId);
    await this.announcer.announce([removedNotice(operationId)]);
    return true;
  }

  async getOperation(operationId: string): Promise<Operation | null> {
    const rows: OpRow[] = await this.sql`SELECT * FROM operations WHERE operation_id = ${operationId}`;
    return rows.length ? this.toOperation(rows[0]!) : null;
  }

  async listOperations(f: ListFilter): Promise<{ items: Operation[]; total: number }> {
    const c = compileSearch("postgres", f);
    const n = c.params.length;
    // The text is src/store/search_sql.ts's fixed fragments; every value travels as a parameter. The count and the
    // page read one snapshot, so `total_count` is the count of the runs the pages come from.
    const [count, rows] = await this.sql.begin("isolation level repeatable read read only", (tx) =>
      Promise.all([
        tx.unsafe(`SELECT count(*)::int AS n FROM ${c.countFrom}`, c.params.slice(0, c.whereParams)),
        tx.unsafe(pageSql(c, `$${n + 1}::bigint`, `$${n + 2}::bigint`), [...c.params, f.limit, f.offset]),
      ]),
    );
    return { items: (rows as OpRow[]).map((r) => this.toOperation(r)), total: (count as { n: number }[])[0]!.n };
  }

  async writeEpochs(operationId: string, epochs: EpochRecord[]): Promise<WriteResult> {
    const ctx = { trends: this.trendCfg, tail: this.tail, now: () => new Date() };
    return this.grouped(operationId, (tx, notices) =>
      runAsync(writeEpochs(this.epochWriter(tx, notices), operationId, epochs, ctx)),
    );
  }

  async writeSteps(operationId: string, steps: StepRecord[]): Promise<StepWriteResult> {
    const ctx = { trends: this.trendCfg, tail: this.tail, now: () => new Date() };
    return this.grouped(operationId, (tx, notices) =>
      runAsync(writeSteps(this.steps.writer(tx, notices), this.epochWriter(tx, notices), operationId, steps, ctx)),
    );
  }

  async closeSteps(operationId: string): Promise<StepWriteResult["epochs"]> {
    const ctx = { trends: this.trendCfg, tail: this.tail, now: () => new Date() };
    return this.grouped(operationId, (tx, notices) =>
      runAsync(closeSteps(this.steps.writer(tx, notices), this.epochWriter(tx, notices), operationId, ctx)),
    );
  }

  pruneSteps(cutoffMs: number, nowMs: number): Promise<StepsPruned> {
    return this.partitions.prune(cutoffMs, nowMs);
  }

  readSteps(operationId: string, sinceStep?: number, untilStep?: number, fields?: Fields): Promise<WireStep[]> {
    return this.steps.read(operationId, sinceStep, untilStep, fields);
  }

  readStepPage(operationId: string, afterStep: number, limit: number): Promise<WireStep[]> {
    return this.steps.page(operationId, afterStep, limit);
  }

  readStepsBefore(operationId: string, step: number, limit: number, fields?: Fields): Promise<WireStep[]> {
    return this.steps.before(operationId, step, limit, fields);
  }

  readStepsAt(operationId: string, steps: readonly number[], fields?: Fields): Promise<WireStep[]> {
    return this.steps.at(operationId, steps, fields);
  }

  stepSpans(operationId: string, fromStep: number, toStep: number): Promise<SpanSummary[]> {
    return this.steps.spans(operationId, fromStep, toStep);
  }

  epochEnds(operationId: string): Promise<EpochEnd[]> {
    return this.steps.ends(operationId);
  }

  readStepJudgement(operationId: string): Promise<StepJudgementState | null> {
    return this.steps.judgement(operationId);
  }

  /** This store's part of a write (src/store/write_epochs.ts), in transaction `tx`: its SQL alone. */
  private epochWriter(tx: Tx, notices: Notices): EpochWriter<OpRow> {
    return {
      lock: (operationId, touched) => lockWithBlocks<OpRow>(tx, operationId, touched, "epoch_blocks"),
      insert: async (op, batch, plan) => {
        const count = batch.rows.length;
        // Epochs past every stored one cannot conflict (the row lock keeps others out): they are COPYed, PostgreSQL's
        // fast path, ~3× cheaper on the server than the upsert a re-post needs (16.6 ms → 5.8 ms for 1,000 rows on the
        // VM), in the binary format: no float printed here and parsed there (text COPY 1.3 ms + 3.1 ms → binary 0.4 ms
        // + 2.6 ms).
        if (count > 0 && plan.fresh) {
          const copy =
            tx`COPY epochs (op, ts, train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration, epoch, custom) FROM STDIN (FORMAT binary)`
              .writable()
              .getWriter();
          await copy.write(copyBinary(batch.rows, op.id));
          await copy.close();
        }
        // Pipelined after the insert: the reads see the batch's rows.
        const [, tail, history, blockRows] = await Promise.all([
          count > 0 && !plan.fresh
            ? tx`
            INSERT INTO epochs (op, ts, train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration, epoch, custom)
            SELECT ${op.id}, r.ts, r.tl, r.vl, r.ta, r.va, r.lr, r.du, r.e, r.c
            FROM json_to_recordset(${recordsetJson(batch.rows)}::text::json)
              AS r(e integer, tl float8, vl float8, ta float8, va float8, lr float8, du float8, ts bigint, c text)
            ON CONFLICT (op, epoch) DO UPDATE SET
              ts = excluded.ts, train_loss = excluded.train_loss, val_loss = excluded.val_loss,
              train_accuracy = excluded.train_accuracy, val_accuracy = excluded.val_accuracy,
              learning_rate = excluded.learning_rate, duration = excluded.duration, custom = excluded.custom`
            : null,
          plan.tail > 0
            ? tx<
                EpochPoint[]
              >`SELECT epoch, train_loss, val_loss FROM epochs WHERE op = ${op.id} ORDER BY epoch DESC LIMIT ${plan.tail}`
            : null,
          plan.history
            ? tx<EpochPoint[]>`SELECT epoch, train_loss, val_loss FROM epochs WHERE op = ${op.id} ORDER BY epoch`
            : null,
          plan.blocks.length > 0
            ? tx<
                EpochRow[]
              >`SELECT e.epoch, e.train_loss, e.val_loss, e.train_accuracy, e.val_accuracy, e.learning_rate, e.duration, e.ts, e.custom
                FROM unnest(${tx.array(plan.blocks, "INT4")}) AS b(block)
                JOIN epochs e ON e.op = ${op.id} AND e.epoch BETWEEN b.block * ${BLOCK}::integer AND b.block * ${BLOCK}::integer + ${BLOCK - 1}::integer
                ORDER BY e.epoch`
            : null,
        ]);
        return { tail: tail ? tail.reverse() : null, history, blockRows: blockRows ? blockRows.map(toWire) : [] };
      },
      save: async (op, w) => {
        const version = Number(op.epoch_version) + 1;
        const blockJson = JSON.stringify([...w.blocks].map(([b, summary]) => ({ b, s: JSON.stringify(summary) })));
        notices.push(epochsNotice(op.operation_id, version, w.trends, w.batch.epochs, w.batch.minEpoch));
        if (w.revived || w.started || w.control) this.notifyStatus(notices, op.operation_id, false);
        await Promise.all([
          // One statement for the summary, the revive, the start, the liveness stamp and the epoch version.
          tx`
            UPDATE operations SET summary = ${JSON.stringify(w.trends)}, best_json = ${JSON.stringify(w.state)}, last_seen_at = ${w.at.getTime()},
              cadence = coalesce(${w.cadence}, cadence),
              judgement = ${encodeJudge(w.kept)}, control = coalesce(${w.control && JSON.stringify(w.control)}::text, control),
              epoch_version = ${version}, metric_names = coalesce(${w.names && JSON.stringify(w.names)}, metric_names),
              status = CASE WHEN ${w.revived || w.started} THEN 'running' ELSE status END,
              error_message = CASE WHEN ${w.revived} THEN NULL ELSE error_message END,
              failure_code = CASE WHEN ${w.revived} THEN NULL ELSE failure_code END,
              completed_at = CASE WHEN ${w.revived} THEN NULL ELSE completed_at END,
              started_at = CASE WHEN ${w.started} THEN ${w.at.toISOString()}::timestamptz ELSE started_at END,
              best_val_loss = ${w.columns.best_val_loss}::float8, best_epoch = ${w.columns.best_epoch}::integer,
              epochs_completed = ${w.columns.epochs_completed}, final_loss = ${w.columns.final_loss}::float8,
              final_val_loss = ${w.columns.final_val_loss}::float8, flags = ${w.columns.flags}
            WHERE id = ${op.id}`,
          w.blocks.size > 0
            ? tx`
            INSERT INTO epoch_blocks (op, block, summary)
            SELECT ${op.id}, r.b, r.s FROM json_to_recordset(${blockJson}::text::json) AS r(b integer, s text)
            ON CONFLICT (op, block) DO UPDATE SET summary = excluded.summary`
            : null,
        ]);
        return version;
      },
    };
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
    return coverSpans(
      blocks,
      edges,
      whole.map((b) => b.summary),
      edgeSpans,
    );
  }

  async markStarted(operationId: string): Promise<Operation> {
    return this.begin(async (tx, notices) => {
      const rows = await tx<OpRow[]>`
        UPDATE operations SET status = 'running', started_at = ${new Date().toISOString()}
          WHERE operation_id = ${operationId} AND status = 'pending' RETURNING *`;
      if (rows.length === 0) return this.toOperation(await this.row(tx, operationId));
      this.notifyStatus(notices, operationId, false);
      return this.toOperation(rows[0]!);
    });
  }

  async finish(
    operationId: string,
    status: "completed" | "failed" | "cancelled",
    opts: FinishOptions = {},
  ): Promise<Operation> {
    return this.begin(async (tx, notices) => this.finishIn(tx, notices, operationId, status, opts));
  }

  private async finishIn(
    tx: Tx,
    notices: Notices,
    operationId: string,
    status: "completed" | "failed" | "cancelled",
    opts: FinishOptions,
  ): Promise<Operation> {
    const op = await this.row(tx, operationId, true);
    this.batchProgress.delete(operationId);
    const f = finishRow(op, operationId, status, opts, new Date());
    const rows: OpRow[] = await tx`
      UPDATE operations SET status = ${f.status}, completed_at = ${f.completed_at}, error_message = ${f.error_message},
        failure_code = ${f.failure_code}, result = coalesce(${f.result}::text, result),
        started_at = coalesce(started_at, ${f.started_at}::timestamptz), control = coalesce(${f.control}::text, control)
      WHERE id = ${op.id} RETURNING *`;
    this.notifyStatus(notices, operationId, true, op);
    return this.toOperation(rows[0]!);
  }

  async mergeMetadata(operationId: string, patch: Record<string, unknown>): Promise<Operation> {
    return this.begin(async (tx, notices) => {
      const op = await this.row(tx, operationId, true);
      const m = metadataRow(op, patch);
      const [rows] = await Promise.all([
        tx<OpRow[]>`UPDATE operations SET metadata = ${m.metadata}, location = ${m.location}, host = ${m.host}
                    WHERE id = ${op.id} RETURNING *`,
      ]);
      this.notifyStatus(notices, operationId, false);
      return this.toOperation(rows[0]!);
    });
  }

  async setExecution(operationId: string, patch: ExecutionPatch): Promise<Operation> {
    return this.begin(async (tx, notices) => {
      const op = await this.row(tx, operationId, true);
      const e = executionRow(op, patch);
      const [rows] = await Promise.all([
        tx<OpRow[]>`UPDATE operations SET external_id = ${e.external_id}, pending_reason = ${e.pending_reason},
                    queue_position = ${e.queue_position} WHERE id = ${op.id} RETURNING *`,
      ]);
      this.notifyStatus(notices, operationId, false);
      return this.toOperation(rows[0]!);
    });
  }

  async setStopPolicy(operationId: string, policy: StopPolicy | null): Promise<Operation> {
    return this.begin(async (tx, notices) => {
      const op = await this.row(tx, operationId, true);
      const [rows] = await Promise.all([
        tx<
          OpRow[]
        >`UPDATE operations SET stop_policy = ${stopPolicyColumn(op, operationId, policy)} WHERE id = ${op.id} RETURNING *`,
      ]);
      this.notifyStatus(notices, operationId, false);
      return this.toOperation(rows[0]!);
    });
  }

  async setControl(operationId: string, control: StopControl): Promise<void> {
    const r = await this
      .sql`UPDATE operations SET control = ${JSON.stringify(control)} WHERE operation_id = ${operationId}`;
    if (r.count === 0) throw notFound(operationId);
    await this.announcer.announce([statusNotice(operationId, false)]);
  }

  async setResult(operationId: string, result: Record<string, unknown>): Promise<void> {
    const r = await this
      .sql`UPDATE operations SET result = ${JSON.stringify(result)} WHERE operation_id = ${operationId}`;
    if (r.count === 0) throw notFound(operationId);
    await this.announcer.announce([changedNotice(operationId)]);
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
    await this.announcer.announce([progressNotice(operationId, progress)]);
  }

  /** Told to every replica (lists show `last_seen_at` and `stale`): one heartbeat per host training every 10 s. */
  async touch(operationId: string, atMs = Date.now(), watch = false): Promise<void> {
    const r = await this.sql`
      UPDATE operations SET last_seen_at = ${atMs},
        watched_at = CASE WHEN ${watch} THEN coalesce(watched_at, ${atMs}) ELSE watched_at END
      WHERE operation_id = ${operationId}`;
    if (r.count === 0) throw notFound(operationId);
    await this.announcer.announce([changedNotice(operationId)]);
  }

  async staleHostOperations(cutoffMs: number): Promise<string[]> {
    const rows: { operation_id: string }[] = await this.sql`
      SELECT operation_id FROM operations WHERE status = 'running'
        AND location = 'host' AND coalesce(last_seen_at, 0) < ${cutoffMs}
      ORDER BY id`;
    return rows.map((r) => r.operation_id);
  }

  async unfinishedOf(executor: string): Promise<Operation[]> {
    const rows: OpRow[] = await this.sql`
      SELECT * FROM operations WHERE status IN ('pending', 'running') AND executor = ${executor} ORDER BY id`;
    return rows.map((r) => this.toOperation(r));
  }

  async cancelsOwed(executor: string): Promise<Operation[]> {
    // The text test narrows the rows to parse; the parsed metadata decides.
    const rows: OpRow[] = await this.sql`
      SELECT * FROM operations WHERE status = 'cancelled' AND executor = ${executor} AND metadata LIKE '%"owed"%'
      ORDER BY id`;
    return rows.map((r) => this.toOperation(r)).filter(owesCancel);
  }

  async watchedOperations(): Promise<WatchedRow[]> {
    const rows: (Omit<WatchedRow, "last_seen_at" | "watched_at"> & {
      last_seen_at: string | null;
      watched_at: string | null;
    })[] = await this.sql`
      SELECT operation_id, status, location, last_seen_at, watched_at, cadence FROM operations
      WHERE status = 'running' AND watched_at IS NOT NULL ORDER BY id`;
    return rows.map((r) => ({ ...r, last_seen_at: ms(r.last_seen_at), watched_at: ms(r.watched_at) }));
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
   * Hears every replica's changes (this one's included), announced after their commits: one replica's sequential
   * writes in order, concurrent writes of two replicas in either (each carries its version). `onResync` runs after the listening connection
   * was lost and is back: notifications sent meanwhile are gone, so whoever relays them must catch up from the tables.
   * Resolves once the server listens; call the result to stop.
   */
  async listen(onChange: (c: StoreChange) => void, onResync: () => void): Promise<() => Promise<void>> {
    let first = true;
    const sub = await this.listener.listen(
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

  async readJudgement(operationId: string): Promise<JudgementRow | null> {
    const rows: JudgementRow[] = await this.sql`
      SELECT summary, best_json, judgement FROM operations WHERE operation_id = ${operationId}`;
    return rows[0] ?? null;
  }

  async keepJudgement(operationId: string, seen: JudgementRow, state: TrendState, kept: JudgeState): Promise<boolean> {
    const r = await this.sql`
      UPDATE operations SET best_json = ${JSON.stringify(state)}, judgement = ${encodeJudge(kept)}
      WHERE operation_id = ${operationId} AND summary = ${seen.summary} AND judgement IS NOT DISTINCT FROM ${seen.judgement}`;
    return r.count > 0;
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
      const v = versionsOf(op);
      return { operation: this.toOperation(op), epochs: rows.map(toWire), version: v.epochs, stepVersion: v.steps };
    });
  }

  /** The write versions of `operationIds` (those that exist), in one query: the relay's check for lost notifications. */
  async versions(operationIds: readonly string[]): Promise<Map<string, Versions>> {
    if (operationIds.length === 0) return new Map();
    const rows = await this.sql<{ operation_id: string; epoch_version: string; step_version: string }[]>`
      SELECT operation_id, epoch_version, step_version FROM operations
      WHERE operation_id = ANY(${this.sql.array([...operationIds], "TEXT")})`;
    return new Map(rows.map((r) => [r.operation_id, versionsOf(r)]));
  }

  /** Extends this replica's lease on the unfinished operations it owns; returns how many. */
  renewLeases(): Promise<number> {
    return renewLeases(this.sql, this.replica, this.now());
  }

  /** Unfinished operations whose owner let its lease run out (another replica, dead or cut off), oldest first. */
  expiredLeases(): Promise<{ operation_id: string; owner: string }[]> {
    return expiredLeases(this.sql, this.now());
  }

  /** Unfinished operations this replica id owns: after a restart under the same id, what its previous life left running. */
  ownedUnfinished(): Promise<string[]> {
    return ownedUnfinished(this.sql, this.replica.id);
  }

  /** A candidate for `job` among the replicas on this schema: one at a time leads (a session advisory lock). */
  leadership(job: string): Leader {
    return Leadership.open(this.url, this.schema, job);
  }

  async close(): Promise<void> {
    await this.announcer.close();
    await this.sql.close();
    if (this.listener !== this.sql) await this.listener.close();
  }
}

/**
 * Refuses a pool whose sessions do not start in `schema`: a pooler that drops the search_path startup parameter
 * (pgbouncer before 1.20 accepts it only through ignore_startup_parameters) would otherwise migrate and write `public`.
 */
async function checkSearchPath(sql: SQL, schema: string): Promise<void> {
  const [row] = await sql<{ path: string; user: string; own: boolean }[]>`
    SELECT current_setting('search_path') AS path, current_user AS user,
      EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = current_user) AS own`;
  // "$user" names the user's own schema, and is skipped when there is none (the server's default: "$user", public).
  const first = row!.path
    .split(",")
    .map((p) => p.trim().replace(/^"(.*)"$/, "$1"))
    .flatMap((p) => (p !== "$user" ? [p] : row!.own ? [row!.user] : []))[0];
  if (first !== schema)
    throw new Error(
      `schema ${schema}: the connection's search_path is ${JSON.stringify(row!.path)}; a pooler that drops the search_path parameter serves only the schema the database or role sets (ALTER ROLE … SET search_path)`,
    );
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
