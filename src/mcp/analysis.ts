/**
 * The one composition behind `analyze_training` and `compare_runs` (and so behind both agents): the full history from the
 * typed client, judged by the shared trend core. The API's own summary is reused, so flags always match the dashboard.
 */
import type { MetricsReply, TrainwatchClient } from "../client/api.ts";
import { decodeMetric, type WireEpoch } from "../schemas/epoch.ts";
import type { OperationStatus } from "../schemas/operation.ts";
import { generalizationGap, recommend, trajectoryOf, type Recommendation, type Trajectory } from "../trends/recommend.ts";
import type { EpochPoint, Monitor, TrendSummary } from "../trends/types.ts";

export interface TrainingAnalysis {
  operation_id: string;
  operation_type: string;
  status: OperationStatus;
  epochs_completed: number;
  total_epochs_planned: number | null;
  /** The loss being judged: val_loss when the run reports one, else train_loss; null before any finite loss. */
  monitor: Monitor | null;
  best_epoch: number | null;
  best_value: number | null;
  /** best_epoch − the first stored epoch: how many epochs past the first it took to reach the best (as GET /operations/compare reports it). */
  epochs_to_best: number | null;
  epochs_since_improvement: number | null;
  flags: { overfitting: boolean; plateau: boolean; diverging: boolean };
  trajectory: { trajectory: Trajectory; slope: number | null; relative_change: number | null };
  generalization_gap: ReturnType<typeof generalizationGap>;
  /** The last stored epoch as the API reports it, or null without epochs. */
  final: WireEpoch | null;
  recommendation: Recommendation;
}

/** Judges one full metrics reply (no since_epoch, no max_points). Pure. */
export function analyzeHistory(reply: MetricsReply): TrainingAnalysis {
  const m = reply.metrics;
  const epochs: EpochPoint[] = m.epochs.map((e) => ({
    epoch: e.epoch,
    train_loss: decodeMetric(e.train_loss),
    val_loss: decodeMetric(e.val_loss),
    train_accuracy: decodeMetric(e.train_accuracy),
    val_accuracy: decodeMetric(e.val_accuracy),
  }));
  const final = m.epochs.length ? m.epochs.reduce((a, b) => (b.epoch > a.epoch ? b : a)) : null;
  const first = m.epochs.length ? m.epochs.reduce((lo, e) => Math.min(lo, e.epoch), Infinity) : null;
  const summary: TrendSummary = {
    monitor: m.monitor,
    best_epoch: m.best_epoch,
    best_val_loss: m.best_val_loss,
    epochs_since_improvement: m.epochs_since_improvement,
    is_overfitting: m.is_overfitting,
    is_plateaued: m.is_plateaued,
    is_diverging: m.is_diverging,
    latest_epoch: final?.epoch ?? null,
    total_epochs_completed: m.total_epochs_completed,
  };
  return {
    operation_id: reply.operation_id,
    operation_type: reply.operation_type,
    status: reply.status,
    epochs_completed: m.total_epochs_completed,
    total_epochs_planned: m.total_epochs_planned,
    monitor: m.monitor,
    best_epoch: m.best_epoch,
    best_value: m.best_val_loss,
    epochs_to_best: m.best_epoch === null || first === null ? null : m.best_epoch - first,
    epochs_since_improvement: m.epochs_since_improvement,
    flags: { overfitting: m.is_overfitting, plateau: m.is_plateaued, diverging: m.is_diverging },
    trajectory: trajectoryOf(epochs, m.monitor),
    generalization_gap: generalizationGap(epochs),
    final,
    recommendation: recommend({ status: reply.status, epochs, summary }),
  };
}

/** Fetches the operation's full history and analyzes it. Throws the client's ApiError (unknown operation, unreachable API). */
export async function analyzeOperation(client: TrainwatchClient, operationId: string): Promise<TrainingAnalysis> {
  return analyzeHistory(await client.getMetrics(operationId));
}

/** Which of several analysed runs is best, and why in one sentence (used by GET /operations/compare, hence compare_runs). */
export interface Ranking {
  /** null when no run has a finite loss. */
  best_run: string | null;
  basis: string;
}

/**
 * Ranks analysed runs: runs monitoring val_loss are compared among themselves when any has one (a training loss is not
 * comparable to a validation loss); the lowest best value wins, and a tie goes to the run with fewer epochs to best.
 */
export function compareAnalyses(analyses: readonly TrainingAnalysis[]): Ranking {
  const scored = analyses.filter((a) => a.best_value !== null && a.epochs_to_best !== null && a.monitor !== null);
  const monitor: Monitor | null = scored.some((a) => a.monitor === "val_loss") ? "val_loss" : scored.length ? "train_loss" : null;
  const pool = scored.filter((a) => a.monitor === monitor);
  if (pool.length === 0) return { best_run: null, basis: "No run has a finite loss yet, so none can be ranked." };
  const winner = pool.reduce((a, b) =>
    b.best_value! < a.best_value! || (b.best_value === a.best_value && b.epochs_to_best! < a.epochs_to_best!) ? b : a,
  );
  const skipped = analyses.length - pool.length;
  const basis =
    `${winner.operation_id} has the lowest best ${monitor}, ${winner.best_value!.toFixed(4)} at epoch ${winner.best_epoch}` +
    (pool.length > 1 ? `, of ${pool.length} comparable runs` : "") +
    (skipped ? `; ${skipped} run(s) without a finite ${monitor} were not ranked` : "") +
    ".";
  return { best_run: winner.operation_id, basis };
}
