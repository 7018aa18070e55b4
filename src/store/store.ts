/** The storage seam: what routes, trainers and the relay need from persistence. */
import type { EpochRecord, WireEpoch } from "../schemas/epoch.ts";
import type { Operation, OperationStatus, StopControl, StopPolicy } from "../schemas/operation.ts";
import type { FailureCode } from "../operations/lifecycle.ts";
import type { TrendSummary } from "../trends/types.ts";
import type { SpanSummary } from "../trends/downsample.ts";

export interface NewOperation {
  operation_type: string;
  name?: string | null;
  total_epochs_planned?: number | null;
  metadata?: Record<string, unknown>;
  status?: "pending" | "running";
  /** The trainer's hyper-parameters, as given. */
  config?: Record<string, unknown> | null;
  stop_policy?: StopPolicy | null;
}

export interface FinishOptions {
  error_message?: string | null;
  result?: Record<string, unknown> | null;
  failure_code?: FailureCode | null;
  /** The stop decision to record with the finish (a cancel's). */
  control?: StopControl | null;
}

export interface ListFilter {
  status?: OperationStatus;
  operation_type?: string;
  limit: number;
  offset: number;
}

export interface WriteResult {
  stored: number;
  trends: TrendSummary;
  /** True when this write brought a host-unreachable operation back to running. */
  revived: boolean;
  /** True when the write changed the status (pending or revived → running). */
  statusChanged: boolean;
  /** The operation's stop policy and recorded decision, read with the row the write locked (no extra query). */
  stopPolicy: StopPolicy | null;
  control: StopControl | null;
}

/** Declared once, by the wire schema the heartbeat validates (src/schemas/host.ts). */
import type { BatchProgress } from "../schemas/host.ts";
export type { BatchProgress };

export interface Store {
  createOperation(input: NewOperation): Operation;
  /**
   * Removes an operation that never began: still pending, no epochs. A start refused after the
   * operation was created (no host took it) leaves nothing behind. Returns false, and removes
   * nothing, once the operation has moved on (cancelled meanwhile, started, or with epochs).
   */
  discardOperation(operationId: string): boolean;
  /** Null when unknown. */
  getOperation(operationId: string): Operation | null;
  listOperations(filter: ListFilter): { items: Operation[]; total: number };
  /** Stores epochs in one transaction (replace on same epoch); refuses finished operations. */
  writeEpochs(operationId: string, epochs: EpochRecord[]): WriteResult;
  /** Wire-form epochs with `sinceEpoch < epoch ≤ untilEpoch` (default: all), ascending. */
  readEpochs(operationId: string, sinceEpoch?: number, untilEpoch?: number): WireEpoch[];
  /** The `limit` epochs just before `epoch` (epoch < it), ascending: the warm-up of a smoothed range. */
  readEpochsBefore(operationId: string, epoch: number, limit: number): WireEpoch[];
  /** The stored epochs among `epochs`, ascending (unknown ones are left out). */
  readEpochsAt(operationId: string, epochs: readonly number[]): WireEpoch[];
  /**
   * Chart summaries of consecutive spans covering the stored epochs in fromEpoch … toEpoch (inclusive), ascending, for
   * src/trends/downsample.ts pickEpochs: a long run reduces from its summaries without reading its rows.
   */
  epochSpans(operationId: string, fromEpoch: number, toEpoch: number): SpanSummary[];
  /** Marks pending → running. */
  markStarted(operationId: string): Operation;
  /** Moves to a finished status; throws OPERATION_FINISHED if already finished. */
  finish(
    operationId: string,
    status: "completed" | "failed" | "cancelled",
    opts?: FinishOptions,
  ): Operation;
  /** Sets (or, with null, clears) the stop policy of a pending or running operation; OPERATION_FINISHED otherwise. */
  setStopPolicy(operationId: string, policy: StopPolicy | null): Operation;
  /** Records the stop decision (replacing any before it). */
  setControl(operationId: string, control: StopControl): void;
  mergeMetadata(operationId: string, patch: Record<string, unknown>): Operation;
  /** Records the operation's result (also after it was cancelled). */
  setResult(operationId: string, result: Record<string, unknown>): void;
  setBatchProgress(operationId: string, progress: BatchProgress | null): void;
  /** Records that a remote trainer is alive (epochs and heartbeats both count). */
  touch(operationId: string, atMs?: number): void;
  /** Running host operations silent since before `cutoffMs`. */
  staleHostOperations(cutoffMs: number): string[];
  /** Marks operations left running/pending by a previous server process as failed. */
  failInterrupted(where: (op: Operation) => boolean, message: string): string[];
  close(): void;
}

/** Start of the message a silent host leaves (the full one names the host and the timeout). */
export const HOST_UNREACHABLE = "training host unreachable";

/** Heartbeats count as late after 1.5 intervals without one: one missed beat plus slack for a slow relay call. */
export const lateAfterMs = (heartbeatMs: number) => 1.5 * heartbeatMs;

/**
 * True while a running host training's heartbeats are late: nothing (epoch or heartbeat) heard from its host for
 * longer than `lateAfterMs`. Local trainings and operations posted by clients are never stale.
 */
export function isStale(op: { status: string; metadata: Record<string, unknown> }, lastSeenMs: number | null, nowMs: number, lateAfterMs: number): boolean {
  return op.status === "running" && op.metadata.location === "host" && nowMs - (lastSeenMs ?? 0) > lateAfterMs;
}
