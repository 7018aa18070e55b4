/**
 * bun:sqlite implementation of the Store: WAL, synchronous=FULL (a batch is durable
 * before the reply), versioned migrations, and incremental trend summaries so a
 * write costs O(batch), not O(history).
 */
import type { Database, Statement } from "bun:sqlite";
import { notFound } from "../errors.ts";
import { STANDARD_FIELDS, encodeMetric, MAX_EPOCH, type EpochRecord, type WireEpoch } from "../schemas/epoch.ts";
import { FINISHED, type Operation, type StopControl, type StopPolicy } from "../schemas/operation.ts";
import { DEFAULT_TREND_CONFIG, type TrendConfig, type EpochPoint, type TrendState } from "../trends/types.ts";
import { encodeJudge, type JudgeState } from "../trends/judgement_state.ts";
import { tailSize } from "../trends/summary.ts";
import { summarizeRows, type SpanSummary } from "../trends/downsample.ts";
import type { WireMetric } from "../trends/wire.ts";
import type { StepJudgementState } from "../trends/step_judgement.ts";
import { BLOCK, blockCover, blockOf, coverSpans } from "./blocks.ts";
import { closeDatabase, migrate, openDatabase } from "./database.ts";
import { MIGRATIONS } from "./migrations.ts";
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
import {
  type EpochColumns,
  type OperationColumns,
  projection,
  byFieldList,
  rowToWire,
  toOperation,
  type Liveness,
} from "./rows.ts";
import { runSync, writeEpochs, type EpochWriter } from "./write_epochs.ts";
import { closeSteps, writeSteps } from "./write_steps.ts";
import { SqliteSteps } from "./sqlite_steps.ts";
import { SqliteSystem } from "./sqlite_system.ts";
import { canAcceptMetrics, operationFinished } from "../operations/lifecycle.ts";
import { owesCancel } from "../operations/ownership.ts";
import { encodeSystemSample, type SystemRecord, type SystemSample } from "../schemas/system.ts";
import { SqliteAlerts } from "./sqlite_alerts.ts";
import type { StepRecord, WireStep } from "../schemas/step.ts";
import type {
  BatchProgress,
  EpochEnd,
  StepWriteResult,
  StepsPruned,
  Fields,
  ExecutionPatch,
  FinishOptions,
  JudgementRow,
  ListFilter,
  NewOperation,
  Replay,
  Store,
  SystemRange,
  WatchedRow,
  WriteResult,
} from "./store.ts";

export { BLOCK } from "./blocks.ts";

interface OpRow extends OperationColumns {
  id: number;
  best_json: string | null;
  /** The judgement kept on write (JSON); null before migration 8 (PostgreSQL 6) kept one. */
  judgement: Uint8Array | null;
  chart_blocks: number;
  /** The custom metric names, a sorted JSON array (Store.metricNames). */
  metric_names: string;
  /** src/operations/step_epochs.ts StepState as JSON; null before any step. */
  step_state: string | null;
  /** src/trends/step_judgement.ts StepJudgementState as JSON; null before any step (migration 9). */
  step_judgement: string | null;
  /** The run's alert rules as JSON (migration 12); null: the server's defaults. */
  alert_rules: string | null;
}

type Cell = number | string | null;
/** The search columns of saveWrite (src/store/search_columns.ts SummaryColumns), in its parameter order. */
type SearchCells = [number | null, number | null, number, number | null, number | null, number];
type EpochRow = EpochColumns<number | string>;

/** SQLite REAL cannot hold NaN (it would become NULL), so NaN is kept as the text "NaN". */
const toCell = (v: number | null | undefined): Cell =>
  v === undefined || v === null ? null : Number.isNaN(v) ? "NaN" : v;
const fromCell = (c: Cell): number | null => (c === null ? null : typeof c === "string" ? Number(c) : c);
/** Cell straight to wire form: the text "NaN" already is one. */
const cellToWire = (c: number | string) => (typeof c === "string" ? (c as WireMetric) : encodeMetric(c));

const COLS = 10;
/** A lone side-table search picking at most this many runs reads them by id (compileSearch's `lookup`). */
const LOOKUP_AT_MOST = 2000;
const CHUNK = 64;

export class SqliteStore implements Store {
  readonly db: Database;
  private readonly trendCfg: TrendConfig;
  private readonly batchProgress = new Map<string, BatchProgress>();
  /** Epoch writes per operation since this process opened the file (WriteResult.version). */
  private readonly versions = new Map<string, number>();
  /** Step writes per operation since this process opened the file (StepWriteResult.version). */
  private readonly stepVersions = new Map<string, number>();
  /** The step tables' statements (src/store/sqlite_steps.ts). */
  private readonly steps: SqliteSteps;
  /** The system series' statements (src/store/sqlite_system.ts). */
  private readonly system: SqliteSystem;
  /** One process holds the file: no one else's changes to hear. */
  readonly shared = null;
  private readonly tail: number;
  private readonly q: {
    opByPublicId: Statement<OpRow, [string]>;
    insertEpoch: Statement<unknown, Cell[]>;
    insertChunk: Statement<unknown, Cell[]>;
    tail: Statement<EpochRow, [number, number]>;
    lossHistory: Statement<{ epoch: number; train_loss: Cell; val_loss: Cell }, [number]>;
    saveWrite: Statement<
      unknown,
      [
        string,
        string,
        number,
        string | null,
        number,
        string | null,
        number,
        Uint8Array,
        string | null,
        string | null,
        ...SearchCells,
      ]
    >;
    judgementRow: Statement<JudgementRow, [string]>;
    keepJudgement: Statement<unknown, [string, Uint8Array, string, string, Uint8Array | null]>;
    readSince: Statement<EpochRow, [number, number]>;
    readRange: Statement<EpochRow, [number, number, number]>;
    readBefore: Statement<EpochRow, [number, number, number]>;
    readPage: Statement<EpochRow, [number, number, number]>;
    readAt: Statement<EpochRow, [number, string]>;
    block: Statement<{ summary: string }, [number, number]>;
    blocksIn: Statement<{ block: number; summary: string }, [number, number, number]>;
    saveBlock: Statement<unknown, [number, number, string]>;
  };

  /** Opens (and locks: see openDatabase) the file; throws DatabaseLockedError when another process holds it. */
  /**
   * `liveness.lateAfterMs`: silence after which a running host training reads `stale` (default 15 s, 1.5 × the default
   * heartbeat interval); `liveness.now`: the clock (tests).
   */
  constructor(
    private readonly path = ":memory:",
    trendCfg: TrendConfig = DEFAULT_TREND_CONFIG,
    private readonly liveness: Liveness = { lateAfterMs: 15_000 },
  ) {
    this.db = openDatabase(path, { variable: "TRAINWATCH_DB" });
    this.db.run("PRAGMA foreign_keys = ON");
    // 64 MiB of pages (SQLite's default is 2 MiB): a search over 100,000 runs scans a covering index of ~25 MB, and a
    // page read past the cache is a system call; the page of `tags has "rare-42"` took 20 ms at 2 MiB, 5.6 at 64 MiB.
    this.db.run("PRAGMA cache_size = -65536");
    migrate(this.db, MIGRATIONS);
    this.trendCfg = trendCfg;
    this.tail = tailSize(trendCfg);
    const cols = ["op", "epoch", ...STANDARD_FIELDS, "ts", "custom"];
    const tuple = `(${cols.map(() => "?").join(", ")})`;
    this.q = {
      opByPublicId: this.db.query("SELECT * FROM operations WHERE operation_id = ?"),
      insertEpoch: this.db.query(`INSERT OR REPLACE INTO epochs (${cols.join(", ")}) VALUES ${tuple}`),
      // Multi-row VALUES: one statement step per CHUNK rows is ~1.4× faster than one per row.
      insertChunk: this.db.query(
        `INSERT OR REPLACE INTO epochs (${cols.join(", ")}) VALUES ${Array(CHUNK).fill(tuple).join(", ")}`,
      ),
      tail: this.db.query("SELECT * FROM epochs WHERE op = ? ORDER BY epoch DESC LIMIT ?"),
      lossHistory: this.db.query("SELECT epoch, train_loss, val_loss FROM epochs WHERE op = ? ORDER BY epoch"),
      // One statement for the summary, the names, the liveness stamp, the revive and the start.
      saveWrite: this.db.query(
        `UPDATE operations SET summary = ?1, best_json = ?2, last_seen_at = ?3, metric_names = coalesce(?4, metric_names),
           cadence = coalesce(?9, cadence),
           status = CASE WHEN ?5 OR ?6 IS NOT NULL THEN 'running' ELSE status END,
           error_message = CASE WHEN ?5 THEN NULL ELSE error_message END,
           failure_code = CASE WHEN ?5 THEN NULL ELSE failure_code END,
           completed_at = CASE WHEN ?5 THEN NULL ELSE completed_at END,
           started_at = coalesce(?6, started_at), judgement = ?8, control = coalesce(?10, control),
           best_val_loss = ?11, best_epoch = ?12, epochs_completed = ?13, final_loss = ?14, final_val_loss = ?15, flags = ?16
         WHERE id = ?7`,
      ),
      judgementRow: this.db.query("SELECT summary, best_json, judgement FROM operations WHERE operation_id = ?"),
      keepJudgement: this.db.query(
        "UPDATE operations SET best_json = ?1, judgement = ?2 WHERE operation_id = ?3 AND summary = ?4 AND judgement IS ?5",
      ),
      readSince: this.db.query("SELECT * FROM epochs WHERE op = ? AND epoch > ? ORDER BY epoch"),
      readRange: this.db.query("SELECT * FROM epochs WHERE op = ? AND epoch > ? AND epoch <= ? ORDER BY epoch"),
      readBefore: this.db.query("SELECT * FROM epochs WHERE op = ? AND epoch < ? ORDER BY epoch DESC LIMIT ?"),
      readPage: this.db.query("SELECT * FROM epochs WHERE op = ? AND epoch > ? ORDER BY epoch LIMIT ?"),
      // One statement for any number of epochs: the list travels as one JSON array.
      readAt: this.db.query(
        "SELECT * FROM epochs WHERE op = ? AND epoch IN (SELECT value FROM json_each(?)) ORDER BY epoch",
      ),
      block: this.db.query("SELECT summary FROM epoch_blocks WHERE op = ? AND block = ?"),
      blocksIn: this.db.query(
        "SELECT block, summary FROM epoch_blocks WHERE op = ? AND block >= ? AND block <= ? ORDER BY block",
      ),
      saveBlock: this.db.query("INSERT OR REPLACE INTO epoch_blocks (op, block, summary) VALUES (?, ?, ?)"),
    };
    this.steps = new SqliteSteps(this.db, (id) => this.row(id));
    this.system = new SqliteSystem(this.db);
    this.alerts = new SqliteAlerts(this.db);
  }

  /** The alert outbox (src/store/alerts.ts AlertStore), in its own file. */
  readonly alerts: SqliteAlerts;

  private row(operationId: string): OpRow {
    const r = this.q.opByPublicId.get(operationId);
    if (!r) throw notFound(operationId);
    return r;
  }

  private toOperation(r: OpRow): Operation {
    return toOperation(r, this.batchProgress.get(r.operation_id), this.liveness);
  }

  /** The operation as it is now (inside a transaction: as this transaction sees it). */
  private current(operationId: string): Operation {
    return this.toOperation(this.row(operationId));
  }

  async createOperation(input: NewOperation): Promise<Operation> {
    const r = newOperationRow(input, new Date());
    this.db.transaction(() => this.insertOperation(r, input)).immediate();
    return this.current(r.operation_id);
  }

  /** The new operation's row, its tags and its configuration's leaves (src/store/search_columns.ts). */
  private insertOperation(r: ReturnType<typeof newOperationRow>, input: NewOperation): void {
    const { lastInsertRowid: id } = this.db
      .query(
        `INSERT INTO operations (operation_id, operation_type, name, status, created_at, started_at,
           total_epochs_planned, total_steps_planned, metadata, summary, chart_blocks, config, stop_policy, location, host,
           alert_rules, executor, tags, group_name)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        r.operation_id,
        r.operation_type,
        r.name,
        r.status,
        r.created_at,
        r.started_at,
        r.total_epochs_planned,
        r.total_steps_planned,
        r.metadata,
        r.summary,
        r.config,
        r.stop_policy,
        r.location,
        r.host,
        r.alert_rules,
        r.executor,
        r.tags,
        r.group_name,
      );
    this.saveTags(Number(id), JSON.parse(r.tags) as string[]);
    const leaf = this.db.query("INSERT INTO operation_config (op, path, kind, num, str) VALUES (?, ?, ?, ?, ?)");
    for (const c of configLeaves(input.config)) leaf.run(id, c.path, c.kind, c.num, c.str);
  }

  /** Replaces the operation's rows in operation_tags (the search's index of tags). */
  private saveTags(opId: number, tags: readonly string[]): void {
    this.db.query("DELETE FROM operation_tags WHERE op = ?").run(opId);
    const insert = this.db.query("INSERT INTO operation_tags (tag, op) VALUES (?, ?)");
    for (const t of tags) insert.run(t, opId);
  }

  async setLabels(operationId: string, patch: LabelsInput): Promise<Operation> {
    return this.db
      .transaction(() => {
        const op = this.row(operationId);
        const next = labelsRow(op, patch);
        this.db
          .query("UPDATE operations SET tags = ?, group_name = ? WHERE id = ?")
          .run(JSON.stringify(next.tags), next.group, op.id);
        this.saveTags(op.id, next.tags);
        return this.current(operationId);
      })
      .immediate();
  }

  async discardOperation(operationId: string): Promise<boolean> {
    const r = this.db
      .query(
        `DELETE FROM operations WHERE operation_id = ? AND status = 'pending'
           AND NOT EXISTS (SELECT 1 FROM epochs WHERE epochs.op = operations.id)`,
      )
      .run(operationId);
    if (r.changes > 0) this.batchProgress.delete(operationId);
    return r.changes > 0;
  }

  async getOperation(operationId: string): Promise<Operation | null> {
    const r = this.q.opByPublicId.get(operationId);
    return r ? this.toOperation(r) : null;
  }

  async listOperations(f: ListFilter): Promise<{ items: Operation[]; total: number }> {
    let c = compileSearch("sqlite", f);
    const total = this.prepared(
      `SELECT count(*) AS n FROM ${c.countFrom}`,
      (st) => (st.get(...c.params.slice(0, c.whereParams)) as { n: number }).n,
    );
    // A lone tag or configuration value on a few runs: look them up rather than scan every run for them.
    if (c.lone && total <= LOOKUP_AT_MOST) c = compileSearch("sqlite", f, true);
    const n = c.params.length;
    const rows = this.prepared(pageSql(c, `?${n + 1}`, `?${n + 2}`), (st) =>
      st.all(...c.params, f.limit, f.offset),
    ) as OpRow[];
    return { items: rows.map((r) => this.toOperation(r)), total };
  }

  /** Runs `use` on a statement prepared for this call alone (db.query would keep every shape a client ever sent). */
  private prepared<T>(sql: string, use: (st: Statement<unknown, (string | number)[]>) => T): T {
    const st = this.db.prepare<unknown, (string | number)[]>(sql);
    try {
      return use(st);
    } finally {
      st.finalize();
    }
  }

  async writeEpochs(operationId: string, epochs: EpochRecord[]): Promise<WriteResult> {
    const ctx = { trends: this.trendCfg, tail: this.tail, now: () => new Date() };
    const res = this.db.transaction(() => runSync(writeEpochs(this.writer, operationId, epochs, ctx))).immediate();
    // Counted once committed: one process holds the file, so a count in memory is every write there is.
    res.version = (this.versions.get(operationId) ?? 0) + 1;
    this.versions.set(operationId, res.version);
    return res;
  }

  async writeSteps(operationId: string, steps: StepRecord[]): Promise<StepWriteResult> {
    const ctx = { trends: this.trendCfg, tail: this.tail, now: () => new Date() };
    const res = this.db
      .transaction(() => runSync(writeSteps(this.steps.writer, this.writer, operationId, steps, ctx)))
      .immediate();
    res.version = this.count(this.stepVersions, operationId);
    if (res.epochs) res.epochs.version = this.count(this.versions, operationId);
    return res;
  }

  async closeSteps(operationId: string): Promise<StepWriteResult["epochs"]> {
    const ctx = { trends: this.trendCfg, tail: this.tail, now: () => new Date() };
    const closed = this.db
      .transaction(() => runSync(closeSteps(this.steps.writer, this.writer, operationId, ctx)))
      .immediate();
    if (closed) closed.version = this.count(this.versions, operationId);
    return closed;
  }

  /** Counts a committed write: one process holds the file, so a count in memory is every write there is. */
  private count(versions: Map<string, number>, operationId: string): number {
    const v = (versions.get(operationId) ?? 0) + 1;
    versions.set(operationId, v);
    return v;
  }

  async pruneSteps(cutoffMs: number, nowMs: number): Promise<StepsPruned> {
    return this.steps.prune(cutoffMs, nowMs);
  }

  async readSteps(operationId: string, sinceStep?: number, untilStep?: number, fields?: Fields): Promise<WireStep[]> {
    return this.steps.read(operationId, sinceStep, untilStep, fields);
  }

  async readStepPage(operationId: string, afterStep: number, limit: number): Promise<WireStep[]> {
    return this.steps.page(operationId, afterStep, limit);
  }

  async readStepsBefore(operationId: string, step: number, limit: number, fields?: Fields): Promise<WireStep[]> {
    return this.steps.before(operationId, step, limit, fields);
  }

  async readStepsAt(operationId: string, steps: readonly number[], fields?: Fields): Promise<WireStep[]> {
    return this.steps.at(operationId, steps, fields);
  }

  async stepSpans(operationId: string, fromStep: number, toStep: number): Promise<SpanSummary[]> {
    return this.steps.spans(operationId, fromStep, toStep);
  }

  async epochEnds(operationId: string): Promise<EpochEnd[]> {
    return this.steps.ends(operationId);
  }

  async readStepJudgement(operationId: string): Promise<StepJudgementState | null> {
    return this.steps.judgement(operationId);
  }

  /** This store's part of a write (src/store/write_epochs.ts): its statements, run inside the write's transaction. */
  private readonly writer: EpochWriter<OpRow> = {
    lock: (operationId, touched) => {
      const op = this.row(operationId);
      // A row from before chart blocks keeps none until its first chart read builds them (epochSpans).
      if (op.chart_blocks !== 1) return { op, blocks: null };
      const blocks = new Map<number, SpanSummary>();
      for (const b of touched) {
        const stored = this.q.block.get(op.id, b);
        if (stored) blocks.set(b, JSON.parse(stored.summary) as SpanSummary);
      }
      return { op, blocks };
    },
    insert: (op, batch, plan) => {
      let args: Cell[] = [];
      for (const { e, ts, custom } of batch.rows) {
        args.push(
          op.id,
          e.epoch,
          toCell(e.train_loss),
          toCell(e.val_loss),
          toCell(e.train_accuracy),
          toCell(e.val_accuracy),
          toCell(e.learning_rate),
          toCell(e.duration),
          ts,
          custom,
        );
        if (args.length === CHUNK * COLS) {
          this.q.insertChunk.run(...args);
          args = [];
        }
      }
      for (let i = 0; i < args.length; i += COLS) this.q.insertEpoch.run(...args.slice(i, i + COLS));
      return {
        tail: plan.tail > 0 ? this.q.tail.all(op.id, plan.tail).reverse().map(lossPoint) : null,
        history: plan.history ? this.q.lossHistory.all(op.id).map(lossPoint) : null,
        blockRows: plan.blocks.flatMap((b) =>
          this.q.readRange.all(op.id, b * BLOCK - 1, b * BLOCK + BLOCK - 1).map(toWire),
        ),
      };
    },
    save: (op, w) => {
      this.q.saveWrite.run(
        JSON.stringify(w.trends),
        JSON.stringify(w.state),
        w.at.getTime(),
        w.names && JSON.stringify(w.names),
        w.revived ? 1 : 0,
        w.started ? w.at.toISOString() : null,
        op.id,
        encodeJudge(w.kept),
        w.cadence,
        w.control && JSON.stringify(w.control),
        w.columns.best_val_loss,
        w.columns.best_epoch,
        w.columns.epochs_completed,
        w.columns.final_loss,
        w.columns.final_val_loss,
        w.columns.flags,
      );
      for (const [b, summary] of w.blocks) this.q.saveBlock.run(op.id, b, JSON.stringify(summary));
      return 0; // counted once committed (writeEpochs)
    },
  };

  async readJudgement(operationId: string): Promise<JudgementRow | null> {
    return this.q.judgementRow.get(operationId);
  }

  async keepJudgement(operationId: string, seen: JudgementRow, state: TrendState, kept: JudgeState): Promise<boolean> {
    const r = this.q.keepJudgement.run(
      JSON.stringify(state),
      encodeJudge(kept),
      operationId,
      seen.summary,
      seen.judgement,
    );
    return r.changes > 0;
  }

  async readReplay(operationId: string, sinceEpoch = -1): Promise<Replay> {
    // Synchronous: nothing can write between the two reads.
    return {
      operation: this.current(operationId),
      epochs: this.epochsAfter(operationId, sinceEpoch),
      version: this.versions.get(operationId) ?? 0,
      stepVersion: this.stepVersions.get(operationId) ?? 0,
    };
  }

  async readEpochs(
    operationId: string,
    sinceEpoch = -1,
    untilEpoch = MAX_EPOCH,
    fields?: Fields,
  ): Promise<WireEpoch[]> {
    if (!fields) return this.epochsAfter(operationId, sinceEpoch, untilEpoch);
    const op = this.row(operationId);
    const { select, toWire } = this.projected(fields);
    return select("epoch > ? AND epoch <= ? ORDER BY epoch").all(op.id, sinceEpoch, untilEpoch).map(toWire);
  }

  /**
   * A read of `fields` alone (Store.readEpochs): its statements, one per WHERE clause, prepared once per field list.
   * `select(where)` reads the operation's rows (op = ?) matching `where`.
   */
  private readonly projected = byFieldList((fields) => {
    const { columns, toWire } = projection(fields, cellToWire);
    const statements = new Map<string, Statement<EpochRow, (number | string)[]>>();
    const select = (where: string) => {
      let st = statements.get(where);
      if (!st) {
        st = this.db.query(`SELECT ${columns.join(", ")} FROM epochs WHERE op = ? AND ${where}`);
        statements.set(where, st);
      }
      return st;
    };
    return { select, toWire };
  });

  private epochsAfter(operationId: string, sinceEpoch = -1, untilEpoch = MAX_EPOCH): WireEpoch[] {
    const op = this.row(operationId);
    if (untilEpoch >= MAX_EPOCH) return this.q.readSince.all(op.id, sinceEpoch).map(toWire);
    return this.q.readRange.all(op.id, sinceEpoch, untilEpoch).map(toWire);
  }

  async readEpochPage(operationId: string, afterEpoch: number, limit: number): Promise<WireEpoch[]> {
    return this.q.readPage.all(this.row(operationId).id, afterEpoch, limit).map(toWire);
  }

  async metricNames(operationId: string): Promise<string[]> {
    return JSON.parse(this.row(operationId).metric_names) as string[];
  }

  async readEpochsBefore(operationId: string, epoch: number, limit: number, fields?: Fields): Promise<WireEpoch[]> {
    const op = this.row(operationId);
    if (!fields) return this.q.readBefore.all(op.id, epoch, limit).reverse().map(toWire);
    const { select, toWire: projected } = this.projected(fields);
    return select("epoch < ? ORDER BY epoch DESC LIMIT ?").all(op.id, epoch, limit).reverse().map(projected);
  }

  async readEpochsAt(operationId: string, epochs: readonly number[], fields?: Fields): Promise<WireEpoch[]> {
    const op = this.row(operationId);
    if (epochs.length === 0) return [];
    if (!fields) return this.q.readAt.all(op.id, JSON.stringify(epochs)).map(toWire);
    const { select, toWire: projected } = this.projected(fields);
    return select("epoch IN (SELECT value FROM json_each(?)) ORDER BY epoch")
      .all(op.id, JSON.stringify(epochs))
      .map(projected);
  }

  async epochSpans(operationId: string, fromEpoch: number, toEpoch: number): Promise<SpanSummary[]> {
    let op = this.row(operationId);
    if (op.chart_blocks !== 1) {
      this.buildBlocks(op.id);
      op = this.row(operationId);
    }
    const { blocks, edges } = blockCover(fromEpoch, toEpoch);
    const edge = ([from, to]: [number, number]) => summarizeRows(this.q.readRange.all(op.id, from - 1, to).map(toWire));
    const whole = blocks ? this.q.blocksIn.all(op.id, blocks[0], blocks[1]).map((b) => b.summary) : [];
    return coverSpans(blocks, edges, whole, edges.map(edge));
  }

  /** Summarises every block of an operation stored before chart blocks existed (one pass over its rows), then keeps them on writes. */
  private buildBlocks(opId: number): void {
    this.db
      .transaction(() => {
        this.db.query("DELETE FROM epoch_blocks WHERE op = ?").run(opId);
        const rows = this.q.readSince.all(opId, -1).map(toWire);
        let start = 0;
        for (let i = 1; i <= rows.length; i++) {
          if (i === rows.length || blockOf(rows[i]!.epoch) !== blockOf(rows[start]!.epoch)) {
            this.q.saveBlock.run(opId, blockOf(rows[start]!.epoch), JSON.stringify(summarizeRows(rows, start, i)));
            start = i;
          }
        }
        this.db.query("UPDATE operations SET chart_blocks = 1 WHERE id = ?").run(opId);
      })
      .immediate();
  }

  async writeSystemSamples(operationId: string, rows: readonly SystemRecord[]): Promise<number> {
    return this.db
      .transaction(() => {
        const op = this.current(operationId);
        if (!canAcceptMetrics(op)) throw operationFinished(operationId, op.status, op.control);
        this.system.insert(this.row(operationId).id, rows);
        return rows.length;
      })
      .immediate();
  }

  async readSystemSamples(operationId: string, range: SystemRange): Promise<SystemSample[]> {
    return this.system.read(this.row(operationId).id, range).map(encodeSystemSample);
  }

  async systemChart(
    operationId: string,
    range: Omit<SystemRange, "limit">,
    maxPoints: number,
  ): Promise<SystemSample[]> {
    return this.system.chart(this.row(operationId).id, range, maxPoints).map(encodeSystemSample);
  }

  async latestSystemSample(operationId: string): Promise<SystemSample | null> {
    const r = this.system.latest(this.row(operationId).id);
    return r ? encodeSystemSample(r) : null;
  }

  async markStarted(operationId: string): Promise<Operation> {
    const op = this.row(operationId);
    if (op.status === "pending") {
      this.db
        .query("UPDATE operations SET status = 'running', started_at = ? WHERE id = ?")
        .run(new Date().toISOString(), op.id);
    }
    return this.current(operationId);
  }

  async finish(
    operationId: string,
    status: "completed" | "failed" | "cancelled",
    opts: FinishOptions = {},
  ): Promise<Operation> {
    return this.finishNow(operationId, status, opts);
  }

  private finishNow(
    operationId: string,
    status: "completed" | "failed" | "cancelled",
    opts: FinishOptions = {},
  ): Operation {
    return this.db
      .transaction(() => {
        const op = this.row(operationId);
        this.batchProgress.delete(operationId);
        const f = finishRow(op, operationId, status, opts, new Date());
        this.db
          .query(
            `UPDATE operations SET status = ?, completed_at = ?, error_message = ?, failure_code = ?, result = coalesce(?, result),
             started_at = coalesce(started_at, ?), control = coalesce(?, control) WHERE id = ?`,
          )
          .run(f.status, f.completed_at, f.error_message, f.failure_code, f.result, f.started_at, f.control, op.id);
        return this.current(operationId);
      })
      .immediate();
  }

  async mergeMetadata(operationId: string, patch: Record<string, unknown>): Promise<Operation> {
    return this.db
      .transaction(() => {
        const op = this.row(operationId);
        const m = metadataRow(op, patch);
        this.db
          .query("UPDATE operations SET metadata = ?, location = ?, host = ? WHERE id = ?")
          .run(m.metadata, m.location, m.host, op.id);
        return this.current(operationId);
      })
      .immediate();
  }

  async setExecution(operationId: string, patch: ExecutionPatch): Promise<Operation> {
    return this.db
      .transaction(() => {
        const op = this.row(operationId);
        const e = executionRow(op, patch);
        this.db
          .query("UPDATE operations SET external_id = ?, pending_reason = ?, queue_position = ? WHERE id = ?")
          .run(e.external_id, e.pending_reason, e.queue_position, op.id);
        return this.current(operationId);
      })
      .immediate();
  }

  async setStopPolicy(operationId: string, policy: StopPolicy | null): Promise<Operation> {
    return this.db
      .transaction(() => {
        const op = this.row(operationId);
        this.db
          .query("UPDATE operations SET stop_policy = ? WHERE id = ?")
          .run(stopPolicyColumn(op, operationId, policy), op.id);
        return this.current(operationId);
      })
      .immediate();
  }

  async setControl(operationId: string, control: StopControl): Promise<void> {
    const r = this.db
      .query("UPDATE operations SET control = ? WHERE operation_id = ?")
      .run(JSON.stringify(control), operationId);
    if (r.changes === 0) throw notFound(operationId);
  }

  async setResult(operationId: string, result: Record<string, unknown>): Promise<void> {
    const r = this.db
      .query("UPDATE operations SET result = ? WHERE operation_id = ?")
      .run(JSON.stringify(result), operationId);
    if (r.changes === 0) throw notFound(operationId);
  }

  /** Kept in memory: it changes up to 4 times a second per training and means nothing after a restart. */
  async setBatchProgress(operationId: string, progress: BatchProgress | null): Promise<void> {
    const op = this.q.opByPublicId.get(operationId);
    if (!op) throw notFound(operationId);
    if (FINISHED.has(op.status)) return; // a late report from a worker that is stopping
    if (progress) this.batchProgress.set(operationId, progress);
    else this.batchProgress.delete(operationId);
  }

  async touch(operationId: string, atMs = Date.now(), watch = false): Promise<void> {
    const r = this.db
      .query(
        `UPDATE operations SET last_seen_at = ?1, watched_at = CASE WHEN ?2 THEN coalesce(watched_at, ?1) ELSE watched_at END
           WHERE operation_id = ?3`,
      )
      .run(atMs, watch ? 1 : 0, operationId);
    if (r.changes === 0) throw notFound(operationId);
  }

  async watchedOperations(): Promise<WatchedRow[]> {
    return this.db
      .query<WatchedRow, []>(
        `SELECT operation_id, status, location, last_seen_at, watched_at, cadence FROM operations INDEXED BY operations_watched
           WHERE status = 'running' AND watched_at IS NOT NULL ORDER BY id`,
      )
      .all();
  }

  async staleHostOperations(cutoffMs: number): Promise<string[]> {
    return this.db
      .query<{ operation_id: string }, [number]>(
        `SELECT operation_id FROM operations WHERE status = 'running'
           AND location = 'host' AND coalesce(last_seen_at, 0) < ?`,
      )
      .all(cutoffMs)
      .map((r) => r.operation_id);
  }

  async unfinishedOf(executor: string): Promise<Operation[]> {
    return this.db
      .query<OpRow, [string]>(
        "SELECT * FROM operations WHERE status IN ('pending', 'running') AND executor = ? ORDER BY id",
      )
      .all(executor)
      .map((r) => this.toOperation(r));
  }

  async cancelsOwed(executor: string): Promise<Operation[]> {
    // The text test narrows the rows to parse; the parsed metadata decides.
    return this.db
      .query<OpRow, [string]>(
        `SELECT * FROM operations WHERE status = 'cancelled' AND executor = ? AND metadata LIKE '%"owed"%' ORDER BY id`,
      )
      .all(executor)
      .map((r) => this.toOperation(r))
      .filter(owesCancel);
  }

  async failInterrupted(where: (op: Operation) => boolean, message: string): Promise<string[]> {
    const rows = this.db.query<OpRow, []>("SELECT * FROM operations WHERE status IN ('pending', 'running')").all();
    const ids = rows
      .map((r) => this.toOperation(r))
      .filter(where)
      .map((o) => o.operation_id);
    for (const id of ids) this.finishNow(id, "failed", { error_message: message });
    return ids;
  }

  async close(): Promise<void> {
    closeDatabase(this.db, this.path);
  }
}

function lossPoint(r: { epoch: number; train_loss: Cell; val_loss: Cell }): EpochPoint {
  return { epoch: r.epoch, train_loss: fromCell(r.train_loss), val_loss: fromCell(r.val_loss) };
}

/** A row in wire form: the GET path goes from cell to wire value, skipping the in-process form. */
const toWire = rowToWire(cellToWire);
