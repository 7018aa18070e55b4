/**
 * bun:sqlite implementation of the Store: WAL, synchronous=FULL (a batch is durable
 * before the reply), versioned migrations, and incremental trend summaries so a
 * write costs O(batch), not O(history).
 */
import type { Database, Statement } from "bun:sqlite";
import { randomBytes } from "node:crypto";
import { notFound } from "../errors.ts";
import { STANDARD_FIELDS, encodeEpoch, encodeMetric, MAX_EPOCH, type EpochRecord, type WireEpoch } from "../schemas/epoch.ts";
import { canAcceptMetrics, canFinish, isRevivable, operationFinished, progressPercentage, type FailureCode } from "../operations/lifecycle.ts";
import { FINISHED, type Operation, type OperationStatus, type StopControl, type StopPolicy } from "../schemas/operation.ts";
import { DEFAULT_TREND_CONFIG, EMPTY_SUMMARY, EMPTY_STATE, type TrendConfig, type TrendState, type TrendSummary, type EpochPoint } from "../trends/types.ts";
import { advanceState, analyzeTrends, chooseMonitor, summarizeFrom, tailSize } from "../trends/summary.ts";
import { mergeSummaries, summarizeRows, type SpanSummary } from "../trends/downsample.ts";
import { closeDatabase, migrate, openDatabase } from "./database.ts";
import { MIGRATIONS } from "./migrations.ts";
import { isStale, type BatchProgress, type FinishOptions, type ListFilter, type NewOperation, type Store, type WriteResult } from "./store.ts";

interface OpRow {
  id: number;
  operation_id: string;
  operation_type: string;
  name: string | null;
  status: OperationStatus;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  total_epochs_planned: number | null;
  error_message: string | null;
  metadata: string;
  result: string | null;
  summary: string;
  best_json: string | null;
  last_seen_at: number | null;
  failure_code: FailureCode | null;
  chart_blocks: number;
  config: string | null;
  stop_policy: string | null;
  control: string | null;
}

/** A nullable JSON column. */
const parseJson = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

type Cell = number | string | null;
interface EpochRow {
  epoch: number;
  train_loss: Cell;
  val_loss: Cell;
  train_accuracy: Cell;
  val_accuracy: Cell;
  learning_rate: Cell;
  duration: Cell;
  ts: number;
  custom: string | null;
}

/** SQLite REAL cannot hold NaN (it would become NULL), so NaN is kept as the text "NaN". */
const toCell = (v: number | null | undefined): Cell => (v === undefined || v === null ? null : Number.isNaN(v) ? "NaN" : v);
const fromCell = (c: Cell): number | null => (c === null ? null : typeof c === "string" ? Number(c) : c);
/** Cell straight to wire form: the GET path skips the in-process form. */
const cellToWire = (c: Cell) => (typeof c === "string" ? c : encodeMetric(c));

const COLS = 10;
const CHUNK = 64;

/**
 * Epochs per chart block (epoch_blocks): block b holds epochs b·BLOCK … b·BLOCK + BLOCK − 1. 128 keeps a million-epoch
 * run at ~7,800 summaries (read and parsed in ~20 ms) and a block recomputed after a re-post at 128 rows.
 */
export const BLOCK = 128;

export function newOperationId(type: string, now = new Date()): string {
  const iso = now.toISOString(); // 2026-11-26T15:30:00.000Z
  const stamp = `${iso.slice(0, 10).replaceAll("-", "")}_${iso.slice(11, 19).replaceAll(":", "")}`;
  return `op_${type}_${stamp}_${randomBytes(4).toString("hex")}`;
}

export class SqliteStore implements Store {
  readonly db: Database;
  private readonly trendCfg: TrendConfig;
  private readonly batchProgress = new Map<string, BatchProgress>();
  private readonly tail: number;
  private readonly q: {
    opByPublicId: Statement<OpRow, [string]>;
    insertEpoch: Statement<unknown, Cell[]>;
    insertChunk: Statement<unknown, Cell[]>;
    existingEpoch: Statement<{ n: number }, [number, number]>;
    tail: Statement<EpochRow, [number, number]>;
    lossHistory: Statement<{ epoch: number; train_loss: Cell; val_loss: Cell }, [number]>;
    count: Statement<{ n: number }, [number]>;
    saveSummary: Statement<unknown, [string, string | null, number]>;
    readSince: Statement<EpochRow, [number, number]>;
    readRange: Statement<EpochRow, [number, number, number]>;
    readBefore: Statement<EpochRow, [number, number, number]>;
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
    private readonly liveness: { lateAfterMs: number; now?: () => number } = { lateAfterMs: 15_000 },
  ) {
    this.db = openDatabase(path, { variable: "TRAINWATCH_DB" });
    this.db.run("PRAGMA foreign_keys = ON");
    migrate(this.db, MIGRATIONS);
    this.trendCfg = trendCfg;
    this.tail = tailSize(trendCfg);
    const cols = ["op", "epoch", ...STANDARD_FIELDS, "ts", "custom"];
    const tuple = `(${cols.map(() => "?").join(", ")})`;
    this.q = {
      opByPublicId: this.db.query("SELECT * FROM operations WHERE operation_id = ?"),
      insertEpoch: this.db.query(`INSERT OR REPLACE INTO epochs (${cols.join(", ")}) VALUES ${tuple}`),
      // Multi-row VALUES: one statement step per CHUNK rows is ~1.4× faster than one per row.
      insertChunk: this.db.query(`INSERT OR REPLACE INTO epochs (${cols.join(", ")}) VALUES ${Array(CHUNK).fill(tuple).join(", ")}`),
      existingEpoch: this.db.query("SELECT count(*) AS n FROM epochs WHERE op = ? AND epoch = ?"),
      tail: this.db.query("SELECT * FROM epochs WHERE op = ? ORDER BY epoch DESC LIMIT ?"),
      lossHistory: this.db.query("SELECT epoch, train_loss, val_loss FROM epochs WHERE op = ? ORDER BY epoch"),
      count: this.db.query("SELECT count(*) AS n FROM epochs WHERE op = ?"),
      saveSummary: this.db.query("UPDATE operations SET summary = ?, best_json = ? WHERE id = ?"),
      readSince: this.db.query("SELECT * FROM epochs WHERE op = ? AND epoch > ? ORDER BY epoch"),
      readRange: this.db.query("SELECT * FROM epochs WHERE op = ? AND epoch > ? AND epoch <= ? ORDER BY epoch"),
      readBefore: this.db.query("SELECT * FROM epochs WHERE op = ? AND epoch < ? ORDER BY epoch DESC LIMIT ?"),
      // One statement for any number of epochs: the list travels as one JSON array.
      readAt: this.db.query("SELECT * FROM epochs WHERE op = ? AND epoch IN (SELECT value FROM json_each(?)) ORDER BY epoch"),
      block: this.db.query("SELECT summary FROM epoch_blocks WHERE op = ? AND block = ?"),
      blocksIn: this.db.query("SELECT block, summary FROM epoch_blocks WHERE op = ? AND block >= ? AND block <= ? ORDER BY block"),
      saveBlock: this.db.query("INSERT OR REPLACE INTO epoch_blocks (op, block, summary) VALUES (?, ?, ?)"),
    };
  }

  private row(operationId: string): OpRow {
    const r = this.q.opByPublicId.get(operationId);
    if (!r) throw notFound(operationId);
    return r;
  }

  private toOperation(r: OpRow): Operation {
    // Spread over the empty summary: a row written before a flag existed reads it as false.
    const trends: TrendSummary = { ...EMPTY_SUMMARY, ...(JSON.parse(r.summary) as TrendSummary) };
    const batch = this.batchProgress.get(r.operation_id);
    const metadata = JSON.parse(r.metadata) as Record<string, unknown>;
    const total = r.total_epochs_planned;
    const done = trends.total_epochs_completed;
    return {
      operation_id: r.operation_id,
      operation_type: r.operation_type,
      name: r.name,
      status: r.status,
      created_at: r.created_at,
      started_at: r.started_at,
      completed_at: r.completed_at,
      progress: {
        percentage: progressPercentage(r.status, done, total, batch),
        current_epoch: trends.latest_epoch,
        total_epochs: total,
        epochs_completed: done,
        ...(batch && r.status === "running" ? { batch } : {}),
      },
      error_message: r.error_message,
      failure_code: r.failure_code,
      last_seen_at: r.last_seen_at === null ? null : new Date(r.last_seen_at).toISOString(),
      stale: isStale({ status: r.status, metadata }, r.last_seen_at, (this.liveness.now ?? Date.now)(), this.liveness.lateAfterMs),
      metadata,
      config: parseJson<Record<string, unknown>>(r.config),
      stop_policy: parseJson<StopPolicy>(r.stop_policy),
      control: parseJson<StopControl>(r.control),
      result: r.result ? (JSON.parse(r.result) as Record<string, unknown>) : null,
      trends,
    };
  }

  createOperation(input: NewOperation): Operation {
    const now = new Date();
    const id = newOperationId(input.operation_type, now);
    const status = input.status ?? "running";
    this.db
      .query(
        `INSERT INTO operations (operation_id, operation_type, name, status, created_at, started_at,
           total_epochs_planned, metadata, summary, chart_blocks, config, stop_policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
      )
      .run(
        id,
        input.operation_type,
        input.name ?? null,
        status,
        now.toISOString(),
        status === "running" ? now.toISOString() : null,
        input.total_epochs_planned ?? null,
        JSON.stringify(input.metadata ?? {}),
        JSON.stringify(EMPTY_SUMMARY),
        input.config ? JSON.stringify(input.config) : null,
        input.stop_policy ? JSON.stringify(input.stop_policy) : null,
      );
    return this.getOperation(id)!;
  }

  discardOperation(operationId: string): boolean {
    const r = this.db
      .query(
        `DELETE FROM operations WHERE operation_id = ? AND status = 'pending'
           AND NOT EXISTS (SELECT 1 FROM epochs WHERE epochs.op = operations.id)`,
      )
      .run(operationId);
    if (r.changes > 0) this.batchProgress.delete(operationId);
    return r.changes > 0;
  }

  getOperation(operationId: string): Operation | null {
    const r = this.q.opByPublicId.get(operationId);
    return r ? this.toOperation(r) : null;
  }

  listOperations(f: ListFilter): { items: Operation[]; total: number } {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.status) (where.push("status = ?"), args.push(f.status));
    if (f.operation_type) (where.push("operation_type = ?"), args.push(f.operation_type));
    const w = where.length ? `WHERE ${where.join(" AND ")}` : "";
    const total = this.db.query<{ n: number }, (string | number)[]>(`SELECT count(*) AS n FROM operations ${w}`).get(...args)!.n;
    const rows = this.db
      .query<OpRow, (string | number)[]>(`SELECT * FROM operations ${w} ORDER BY id DESC LIMIT ? OFFSET ?`)
      .all(...args, f.limit, f.offset);
    return { items: rows.map((r) => this.toOperation(r)), total };
  }

  writeEpochs(operationId: string, epochs: EpochRecord[]): WriteResult {
    return this.db.transaction((): WriteResult => {
      const op = this.row(operationId);
      let revived = false;
      if (!canAcceptMetrics(op)) throw operationFinished(operationId, op.status, parseJson<StopControl>(op.control));
      if (isRevivable(op)) {
        this.db.query("UPDATE operations SET status = 'running', error_message = NULL, failure_code = NULL, completed_at = NULL WHERE id = ?").run(op.id);
        revived = true;
      }
      const prev = JSON.parse(op.summary) as TrendSummary;
      const prevState = op.best_json === null && prev.total_epochs_completed > 0 ? null : parseState(op.best_json);
      // Incremental only when every new epoch lies past the stored history and the
      // monitor stays put; a replaced epoch or a switch to val_loss recomputes in full,
      // and so does a row whose rule state predates the current TrendState shape.
      let minEpoch = Infinity;
      for (const e of epochs) minEpoch = Math.min(minEpoch, e.epoch);
      const batchMonitor = chooseMonitor(epochs);
      const monitor = prev.monitor === "val_loss" || batchMonitor === "val_loss" ? "val_loss" : (prev.monitor ?? batchMonitor);
      const incremental =
        prevState !== null &&
        (prev.latest_epoch === null || minEpoch > prev.latest_epoch) &&
        !(prev.monitor === "train_loss" && monitor === "val_loss");

      const seen = new Set<number>();
      let lastIso = "";
      let lastMs = 0;
      let args: Cell[] = [];
      for (const e of epochs) {
        seen.add(e.epoch);
        // Batches usually share one server timestamp: parse it once.
        if (e.timestamp_ms !== undefined) lastMs = e.timestamp_ms;
        else if (e.timestamp !== lastIso) (lastIso = e.timestamp), (lastMs = Date.parse(e.timestamp));
        args.push(
          op.id,
          e.epoch,
          toCell(e.train_loss),
          toCell(e.val_loss),
          toCell(e.train_accuracy),
          toCell(e.val_accuracy),
          toCell(e.learning_rate),
          toCell(e.duration),
          lastMs,
          e.custom ? JSON.stringify(Object.fromEntries(Object.entries(e.custom).map(([k, v]) => [k, encodeMetric(v)]))) : null,
        );
        if (args.length === CHUNK * COLS) {
          this.q.insertChunk.run(...args);
          args = [];
        }
      }
      for (let i = 0; i < args.length; i += COLS) this.q.insertEpoch.run(...args.slice(i, i + COLS));
      if (op.chart_blocks === 1) this.updateBlocks(op.id, epochs);

      let trends: TrendSummary;
      let state: TrendState;
      // A batch naming one epoch twice keeps the last row; only a full recompute sees that.
      if (incremental && seen.size === epochs.length) {
        // Only the first values depend on order; once the state has them, the batch merges as it came.
        const ordered = prevState.first === null || prevState.first_train === null ? [...epochs].sort((a, b) => a.epoch - b.epoch) : epochs;
        state = advanceState(prevState, ordered, monitor);
        const tail = this.q.tail.all(op.id, this.tail).reverse().map(lossPoint);
        trends = summarizeFrom({ monitor, state, tail, count: prev.total_epochs_completed + seen.size }, this.trendCfg);
      } else {
        ({ state, summary: trends } = analyzeTrends(this.q.lossHistory.all(op.id).map(lossPoint), this.trendCfg));
      }
      this.q.saveSummary.run(JSON.stringify(trends), JSON.stringify(state), op.id);
      const wasPending = op.status === "pending";
      if (wasPending) this.db.query("UPDATE operations SET status = 'running', started_at = ? WHERE id = ?").run(new Date().toISOString(), op.id);
      this.db.query("UPDATE operations SET last_seen_at = ? WHERE id = ?").run(Date.now(), op.id);
      return {
        stored: epochs.length,
        trends,
        revived,
        statusChanged: revived || wasPending,
        stopPolicy: parseJson<StopPolicy>(op.stop_policy),
        control: parseJson<StopControl>(op.control),
      };
    }).immediate();
  }

  readEpochs(operationId: string, sinceEpoch = -1, untilEpoch = MAX_EPOCH): WireEpoch[] {
    const op = this.row(operationId);
    if (untilEpoch >= MAX_EPOCH) return this.q.readSince.all(op.id, sinceEpoch).map(rowToWire);
    return this.q.readRange.all(op.id, sinceEpoch, untilEpoch).map(rowToWire);
  }

  readEpochsBefore(operationId: string, epoch: number, limit: number): WireEpoch[] {
    const op = this.row(operationId);
    return this.q.readBefore.all(op.id, epoch, limit).reverse().map(rowToWire);
  }

  readEpochsAt(operationId: string, epochs: readonly number[]): WireEpoch[] {
    const op = this.row(operationId);
    return epochs.length === 0 ? [] : this.q.readAt.all(op.id, JSON.stringify(epochs)).map(rowToWire);
  }

  epochSpans(operationId: string, fromEpoch: number, toEpoch: number): SpanSummary[] {
    let op = this.row(operationId);
    if (op.chart_blocks !== 1) {
      this.buildBlocks(op.id);
      op = this.row(operationId);
    }
    const firstWhole = Math.ceil(fromEpoch / BLOCK);
    const lastWhole = Math.floor((toEpoch + 1) / BLOCK) - 1;
    const edge = (from: number, to: number) => summarizeRows(this.q.readRange.all(op.id, from - 1, to).map(rowToWire));
    if (lastWhole < firstWhole) return [edge(fromEpoch, toEpoch)];
    const spans: SpanSummary[] = [];
    if (fromEpoch < firstWhole * BLOCK) spans.push(edge(fromEpoch, firstWhole * BLOCK - 1));
    for (const b of this.q.blocksIn.all(op.id, firstWhole, lastWhole)) spans.push(JSON.parse(b.summary) as SpanSummary);
    if (toEpoch > (lastWhole + 1) * BLOCK - 1) spans.push(edge((lastWhole + 1) * BLOCK, toEpoch));
    return spans.filter((s) => s.count > 0);
  }

  /**
   * Keeps the chart blocks a write touched up to date, in the write's transaction: epochs past a block's last one merge
   * into its summary (appends, the usual case, cost O(batch)); a block with a replaced or earlier epoch is summarised
   * again from its rows (at most BLOCK). A batch naming one epoch twice keeps the last, as the rows do.
   */
  private updateBlocks(opId: number, epochs: readonly EpochRecord[]): void {
    const byBlock = new Map<number, Map<number, EpochRecord>>();
    for (const e of epochs) {
      const b = Math.floor(e.epoch / BLOCK);
      let m = byBlock.get(b);
      if (!m) byBlock.set(b, (m = new Map()));
      m.set(e.epoch, e);
    }
    for (const [b, group] of byBlock) {
      const stored = this.q.block.get(opId, b);
      const prev = stored ? (JSON.parse(stored.summary) as SpanSummary) : null;
      const rows = [...group.values()].sort((x, y) => x.epoch - y.epoch);
      let summary: SpanSummary;
      if (prev === null || rows[0]!.epoch > prev.to) {
        const added = summarizeRows(rows.map(encodeEpoch));
        summary = prev === null ? added : mergeSummaries(prev, added);
      } else {
        summary = summarizeRows(this.q.readRange.all(opId, b * BLOCK - 1, b * BLOCK + BLOCK - 1).map(rowToWire));
      }
      this.q.saveBlock.run(opId, b, JSON.stringify(summary));
    }
  }

  /** Summarises every block of an operation stored before chart blocks existed (one pass over its rows), then keeps them on writes. */
  private buildBlocks(opId: number): void {
    this.db.transaction(() => {
      this.db.query("DELETE FROM epoch_blocks WHERE op = ?").run(opId);
      const rows = this.q.readSince.all(opId, -1).map(rowToWire);
      let start = 0;
      for (let i = 1; i <= rows.length; i++) {
        if (i === rows.length || Math.floor(rows[i]!.epoch / BLOCK) !== Math.floor(rows[start]!.epoch / BLOCK)) {
          this.q.saveBlock.run(opId, Math.floor(rows[start]!.epoch / BLOCK), JSON.stringify(summarizeRows(rows, start, i)));
          start = i;
        }
      }
      this.db.query("UPDATE operations SET chart_blocks = 1 WHERE id = ?").run(opId);
    }).immediate();
  }

  markStarted(operationId: string): Operation {
    const op = this.row(operationId);
    if (op.status === "pending") {
      this.db.query("UPDATE operations SET status = 'running', started_at = ? WHERE id = ?").run(new Date().toISOString(), op.id);
    }
    return this.getOperation(operationId)!;
  }

  finish(
    operationId: string,
    status: "completed" | "failed" | "cancelled",
    opts: FinishOptions = {},
  ): Operation {
    return this.db.transaction(() => {
      const op = this.row(operationId);
      this.batchProgress.delete(operationId);
      if (!canFinish(op)) throw operationFinished(operationId, op.status, parseJson<StopControl>(op.control));
      this.db
        .query(
          `UPDATE operations SET status = ?, completed_at = ?, error_message = ?, failure_code = ?, result = coalesce(?, result),
             started_at = coalesce(started_at, ?), control = coalesce(?, control) WHERE id = ?`,
        )
        .run(
          status,
          new Date().toISOString(),
          opts.error_message ?? null,
          status === "failed" ? (opts.failure_code ?? null) : null,
          opts.result ? JSON.stringify(opts.result) : null,
          new Date().toISOString(),
          opts.control ? JSON.stringify(opts.control) : null,
          op.id,
        );
      return this.getOperation(operationId)!;
    }).immediate();
  }

  mergeMetadata(operationId: string, patch: Record<string, unknown>): Operation {
    return this.db.transaction(() => {
      const op = this.row(operationId);
      const merged = { ...(JSON.parse(op.metadata) as Record<string, unknown>), ...patch };
      this.db.query("UPDATE operations SET metadata = ? WHERE id = ?").run(JSON.stringify(merged), op.id);
      return this.getOperation(operationId)!;
    }).immediate();
  }

  setStopPolicy(operationId: string, policy: StopPolicy | null): Operation {
    return this.db.transaction(() => {
      const op = this.row(operationId);
      if (FINISHED.has(op.status)) throw operationFinished(operationId, op.status, parseJson<StopControl>(op.control));
      this.db.query("UPDATE operations SET stop_policy = ? WHERE id = ?").run(policy ? JSON.stringify(policy) : null, op.id);
      return this.getOperation(operationId)!;
    }).immediate();
  }

  setControl(operationId: string, control: StopControl): void {
    const r = this.db.query("UPDATE operations SET control = ? WHERE operation_id = ?").run(JSON.stringify(control), operationId);
    if (r.changes === 0) throw notFound(operationId);
  }

  setResult(operationId: string, result: Record<string, unknown>): void {
    const r = this.db.query("UPDATE operations SET result = ? WHERE operation_id = ?").run(JSON.stringify(result), operationId);
    if (r.changes === 0) throw notFound(operationId);
  }

  /** Kept in memory: it changes up to 4 times a second per training and means nothing after a restart. */
  setBatchProgress(operationId: string, progress: BatchProgress | null): void {
    const op = this.q.opByPublicId.get(operationId);
    if (!op) throw notFound(operationId);
    if (FINISHED.has(op.status)) return; // a late report from a worker that is stopping
    if (progress) this.batchProgress.set(operationId, progress);
    else this.batchProgress.delete(operationId);
  }

  touch(operationId: string, atMs = Date.now()): void {
    const r = this.db.query("UPDATE operations SET last_seen_at = ? WHERE operation_id = ?").run(atMs, operationId);
    if (r.changes === 0) throw notFound(operationId);
  }

  staleHostOperations(cutoffMs: number): string[] {
    return this.db
      .query<{ operation_id: string }, [number]>(
        `SELECT operation_id FROM operations WHERE status = 'running'
           AND json_extract(metadata, '$.location') = 'host' AND coalesce(last_seen_at, 0) < ?`,
      )
      .all(cutoffMs)
      .map((r) => r.operation_id);
  }

  failInterrupted(where: (op: Operation) => boolean, message: string): string[] {
    const rows = this.db.query<OpRow, []>("SELECT * FROM operations WHERE status IN ('pending', 'running')").all();
    const ids = rows.map((r) => this.toOperation(r)).filter(where).map((o) => o.operation_id);
    for (const id of ids) this.finish(id, "failed", { error_message: message });
    return ids;
  }

  close(): void {
    closeDatabase(this.db, this.path);
  }
}

/** The stored rule state (column best_json), or null when absent or written by an older version (then recompute). */
function parseState(json: string | null): TrendState | null {
  if (json === null) return { ...EMPTY_STATE };
  const v = JSON.parse(json) as Partial<TrendState>;
  return "best" in v && "first" in v && "min_train" in v && "best_train" in v && "first_train" in v ? (v as TrendState) : null;
}

function lossPoint(r: { epoch: number; train_loss: Cell; val_loss: Cell }): EpochPoint {
  return { epoch: r.epoch, train_loss: fromCell(r.train_loss), val_loss: fromCell(r.val_loss) };
}

function rowToWire(r: EpochRow): WireEpoch {
  const out: Record<string, unknown> = { epoch: r.epoch };
  if (r.train_loss !== null) out.train_loss = cellToWire(r.train_loss);
  if (r.val_loss !== null) out.val_loss = cellToWire(r.val_loss);
  if (r.train_accuracy !== null) out.train_accuracy = cellToWire(r.train_accuracy);
  if (r.val_accuracy !== null) out.val_accuracy = cellToWire(r.val_accuracy);
  if (r.learning_rate !== null) out.learning_rate = cellToWire(r.learning_rate);
  if (r.duration !== null) out.duration = cellToWire(r.duration);
  if (r.custom !== null) Object.assign(out, JSON.parse(r.custom));
  out.timestamp = new Date(r.ts).toISOString();
  return out as WireEpoch;
}
