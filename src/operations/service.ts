/**
 * The operations service: the one write path for operations (registration, metrics, status, metadata, liveness, batch
 * progress, result, discard, interrupted-recovery). The store is private to it: the REST routes, the trainers, the
 * host relay and the watchdog write only through it and read through its read-only view (`reader`). Every write is
 * heard by live streams, so a new operation, a host training's start report (backend, GPU) or its progress reaches
 * open pages without a poll. It keeps no per-client state beyond the listener set. The lifecycle rules themselves live in operations/lifecycle.ts, the stop
 * policy's in operations/stop_policy.ts: after a write of an operation that has a policy and no decision yet, it checks
 * the new summary's flags and records the one stop decision (`control`) when one fires.
 *
 * Events: on a store one process holds (SQLite) the service emits them itself, right after each write. On a store that
 * replicas share (PostgreSQL) each write announces itself once committed (NOTIFY, src/store/pg_announce.ts), and the
 * service relays what every replica committed, this one's writes included; so a stream on any replica hears every
 * write. A live write event carries its version, so a stream drops what its replay already holds and puts writes heard
 * out of order back in order (src/operations/stream_order.ts); a finish carries the versions it follows. Since a
 * notification may never come (a replica that died between its commit and its NOTIFY), the service reads the versions
 * of the operations that have streams here every `versionCheckMs` (one query) and hands them to the streams, which
 * replay from the tables what they waited for in vain.
 *
 * Alerts (issue 24): after each write the service hands the Alerts shell (src/alerts/service.ts, `alerts`) what the
 * write raised: the flags (WriteResult.raised), the thresholds the batch crossed, a stop decision recorded, a status
 * reached. The shell records them in the outbox (an insert); the delivery worker sends them. Streams hear an `alert`.
 */
import { every, type Periodic } from "./periodic.ts";
import type { LabelsInput } from "../schemas/labels.ts";
import { encodeEpoch, type EpochRecord, type WireEpoch } from "../schemas/epoch.ts";
import { encodeStep, type StepRecord, type WireStep } from "../schemas/step.ts";
import type {
  CancelInput,
  CompleteOperationInput,
  Operation,
  OperationStatus,
  StopControl,
  StopPolicy,
} from "../schemas/operation.ts";
import type {
  BatchProgress,
  ExecutionPatch,
  FinishOptions,
  NewOperation,
  Store,
  StoreChange,
  StoreReader,
  StepWriteResult,
  Versions,
  WriteResult,
} from "../store/store.ts";
import { loadOperation } from "../store/load.ts";
import { canCancel, operationFinished } from "./lifecycle.ts";
import type { HungDetail } from "./liveness.ts";
import { judgeStored } from "./reads.ts";
import { stepStopDecision } from "./step_judgement.ts";
import { cancelControl, decideStop, firedFlags } from "./stop_policy.ts";
import type { StepJudgementState } from "../trends/step_judgement.ts";
import { DEFAULT_TREND_CONFIG, type TrendConfig, type TrendSummary } from "../trends/types.ts";
import { notFound } from "../errors.ts";
import type { SystemRecord, SystemSample } from "../schemas/system.ts";
import { Alerts, NO_CHANNELS, type AlertSettings } from "../alerts/service.ts";
import { crossings } from "../alerts/rules.ts";
import type { AlertFact } from "../alerts/payload.ts";
import type { Alert, AlertRules, AlertRulesView } from "../schemas/alert.ts";

export type OperationEvent =
  /** `epochs` is empty when only global listeners hear the operation: they read no epochs. */
  | { type: "epochs"; operation_id: string; version: number; epochs: readonly WireEpoch[]; trends: TrendSummary }
  /** A step write; `steps` is empty when only global listeners that read no epochs hear the operation, as for epochs. */
  | { type: "steps"; operation_id: string; version: number; steps: readonly WireStep[] }
  /** `after`: a finish's, the versions of the writes it follows (a stream ends once they are out). */
  | { type: "status"; operation_id: string; operation: Operation; after?: Versions }
  /** The versions the tables hold (the relay's periodic check, shared stores only): for the operation's streams. */
  | { type: "versions"; operation_id: string; versions: Versions }
  /** Changed without a status change (liveness, batch progress, a late result): lists refresh it, throttled. */
  | { type: "changed"; operation_id: string }
  /** System samples stored (issue 24): for the operation's own streams (global listeners hear the touch as `changed`). */
  | { type: "system"; operation_id: string; samples: readonly SystemSample[] }
  /** Gone: a start refused after its operation was created (no host took it). */
  | { type: "removed"; operation_id: string }
  /** An alert about the operation was recorded (src/alerts/service.ts). */
  | { type: "alert"; operation_id: string; alert: Alert };

type Listener = (e: OperationEvent) => void;

export class OperationsService {
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Global listeners that asked for every operation's epochs (the TensorBoard mirror); the others get none. */
  private epochsEverywhere = 0;
  private readonly resyncListeners = new Set<() => void>();
  /** Per operation, the shared changes still being relayed: one operation's events leave in the order heard. */
  private readonly relaying = new Map<string, Promise<void>>();
  private stopListening: (() => Promise<void>) | null = null;
  private versionCheck: Periodic | null = null;
  private readonly versionCheckMs: number;

  private readonly trends: TrendConfig;

  /** The Alerts shell: the liveness watchdog raises `hung` through it (`alerts.raise`); the delivery worker listens. */
  readonly alerts: Alerts;

  /**
   * `opts.trends`: the thresholds the stop policy judges with (the server's, as for the analysis route); `opts.alerts`:
   * the server's alert settings (default: the default events, no channel); `opts.versionCheckMs`: on a shared store,
   * the period of the version check (checkVersions; default 1 s; 0: only when called).
   */
  constructor(
    private readonly store: Store,
    opts: { trends?: TrendConfig; alerts?: AlertSettings; versionCheckMs?: number } = {},
  ) {
    this.trends = opts.trends ?? DEFAULT_TREND_CONFIG;
    this.versionCheckMs = opts.versionCheckMs ?? 1_000;
    this.alerts = new Alerts(store, opts.alerts ?? NO_CHANNELS, { trends: this.trends, shared: store.shared !== null });
    this.alerts.onAlert((alert) => {
      const id = alert.alert.operation.id;
      if (this.has(id)) this.emit({ type: "alert", operation_id: id, alert });
    });
  }

  /** The store's reads (the same store, typed without its writes). */
  get reader(): StoreReader {
    return this.store;
  }

  /** True when replicas share the store (their changes arrive through it, not from this service). */
  get shared(): boolean {
    return this.store.shared !== null;
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
    // One check at a time (a slow database: the next comes soon enough), on the leader jobs' periodic loop.
    if (this.versionCheckMs > 0)
      this.versionCheck = every(this.versionCheckMs, () => this.checkVersions(), "[operations] the version check");
  }

  /**
   * The version check of a shared store: the versions of every operation with a listener of its own here, read in one
   * query, handed to those listeners as a `versions` event after the changes being relayed (each stream compares them
   * with what it sent: StreamOrder.check). Cheap: one indexed read per check, whatever the runs' lengths.
   */
  async checkVersions(): Promise<void> {
    const shared = this.store.shared;
    if (!shared) return;
    const ids = [...this.listeners.keys()].filter((k) => k !== "*");
    if (ids.length === 0) return;
    const known = await shared.versions(ids);
    const handed: Promise<void>[] = [];
    for (const [id, versions] of known) {
      if (!this.listeners.has(id)) continue;
      // In line with the relay: after the changes of `id` heard before the read.
      handed.push(this.enqueue(id, async () => this.emit({ type: "versions", operation_id: id, versions })));
    }
    await Promise.all(handed);
  }

  /** Stops relaying, once the changes in flight are out. */
  async stop(): Promise<void> {
    const stop = this.stopListening;
    this.stopListening = null;
    const check = this.versionCheck;
    this.versionCheck = null;
    await check?.stop();
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

  /** Changes the operation's tags and group (Store.setLabels), in any status; its streams hear the whole operation. */
  async setLabels(operationId: string, patch: LabelsInput): Promise<Operation> {
    const op = await this.store.setLabels(operationId, patch);
    await this.changed(operationId);
    return op;
  }

  /**
   * Records the executor's id of the run (Store.setExecution), once its executor has one (a Slurm job id, a process
   * group); its streams hear the whole operation.
   */
  async setExternalId(operationId: string, externalId: string | null): Promise<Operation> {
    return this.setExecution(operationId, { external_id: externalId });
  }

  /**
   * Why a pending operation waits and its place in its executor's queue (null: no longer says), as the executor last
   * said; streams hear the operation, so an open page shows "pending (Resources), 3rd in the queue" without a poll. Read
   * only while the operation is pending (a started one shows neither), so nothing has to clear it on start.
   */
  async setPending(
    operationId: string,
    pending: { reason: string | null; position: number | null } | null,
  ): Promise<Operation> {
    return this.setExecution(operationId, {
      pending_reason: pending?.reason ?? null,
      queue_position: pending?.position ?? null,
    });
  }

  private async setExecution(operationId: string, patch: ExecutionPatch): Promise<Operation> {
    const op = await this.store.setExecution(operationId, patch);
    await this.changed(operationId);
    return op;
  }

  /**
   * Stores epochs, then (only for an operation with a stop policy and no decision yet: a flag check on the new summary,
   * no read) records the stop decision when the policy fires. `control` of the result is the decision in force.
   */
  async writeEpochs(operationId: string, epochs: EpochRecord[]): Promise<WriteResult> {
    const res = await this.store.writeEpochs(operationId, epochs);
    if (!this.store.shared && this.has(operationId)) this.emitEpochs(operationId, epochs, res.version, res.trends);
    let changed = res.statusChanged;
    let decided = false;
    if (res.stopPolicy !== null && res.control === null) {
      const control = await this.judgeStop(operationId, res.stopPolicy, res.trends);
      if (control) (res.control = control), (changed = decided = true);
    }
    await this.alertOnWrite(operationId, res, epochs, decided);
    if (changed) await this.changed(operationId);
    return res;
  }

  /**
   * What a metrics write raised, handed to the Alerts shell: its flags, where it raised them, the thresholds its batch
   * crossed, and a stop decision it recorded. A failure is logged with the operation id; the write stands.
   */
  private async alertOnWrite(
    operationId: string,
    res: WriteResult,
    rows: readonly (EpochRecord | StepRecord)[],
    decided: boolean,
  ): Promise<void> {
    const facts: AlertFact[] = res.raised.map((event) => ({
      kind: "flag",
      event,
      operation_id: operationId,
      epoch: res.raisedAt.epoch,
      step: res.raisedAt.step,
    }));
    for (const crossing of crossings(res.alertRules?.thresholds ?? [], rows))
      facts.push({ kind: "threshold", operation_id: operationId, crossing });
    if (decided) facts.push({ kind: "status", event: "stopped", operation_id: operationId });
    for (const fact of facts) await this.raise(fact, res.alertRules);
  }

  /** Raises `fact` (Alerts.raise), logging a failure with the operation id instead of failing the caller's write. */
  private async raise(fact: AlertFact, rules?: AlertRules | null): Promise<void> {
    try {
      await this.alerts.raise(fact, rules);
    } catch (err) {
      console.error(`[alerts] ${fact.operation_id}: recording a ${fact.kind} alert failed:`, err);
    }
  }

  /** Sets (null clears) the run's alert rules; OPERATION_NOT_FOUND for an unknown id. Returns them as the API shows them. */
  async setAlertRules(operationId: string, rules: AlertRules | null): Promise<AlertRulesView> {
    await this.store.alerts.setAlertRules(operationId, rules);
    return this.alerts.view(operationId, rules);
  }

  /**
   * Stores steps (Store.writeSteps), and through them the records of the epochs they closed; streams hear the steps,
   * then those epochs. The stop policy of a step run is judged on its steps, inside the write (src/store/write_steps.ts):
   * `control` of the result is already the decision in force, and streams hear the operation when one was taken.
   */
  async writeSteps(operationId: string, steps: StepRecord[]): Promise<StepWriteResult> {
    const res = await this.store.writeSteps(operationId, steps);
    if (!this.store.shared && this.has(operationId)) {
      // As epochs: for the operation's own streams, and a global listener that asked (the TensorBoard mirror).
      const wire = this.wantsEpochs(operationId) ? steps.map(encodeStep) : [];
      this.emit({ type: "steps", operation_id: operationId, version: res.version, steps: wire });
      if (res.epochs) this.emitEpochs(operationId, res.epochs.records, res.epochs.version, res.trends);
    }
    await this.alertOnWrite(operationId, res, steps, res.decided);
    if (res.statusChanged) await this.changed(operationId);
    return res;
  }

  /**
   * Stores system samples (Store.writeSystemSamples: OPERATION_FINISHED once the operation takes no metrics); the write
   * is a sign of life (touch), and the operation's streams hear the samples as a `system` event. Returns how many.
   */
  async writeSystem(
    operationId: string,
    rows: readonly SystemRecord[],
    samples: readonly SystemSample[],
  ): Promise<number> {
    const stored = await this.store.writeSystemSamples(operationId, rows);
    if (!this.store.shared && this.listeners.has(operationId))
      this.emit({ type: "system", operation_id: operationId, samples });
    await this.touch(operationId);
    return stored;
  }

  /** An epochs event of a write this process made (a store of its own; a shared one relays its own). */
  private emitEpochs(operationId: string, epochs: readonly EpochRecord[], version: number, trends: TrendSummary): void {
    // Encoded only for a listener that reads them: a stream of this operation, or a global one that asked.
    const wire = this.wantsEpochs(operationId) ? epochs.map(encodeEpoch) : [];
    this.emit({ type: "epochs", operation_id: operationId, version, epochs: wire, trends });
  }

  /**
   * Sets or (null) clears the stop policy of a pending or running operation. A policy whose flag is already raised
   * decides at once: a step run's on its step judgement, by the rule its step writes apply (stepStopDecision), an epoch
   * run's on its summary; its streams hear the operation either way.
   */
  async setStopPolicy(operationId: string, policy: StopPolicy | null): Promise<Operation> {
    const op = await this.store.setStopPolicy(operationId, policy);
    if (policy && op.control === null) {
      const steps = op.progress.steps_completed ? await this.store.readStepJudgement(operationId) : null;
      const decided =
        steps !== null && steps.steps > 0
          ? await this.judgeStepStop(operationId, policy, steps, op.status)
          : await this.judgeStop(operationId, policy, op.trends);
      if (decided) await this.raise({ kind: "status", event: "stopped", operation_id: operationId });
    }
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
    return this.finish(operationId, "cancelled", {
      error_message: null,
      control: cancelControl(
        input,
        op.trends,
        new Date().toISOString(),
        op.progress.steps_completed ? op.progress.steps_completed - 1 : null,
      ),
    });
  }

  /** The stop decision when `policy` fires on `summary` (recorded, not yet published), else null. */
  private async judgeStop(operationId: string, policy: StopPolicy, summary: TrendSummary): Promise<StopControl | null> {
    // The flags are the judgement's own, so this check is exact; the full judgement (for the reason) runs only when one fired.
    if (firedFlags(policy, summary).length === 0) return null;
    const op = (await this.store.getOperation(operationId))!;
    const { judgement } = await judgeStored(this.store, op, this.trends);
    const control = decideStop(policy, summary, judgement, op.control, new Date().toISOString());
    if (control) await this.store.setControl(operationId, control);
    return control;
  }

  /** A step run's stop decision when `policy` fires on its step judgement `state` (recorded, not yet published), else null. */
  private async judgeStepStop(
    operationId: string,
    policy: StopPolicy,
    state: StepJudgementState,
    status: OperationStatus,
  ): Promise<StopControl | null> {
    const control = stepStopDecision(policy, state, status, new Date().toISOString());
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

  /**
   * Finishes the operation; a step run's open epoch closes first (its derived record written, streams hearing it). A
   * step written between the two is stored, but its epoch stays open: a trainer finishes after its last step.
   */
  async finish(
    operationId: string,
    status: "completed" | "failed" | "cancelled",
    opts?: FinishOptions,
  ): Promise<Operation> {
    const closed = await this.store.closeSteps(operationId);
    if (closed && !this.store.shared && this.has(operationId)) {
      const trends = (await this.store.getOperation(operationId))!.trends;
      this.emitEpochs(operationId, closed.records, closed.version, trends);
    }
    const op = await this.store.finish(operationId, status, opts);
    await this.alertFinished(op);
    await this.changed(operationId);
    return op;
  }

  /** The status an operation reached, as an alert: `lost` for a failure the liveness watchdog recorded as such. */
  private async alertFinished(op: Operation): Promise<void> {
    const status = op.status;
    if (status !== "completed" && status !== "failed" && status !== "cancelled") return;
    const event = status === "failed" && (op.failure_code as string | null) === "lost" ? "lost" : status;
    await this.raise({ kind: "status", event, operation_id: op.operation_id });
  }

  /**
   * A trainer's report that it finished (POST /operations/{id}/complete). `cancelled` on an operation already cancelled
   * only records `result` when one is given (a GPU host reports the checkpoints of a training the API cancelled;
   * a retry replaces it). Otherwise the operation finishes with `status` (OPERATION_FINISHED once finished): `failed`
   * with `error_message` (default "failed") and `failure_code` (default null); `completed` and `cancelled` with
   * `error_message` when given (default null) and no failure code; `result` default null. OPERATION_NOT_FOUND for an
   * unknown id.
   */
  async complete(operationId: string, input: CompleteOperationInput): Promise<Operation> {
    const op = await loadOperation(this.store, operationId);
    if (input.status === "cancelled" && op.status === "cancelled") {
      return input.result ? this.setResult(operationId, input.result) : op;
    }
    const failed = input.status === "failed";
    return this.finish(operationId, input.status, {
      error_message: failed ? (input.error_message ?? "failed") : (input.error_message ?? null),
      failure_code: failed ? (input.failure_code ?? null) : null,
      result: input.result ?? null,
    });
  }

  /**
   * A remote trainer is alive (a host's or a client's heartbeat); lists hear the fresh `last_seen_at`. `watch`: a
   * client's heartbeat, which makes the run watched (Store.touch).
   */
  async touch(operationId: string, atMs?: number, watch?: boolean): Promise<void> {
    await this.store.touch(operationId, atMs, watch);
    this.noted(operationId);
  }

  /**
   * A liveness flag was raised on a run without a write (the client watchdog saw it turn `hung`): streams hear the
   * operation (it now reads `hung: true`), and the `hung` alert is raised with the watchdog's reason (its silence
   * against the usual interval, and the utilisation), at the run's last step (a step run) or epoch. The watchdog raises
   * a flag once per turn; the alert's id (where it hung) keeps a run that hangs again at the same place to one alert.
   */
  async flagRaised(operationId: string, detail: HungDetail): Promise<void> {
    await this.statusChanged(operationId);
    const op = await this.store.getOperation(operationId);
    if (!op) return;
    const steps = op.progress.steps_completed ?? 0;
    await this.raise({
      kind: "flag",
      event: detail.flag,
      operation_id: operationId,
      epoch: steps > 0 ? null : op.trends.latest_epoch,
      step: steps > 0 ? steps - 1 : null,
      reason: detail.reason,
    });
  }

  /**
   * Batches done inside the running epoch (in memory; at most 4 a second per training); lists hear it, throttled. On a
   * shared store the progress notification itself is relayed (relay()).
   */
  async setBatchProgress(operationId: string, progress: BatchProgress | null): Promise<void> {
    await this.store.setBatchProgress(operationId, progress);
    this.noted(operationId);
  }

  /** Records a result (also on an operation already finished: a cancelled training's checkpoints). */
  async setResult(operationId: string, result: Record<string, unknown>): Promise<Operation> {
    await this.store.setResult(operationId, result);
    this.noted(operationId);
    return (await this.store.getOperation(operationId))!;
  }

  /** Removes an operation that never began (Store.discardOperation); lists hear it is gone (on every replica). */
  async discardOperation(operationId: string): Promise<boolean> {
    const gone = await this.store.discardOperation(operationId);
    if (gone && !this.store.shared && this.has(operationId)) this.emit({ type: "removed", operation_id: operationId });
    return gone;
  }

  /** Fails what a previous process left pending or running (at start and at shutdown); streams hear each. */
  async failInterrupted(where: (op: Operation) => boolean, message: string): Promise<string[]> {
    const ids = await this.store.failInterrupted(where, message);
    for (const id of ids) {
      const op = await this.store.getOperation(id);
      if (op) await this.alertFinished(op);
      await this.changed(id);
    }
    return ids;
  }

  /** A change lists show but that is no status change: heard as `changed` here (a shared store relays its own). */
  private noted(operationId: string): void {
    if (!this.store.shared && this.has(operationId)) this.emit({ type: "changed", operation_id: operationId });
  }

  /**
   * `operationId` "*" hears every operation; its `epochs` and `steps` events carry no rows unless a global listener
   * subscribed with `opts.epochs` (then all hear the same event). A cost on every write while one does: the epochs are encoded,
   * and read back on a shared store when a notification lacked them.
   * Returns the unsubscribe function.
   */
  subscribe(operationId: string, fn: Listener, opts: { epochs?: boolean } = {}): () => void {
    let set = this.listeners.get(operationId);
    if (!set) this.listeners.set(operationId, (set = new Set()));
    set.add(fn);
    const everywhere = operationId === "*" && opts.epochs === true;
    if (everywhere) this.epochsEverywhere++;
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      if (everywhere) this.epochsEverywhere--;
      set.delete(fn);
      if (set.size === 0) this.listeners.delete(operationId);
    };
  }

  /**
   * One change from the shared store, turned into events for this replica's listeners. Changes of one operation are
   * relayed one after the other (an epochs change may need a read), so its events keep the order they were heard in
   * (each stream restores version order: src/operations/stream_order.ts).
   */
  private relay(c: StoreChange): void {
    const id = c.operation_id;
    // An alert is heard without a stream too: the delivery worker listens (Alerts.onAlert).
    if (!this.has(id) && c.kind !== "alert") return;
    // Progress and liveness need no read and no order: lists re-read the operation when their throttle fires.
    if (c.kind === "progress" || c.kind === "changed") return this.emit({ type: "changed", operation_id: id });
    this.enqueue(id, () => this.deliver(c));
  }

  /** Runs `fn` after the relay work of operation `id` already queued, so one operation's events keep their order. */
  private enqueue(id: string, fn: () => Promise<void>): Promise<void> {
    const next = (this.relaying.get(id) ?? Promise.resolve())
      .then(fn)
      .catch((err) => console.error(`[operations] relaying a change of ${id} failed:`, err))
      .finally(() => {
        if (this.relaying.get(id) === next) this.relaying.delete(id);
      });
    this.relaying.set(id, next);
    return next;
  }

  private async deliver(c: Exclude<StoreChange, { kind: "progress" | "changed" }>): Promise<void> {
    const id = c.operation_id;
    // After the events before it: a status read that finds nothing is not sent, so `removed` comes last.
    if (c.kind === "removed") return this.emit({ type: "removed", operation_id: id });
    if (c.kind === "alert") {
      const alert = await this.store.alerts.getAlert(c.alert_id);
      if (alert) this.alerts.heard(alert);
      return;
    }
    if (c.kind === "status") {
      const operation = await this.store.getOperation(id);
      if (operation) this.emit({ type: "status", operation_id: id, operation, after: c.after });
      return;
    }
    if (c.kind === "system") {
      // Only the operation's own streams chart the samples; a big batch is read back from its range.
      if (!this.listeners.has(id)) return;
      const samples =
        c.samples ??
        (await this.store.readSystemSamples(id, { since: c.range[0] - 1, until: c.range[1], limit: 1_000 }));
      return this.emit({ type: "system", operation_id: id, samples });
    }
    if (c.kind === "steps") {
      // Steps are read only for the operation's own streams and a global listener that asked, as epochs.
      const steps = !this.wantsEpochs(id)
        ? []
        : (c.steps ?? (await this.store.readSteps(id, c.range[0] - 1, c.range[1])));
      return this.emit({ type: "steps", operation_id: id, version: c.version, steps });
    }
    // A big batch did not fit the notification: read it, for a listener that reads epochs only.
    const epochs = !this.wantsEpochs(id)
      ? []
      : (c.epochs ?? (await this.store.readEpochs(id, c.range[0] - 1, c.range[1])));
    this.emit({ type: "epochs", operation_id: id, version: c.version, epochs, trends: c.trends });
  }

  private has(operationId: string): boolean {
    return this.listeners.has(operationId) || this.listeners.has("*");
  }

  private wantsEpochs(operationId: string): boolean {
    return this.listeners.has(operationId) || this.epochsEverywhere > 0;
  }

  /** To the operation's listeners and the global ones (a `versions` event only to the operation's own). */
  private emit(e: OperationEvent): void {
    for (const key of e.type === "versions" ? [e.operation_id] : [e.operation_id, "*"]) {
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
