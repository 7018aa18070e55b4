/**
 * What the API reads of one operation, composed from the store's read-only view and the pure rules: its metrics view
 * (GET /operations/{id}/metrics, each run of a comparison's curves) with the range a request asks for, and its
 * analysis (GET /operations/{id}/analysis, each run of a comparison). The routes only validate and reply.
 */
import { invalid } from "../errors.ts";
import type { Analysis } from "../schemas/analysis.ts";
import type { WireEpoch } from "../schemas/epoch.ts";
import type { MetricsReply, Operation, StepsReply } from "../schemas/operation.ts";
import { readChart, readSeries, stepSeries, type ChartQuery } from "../store/charts.ts";
import type { StoreReader } from "../store/store.ts";
import type { TrendConfig } from "../trends/types.ts";
import { judgeOperation } from "./judgement.ts";
import { withStepJudgement } from "./step_judgement.ts";

/** What the range parameters (RangeQuery, src/schemas/query.ts) ask of a chart read. */
export type RangeParams = Pick<ChartQuery, "from" | "to" | "smoothing" | "fields">;

/**
 * The chart query of a request's range parameters (`from_epoch`/`to_epoch`, or `from_step`/`to_step` for `unit`
 * "step"): `fields` split on commas, repeats dropped, order kept. A range that ends before it starts is a 400 naming
 * `query.to_epoch` (`query.to_step`).
 */
export function rangeOf(
  q: { smoothing?: number; fields?: string } & { [K in `${"from" | "to"}_${"epoch" | "step"}`]?: number },
  unit: "epoch" | "step" = "epoch",
): RangeParams {
  const from = q[`from_${unit}`];
  const to = q[`to_${unit}`];
  if (from !== undefined && to !== undefined && to < from) {
    throw invalid(`query.to_${unit}`, `to_${unit} (${to}) is before from_${unit} (${from})`);
  }
  const fields = q.fields === undefined ? undefined : [...new Set(q.fields.split(","))];
  return { from, to, smoothing: q.smoothing, ...(fields && { fields }) };
}

/** The metrics reply for a loaded operation: the epochs of the range, optionally reduced and smoothed; trends cover the whole history. */
export async function metricsView(
  store: StoreReader,
  op: Operation,
  query: Omit<ChartQuery, "keepEpoch"> = {},
): Promise<MetricsReply> {
  const { epochs, smoothed } = await readChart(store, op.operation_id, { ...query, keepEpoch: op.trends.best_epoch });
  const { latest_epoch: _latest, ...trends } = op.trends;
  return {
    operation_id: op.operation_id,
    operation_type: op.operation_type,
    status: op.status,
    metrics: { epochs, ...trends, total_epochs_planned: op.progress.total_epochs, ...(smoothed && { smoothed }) },
  };
}

/** The steps reply for a loaded operation: the steps of the range, optionally reduced and smoothed, and the epoch ends. */
export async function stepsView(
  store: StoreReader,
  op: Operation,
  query: Omit<ChartQuery, "keepEpoch"> = {},
): Promise<StepsReply> {
  const [{ rows, smoothed }, ends] = await Promise.all([
    readSeries(stepSeries(store, op.operation_id), query),
    store.epochEnds(op.operation_id),
  ]);
  return {
    operation_id: op.operation_id,
    status: op.status,
    steps: rows,
    ...(smoothed && { smoothed }),
    total_steps_planned: op.progress.total_steps ?? null,
    epoch_ends: ends,
  };
}

/** Judges a loaded operation over its full history; also returns the wire epochs read, for callers that chart them. */
export async function analyzeOperation(
  store: StoreReader,
  op: Operation,
  cfg: TrendConfig,
): Promise<{ analysis: Analysis; epochs: WireEpoch[] }> {
  const [epochs, steps] = await Promise.all([
    store.readEpochs(op.operation_id),
    op.progress.steps_completed ? store.readStepJudgement(op.operation_id) : null,
  ]);
  const j = judgeOperation(op, epochs, cfg);
  const analysis = withStepJudgement(
    {
      operation_id: op.operation_id,
      operation_type: op.operation_type,
      status: op.status,
      epochs_completed: op.trends.total_epochs_completed,
      total_epochs_planned: op.progress.total_epochs,
      ...j,
      final: epochs[epochs.length - 1] ?? null,
    },
    steps,
  );
  return { analysis, epochs };
}
