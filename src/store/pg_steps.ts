/**
 * The PostgreSQL store's steps: its part of the step write (a StepWriter, src/store/write_steps.ts, awaited inside the
 * store's `sql.begin`) and the step reads, over the `steps` and `step_blocks` tables (migration 5). Rows go in as one
 * json_to_recordset parameter (10,000 steps of 13 columns would overflow a multi-row VALUES' 65,535 parameters);
 * NaN and ±Infinity are float8 values, never NULL. Each write announces itself (NOTIFY, src/store/pg_notify.ts).
 */
import type { SQL, TransactionSQL } from "bun";
import { notFound } from "../errors.ts";
import { epochEnds } from "../operations/step_epochs.ts";
import { MAX_STEP, type WireStep } from "../schemas/step.ts";
import { summarizeRows, type SpanSummary } from "../trends/downsample.ts";
import { encodeMetric } from "../trends/wire.ts";
import { BLOCK, blockCover, coverSpans } from "./blocks.ts";
import { lockWithBlocks } from "./pg_lock.ts";
import { stepsNotice } from "./pg_notify.ts";
import { byFieldList, projection, stepToWire, type StepColumns } from "./rows.ts";
import type { EpochEnd, Fields } from "./store.ts";
import { parseStepJudgement, parseStepState, type StepBatchRow, type StepRow, type StepWriter } from "./write_steps.ts";
import type { StepJudgementState } from "../trends/step_judgement.ts";

type Row = StepColumns<number>;
const toWire = stepToWire(encodeMetric);

/** An operation row as the step write needs it: its int8 key (a string) and its step version besides the write's columns. */
export interface PgStepRow extends StepRow {
  id: string;
  step_version: string;
}

const ALL_COLUMNS =
  "s.step, s.epoch, s.train_loss, s.val_loss, s.val_accuracy, s.learning_rate, s.grad_norm, s.duration, s.samples, s.tokens, s.ts, s.custom";
const projectedOn = byFieldList((fields) => {
  const { columns, toWire } = projection(fields, encodeMetric, "step");
  return { columns: columns.map((c) => `s.${c}`).join(", "), toWire };
});
const projected = (fields: Fields | undefined): { columns: string; toWire: (r: Row) => WireStep } =>
  fields ? projectedOn(fields) : { columns: ALL_COLUMNS, toWire };

/** `rows` as one JSON array for json_to_recordset. */
function recordset(rows: readonly StepBatchRow[]): string {
  return JSON.stringify(
    rows.map(({ s, ts, custom }) => ({
      s: s.step,
      e: s.epoch ?? null,
      tl: encodeMetric(s.train_loss) ?? null,
      vl: encodeMetric(s.val_loss) ?? null,
      va: encodeMetric(s.val_accuracy) ?? null,
      lr: encodeMetric(s.learning_rate) ?? null,
      gn: encodeMetric(s.grad_norm) ?? null,
      du: encodeMetric(s.duration) ?? null,
      sa: encodeMetric(s.samples) ?? null,
      to: encodeMetric(s.tokens) ?? null,
      ts,
      c: custom,
    })),
  );
}

export class PgSteps {
  /** `notifyStatus`: the store's status notification, added to a write's notices on a start or a revive. */
  constructor(
    private readonly sql: SQL,
    private readonly notifyStatus: (notices: string[], operationId: string) => void,
  ) {}

  /** This store's part of a step write, in transaction `tx`: its SQL alone; what it announces goes to `notices`. */
  writer(tx: TransactionSQL, notices: string[]): StepWriter<PgStepRow> {
    return {
      lock: (operationId, touched) => lockWithBlocks<PgStepRow>(tx, operationId, touched, "step_blocks"),
      stored: async (op, steps) =>
        (
          await tx<Row[]>`
            SELECT ${tx.unsafe(ALL_COLUMNS)} FROM steps s WHERE s.op = ${op.id} AND s.step = ANY(${tx.array(steps, "INT4")}) ORDER BY s.step`
        ).map(toWire),
      insert: async (op, batch, _fresh, blocks) => {
        if (batch.rows.length > 0)
          await tx`
            INSERT INTO steps (op, step, epoch, train_loss, val_loss, val_accuracy, learning_rate, grad_norm, duration, samples, tokens, ts, custom)
            SELECT ${op.id}, r.s, r.e, r.tl, r.vl, r.va, r.lr, r.gn, r.du, r.sa, r.to, r.ts, r.c
            FROM json_to_recordset(${recordset(batch.rows)}::text::json)
              AS r(s integer, e integer, tl float8, vl float8, va float8, lr float8, gn float8, du float8, sa float8, "to" float8, ts bigint, c text)
            ON CONFLICT (op, step) DO UPDATE SET
              epoch = excluded.epoch, train_loss = excluded.train_loss, val_loss = excluded.val_loss,
              val_accuracy = excluded.val_accuracy, learning_rate = excluded.learning_rate, grad_norm = excluded.grad_norm,
              duration = excluded.duration, samples = excluded.samples, tokens = excluded.tokens, ts = excluded.ts,
              custom = excluded.custom`;
        if (blocks.length === 0) return [];
        const rows = await tx<Row[]>`
          SELECT ${tx.unsafe(ALL_COLUMNS)} FROM unnest(${tx.array(blocks, "INT4")}) AS b(block)
          JOIN steps s ON s.op = ${op.id} AND s.step BETWEEN b.block * ${BLOCK}::integer AND b.block * ${BLOCK}::integer + ${BLOCK - 1}::integer
          ORDER BY s.step`;
        return rows.map(toWire);
      },
      epochSteps: async (op, read) =>
        (
          await tx<Row[]>`
            SELECT ${tx.unsafe(ALL_COLUMNS)} FROM steps s
            WHERE s.op = ${op.id} AND s.step >= ${read.from} AND s.step <= ${read.to} AND s.epoch = ${read.epoch} ORDER BY s.step`
        ).map(toWire),
      save: async (op, w) => {
        // A close at finish writes no step: no step version, no steps notification.
        const wrote = w.batch.steps.length > 0;
        const version = Number(op.step_version) + (wrote ? 1 : 0);
        const blockJson = JSON.stringify([...w.blocks].map(([b, summary]) => ({ b, s: JSON.stringify(summary) })));
        if (wrote) notices.push(stepsNotice(op.operation_id, version, w.batch.steps, w.batch.minStep));
        if (w.revived || w.started || w.control) this.notifyStatus(notices, op.operation_id);
        await Promise.all([
          // One statement for the step state, the progress, the names, the revive, the start, the liveness stamp.
          tx`
            UPDATE operations SET step_state = ${JSON.stringify(w.state)}, steps_completed = ${w.state.max + 1},
              step_judgement = coalesce(${w.judgement && JSON.stringify(w.judgement)}, step_judgement),
              control = coalesce(${w.control && JSON.stringify(w.control)}, control),
              last_seen_at = ${w.at.getTime()}, step_version = ${version},
              cadence = coalesce(${w.cadence}, cadence),
              metric_names = coalesce(${w.names && JSON.stringify(w.names)}, metric_names),
              status = CASE WHEN ${w.revived || w.started} THEN 'running' ELSE status END,
              error_message = CASE WHEN ${w.revived} THEN NULL ELSE error_message END,
              failure_code = CASE WHEN ${w.revived} THEN NULL ELSE failure_code END,
              completed_at = CASE WHEN ${w.revived} THEN NULL ELSE completed_at END,
              started_at = CASE WHEN ${w.started} THEN ${w.at.toISOString()}::timestamptz ELSE started_at END
            WHERE id = ${op.id}`,
          w.blocks.size > 0
            ? tx`
            INSERT INTO step_blocks (op, block, summary)
            SELECT ${op.id}, r.b, r.s FROM json_to_recordset(${blockJson}::text::json) AS r(b integer, s text)
            ON CONFLICT (op, block) DO UPDATE SET summary = excluded.summary`
            : null,
        ]);
        return version;
      },
    };
  }

  /** The operation's int8 key (NOT_FOUND when unknown). */
  private async id(operationId: string): Promise<string> {
    const rows = await this.sql<{ id: string }[]>`SELECT id FROM operations WHERE operation_id = ${operationId}`;
    if (rows.length === 0) throw notFound(operationId);
    return rows[0]!.id;
  }

  // Each read looks the operation's key up first and then reads `steps` with it as a value: the planner then keeps one
  // partition of the table. A join on operations is planned over every partition (58 ms to plan and 7.8 ms to run
  // over 302 partitions on the VM, against 0.2 and 0.1 ms).
  async read(operationId: string, since = -1, until = MAX_STEP, fields?: Fields): Promise<WireStep[]> {
    const op = await this.id(operationId);
    const { columns, toWire } = projected(fields);
    const rows = await this.sql<Row[]>`
      SELECT ${this.sql.unsafe(columns)} FROM steps s WHERE s.op = ${op} AND s.step > ${since} AND s.step <= ${until} ORDER BY s.step`;
    return rows.map(toWire);
  }

  async page(operationId: string, after: number, limit: number): Promise<WireStep[]> {
    const op = await this.id(operationId);
    const rows = await this.sql<Row[]>`
      SELECT ${this.sql.unsafe(ALL_COLUMNS)} FROM steps s WHERE s.op = ${op} AND s.step > ${after} ORDER BY s.step LIMIT ${limit}`;
    return rows.map(toWire);
  }

  async before(operationId: string, step: number, limit: number, fields?: Fields): Promise<WireStep[]> {
    const op = await this.id(operationId);
    const { columns, toWire } = projected(fields);
    const rows = await this.sql<Row[]>`
      SELECT ${this.sql.unsafe(columns)} FROM steps s WHERE s.op = ${op} AND s.step < ${step} ORDER BY s.step DESC LIMIT ${limit}`;
    return rows.reverse().map(toWire);
  }

  async at(operationId: string, steps: readonly number[], fields?: Fields): Promise<WireStep[]> {
    const op = await this.id(operationId);
    if (steps.length === 0) return [];
    const { columns, toWire } = projected(fields);
    const rows = await this.sql<Row[]>`
      SELECT ${this.sql.unsafe(columns)} FROM steps s WHERE s.op = ${op} AND s.step = ANY(${this.sql.array([...steps], "INT4")}) ORDER BY s.step`;
    return rows.map(toWire);
  }

  async spans(operationId: string, from: number, to: number): Promise<SpanSummary[]> {
    const op = await this.id(operationId);
    const { blocks, edges } = blockCover(from, to);
    const edge = async ([lo, hi]: [number, number]) =>
      summarizeRows(
        (
          await this.sql<Row[]>`
            SELECT ${this.sql.unsafe(ALL_COLUMNS)} FROM steps s WHERE s.op = ${op} AND s.step >= ${lo} AND s.step <= ${hi} ORDER BY s.step`
        ).map(toWire),
        0,
        undefined,
        undefined,
        "step",
      );
    const [whole, ...edgeSpans] = await Promise.all([
      blocks
        ? this.sql<{ summary: string }[]>`
            SELECT summary FROM step_blocks WHERE op = ${op} AND block >= ${blocks[0]} AND block <= ${blocks[1]} ORDER BY block`
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

  async judgement(operationId: string): Promise<StepJudgementState | null> {
    const rows = await this.sql<{ step_judgement: string | null }[]>`
      SELECT step_judgement FROM operations WHERE operation_id = ${operationId}`;
    if (rows.length === 0) throw notFound(operationId);
    const json = rows[0]!.step_judgement;
    return json === null ? null : parseStepJudgement(json);
  }

  async ends(operationId: string): Promise<EpochEnd[]> {
    const rows = await this.sql<{ step_state: string | null }[]>`
      SELECT step_state FROM operations WHERE operation_id = ${operationId}`;
    if (rows.length === 0) throw notFound(operationId);
    return epochEnds(parseStepState(rows[0]!.step_state));
  }
}
