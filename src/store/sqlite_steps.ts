/**
 * The SQLite store's steps: its part of the step write (a StepWriter, src/store/write_steps.ts, run inside the store's
 * immediate transaction) and the step reads, over the `steps` and `step_blocks` tables (migration 7). Statements are
 * prepared once; NaN is kept as the text "NaN", as in the epochs table.
 */
import type { Database, Statement } from "bun:sqlite";
import { MAX_STEP, STEP_FIELDS, type WireStep } from "../schemas/step.ts";
import { summarizeRows, type SpanSummary } from "../trends/downsample.ts";
import { encodeMetric, type WireMetric } from "../trends/wire.ts";
import { BLOCK, blockCover, coverSpans } from "./blocks.ts";
import { byFieldList, projection, stepToWire, type StepColumns } from "./rows.ts";
import type { EpochEnd, Fields, StepsPruned } from "./store.ts";
import { FINISHED } from "../schemas/operation.ts";
import { epochEnds } from "../operations/step_epochs.ts";
import { parseStepJudgement, parseStepState, type StepRow, type StepWriter } from "./write_steps.ts";
import type { StepJudgementState } from "../trends/step_judgement.ts";

type Cell = number | string | null;
type Row = StepColumns<number | string>;

/** SQLite REAL cannot hold NaN (it would become NULL), so NaN is kept as the text "NaN". */
const toCell = (v: number | null | undefined): Cell =>
  v === undefined || v === null ? null : Number.isNaN(v) ? "NaN" : v;
const cellToWire = (c: number | string) => (typeof c === "string" ? (c as WireMetric) : encodeMetric(c));
const toWire = stepToWire(cellToWire);

const COLUMNS = ["op", "step", "epoch", ...STEP_FIELDS, "ts", "custom"];
const COLS = COLUMNS.length;
/** Rows per multi-row INSERT: 64 × 13 parameters stays under SQLite's default limit of 32,766. */
const CHUNK = 64;

/** An operation row as the step write needs it: its integer key besides the write's columns. */
export interface SqliteStepRow extends StepRow {
  id: number;
}

export class SqliteSteps {
  private readonly q: {
    insert: Statement<unknown, Cell[]>;
    insertChunk: Statement<unknown, Cell[]>;
    at: Statement<Row, [number, string]>;
    range: Statement<Row, [number, number, number]>;
    before: Statement<Row, [number, number, number]>;
    page: Statement<Row, [number, number, number]>;
    ofEpoch: Statement<Row, [number, number, number, number]>;
    block: Statement<{ summary: string }, [number, number]>;
    blocksIn: Statement<{ block: number; summary: string }, [number, number, number]>;
    saveBlock: Statement<unknown, [number, number, string]>;
    save: Statement<
      unknown,
      [
        string,
        number,
        number,
        string | null,
        number,
        string | null,
        number,
        string | null,
        string | null,
        string | null,
      ]
    >;
  };

  /** `row`: the store's operation row by public id (NOT_FOUND when unknown). */
  constructor(
    private readonly db: Database,
    private readonly row: (operationId: string) => SqliteStepRow,
  ) {
    const tuple = `(${COLUMNS.map(() => "?").join(", ")})`;
    const insert = `INSERT OR REPLACE INTO steps (${COLUMNS.join(", ")}) VALUES`;
    this.q = {
      insert: db.query(`${insert} ${tuple}`),
      insertChunk: db.query(`${insert} ${Array(CHUNK).fill(tuple).join(", ")}`),
      at: db.query("SELECT * FROM steps WHERE op = ? AND step IN (SELECT value FROM json_each(?)) ORDER BY step"),
      range: db.query("SELECT * FROM steps WHERE op = ? AND step > ? AND step <= ? ORDER BY step"),
      before: db.query("SELECT * FROM steps WHERE op = ? AND step < ? ORDER BY step DESC LIMIT ?"),
      page: db.query("SELECT * FROM steps WHERE op = ? AND step > ? ORDER BY step LIMIT ?"),
      ofEpoch: db.query("SELECT * FROM steps WHERE op = ? AND step >= ? AND step <= ? AND epoch = ? ORDER BY step"),
      block: db.query("SELECT summary FROM step_blocks WHERE op = ? AND block = ?"),
      blocksIn: db.query(
        "SELECT block, summary FROM step_blocks WHERE op = ? AND block >= ? AND block <= ? ORDER BY block",
      ),
      saveBlock: db.query("INSERT OR REPLACE INTO step_blocks (op, block, summary) VALUES (?, ?, ?)"),
      // One statement for the step state, the progress, the names, the liveness stamp, the revive and the start.
      save: db.query(
        `UPDATE operations SET step_state = ?1, steps_completed = ?2, last_seen_at = ?3, cadence = coalesce(?10, cadence),
           step_judgement = coalesce(?8, step_judgement), control = coalesce(?9, control),
           metric_names = coalesce(?4, metric_names),
           status = CASE WHEN ?5 OR ?6 IS NOT NULL THEN 'running' ELSE status END,
           error_message = CASE WHEN ?5 THEN NULL ELSE error_message END,
           failure_code = CASE WHEN ?5 THEN NULL ELSE failure_code END,
           completed_at = CASE WHEN ?5 THEN NULL ELSE completed_at END,
           started_at = coalesce(?6, started_at)
         WHERE id = ?7`,
      ),
    };
  }

  /** This store's part of a step write: its statements, run inside the write's transaction. */
  readonly writer: StepWriter<SqliteStepRow> = {
    lock: (operationId, touched) => {
      const op = this.row(operationId);
      const blocks = new Map<number, SpanSummary>();
      for (const b of touched) {
        const stored = this.q.block.get(op.id, b);
        if (stored) blocks.set(b, JSON.parse(stored.summary) as SpanSummary);
      }
      return { op, blocks };
    },
    stored: (op, steps) => this.q.at.all(op.id, JSON.stringify(steps)).map(toWire),
    insert: (op, batch, _fresh, blocks) => {
      let args: Cell[] = [];
      for (const { s, ts, custom } of batch.rows) {
        args.push(
          op.id,
          s.step,
          s.epoch ?? null,
          toCell(s.train_loss),
          toCell(s.val_loss),
          toCell(s.val_accuracy),
          toCell(s.learning_rate),
          toCell(s.grad_norm),
          toCell(s.duration),
          toCell(s.samples),
          toCell(s.tokens),
          ts,
          custom,
        );
        if (args.length === CHUNK * COLS) {
          this.q.insertChunk.run(...args);
          args = [];
        }
      }
      for (let i = 0; i < args.length; i += COLS) this.q.insert.run(...args.slice(i, i + COLS));
      return blocks.flatMap((b) => this.q.range.all(op.id, b * BLOCK - 1, b * BLOCK + BLOCK - 1).map(toWire));
    },
    epochSteps: (op, read) => this.q.ofEpoch.all(op.id, read.from, read.to, read.epoch).map(toWire),
    save: (op, w) => {
      this.q.save.run(
        JSON.stringify(w.state),
        w.state.max + 1,
        w.at.getTime(),
        w.names && JSON.stringify(w.names),
        w.revived ? 1 : 0,
        w.started ? w.at.toISOString() : null,
        op.id,
        w.judgement && JSON.stringify(w.judgement),
        w.control && JSON.stringify(w.control),
        w.cadence,
      );
      for (const [b, summary] of w.blocks) this.q.saveBlock.run(op.id, b, JSON.stringify(summary));
      return 0; // counted once committed (SqliteStore.writeSteps)
    },
  };

  /** A read of `fields` alone: its statements, one per WHERE clause, prepared once per field list. */
  private readonly projected = byFieldList((fields) => {
    const { columns, toWire } = projection(fields, cellToWire, "step");
    const statements = new Map<string, Statement<Row, (number | string)[]>>();
    const select = (where: string) => {
      let st = statements.get(where);
      if (!st) {
        st = this.db.query(`SELECT ${columns.join(", ")} FROM steps WHERE op = ? AND ${where}`);
        statements.set(where, st);
      }
      return st;
    };
    return { select, toWire };
  });

  read(operationId: string, since = -1, until = MAX_STEP, fields?: Fields): WireStep[] {
    const op = this.row(operationId);
    if (!fields) return this.q.range.all(op.id, since, until).map(toWire);
    const { select, toWire: projected } = this.projected(fields);
    return select("step > ? AND step <= ? ORDER BY step").all(op.id, since, until).map(projected);
  }

  page(operationId: string, after: number, limit: number): WireStep[] {
    return this.q.page.all(this.row(operationId).id, after, limit).map(toWire);
  }

  before(operationId: string, step: number, limit: number, fields?: Fields): WireStep[] {
    const op = this.row(operationId);
    if (!fields) return this.q.before.all(op.id, step, limit).reverse().map(toWire);
    const { select, toWire: projected } = this.projected(fields);
    return select("step < ? ORDER BY step DESC LIMIT ?").all(op.id, step, limit).reverse().map(projected);
  }

  at(operationId: string, steps: readonly number[], fields?: Fields): WireStep[] {
    const op = this.row(operationId);
    if (steps.length === 0) return [];
    if (!fields) return this.q.at.all(op.id, JSON.stringify(steps)).map(toWire);
    const { select, toWire: projected } = this.projected(fields);
    return select("step IN (SELECT value FROM json_each(?)) ORDER BY step")
      .all(op.id, JSON.stringify(steps))
      .map(projected);
  }

  spans(operationId: string, from: number, to: number): SpanSummary[] {
    const op = this.row(operationId);
    const { blocks, edges } = blockCover(from, to);
    const edge = ([lo, hi]: [number, number]) =>
      summarizeRows(this.q.range.all(op.id, lo - 1, hi).map(toWire), 0, undefined, undefined, "step");
    const whole = blocks ? this.q.blocksIn.all(op.id, blocks[0], blocks[1]).map((b) => b.summary) : [];
    return coverSpans(blocks, edges, whole, edges.map(edge));
  }

  /**
   * Store.pruneSteps: each expired run in an immediate transaction of its own (its mark and its rows' delete), so a
   * round never holds the file's write lock for more than one run.
   */
  prune(cutoffMs: number, nowMs: number): StepsPruned {
    const cutoff = new Date(cutoffMs).toISOString();
    const finished = JSON.stringify([...FINISHED]);
    const expired = `status IN (SELECT value FROM json_each(?)) AND completed_at < ? AND steps_completed > 0 AND steps_pruned_at IS NULL`;
    const candidates = this.db
      .query<{ id: number }, [string, string]>(`SELECT id FROM operations WHERE ${expired} ORDER BY id`)
      .all(finished, cutoff);
    const mark = this.db.query<{ operation_id: string }, [number, number, string, string]>(
      `UPDATE operations SET steps_pruned_at = ? WHERE id = ? AND ${expired} RETURNING operation_id`,
    );
    const remove = this.db.query<unknown, [number]>("DELETE FROM steps WHERE op = ?");
    const operations: string[] = [];
    for (const { id } of candidates) {
      const pruned = this.db
        .transaction(() => {
          const marked = mark.get(nowMs, id, finished, cutoff);
          if (marked) remove.run(id);
          return marked?.operation_id ?? null;
        })
        .immediate();
      if (pruned !== null) operations.push(pruned);
    }
    return { operations: operations.sort(), partitions: [] };
  }

  ends(operationId: string): EpochEnd[] {
    return epochEnds(parseStepState(this.row(operationId).step_state));
  }

  judgement(operationId: string): StepJudgementState | null {
    const json = this.row(operationId).step_judgement;
    return json === null ? null : parseStepJudgement(json);
  }
}
