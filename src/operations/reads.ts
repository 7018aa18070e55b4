/**
 * What the API reads of one operation, composed from the store's read-only view and the pure rules: its metrics view
 * (GET /operations/{id}/metrics, each run of a comparison's curves) with the range a request asks for, and its
 * analysis (GET /operations/{id}/analysis, each run of a comparison). The routes only validate and reply.
 */
import { adviceOnLiveness } from "./liveness.ts";
import { describeUtilisation } from "./utilisation.ts";
import { invalid, notFound } from "../errors.ts";
import type { Analysis } from "../schemas/analysis.ts";
import type { WireEpoch } from "../schemas/epoch.ts";
import type { MetricsReply, Operation, StepsReply } from "../schemas/operation.ts";
import { readChart, readSeries, stepSeries, type ChartQuery } from "../store/charts.ts";
import type { Store, StoreReader } from "../store/store.ts";
import { parseState } from "../store/write_epochs.ts";
import { judgeKept, judgeRun, type Judgement } from "../trends/analysis.ts";
import type { CheckpointPoint } from "../trends/checkpoint.ts";
import { isFiniteLoss, RECENT_EPOCHS } from "../trends/history.ts";
import { decodeJudge, emptyJudgeState, judgeStateFits, judgeStateOf } from "../trends/judgement_state.ts";
import { advanceState } from "../trends/summary.ts";
import {
  EMPTY_STATE,
  EMPTY_SUMMARY,
  type EpochPoint,
  type Monitor,
  type TrendConfig,
  type TrendSummary,
} from "../trends/types.ts";
import { holdingOf, judgeInput, lossPoint } from "./judgement.ts";
import { withStepJudgement, type JudgedAnalysis } from "./step_judgement.ts";

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
    readSeries(stepSeries(store, op.operation_id, op.progress.steps_pruned_at !== undefined), query),
    store.epochEnds(op.operation_id),
  ]);
  return {
    operation_id: op.operation_id,
    status: op.status,
    steps: rows,
    ...(smoothed && { smoothed }),
    total_steps_planned: op.progress.total_steps ?? null,
    epoch_ends: ends,
    ...(op.progress.steps_pruned_at !== undefined && { steps_pruned_at: op.progress.steps_pruned_at }),
  };
}

/** The columns the judgement reads of the recent epochs. */
const LOSSES = ["train_loss", "val_loss"] as const;

/** What a judgement read needs of the store: the stored judgement, a bounded tail, and (once, for a row from before it) its history. */
export type JudgementStore = Pick<
  Store,
  "readJudgement" | "keepJudgement" | "readEpochs" | "readEpochsBefore" | "readEpochPage"
>;

/**
 * The judgement of a loaded operation, read from what its writes kept (src/trends/judgement_state.ts) and its last
 * RECENT_EPOCHS (64) stored epochs: the reply judging its whole history would give, at the same cost at any length.
 * A Trainwatch holding's checkpoint epochs are read with their neighbours (at most four). An operation whose row keeps
 * no judgement yet (one from before migration 8 / PostgreSQL 6) is judged from its history once, and the state is kept
 * for the next read (Store.keepJudgement); so is the rare one judgeKept cannot decide. `final` is the last stored epoch.
 */
export async function judgeStored(
  store: JudgementStore,
  op: Operation,
  cfg: TrendConfig,
): Promise<{ judgement: Judgement; trends: TrendSummary; final: WireEpoch | null; first: number | null }> {
  const id = op.operation_id;
  const row = await store.readJudgement(id);
  if (row === null) throw notFound(id);
  const trends: TrendSummary = { ...EMPTY_SUMMARY, ...(JSON.parse(row.summary) as TrendSummary) };
  const latest = trends.latest_epoch;
  // The losses of the last RECENT_EPOCHS epochs alone (their other columns are not read), and the last one whole.
  const [losses, last] =
    latest === null
      ? [[], []]
      : await Promise.all([
          store.readEpochsBefore(id, latest + 1, RECENT_EPOCHS, LOSSES),
          store.readEpochsBefore(id, latest + 1, 1),
        ]);
  const recent = losses.map(lossPoint);
  const final = last[0] ?? null;
  const holding = holdingOf(op, trends);
  const state = parseState(row.best_json);
  // No epoch yet (a new operation, a step run before its first epoch closes): nothing to keep, the empty state judges it.
  const kept =
    decodeJudge(row.judgement) ?? (trends.total_epochs_completed === 0 ? emptyJudgeState(trends.monitor, cfg) : null);
  if (state !== null && judgeStateFits(kept, trends.monitor, cfg)) {
    const candidates =
      holding.held_by === "trainwatch" && trends.monitor !== null
        ? await candidatePoints(store, id, holding.epochs, recent, trends.monitor, kept.first_epoch)
        : undefined;
    const j = judgeKept({ ...judgeInput(op, holding), summary: trends, state, kept, recent, candidates }, cfg);
    if (j !== null) return { judgement: j, trends, final, first: kept.first_epoch };
  }
  const history = (await store.readEpochs(id)).map(lossPoint);
  if (latest === null || history[history.length - 1]?.epoch === latest) {
    const full = advanceState(EMPTY_STATE, history, trends.monitor);
    if (!judgeStateFits(kept, trends.monitor, cfg) || state === null)
      await store.keepJudgement(id, row, full, judgeStateOf(history, trends.monitor, full.best, cfg));
  }
  const judgement = judgeRun({ ...judgeInput(op, holding), epochs: history, summary: trends }, cfg);
  return { judgement, trends, final, first: history[0]?.epoch ?? null };
}

/**
 * Each of `epochs` (a Trainwatch holding's checkpoint epochs) that is stored with a finite `monitor`, with its stored
 * neighbours: from `recent` (the last stored epochs, ascending) when it lies there with its predecessor, else read
 * (the epoch and the one before it, and the one after).
 */
async function candidatePoints(
  store: JudgementStore,
  id: string,
  epochs: readonly number[],
  recent: readonly EpochPoint[],
  monitor: Monitor,
  first: number | null,
): Promise<CheckpointPoint[]> {
  const value = (p: EpochPoint | undefined) => {
    const v = p?.[monitor];
    return isFiniteLoss(v) ? v : null;
  };
  const points = await Promise.all(
    [...new Set(epochs)].map(async (epoch): Promise<CheckpointPoint | null> => {
      const i = recent.findIndex((p) => p.epoch === epoch);
      if (i > 0 || (i === 0 && epoch === first)) {
        const v = value(recent[i]);
        return v === null ? null : { epoch, value: v, prev: value(recent[i - 1]), next: value(recent[i + 1]) };
      }
      const [upTo, after] = await Promise.all([
        store.readEpochsBefore(id, epoch + 1, 2),
        store.readEpochPage(id, epoch, 1),
      ]);
      const at = upTo[upTo.length - 1];
      const v = at?.epoch === epoch ? value(lossPoint(at)) : null;
      if (v === null) return null;
      const before = upTo.length === 2 ? lossPoint(upTo[0]!) : undefined;
      return { epoch, value: v, prev: value(before), next: value(after[0] && lossPoint(after[0])) };
    }),
  );
  return points.filter((p): p is CheckpointPoint => p !== null);
}

/**
 * The analysis with the operation's liveness laid over it (read O(1) from its row): the stale and hung flags,
 * `liveness`, on a hung run the utilisation its latest system sample shows (describeUtilisation), and a recommendation
 * that says to check the trainer while it is stale or hung (adviceOnLiveness).
 */
export const withLiveness = (
  judged: JudgedAnalysis,
  op: Pick<Operation, "stale" | "hung" | "liveness">,
  utilisation?: string,
): Analysis => ({
  ...judged,
  flags: { ...judged.flags, stale: op.stale, hung: op.hung },
  liveness: op.liveness && utilisation !== undefined ? { ...op.liveness, utilisation } : op.liveness,
  recommendation: adviceOnLiveness(judged.recommendation, op, utilisation),
});

/** Judges a loaded operation from its stored judgement (judgeStored): the analysis reply, and its first stored epoch. */
export async function analyzeOperation(
  store: JudgementStore & Pick<Store, "readStepJudgement" | "latestSystemSample">,
  op: Operation,
  cfg: TrendConfig,
): Promise<{ analysis: Analysis; first: number | null }> {
  // A step run is judged on its steps too (src/operations/step_judgement.ts): its kept step judgement, one more row read.
  // A hung run's reply cites its utilisation: one more row, read only then.
  const [{ judgement, trends, final, first }, steps, sample] = await Promise.all([
    judgeStored(store, op, cfg),
    op.progress.steps_completed ? store.readStepJudgement(op.operation_id) : null,
    op.hung ? store.latestSystemSample(op.operation_id) : null,
  ]);
  const analysis = withStepJudgement(
    {
      operation_id: op.operation_id,
      operation_type: op.operation_type,
      status: op.status,
      epochs_completed: trends.total_epochs_completed,
      total_epochs_planned: op.progress.total_epochs,
      ...judgement,
      final,
    },
    steps,
  );
  return { analysis: withLiveness(analysis, op, describeUtilisation(sample, Date.now())), first };
}
