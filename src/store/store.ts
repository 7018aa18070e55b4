/** The storage seam: what routes, trainers and the relay need from persistence. */
import type { EpochRecord, WireEpoch } from "../schemas/epoch.ts";
import type { StepRecord, WireStep } from "../schemas/step.ts";
import type { Operation, OperationStatus, StopControl, StopPolicy } from "../schemas/operation.ts";
import type { FailureCode } from "../operations/lifecycle.ts";
import type { LivenessRow } from "../operations/liveness.ts";
import type { TrendState, TrendSummary } from "../trends/types.ts";
import type { JudgeState } from "../trends/judgement_state.ts";
import type { SpanSummary } from "../trends/downsample.ts";
import type { StepJudgementState } from "../trends/step_judgement.ts";
import type { SystemRecord, SystemSample } from "../schemas/system.ts";
import type { AlertRules, FlagEvent } from "../schemas/alert.ts";
import type { AlertStore } from "./alerts.ts";
import type { LabelsInput } from "../schemas/labels.ts";
import type { QueryNode, SortField } from "../schemas/search.ts";

/** The metrics a projected epoch read returns (besides `epoch`): standard fields, custom metrics, `timestamp`. */
export type Fields = readonly string[];

export interface NewOperation {
  operation_type: string;
  name?: string | null;
  total_epochs_planned?: number | null;
  /** Optimisation steps planned (a step run's progress is in steps). */
  total_steps_planned?: number | null;
  metadata?: Record<string, unknown>;
  status?: "pending" | "running";
  /** The trainer's hyper-parameters, as given. */
  config?: Record<string, unknown> | null;
  stop_policy?: StopPolicy | null;
  /** The run's alert rules (normalised); null or absent: the server's defaults. */
  alert_rules?: AlertRules | null;
  /** Its tags (src/schemas/labels.ts; normalised on the way in) and group. */
  tags?: readonly string[];
  group?: string | null;
  /** The executor that runs it (a declared training: src/executors), recorded from its first moment. */
  executor?: string | null;
  /**
   * Run by this process (a local training): on a store shared by replicas it is leased to this replica, and another
   * marks it interrupted once the lease runs out. Ignored by a store one process holds alone.
   */
  owned?: boolean;
}

/** The executor's columns Store.setExecution sets (a key left out is kept; null clears). */
export interface ExecutionPatch {
  external_id?: string | null;
  pending_reason?: string | null;
  queue_position?: number | null;
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
  /** A parsed search (src/schemas/search.ts parseQuery), beside status and operation_type; null or absent: every run. */
  query?: QueryNode | null;
  /** Sort key (default created_at) and direction (default desc); ties in the same direction by creation. */
  sort?: SortField;
  order?: "asc" | "desc";
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
  /** Counts the operation's epoch writes: 1 for the first. Live events carry it, so a stream knows what its replay holds. */
  version: number;
  /**
   * The flags this write raised (false before it, true after: src/alerts/rules.ts raisedFlags), and where: an epoch
   * write's from its summary at its latest epoch, a step write's from its step judgement at its last step.
   */
  raised: FlagEvent[];
  raisedAt: { epoch: number | null; step: number | null };
  /** The run's alert rules, read with the row the write locked (no extra query); null: the server's defaults. */
  alertRules: AlertRules | null;
}

/** What a step write reports: a WriteResult whose `version` counts the step writes, and the epochs it closed. */
export interface StepWriteResult extends WriteResult {
  /**
   * The derived records of the epochs this write closed (src/operations/step_epochs.ts), stored through the epoch
   * write in the same transaction, and that write's version; null when it closed none.
   */
  epochs: { records: EpochRecord[]; version: number } | null;
  /** True when this write recorded the stop decision (the step judgement fired the run's stop policy). */
  decided: boolean;
}

/** The end of an epoch of a step run: its last stored step. */
export interface EpochEnd {
  epoch: number;
  step: number;
}

/** A range of the system series, in ms since the epoch: `since` < ts ≤ `until` (default: all), at most `limit` samples. */
export interface SystemRange {
  since?: number;
  until?: number;
  limit: number;
}

/** Declared once, by the wire schema the heartbeat validates (src/schemas/host.ts). */
import type { BatchProgress } from "../schemas/host.ts";
export type { BatchProgress };

/** A running watched operation as the client watchdog reads it: the liveness rules' columns (LivenessRow). */
export interface WatchedRow extends LivenessRow {
  operation_id: string;
}

/**
 * The storage seam. Every method returns a promise: SQLite answers at once (its calls are synchronous and microseconds
 * long), PostgreSQL over the network. Both keep the same semantics, checked by one contract suite (tests/store_contract.ts).
 */
export interface Store {
  /** The alert outbox and a run's alert rules (src/store/alerts.ts). */
  readonly alerts: AlertStore;
  createOperation(input: NewOperation): Promise<Operation>;
  /**
   * Removes an operation that never began: still pending, no epochs. A start refused after the
   * operation was created (no host took it) leaves nothing behind. Returns false, and removes
   * nothing, once the operation has moved on (cancelled meanwhile, started, or with epochs).
   */
  discardOperation(operationId: string): Promise<boolean>;
  /** Null when unknown. */
  getOperation(operationId: string): Promise<Operation | null>;
  /**
   * One page of the runs `filter` picks (its search compiled by src/store/search_sql.ts: indexed columns and side
   * tables, values bound), in its order, and how many it picks in all.
   */
  listOperations(filter: ListFilter): Promise<{ items: Operation[]; total: number }>;
  /**
   * Stores epochs in one transaction (replace on same epoch); refuses finished operations, and (VALIDATION_ERROR,
   * nothing stored) a batch that would take the operation past MAX_METRIC_NAMES custom metric names.
   */
  writeEpochs(operationId: string, epochs: EpochRecord[]): Promise<WriteResult>;
  /**
   * Wire-form epochs with `sinceEpoch < epoch ≤ untilEpoch` (default: all), ascending. With `fields` (a chart's read),
   * each epoch is `epoch` and only those of `fields` it holds, in their order, as the full read's epochs restricted to
   * them (no `timestamp` unless listed): only their columns are read, the custom metrics parsed only for a custom one.
   */
  readEpochs(operationId: string, sinceEpoch?: number, untilEpoch?: number, fields?: Fields): Promise<WireEpoch[]>;
  /**
   * One page of a long read (an export): the first `limit` stored epochs after `afterEpoch` (epoch > it), ascending, in
   * wire form as readEpochs gives them. The next page starts after the last epoch of this one; a shorter page is the last.
   */
  readEpochPage(operationId: string, afterEpoch: number, limit: number): Promise<WireEpoch[]>;
  /**
   * The operation's distinct custom metric names, sorted: every name any write stored (a name stays once its epochs are
   * replaced without it). Kept by each write, so reading it costs one row, whatever the history.
   */
  metricNames(operationId: string): Promise<string[]>;
  /** The `limit` epochs just before `epoch` (epoch < it), ascending: the warm-up of a smoothed range. `fields`: as readEpochs. */
  readEpochsBefore(operationId: string, epoch: number, limit: number, fields?: Fields): Promise<WireEpoch[]>;
  /** The stored epochs among `epochs`, ascending (unknown ones are left out). `fields`: as readEpochs. */
  readEpochsAt(operationId: string, epochs: readonly number[], fields?: Fields): Promise<WireEpoch[]>;
  /**
   * Chart summaries of consecutive spans covering the stored epochs in fromEpoch … toEpoch (inclusive), ascending, for
   * src/trends/downsample.ts pickEpochs: a long run reduces from its summaries without reading its rows.
   */
  epochSpans(operationId: string, fromEpoch: number, toEpoch: number): Promise<SpanSummary[]>;
  /**
   * A live stream's replay, read as one snapshot: the operation, its epochs after `sinceEpoch`, and the epoch version
   * they reflect (WriteResult.version of the last write they hold), so live batches with a higher one are what it lacks.
   */
  readReplay(operationId: string, sinceEpoch?: number): Promise<Replay>;
  /**
   * Stores steps in one transaction (replace on same step), as writeEpochs stores epochs (lifecycle, revive, the
   * shared name bound, liveness, pending → running), and through it the derived records of the epochs the batch closed.
   * `trends` and `control` of the result are the operation's after the write.
   */
  writeSteps(operationId: string, steps: StepRecord[]): Promise<StepWriteResult>;
  /** Wire-form steps with `sinceStep < step ≤ untilStep` (default: all), ascending; `fields` as readEpochs. */
  readSteps(operationId: string, sinceStep?: number, untilStep?: number, fields?: Fields): Promise<WireStep[]>;
  /** One page of a long read (an export), as readEpochPage: the first `limit` steps after `afterStep`. */
  readStepPage(operationId: string, afterStep: number, limit: number): Promise<WireStep[]>;
  /** The `limit` steps just before `step`, ascending (a smoothed range's warm-up). `fields`: as readEpochs. */
  readStepsBefore(operationId: string, step: number, limit: number, fields?: Fields): Promise<WireStep[]>;
  /** The stored steps among `steps`, ascending. `fields`: as readEpochs. */
  readStepsAt(operationId: string, steps: readonly number[], fields?: Fields): Promise<WireStep[]>;
  /** Chart summaries covering the stored steps in fromStep … toStep, as epochSpans (the step blocks). */
  stepSpans(operationId: string, fromStep: number, toStep: number): Promise<SpanSummary[]>;
  /**
   * Closes the open epoch of a step run (its derived record written through the epoch write, in one transaction): the
   * service calls it before finishing. Null when no epoch is open or the operation no longer takes metrics.
   */
  closeSteps(operationId: string): Promise<StepWriteResult["epochs"]>;
  /**
   * Retention of step rows (issue 26): removes the step rows of the runs finished before `cutoffMs` that still have
   * them, keeping their epochs, summary, step judgement, epoch ends and step chart blocks (stepSpans answers as before),
   * and marks each pruned at `nowMs` (Operation.progress.steps_pruned_at). Unfinished runs and runs finished since are
   * untouched; a second call with the same cutoff removes nothing.
   */
  pruneSteps(cutoffMs: number, nowMs: number): Promise<StepsPruned>;
  /** The end of every epoch with steps (its last step), ascending; kept by each write, so one row is read. */
  epochEnds(operationId: string): Promise<EpochEnd[]>;
  /**
   * The judgement's stored parts of an operation, read as one snapshot of its row (src/operations/reads.ts judges from
   * them and a bounded tail); null when unknown.
   */
  readJudgement(operationId: string): Promise<JudgementRow | null>;
  /**
   * Keeps a judgement state built from the whole history for an operation whose row has none (or an outdated one): the
   * backfill of the rows from before it, on their first analysis read. Saved only while the row still holds `seen`
   * (no write came between): returns whether it was.
   */
  keepJudgement(operationId: string, seen: JudgementRow, state: TrendState, kept: JudgeState): Promise<boolean>;
  /**
   * A step run's judgement state (src/trends/step_judgement.ts), kept by each step write, so one row is read; null
   * before any step. NOT_FOUND for an unknown operation.
   */
  readStepJudgement(operationId: string): Promise<StepJudgementState | null>;
  /**
   * Stores system samples (src/schemas/system.ts decodeSystemSamples) in one transaction, a re-posted instant replacing
   * its sample; refuses (OPERATION_FINISHED) an operation that takes no metrics (lifecycle.ts canAcceptMetrics: a
   * revivable failure takes them, and is not revived by them). Returns how many were stored. Not a sign of life by
   * itself: the operations service touches the operation after it.
   */
  writeSystemSamples(operationId: string, rows: readonly SystemRecord[]): Promise<number>;
  /** The system samples in `range`, ascending, in wire form. NOT_FOUND for an unknown operation. */
  readSystemSamples(operationId: string, range: SystemRange): Promise<SystemSample[]>;
  /**
   * At most `maxPoints` system samples spread over `range` (its limit ignored), ascending: the first sample of each of
   * `maxPoints` equal time buckets between the range's first and last sample (src/schemas/system.ts systemBuckets), read
   * one index probe per bucket, so the cost does not grow with the run's length.
   */
  systemChart(operationId: string, range: Omit<SystemRange, "limit">, maxPoints: number): Promise<SystemSample[]>;
  /** The newest system sample (one index probe), or null when none: what the liveness part's `hung` cites. */
  latestSystemSample(operationId: string): Promise<SystemSample | null>;
  /** Marks pending → running. */
  markStarted(operationId: string): Promise<Operation>;
  /** Moves to a finished status; throws OPERATION_FINISHED if already finished. */
  finish(operationId: string, status: "completed" | "failed" | "cancelled", opts?: FinishOptions): Promise<Operation>;
  /** Sets (or, with null, clears) the stop policy of a pending or running operation; OPERATION_FINISHED otherwise. */
  setStopPolicy(operationId: string, policy: StopPolicy | null): Promise<Operation>;
  /** Records the stop decision (replacing any before it). */
  setControl(operationId: string, control: StopControl): Promise<void>;
  mergeMetadata(operationId: string, patch: Record<string, unknown>): Promise<Operation>;
  /**
   * Changes the tags and group (src/schemas/labels.ts applyLabels), in any status; VALIDATION_ERROR (field
   * body.add_tags) when the run would hold more than MAX_TAGS tags. NOT_FOUND for an unknown id.
   */
  setLabels(operationId: string, patch: LabelsInput): Promise<Operation>;
  /**
   * Records what its executor says (src/executors/executor.ts): its id there, why it waits and its place in the queue.
   * A key left out keeps its value; null clears it. NOT_FOUND for an unknown id. The server's own columns: no route
   * a client calls reaches this.
   */
  setExecution(operationId: string, patch: ExecutionPatch): Promise<Operation>;
  /** Records the operation's result (also after it was cancelled). */
  setResult(operationId: string, result: Record<string, unknown>): Promise<void>;
  setBatchProgress(operationId: string, progress: BatchProgress | null): Promise<void>;
  /**
   * Records that a remote trainer is alive (epochs and heartbeats both count). `watch`: a client's heartbeat, which
   * makes the operation watched (watched_at set at its first one): from then on its silence reads stale, then lost.
   */
  touch(operationId: string, atMs?: number, watch?: boolean): Promise<void>;
  /** Running host operations silent since before `cutoffMs`. */
  staleHostOperations(cutoffMs: number): Promise<string[]>;
  /**
   * The pending and running operations `executor` runs (its `executor` column), in id order: what a cluster executor's
   * poller reads. Read through the status index, so its cost is the unfinished operations', never a finished row's.
   */
  unfinishedOf(executor: string): Promise<Operation[]>;
  /**
   * The cancelled operations of `executor` whose stop it still owes (metadata.cancel.owed set: the scheduler could not
   * be told yet), in id order; the poller retries them until the scheduler confirms.
   */
  cancelsOwed(executor: string): Promise<Operation[]>;
  /**
   * The running watched operations (a client heartbeat for them) with what the liveness rules read, in id order: what
   * the client watchdog checks. Read through the partial index operations_watched, never a finished row.
   */
  watchedOperations(): Promise<WatchedRow[]>;
  /**
   * Marks the unfinished operations `where` picks among this process's own as failed: on a store shared by replicas,
   * those it owns (NewOperation.owned), never another replica's.
   */
  failInterrupted(where: (op: Operation) => boolean, message: string): Promise<string[]>;
  /** Present when other processes share the database (PostgreSQL): how their changes reach this one, and leases. */
  readonly shared: SharedStore | null;
  close(): Promise<void>;
}

/** What a retention round removed (Store.pruneSteps). */
export interface StepsPruned {
  /** The runs whose step rows went, by public id, sorted. */
  operations: string[];
  /** PostgreSQL: the step partitions truncated whole (their every run expired); none on SQLite. */
  partitions: string[];
}

/** The operation row's judgement columns as stored: the summary, the rule state (best_json) and the kept judgement (bytes). */
export interface JudgementRow {
  summary: string;
  best_json: string | null;
  judgement: Uint8Array | null;
}

export interface Replay {
  operation: Operation;
  epochs: WireEpoch[];
  version: number;
  /** The step version the operation had in the same snapshot (StepWriteResult.version of its last step write). */
  stepVersion: number;
}

/** An operation's write counters: WriteResult.version of its last epochs write, StepWriteResult.version of its last step write. */
export interface Versions {
  epochs: number;
  steps: number;
}

/**
 * A change committed by any process on a shared database (this one's included), announced after its commit (so
 * concurrent writes of two replicas may be heard in either order, a write's version tells theirs; one may never be
 * heard, when its replica died between commit and announcement: SharedStore.versions finds it):
 * - epochs: a write, numbered by its WriteResult.version; the epochs themselves when they fit a notification, else the
 *   epoch range to read (which may read a later write's values for an epoch; that write then sends it again: a re-sent
 *   epoch replaces itself);
 * - steps: a step write, as epochs (the epochs it closed arrive as an epochs change of their own);
 * - status: the operation changed otherwise (read it); `finished` when it is over;
 * - changed: a change lists show that is no status change (a heartbeat's liveness, a late result);
 * - progress: a training's batch progress, which is kept in memory only;
 * - removed: the operation was discarded (Store.discardOperation);
 * - system: system samples were stored: the samples when they fit a notification, else the ms range to read.
 * - alert: an alert about the operation was recorded (AlertStore.recordAlert): read it by its id.
 */
export type StoreChange =
  | {
      kind: "epochs";
      operation_id: string;
      version: number;
      trends: TrendSummary;
      epochs: WireEpoch[] | null;
      range: [number, number];
    }
  | {
      kind: "steps";
      operation_id: string;
      /** Counts the operation's step writes (StepWriteResult.version). */
      version: number;
      steps: WireStep[] | null;
      range: [number, number];
    }
  /** `after`: a finish's, the versions of the writes it follows (a stream relays them before it ends). */
  | { kind: "status"; operation_id: string; finished: boolean; after?: Versions }
  | { kind: "changed"; operation_id: string }
  | { kind: "progress"; operation_id: string; progress: BatchProgress | null }
  | { kind: "removed"; operation_id: string }
  | { kind: "system"; operation_id: string; samples: SystemSample[] | null; range: [number, number] }
  | { kind: "alert"; operation_id: string; alert_id: string };

/** What replicas on one database need beyond the Store: each other's changes, and leases on local trainings. */
export interface SharedStore {
  /** This replica's id: the owner of the operations it creates with `owned`. */
  readonly replicaId: string;
  /**
   * Hears every replica's changes (this one's included), each after its commit (StoreChange). `onResync` runs when the listening connection
   * was lost and is back: changes sent meanwhile are gone. Resolves once listening; call the result to stop.
   */
  listen(onChange: (c: StoreChange) => void, onResync: () => void): Promise<() => Promise<void>>;
  /**
   * The write versions of `operationIds` (those that exist), read in one query: the relay compares them with the
   * versions it heard, to find a notification that never came (a replica that died between its commit and its NOTIFY).
   */
  versions(operationIds: readonly string[]): Promise<Map<string, Versions>>;
  /** Tells every replica that `operationId` changed without a write (a host training that turned stale). */
  publishStatus(operationId: string): Promise<void>;
  /** Extends this replica's lease on the unfinished operations it owns; returns how many. */
  renewLeases(): Promise<number>;
  /** Unfinished operations whose owner let its lease run out, oldest first. */
  expiredLeases(): Promise<{ operation_id: string; owner: string }[]>;
  /** A candidate for `job` (the host watchdog's "jobs") among the replicas on this database: one at a time leads. */
  leadership(job: string): Leader;
}

/** The lock that elects the replica running a once-only job (src/operations/replicas.ts). */
export interface Leader {
  /** Whether this replica holds the lock now, taking it when it is free. */
  check(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The store's reads, all a route, a trainer, the watchdog or the fan-out may use: writes go through the operations
 * service (src/operations/service.ts), the one writer, so that every change is emitted to the streams.
 */
export type StoreReader = Pick<
  Store,
  | "getOperation"
  | "listOperations"
  | "readEpochs"
  | "readEpochPage"
  | "metricNames"
  | "readEpochsBefore"
  | "readEpochsAt"
  | "epochSpans"
  | "readReplay"
  | "staleHostOperations"
  | "unfinishedOf"
  | "cancelsOwed"
  | "watchedOperations"
  | "readSteps"
  | "readStepPage"
  | "readStepsBefore"
  | "readStepsAt"
  | "stepSpans"
  | "epochEnds"
  | "readJudgement"
  // A cache fill, not a change: the judgement state a write would keep, saved for a row from before it (no stream hears it).
  | "keepJudgement"
  | "readStepJudgement"
  | "readSystemSamples"
  | "systemChart"
  | "latestSystemSample"
> & {
  /** The alert reads (the outbox's writes are the Alerts shell's and the delivery worker's). */
  readonly alerts: Pick<AlertStore, "getAlertRules" | "listAlerts" | "getAlert">;
};
