/**
 * The one write path for operations: registration, metrics, status and metadata. The REST routes, the local
 * trainer and the host relay all go through it, and live streams subscribe to it, so a new operation or a
 * metadata change (a host training's start report: backend, GPU) reaches open pages without a poll. It keeps
 * no per-client state beyond the listener set. The lifecycle rules themselves live in operations/lifecycle.ts, the stop
 * policy's in operations/stop_policy.ts: after a write of an operation that has a policy and no decision yet, it checks
 * the new summary's flags and records the one stop decision (`control`) when one fires.
 *
 * Events: on a store one process holds (SQLite) the service emits them itself, right after each write. On a store that
 * replicas share (PostgreSQL) each write announces itself inside its own transaction (NOTIFY), and the service relays
 * what every replica committed, this one's writes included, in commit order per operation; so a stream on any replica
 * hears every write once. A live epochs event carries the write's version, so a joining stream can drop what its
 * replay already holds (Fanout.join).
 */
import { encodeEpoch, type EpochRecord, type WireEpoch } from "../schemas/epoch.ts";
import type { CancelInput, Operation, StopControl, StopPolicy } from "../schemas/operation.ts";
import type { FinishOptions, NewOperation, Store, StoreChange, WriteResult } from "../store/store.ts";
import { canCancel, operationFinished } from "./lifecycle.ts";
import { judgeOperation } from "./judgement.ts";
import { cancelControl, decideStop, firedFlags } from "./stop_policy.ts";
import { DEFAULT_TREND_CONFIG, type TrendConfig, type TrendSummary } from "../trends/types.ts";
import { notFound } from "../errors.ts";

export type OperationEvent =
  /** `epochs` is empty when only global listeners hear the operation: they read no epochs. */
  | { type: "epochs"; operation_id: string; version: number; epochs: readonly WireEpoch[]; trends: TrendSummary }
  | { type: "status"; operation_id: string; operation: Operation };

type Listener = (e: OperationEvent) => void;

export class OperationsService {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly resyncListeners = new Set<() => void>();
  /** Per operation, the shared changes still being relayed: one operation's events leave in commit order. */
  private readonly relaying = new Map<string, Promise<void>>();
  private stopListening: (() => Promise<void>) | null = null;

  private readonly trends: TrendConfig;

  /** `opts.trends`: the thresholds the stop policy judges with (the server's, as for the analysis route). */
  constructor(
    readonly store: Store,
    opts: { trends?: TrendConfig } = {},
  ) {
    this.trends = opts.trends ?? DEFAULT_TREND_CONFIG;
  }

  /** On a shared store, starts relaying every replica's changes; resolves once they are heard. Nothing to do otherwise. */
  async start(): Promise<void> {
    if (!this.store.shared || this.stopListening) return;
    this.stopListening = await this.store.shared.listen(
      (c) => this.relay(c),
      () => {
        for (const fn of this.resyncListeners) fn();
      },
    );
  }

  /** Stops relaying, once the changes in flight are out. */
  async stop(): Promise<void> {
    const stop = this.stopListening;
    this.stopListening = null;
    await stop?.();
    await Promise.allSettled([...this.relaying.values()]);
  }

  /**
   * `fn` runs when changes may have been missed (the shared store's listening connection was lost and is back): a
   * stream should then close, and its client reconnect with Last-Event-ID, which replays from the tables.
   */
  onResync(fn: () => void): () => void {
    this.resyncListeners.add(fn);
    return () => this.resyncListeners.delete(fn);
  }

  /** Registers an operation; global streams hear it at once (as an `operation` event). */
  async createOperation(input: NewOperation): Promise<Operation> {
    const op = await this.store.createOperation(input);
    await this.changed(op.operation_id);
    return op;
  }

  /** Merges `patch` into the operation's metadata; its streams hear the whole operation. */
  async mergeMetadata(operationId: string, patch: Record<string, unknown>): Promise<Operation> {
    const op = await this.store.mergeMetadata(operationId, patch);
    await this.changed(operationId);
    return op;
  }

  /**
   * Stores epochs, then (only for an operation with a stop policy and no decision yet: a flag check on the new summary,
   * no read) records the stop decision when the policy fires. `control` of the result is the decision in force.
   */
  async writeEpochs(operationId: string, epochs: EpochRecord[]): Promise<WriteResult> {
    const res = await this.store.writeEpochs(operationId, epochs);
    if (!this.store.shared && this.has(operationId)) {
      // Encoded only for a stream of this operation: the global one reads no epochs.
      const wire = this.listeners.has(operationId) ? epochs.map(encodeEpoch) : [];
      this.emit({ type: "epochs", operation_id: operationId, version: res.version, epochs: wire, trends: res.trends });
    }
    let changed = res.statusChanged;
    if (res.stopPolicy !== null && res.control === null) {
      const decided = await this.judgeStop(operationId, res.stopPolicy, res.trends);
      if (decided) (res.control = decided), (changed = true);
    }
    if (changed) await this.changed(operationId);
    return res;
  }

  /**
   * Sets or (null) clears the stop policy of a pending or running operation. A policy whose flag is already raised
   * decides at once; its streams hear the operation either way.
   */
  async setStopPolicy(operationId: string, policy: StopPolicy | null): Promise<Operation> {
    const op = await this.store.setStopPolicy(operationId, policy);
    if (policy && op.control === null) await this.judgeStop(operationId, policy, op.trends);
    await this.changed(operationId);
    return (await this.store.getOperation(operationId))!;
  }

  /**
   * Cancels a pending or running operation, recording who cancelled and why as its `control`; OPERATION_FINISHED
   * once finished. The trainer is told by the caller (the routes ask the Trainers); a client hears it from the 409.
   */
  async cancel(operationId: string, input: CancelInput = {}): Promise<Operation> {
    const op = await this.store.getOperation(operationId);
    if (!op) throw notFound(operationId);
    if (!canCancel(op)) throw operationFinished(operationId, op.status, op.control);
    return this.finish(operationId, "cancelled", { error_message: null, control: cancelControl(input, op.trends, new Date().toISOString()) });
  }

  /** The stop decision when `policy` fires on `summary` (recorded, not yet published), else null. */
  private async judgeStop(operationId: string, policy: StopPolicy, summary: TrendSummary): Promise<StopControl | null> {
    // The flags are the judgement's own, so this check is exact; the full judgement (for the reason) runs only when one fired.
    if (firedFlags(policy, summary).length === 0) return null;
    const op = (await this.store.getOperation(operationId))!;
    const judgement = judgeOperation(op, await this.store.readEpochs(operationId), this.trends);
    const control = decideStop(policy, summary, judgement, op.control, new Date().toISOString());
    if (control) await this.store.setControl(operationId, control);
    return control;
  }

  /** pending → running, heard by streams. */
  async markStarted(operationId: string): Promise<Operation> {
    const before = (await this.store.getOperation(operationId))?.status;
    const op = await this.store.markStarted(operationId);
    if (before !== op.status) await this.changed(operationId);
    return op;
  }

  /**
   * Publishes the operation's current state to its listeners, on every replica: for a change no write made (a host
   * training that turned stale).
   */
  async statusChanged(operationId: string): Promise<void> {
    if (this.store.shared) return this.store.shared.publishStatus(operationId);
    if (!this.has(operationId)) return;
    const operation = await this.store.getOperation(operationId);
    if (operation) this.emit({ type: "status", operation_id: operationId, operation });
  }

  /** After a write: streams hear it from the service on a store of its own, from the write itself on a shared one. */
  private async changed(operationId: string): Promise<void> {
    if (!this.store.shared) await this.statusChanged(operationId);
  }

  async finish(operationId: string, status: "completed" | "failed" | "cancelled", opts?: FinishOptions): Promise<Operation> {
    const op = await this.store.finish(operationId, status, opts);
    await this.changed(operationId);
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

  /**
   * One change from the shared store, turned into events for this replica's listeners. Changes of one operation are
   * relayed one after the other (an epochs change may need a read), so its events keep commit order.
   */
  private relay(c: StoreChange): void {
    const id = c.operation_id;
    if (c.kind === "progress" || !this.has(id)) return;
    const next = (this.relaying.get(id) ?? Promise.resolve())
      .then(() => this.deliver(c))
      .catch((err) => console.error(`[operations] relaying a change of ${id} failed:`, err))
      .finally(() => {
        if (this.relaying.get(id) === next) this.relaying.delete(id);
      });
    this.relaying.set(id, next);
  }

  private async deliver(c: Exclude<StoreChange, { kind: "progress" }>): Promise<void> {
    const id = c.operation_id;
    if (c.kind === "status") {
      const operation = await this.store.getOperation(id);
      if (operation) this.emit({ type: "status", operation_id: id, operation });
      return;
    }
    // A big batch did not fit the notification: read it, for a stream of this operation only.
    const epochs = !this.listeners.has(id) ? [] : (c.epochs ?? (await this.store.readEpochs(id, c.range[0] - 1, c.range[1])));
    this.emit({ type: "epochs", operation_id: id, version: c.version, epochs, trends: c.trends });
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
