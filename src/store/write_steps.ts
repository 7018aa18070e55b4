/**
 * How a batch of steps is written, for both stores, the way write_epochs.ts writes epochs: one algorithm, as a generator
 * of I/O steps over a StepWriter each store implements with its SQL alone (SQLite runs it synchronously in its
 * immediate transaction, PostgreSQL awaits it inside `sql.begin`). In one transaction: the lifecycle check and the
 * revive, the custom-metric-name bound (one list with the epochs'), the rows (replacing stored copies), the step chart
 * blocks, the step state (src/operations/step_epochs.ts: the open epoch's running sums, each epoch's span) and
 * steps_completed, pending → running and the liveness stamp; then the records of the epochs the batch closed, through
 * the ordinary epoch write (writeEpochs), so trends, judgement, stop policy, epoch blocks and streams see them. The
 * work is proportional to the rows written: a re-posted step's stored copy is read only when the batch does not lie
 * past every stored step, and an epoch is summed again from its own rows only when its sums cannot be updated.
 * The step judgement (src/trends/step_judgement.ts) is advanced over the batch's rows in the same transaction and saved
 * on the row (step_judgement), and an operation with a stop policy and no decision gets its stop decision here, from
 * the step flags, so the reply to the step that raised the flag carries it.
 * Pure: no I/O of its own.
 */
import {
  canAcceptMetrics,
  canAcceptRows,
  isRevivable,
  operationFinished,
  takesByGrace,
} from "../operations/lifecycle.ts";
import {
  advanceSteps,
  closeOpen,
  EMPTY_STEP_STATE,
  settle,
  type EpochRead,
  type StepState,
} from "../operations/step_epochs.ts";
import type { EpochRecord } from "../schemas/epoch.ts";
import { admitMetricNames } from "../schemas/metric.ts";
import type { StopControl, StopPolicy } from "../schemas/operation.ts";
import { stepStopDecision } from "../operations/step_judgement.ts";
import {
  advanceStepJudgement,
  emptyStepJudgement,
  stepVerdict,
  type StepJudgementState,
} from "../trends/step_judgement.ts";
import { raisedFlags, stepFlags } from "../alerts/rules.ts";
import type { StepPoint } from "../trends/step_types.ts";
import { decodeStep, type StepRecord, type WireStep } from "../schemas/step.ts";
import type { SpanSummary } from "../trends/downsample.ts";
import { EMPTY_SUMMARY, type TrendSummary } from "../trends/types.ts";
import { appendToBlock, blocksOf, byBlock, summarizeBlock } from "./blocks.ts";
import type { StepWriteResult } from "./store.ts";
import {
  cadenceAfter,
  alertRules,
  customColumn,
  decision,
  keyedBatch,
  step,
  writeEpochs,
  type EpochWriter,
  type Io,
  type Steps,
  type WriteContext,
  type WriteRow,
} from "./write_epochs.ts";

/** The operation row a step write locks: the epoch write's, with the step state. */
export interface StepRow extends WriteRow {
  /** src/operations/step_epochs.ts StepState as JSON; null before any step. */
  step_state: string | null;
  /** src/trends/step_judgement.ts StepJudgementState as JSON; null before any step. */
  step_judgement: string | null;
}

/** One stored step of a batch: its last copy, its timestamp in ms, and the custom metrics column. */
export interface StepBatchRow {
  s: StepRecord;
  ts: number;
  custom: string | null;
}

/** A batch as the write stores it, built before the transaction opens. */
export interface StepBatch {
  /** As posted: a live stream sees these. */
  steps: readonly StepRecord[];
  /** One per distinct step, its last copy, ascending by step. */
  rows: StepBatchRow[];
  /** The smallest step number (Infinity for an empty batch). */
  minStep: number;
  /** The steps by chart block (src/store/blocks.ts). */
  blocks: Map<number, StepRecord[]>;
}

/** What a step write saves on the operation row and its blocks, in the same transaction. */
export interface SavedSteps {
  state: StepState;
  /** The step judgement after the batch; null: unchanged (a close at finish). */
  judgement: StepJudgementState | null;
  /** A stop decision the step judgement took in this write (the row has none yet); null: none. */
  control: StopControl | null;
  /** The new custom metric name list; null: unchanged. */
  names: string[] | null;
  revived: boolean;
  started: boolean;
  /** started_at when it starts, and last_seen_at. */
  at: Date;
  /** The row cadence after the write (cadenceAfter); null: unchanged (a close at finish). */
  cadence: string | null;
  blocks: Map<number, SpanSummary>;
  batch: StepBatch;
}

/** A store's part of a step write: its SQL alone, inside the transaction the store opened. */
export interface StepWriter<R extends StepRow> {
  /** Locks and reads the operation's row (NOT_FOUND when unknown), with its stored step blocks among `blocks`. */
  lock(operationId: string, blocks: number[]): Io<{ op: R; blocks: Map<number, SpanSummary> }>;
  /** The stored copies of `steps` (those that exist), in wire form, before the batch replaces them. */
  stored(op: R, steps: number[]): Io<WireStep[]>;
  /**
   * Stores the batch's rows (`fresh`: every one lies past the stored steps, none can conflict), then reads back the
   * rows of `blocks` (wire form, ascending) to summarise them again.
   */
  insert(op: R, batch: StepBatch, fresh: boolean, blocks: number[]): Io<WireStep[]>;
  /** The stored steps from … to of epoch `read.epoch`, in wire form, ascending. */
  epochSteps(op: R, read: EpochRead): Io<WireStep[]>;
  /** Saves the write on the row (step state, steps_completed, names, revive, start, last_seen) and the step blocks; returns the step version, 0 when counted later. */
  save(op: R, write: SavedSteps): Io<number>;
}

/** The batch's rows: a batch's last copy of a step wins (keyedBatch), ascending by step, each with its timestamp_ms. */
export function stepBatch(steps: readonly StepRecord[]): StepBatch {
  const { rows, min } = keyedBatch(
    steps,
    (s) => s.step,
    (s, ts): StepBatchRow => ({
      s: s.timestamp_ms === undefined ? { ...s, timestamp_ms: ts } : s,
      ts,
      custom: null,
    }),
  );
  rows.sort((a, b) => a.s.step - b.s.step);
  return { steps, rows, minStep: min, blocks: byBlock(steps, "step") };
}

/** The stored step judgement, or the empty one. */
export const parseStepJudgement = (json: string | null): StepJudgementState =>
  json === null ? emptyStepJudgement() : (JSON.parse(json) as StepJudgementState);

/** What the step rules read of a stored step. */
export const stepPoint = (s: StepRecord): StepPoint => ({
  step: s.step,
  epoch: s.epoch,
  train_loss: s.train_loss,
  val_loss: s.val_loss,
  grad_norm: s.grad_norm,
  duration: s.duration,
});

/** The stored step state, or the empty one. */
export const parseStepState = (json: string | null): StepState =>
  json === null ? EMPTY_STEP_STATE : (JSON.parse(json) as StepState);

/** Wire rows read back, as records (the derivation sums numbers). */
const records = (rows: readonly WireStep[]) => rows.map((r) => decodeStep(r, r.timestamp!, "stored"));

/**
 * The rows the name bound checks: the steps, and the custom `step` every derived epoch record carries (counted with the
 * first step that names an epoch, so a bound it would pass names that step).
 */
function namedRows(steps: readonly StepRecord[]): readonly StepRecord[] {
  const i = steps.findIndex((s) => s.epoch !== undefined);
  if (i < 0) return steps;
  const out = steps.slice();
  out[i] = { ...steps[i]!, custom: { ...steps[i]!.custom, step: 0 } };
  return out;
}

/**
 * Store.writeSteps, once for both stores: refuses a finished operation (OPERATION_FINISHED; a cancelled one still takes
 * the steps of the epoch in progress at the cancel, canAcceptRows, and closes that epoch at once) and, before any row, a
 * batch past the custom metric name limit (VALIDATION_ERROR naming `body.steps.<i>.<name>`); stores the rows and the
 * step blocks; advances the step state; writes the records of the epochs it closed through writeEpochs over `epochs`.
 */
export function* writeSteps<R extends StepRow, E extends WriteRow>(
  writer: StepWriter<R>,
  epochs: EpochWriter<E>,
  operationId: string,
  steps: readonly StepRecord[],
  ctx: WriteContext,
): Steps<StepWriteResult> {
  const { op, blocks: stored } = yield* step(writer.lock(operationId, blocksOf(steps, "step")));
  const held = decision(op);
  // A cancelled operation still takes the steps of the epoch in progress at the cancel (lifecycle.ts canAcceptRows).
  if (!canAcceptRows({ ...op, control: held }, steps)) throw operationFinished(operationId, op.status, held);
  const names = admitMetricNames(() => JSON.parse(op.metric_names) as string[], namedRows(steps), undefined, "steps");
  // Built once the name bound admitted the batch, as writeEpochs does.
  const batch = stepBatch(steps);
  for (const r of batch.rows) r.custom = customColumn(r.s.custom);
  const revived = isRevivable(op);
  const prev = parseStepState(op.step_state);
  const fresh = batch.minStep > prev.max;
  const replaced = fresh
    ? []
    : records(
        yield* step(
          writer.stored(
            op,
            batch.rows.map((r) => r.s.step),
          ),
        ),
      );
  const blocks = new Map<number, SpanSummary | null>();
  for (const [b, rows] of batch.blocks) blocks.set(b, appendToBlock(stored.get(b) ?? null, rows, "step"));
  const redo = [...blocks].filter(([, v]) => v === null).map(([b]) => b);
  const blockRows = yield* step(writer.insert(op, batch, fresh, redo));
  for (const b of redo) blocks.set(b, summarizeBlock(blockRows, b, "step"));

  const advance = advanceSteps(
    prev,
    batch.rows.map((r) => r.s),
    replaced,
  );
  const closed = [...advance.closed];
  for (const read of advance.reread) {
    const record = settle(advance.state, read.epoch, records(yield* step(writer.epochSteps(op, read))));
    if (record) closed.push(record);
  }
  // A cancelled operation's grace steps: no finish will close their epoch, so it closes now (a later one re-sums it).
  if (takesByGrace({ ...op, control: held })) {
    const close = closeOpen(advance.state);
    advance.state = close.state;
    if (close.record) closed.push(close.record);
  }
  const prevJudgement = parseStepJudgement(op.step_judgement);
  const judgement = advanceStepJudgement(
    prevJudgement,
    batch.rows.map((r) => stepPoint(r.s)),
  );
  const control = decideOnSteps(op, judgement, ctx);
  const at = ctx.now();
  const version = yield* step(
    writer.save(op, {
      state: advance.state,
      judgement,
      control,
      names,
      revived,
      started: op.status === "pending",
      at,
      cadence: batch.rows.length === 0 ? null : cadenceAfter(op.cadence, at),
      blocks: blocks as Map<number, SpanSummary>,
      batch,
    }),
  );
  const derived = closed.length > 0 ? yield* writeDerived(epochs, operationId, closed, ctx) : null;
  // A step run is judged on its steps (the analysis's flags are the step verdict's), so its alerts are too: the flags
  // its derived epochs raise are not its own. The verdict before the batch is built again: a bounded state, not rows.
  const verdict = stepVerdict(judgement);
  return {
    stored: batch.steps.length,
    trends: derived?.trends ?? summaryOf(op),
    revived,
    version,
    statusChanged: revived || op.status === "pending" || control !== null,
    stopPolicy: op.stop_policy === null ? null : (JSON.parse(op.stop_policy) as StopPolicy),
    control: control ?? derived?.control ?? held,
    epochs: derived && { records: derived.records, version: derived.version },
    raised: raisedFlags(stepFlags(stepVerdict(prevJudgement).flags), stepFlags(verdict.flags)),
    raisedAt: { epoch: judgement.epoch, step: verdict.last_step },
    alertRules: alertRules(op),
    decided: control !== null,
  };
}

/** The stop decision the step judgement takes in this write (stepStopDecision), for an operation with a policy and none yet. */
function decideOnSteps(op: StepRow, judgement: StepJudgementState, ctx: WriteContext): StopControl | null {
  if (op.stop_policy === null || op.control !== null) return null;
  return stepStopDecision(JSON.parse(op.stop_policy) as StopPolicy, judgement, op.status, ctx.now().toISOString());
}

/**
 * At finish: the open epoch closes, its derived record written through writeEpochs (null when none is open, or the
 * operation no longer takes metrics). The caller finishes the operation afterwards.
 */
export function* closeSteps<R extends StepRow, E extends WriteRow>(
  writer: StepWriter<R>,
  epochs: EpochWriter<E>,
  operationId: string,
  ctx: WriteContext,
): Steps<StepWriteResult["epochs"]> {
  const { op } = yield* step(writer.lock(operationId, []));
  if (!canAcceptMetrics(op)) return null;
  const { state, record } = closeOpen(parseStepState(op.step_state));
  if (record === null) return null;
  const empty: StepBatch = { steps: [], rows: [], minStep: Infinity, blocks: new Map() };
  yield* step(
    writer.save(op, {
      state,
      judgement: null,
      control: null,
      names: null,
      revived: false,
      started: false,
      at: ctx.now(),
      cadence: null,
      blocks: new Map(),
      batch: empty,
    }),
  );
  const derived = yield* writeDerived(epochs, operationId, [record], ctx);
  return { records: derived.records, version: derived.version };
}

function* writeDerived<E extends WriteRow>(
  epochs: EpochWriter<E>,
  operationId: string,
  closed: EpochRecord[],
  ctx: WriteContext,
): Steps<{ records: EpochRecord[]; trends: TrendSummary; version: number; control: StopControl | null }> {
  const records = closed.sort((a, b) => a.epoch - b.epoch);
  const res = yield* writeEpochs(epochs, operationId, records, { ...ctx, derived: true });
  return { records, trends: res.trends, version: res.version, control: res.control };
}

const summaryOf = (op: WriteRow): TrendSummary => ({
  ...EMPTY_SUMMARY,
  ...(JSON.parse(op.summary) as TrendSummary),
});
