/**
 * The judgement of one stored operation: its wire epochs and summary handed to the trend core's judgeRun, with who
 * holds its checkpoints. Pure; the analysis route and the stop policy (via the operations service) both judge through
 * here, so a decision quotes exactly what GET /operations/{id}/analysis says.
 */
import { checkpointsOf } from "../schemas/checkpoint.ts";
import { decodeMetric, type WireEpoch } from "../schemas/epoch.ts";
import type { Operation } from "../schemas/operation.ts";
import { checkpointHolding, judgeRun, type Judgement } from "../trends/analysis.ts";
import type { EpochPoint, TrendConfig } from "../trends/types.ts";

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

/** Judges `op` over `epochs` (its full history, ascending) with the thresholds `cfg`. */
export function judgeOperation(op: Operation, epochs: readonly WireEpoch[], cfg: TrendConfig): Judgement {
  const stopReason = op.result?.stop_reason;
  return judgeRun(
    {
      status: op.status,
      epochs: epochs.map(lossPoint),
      summary: op.trends,
      checkpoints: checkpointHolding(
        op,
        checkpointsOf(op).map((c) => c.epoch),
      ),
      stop_reason: typeof stopReason === "string" ? stopReason : null,
    },
    cfg,
  );
}
