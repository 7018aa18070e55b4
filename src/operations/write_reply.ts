/**
 * The reply to a metrics write, one for both series (POST /operations/{id}/metrics and POST /operations/{id}/steps):
 * the MetricsWriteReply data, whose `control` is the recorded stop decision or "continue". Pure.
 */
import type { StopControl } from "../schemas/operation.ts";
import type { TrendSummary } from "../trends/types.ts";
import { CONTINUE } from "./stop_policy.ts";

/** What a write reports that its reply carries (Store WriteResult, StepWriteResult). */
export interface WriteOutcome {
  stored: number;
  trends: TrendSummary;
  control: StopControl | null;
}

/** The MetricsWriteReply data of a write of operation `operationId` that reported `res`. */
export const writeReply = (operationId: string, res: WriteOutcome) => ({
  operation_id: operationId,
  stored: res.stored,
  trends: res.trends,
  control: res.control ?? CONTINUE,
});
