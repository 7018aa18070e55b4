/**
 * The judgement of one stored operation: its wire epochs and summary handed to the trend core's judgeRun, with who
 * holds its checkpoints. Pure; src/operations/reads.ts judgeStored (the analysis route, the compare route and the stop
 * policy via the operations service) judges through here, so a decision quotes exactly what GET …/analysis says.
 */
import { checkpointsOf } from "../schemas/checkpoint.ts";
import { decodeMetric, type WireEpoch } from "../schemas/epoch.ts";
import type { Operation } from "../schemas/operation.ts";
import { checkpointHolding, judgeRun, type Judgement } from "../trends/analysis.ts";
import type { CheckpointHolding, RunStatus } from "../trends/recommend.ts";
import type { EpochPoint, TrendConfig, TrendSummary } from "../trends/types.ts";

/** The losses the judgement reads from a wire epoch. */
export function lossPoint(e: WireEpoch): EpochPoint {
  return {
    epoch: e.epoch,
    train_loss: decodeMetric(e.train_loss),
    val_loss: decodeMetric(e.val_loss),
    train_accuracy: decodeMetric(e.train_accuracy),
    val_accuracy: decodeMetric(e.val_accuracy),
  };
}

/** Who holds `op`'s checkpoints, with `trends` its summary (the one the judgement reads). */
export function holdingOf(op: Operation, trends: TrendSummary = op.trends): CheckpointHolding {
  return checkpointHolding(
    { status: op.status, metadata: op.metadata, trends },
    checkpointsOf(op).map((c) => c.epoch),
  );
}

/** What every judgement of `op` reads of it besides its history: its status, the holding, how it ended. */
export function judgeInput(
  op: Operation,
  holding: CheckpointHolding,
): { status: RunStatus; checkpoints: CheckpointHolding; stop_reason: string | null } {
  const stopReason = op.result?.stop_reason;
  return { status: op.status, checkpoints: holding, stop_reason: typeof stopReason === "string" ? stopReason : null };
}

/** Judges `op` over `epochs` (its full history, ascending) with the thresholds `cfg`. */
export function judgeOperation(op: Operation, epochs: readonly WireEpoch[], cfg: TrendConfig): Judgement {
  return judgeRun({ ...judgeInput(op, holdingOf(op)), epochs: epochs.map(lossPoint), summary: op.trends }, cfg);
}
