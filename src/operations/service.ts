/**
 * The one write path for operations: registration, metrics, status and metadata. The REST routes, the local
 * trainer and the host relay all go through it, and live streams subscribe to it, so a new operation or a
 * metadata change (a host training's start report: backend, GPU) reaches open pages without a poll. It keeps
 * no per-client state beyond the listener set. The lifecycle rules themselves live in operations/lifecycle.ts, the stop
 * policy's in operations/stop_policy.ts: after a write of an operation that has a policy and no decision yet, it checks
 * the new summary's flags and records the one stop decision (`control`) when one fires.
 */
import type { EpochRecord } from "../schemas/epoch.ts";
import type { CancelInput, Operation, StopControl, StopPolicy } from "../schemas/operation.ts";
import type { NewOperation, Store, WriteResult } from "../store/store.ts";
import { canCancel, operationFinished } from "./lifecycle.ts";
import { judgeOperation } from "./judgement.ts";
import { cancelControl, decideStop, firedFlags } from "./stop_policy.ts";
import { DEFAULT_TREND_CONFIG, type TrendConfig, type TrendSummary } from "../trends/types.ts";
import { notFound } from "../errors.ts";

export type OperationEvent =
  | { type: "epochs"; operation_id: string; records: readonly EpochRecord[]; trends: TrendSummary }
  | { type: "status"; operation_id: string; operation: Operation };

type Listener = (e: OperationEvent) => void;

export class OperationsService {
  private readonly listeners = new Map<string, Set<Listener>>();

  private readonly trends: TrendConfig;

  /** `opts.trends`: the thresholds the stop policy judges with (the server's, as for the analysis route). */
  constructor(
    readonly store: Store,
    opts: { trends?: TrendConfig } = {},
  ) {
    this.trends = opts.trends ?? DEFAULT_TREND_CONFIG;
  }

  /** Registers an operation; global streams hear it at once (as an `operation` event). */
  createOperation(input: NewOperation): Operation {
    const op = this.store.createOperation(input);
    this.statusChanged(op.operation_id);
    return op;
  }

  /** Merges `patch` into the operation's metadata; its streams hear the whole operation. */
  mergeMetadata(operationId: string, patch: Record<string, unknown>): Operation {
    const op = this.store.mergeMetadata(operationId, patch);
    this.statusChanged(operationId);
    return op;
  }

  /**
   * Stores epochs, then (only for an operation with a stop policy and no decision yet: a flag check on the new summary,
   * no read) records the stop decision when the policy fires. `control` of the result is the decision in force.
   */
  writeEpochs(operationId: string, epochs: EpochRecord[]): WriteResult {
    const res = this.store.writeEpochs(operationId, epochs);
    if (this.has(operationId)) {
      // Records, not wire epochs: only a listener that sends them (an SSE channel) pays for encoding.
      this.emit({ type: "epochs", operation_id: operationId, records: epochs, trends: res.trends });
    }
    let changed = res.statusChanged;
    if (res.stopPolicy !== null && res.control === null) {
      const decided = this.judgeStop(operationId, res.stopPolicy, res.trends);
      if (decided) (res.control = decided), (changed = true);
    }
    if (changed) this.statusChanged(operationId);
    return res;
  }

  /**
   * Sets or (null) clears the stop policy of a pending or running operation. A policy whose flag is already raised
   * decides at once; its streams hear the operation either way.
   */
  setStopPolicy(operationId: string, policy: StopPolicy | null): Operation {
    const op = this.store.setStopPolicy(operationId, policy);
    if (policy && op.control === null) this.judgeStop(operationId, policy, op.trends);
    this.statusChanged(operationId);
    return this.store.getOperation(operationId)!;
  }

  /**
   * Cancels a pending or running operation, recording who cancelled and why as its `control`; OPERATION_FINISHED
   * once finished. The trainer is told by the caller (the routes ask the Trainers); a client hears it from the 409.
   */
  cancel(operationId: string, input: CancelInput = {}): Operation {
    const op = this.store.getOperation(operationId);
    if (!op) throw notFound(operationId);
    if (!canCancel(op)) throw operationFinished(operationId, op.status, op.control);
    return this.finish(operationId, "cancelled", { error_message: null, control: cancelControl(input, op.trends, new Date().toISOString()) });
  }

  /** The stop decision when `policy` fires on `summary` (recorded, not yet published), else null. */
  private judgeStop(operationId: string, policy: StopPolicy, summary: TrendSummary): StopControl | null {
    // The flags are the judgement's own, so this check is exact; the full judgement (for the reason) runs only when one fired.
    if (firedFlags(policy, summary).length === 0) return null;
    const op = this.store.getOperation(operationId)!;
    const judgement = judgeOperation(op, this.store.readEpochs(operationId), this.trends);
    const control = decideStop(policy, summary, judgement, op.control, new Date().toISOString());
    if (control) this.store.setControl(operationId, control);
    return control;
  }

  /** pending → running, heard by streams. */
  markStarted(operationId: string): Operation {
    const before = this.store.getOperation(operationId)?.status;
    const op = this.store.markStarted(operationId);
    if (before !== op.status) this.statusChanged(operationId);
    return op;
  }

  /** Publishes the operation's current state to its listeners. */
  statusChanged(operationId: string): void {
    if (!this.has(operationId)) return;
    const operation = this.store.getOperation(operationId);
    if (operation) this.emit({ type: "status", operation_id: operationId, operation });
  }

  finish(operationId: string, status: "completed" | "failed" | "cancelled", opts?: Parameters<Store["finish"]>[2]): Operation {
    const op = this.store.finish(operationId, status, opts);
    this.statusChanged(operationId);
    return op;
  }

  /** `operationId` "*" hears every operation. Returns the unsubscribe function. */
  subscribe(operationId: string, fn: Listener): () => void {
    let set = this.listeners.get(operationId);
    if (!set) this.listeners.set(operationId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.listeners.delete(operationId);
    };
  }

  private has(operationId: string): boolean {
    return this.listeners.has(operationId) || this.listeners.has("*");
  }

  private emit(e: OperationEvent): void {
    for (const key of [e.operation_id, "*"]) {
      for (const fn of this.listeners.get(key) ?? []) {
        try {
          fn(e);
        } catch (err) {
          console.error(`[operations] listener failed for ${e.operation_id}:`, err);
        }
      }
    }
  }
}
