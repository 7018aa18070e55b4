/**
 * The one write path for operations: registration, metrics, status and metadata. The REST routes, the local
 * trainer and the host relay all go through it, and live streams subscribe to it, so a new operation or a
 * metadata change (a host training's start report: backend, GPU) reaches open pages without a poll. It keeps
 * no per-client state beyond the listener set. The lifecycle rules themselves live in operations/lifecycle.ts.
 */
import type { EpochRecord } from "./schemas/epoch.ts";
import type { Operation } from "./schemas/operation.ts";
import type { NewOperation, Store, WriteResult } from "./store/store.ts";
import type { TrendSummary } from "./trends/types.ts";

export type HubEvent =
  | { type: "epochs"; operation_id: string; records: readonly EpochRecord[]; trends: TrendSummary }
  | { type: "status"; operation_id: string; operation: Operation };

type Listener = (e: HubEvent) => void;

export class Hub {
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(readonly store: Store) {}

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

  writeEpochs(operationId: string, epochs: EpochRecord[]): WriteResult {
    const res = this.store.writeEpochs(operationId, epochs);
    if (this.has(operationId)) {
      // Records, not wire epochs: only a listener that sends them (an SSE channel) pays for encoding.
      this.emit({ type: "epochs", operation_id: operationId, records: epochs, trends: res.trends });
    }
    if (res.statusChanged) this.statusChanged(operationId);
    return res;
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

  private emit(e: HubEvent): void {
    for (const key of [e.operation_id, "*"]) {
      for (const fn of this.listeners.get(key) ?? []) {
        try {
          fn(e);
        } catch (err) {
          console.error(`[hub] listener failed for ${e.operation_id}:`, err);
        }
      }
    }
  }
}
