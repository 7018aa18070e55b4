/**
 * The one write path for metrics and status: the REST route, the local trainer and
 * the host relay all go through it, and live streams subscribe to it. It keeps no
 * per-client state beyond the listener set.
 */
import type { EpochRecord } from "./schemas/epoch.ts";
import type { Operation } from "./schemas/operation.ts";
import type { Store, WriteResult } from "./store/store.ts";
import type { TrendSummary } from "./trends/types.ts";

export type HubEvent =
  | { type: "epochs"; operation_id: string; records: readonly EpochRecord[]; trends: TrendSummary }
  | { type: "status"; operation_id: string; operation: Operation };

type Listener = (e: HubEvent) => void;

export class Hub {
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(readonly store: Store) {}

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
