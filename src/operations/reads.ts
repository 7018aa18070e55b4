/**
 * What the API reads of one operation, composed from the store's read-only view and the pure rules: its metrics view
 * (GET /operations/{id}/metrics, each run of a comparison's curves) with the range a request asks for, and its
 * analysis (GET /operations/{id}/analysis, each run of a comparison). The routes only validate and reply.
 */
import { invalid } from "../errors.ts";
import type { Analysis } from "../schemas/analysis.ts";
import type { WireEpoch } from "../schemas/epoch.ts";
import type { MetricsReply, Operation } from "../schemas/operation.ts";
import { readChart, type ChartQuery } from "../store/charts.ts";
import type { StoreReader } from "../store/store.ts";
import type { TrendConfig } from "../trends/types.ts";
import { judgeOperation } from "./judgement.ts";

/** What the range parameters (RangeQuery, src/schemas/query.ts) ask of a chart read. */
export type RangeParams = Pick<ChartQuery, "from" | "to" | "smoothing" | "fields">;

/**
 * The chart query of a request's range parameters: `fields` split on commas, repeats dropped, order kept. A range
 * that ends before it starts is a 400 naming `query.to_epoch`.
 */
export function rangeOf(q: {
  from_epoch?: number;
  to_epoch?: number;
  smoothing?: number;
  fields?: string;
}): RangeParams {
  if (q.from_epoch !== undefined && q.to_epoch !== undefined && q.to_epoch < q.from_epoch) {
    throw invalid("query.to_epoch", `to_epoch (${q.to_epoch}) is before from_epoch (${q.from_epoch})`);
  }
  const fields = q.fields === undefined ? undefined : [...new Set(q.fields.split(","))];
  return { from: q.from_epoch, to: q.to_epoch, smoothing: q.smoothing, ...(fields && { fields }) };
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

/** Judges a loaded operation over its full history; also returns the wire epochs read, for callers that chart them. */
export async function analyzeOperation(
  store: StoreReader,
  op: Operation,
  cfg: TrendConfig,
): Promise<{ analysis: Analysis; epochs: WireEpoch[] }> {
  const epochs = await store.readEpochs(op.operation_id);
  const j = judgeOperation(op, epochs, cfg);
  const analysis: Analysis = {
    operation_id: op.operation_id,
    operation_type: op.operation_type,
    status: op.status,
    epochs_completed: op.trends.total_epochs_completed,
    total_epochs_planned: op.progress.total_epochs,
    ...j,
    final: epochs[epochs.length - 1] ?? null,
  };
  return { analysis, epochs };
}
