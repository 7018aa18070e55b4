/**
 * The host's relay outbox. Every epoch, batch of steps, start report and final status of a host
 * training waits here, in memory and in a small SQLite file, until the API has
 * acknowledged it; a host restart still delivers what was left. Training never
 * waits on it: enqueueing is a local insert, delivery runs on its own.
 *
 * This module drives delivery; each mechanism it drives has its own file:
 * - lanes.ts: one queue per operation, its order and batching, what survives a stop;
 * - outbox_store.ts: the file (versioned migrations) and what a restart finds in it;
 * - relay_policy.ts: what an answer means (retry with backoff, park on a refused token, done, fail), pure;
 * - heartbeats.ts: the liveness calls and coalesced batch progress of running trainings;
 * - outages.ts: per API URL, whether it delivers, for `problem()` and one log line per outage.
 * When the API answers "done" (409/404: cancelled, finished, unknown) the operation's items are
 * dropped and `onStop` tells the session to stop; a 400/413 item is dropped and logged. A metrics, steps or heartbeat
 * reply whose `control` says stop (the operation's stop policy fired) goes to `onControl`, once per open training:
 * the session stops and finishes `completed`, and delivery goes on.
 */
import type { WireEpoch } from "../schemas/epoch.ts";
import type { WireStep } from "../schemas/step.ts";
import type { BatchProgress } from "../schemas/host.ts";
import type { Checkpoint } from "../schemas/checkpoint.ts";
import type { HeartbeatInput, RelayProblem, StartedInfo } from "../schemas/host.ts";
import type { StopControl } from "../schemas/control.ts";
import { systemClock, type Clock } from "./clock.ts";
import { Heartbeats } from "./heartbeats.ts";
import {
  headCall,
  newLane,
  RetiredCounts,
  retirable,
  survivesStop,
  takeThrough,
  unsentOnStop,
  type CompleteBody,
  type FinalStatus,
  type Lane,
  type OutboxItem,
  type RelayCall,
} from "./lanes.ts";
import { Outages, statusOf } from "./outages.ts";
import { OutboxStore } from "./outbox_store.ts";
import { DEFAULT_BACKOFF, relayAction, type Backoff } from "./relay_policy.ts";

export type { FinalStatus } from "./lanes.ts";

/** What the outbox needs from the API: a slice of TrainwatchClient, so tests can fake it in memory. */
export interface RelayApi {
  postMetrics(id: string, epochs: WireEpoch[]): Promise<unknown>;
  writeSteps(id: string, steps: WireStep[]): Promise<unknown>;
  completeOperation(id: string, body: CompleteBody): Promise<unknown>;
  heartbeat(id: string, body?: HeartbeatInput): Promise<unknown>;
}

export interface OutboxOptions {
  /** SQLite file (":memory:" in tests). */
  path: string;
  /** The API client for an API base URL. */
  api: (apiUrl: string) => RelayApi;
  /** Retry delays: initialMs doubling up to maxMs (default 250 ms → 5 s). */
  backoff?: Backoff;
  /** Heartbeat period while a training is open (default 10 s). */
  heartbeatMs?: number;
  /** Most epochs per POST (default 500). */
  maxBatch?: number;
  /** Most steps per POST (default MAX_STEPS_PER_BATCH, the API's own bound); a batch of more still goes whole. */
  maxSteps?: number;
  log?: (line: string) => void;
  /** The API takes no more relays for this operation: stop its training. */
  onStop?: (operationId: string, reason: string) => void;
  /** A reply carried the operation's stop decision (its stop policy fired): stop the training, keep relaying. Once per open training. */
  onControl?: (operationId: string, control: StopControl) => void;
  /** Time and timers (default the system's): tests pass a manual clock, so retries and heartbeats run without sleeping. */
  clock?: Clock;
}

/** The stop decision a reply of the API carries (metrics and heartbeat replies have `control`), or null. */
export function stopIn(reply: unknown): StopControl | null {
  const c = (reply as { control?: { action?: unknown } } | null)?.control;
  return c?.action === "stop" ? (c as StopControl) : null;
}

/** The message an operation gets when the host died while training it. */
export const HOST_RESTARTED = "interrupted: training host restarted";

export class Outbox {
  private readonly store: OutboxStore;
  private readonly lanes = new Map<string, Lane>();
  private readonly retired = new RetiredCounts();
  /** Items not yet acknowledged, over all lanes (kept, not recounted, on the ack path). */
  private unacked = 0;
  private readonly outages: Outages;
  private readonly heartbeats: Heartbeats;
  private readonly waiters: (() => void)[] = [];
  private readonly backoff: Backoff;
  private readonly maxBatch: number;
  private readonly log: (line: string) => void;
  private readonly clock: Clock;
  private closed = false;

  constructor(private readonly opts: OutboxOptions) {
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.maxBatch = opts.maxBatch ?? 500;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? ((line) => console.warn(line));
    this.outages = new Outages({
      clock: this.clock,
      log: this.log,
      pending: () => this.pending(),
      maxDelayMs: this.backoff.maxMs,
    });
    this.heartbeats = new Heartbeats({
      periodMs: opts.heartbeatMs ?? 10_000,
      clock: this.clock,
      api: opts.api,
      relay: {
        running: () => !this.closed,
        down: (url) => this.outages.down(url),
        reachable: (url) => this.reachable(url),
        unreachable: (url, err, refused) => this.outages.failed(url, err, refused),
        done: (lane, err) => this.stopLane(lane, err, null),
        heard: (lane, reply) => this.heard(lane, reply),
        settled: (lane) => this.retire(lane),
      },
    });
    this.store = new OutboxStore(opts.path);
    this.recover();
  }

  /** A training starts: heartbeats begin, and a crash from here on is reported at the next start. */
  open(operationId: string, apiUrl: string): void {
    this.store.opened(operationId, apiUrl, this.clock.now());
    const lane = this.lane(operationId, apiUrl);
    lane.stopped = false;
    lane.controlled = false;
    this.heartbeats.start(lane);
  }

  /** The worker's backend and data facts, merged into the operation's metadata. */
  started(operationId: string, info: StartedInfo): void {
    this.enqueue(operationId, { kind: "started", info });
  }

  epoch(operationId: string, epoch: WireEpoch): void {
    this.enqueue(operationId, { kind: "epoch", epoch });
  }

  /** A batch of steps, as the script posted it: one item, relayed in order with the epochs around it. */
  steps(operationId: string, steps: WireStep[]): void {
    if (steps.length > 0) this.enqueue(operationId, { kind: "steps", steps });
  }

  /** The checkpoints the training has on disk now, for the operation's metadata. */
  checkpoints(operationId: string, checkpoints: Checkpoint[]): void {
    this.enqueue(operationId, { kind: "checkpoints", checkpoints });
  }

  /** Latest batch progress: coalesced, sent as a heartbeat when none is in flight; never persisted. */
  progress(operationId: string, progress: BatchProgress): void {
    const lane = this.lanes.get(operationId);
    if (lane) this.heartbeats.progress(lane, progress);
  }

  /** The training ended: its final status goes after every queued epoch. */
  close(operationId: string, final: FinalStatus): void {
    const lane = this.lanes.get(operationId);
    this.store.transaction(() => {
      this.store.closed(operationId);
      if (lane && (!lane.stopped || survivesStop(final))) this.persist(lane, { kind: "final", final });
    });
    if (!lane) return;
    lane.closed = true;
    this.heartbeats.stop(lane);
    this.pump(lane);
    this.retire(lane);
  }

  /** Items not yet acknowledged, for one operation or all. */
  pending(operationId?: string): number {
    if (operationId !== undefined) return this.lanes.get(operationId)?.items.length ?? 0;
    return this.unacked;
  }

  /** Items the API acknowledged since this process started. */
  delivered(operationId: string): number {
    return this.lanes.get(operationId)?.delivered ?? this.retired.get(operationId) ?? 0;
  }

  /** What stops delivery to `apiUrl` now (a refused token, or an outage), or null while it delivers. */
  problem(apiUrl: string): RelayProblem | null {
    return this.outages.problem(apiUrl);
  }

  /** Every API URL that delivery is failing to now. */
  problems(): RelayProblem[] {
    return this.outages.problems();
  }

  /** Resolves once nothing waits for acknowledgement. */
  idle(): Promise<void> {
    if (this.pending() === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Stops timers and closes the file; unacknowledged items stay in it for the next start. */
  stop(): void {
    this.closed = true;
    for (const lane of this.lanes.values()) {
      this.heartbeats.stop(lane);
      this.cancelRetry(lane);
    }
    this.store.close();
  }

  private lane(id: string, apiUrl: string): Lane {
    let lane = this.lanes.get(id);
    if (!lane) this.lanes.set(id, (lane = newLane(id, apiUrl)));
    lane.apiUrl = apiUrl;
    return lane;
  }

  private enqueue(operationId: string, item: OutboxItem): void {
    const lane = this.lanes.get(operationId);
    if (!lane) throw new Error(`outbox: operation ${operationId} was never opened`);
    if (lane.stopped) return;
    this.persist(lane, item);
    this.pump(lane);
  }

  private persist(lane: Lane, item: OutboxItem): void {
    lane.items.push({ seq: this.store.append(lane.id, lane.apiUrl, item), item });
    this.unacked++;
  }

  /** Reloads what a previous process left; trainings it had open were cut off, so they end as failed. */
  private recover(): void {
    const items = this.store.items();
    for (const s of items) {
      const lane = this.lane(s.operationId, s.apiUrl);
      lane.items.push({ seq: s.seq, item: s.item });
      // Left by the previous run: its training is over, so the lane goes once delivered.
      lane.closed = true;
      this.unacked++;
    }
    const open = this.store.openSessions();
    for (const s of open) {
      const lane = this.lane(s.operationId, s.apiUrl);
      this.store.transaction(() => {
        this.store.closed(s.operationId);
        this.persist(lane, { kind: "final", final: { status: "failed", error_message: HOST_RESTARTED } });
      });
    }
    if (items.length || open.length) {
      this.log(
        `[relay] resuming delivery of ${this.pending()} item(s) for ${this.lanes.size} operation(s) left by the previous run`,
      );
    }
    for (const lane of this.lanes.values()) this.pump(lane);
  }

  private send(id: string, api: RelayApi, call: RelayCall): Promise<unknown> {
    if (call.to === "metrics") return api.postMetrics(id, call.epochs);
    if (call.to === "steps") return api.writeSteps(id, call.steps);
    if (call.to === "heartbeat") return api.heartbeat(id, call.body);
    return api.completeOperation(id, call.body);
  }

  private pump(lane: Lane): void {
    if (this.closed || lane.busy || lane.retry) return;
    const next = headCall(lane, this.maxBatch, this.opts.maxSteps);
    if (!next) return;
    const sent = this.send(lane.id, this.opts.api(lane.apiUrl), next.call);
    lane.busy = true;
    sent.then(
      (reply) => {
        this.heard(lane, reply);
        this.acknowledged(lane, next.n, next.upto);
      },
      (err: unknown) => this.failed(lane, next.n, next.upto, err),
    );
  }

  private acknowledged(lane: Lane, n: number, upto: number): void {
    lane.busy = false;
    if (this.closed) return;
    // Before the drop, so the recovery line counts what waited during the outage.
    this.reachable(lane.apiUrl);
    this.drop(lane, upto);
    lane.attempt = 0;
    lane.delivered += n;
    this.pump(lane);
    this.retire(lane);
  }

  /** Forgets a finished lane with nothing left to send, so a long-running host stays small. */
  private retire(lane: Lane): void {
    if (!retirable(lane)) return;
    this.lanes.delete(lane.id);
    this.retired.add(lane.id, lane.delivered);
  }

  private failed(lane: Lane, n: number, upto: number, err: unknown): void {
    lane.busy = false;
    if (this.closed) return;
    const status = statusOf(err);
    const next = relayAction(status, lane.attempt, this.backoff);
    if (next.action === "done") {
      this.reachable(lane.apiUrl);
      return this.stopLane(lane, err, upto);
    }
    if (next.action === "fail") {
      this.reachable(lane.apiUrl);
      const kind = lane.items[0]!.item.kind;
      this.log(
        `[relay] ${lane.id}: the API refused ${n} ${kind} item(s) for good (${(err as Error).message}); dropped`,
      );
      this.drop(lane, upto);
      return this.pump(lane);
    }
    this.outages.failed(lane.apiUrl, err, next.action === "park" ? status : null);
    lane.attempt = next.attempt;
    lane.retry = this.clock.setTimeout(() => {
      lane.retry = null;
      this.pump(lane);
    }, next.delayMs);
  }

  /** Removes the items up to sequence number `upto` from memory and from the file. */
  private drop(lane: Lane, upto: number): void {
    const gone = takeThrough(lane, upto);
    this.unacked -= gone.length;
    if (gone.length) this.store.removeThrough(lane.id, gone.at(-1)!.seq);
    if (this.pending() === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** The API takes no more for this operation. `refused`: the sequence number through which the refused call went (null for a heartbeat). */
  private stopLane(lane: Lane, err: unknown, refused: number | null): void {
    const onlyFinal = lane.items.length === 1 && lane.items[0]!.item.kind === "final";
    const unsent = unsentOnStop(lane, refused);
    if (unsent > 0) this.drop(lane, lane.items[unsent - 1]!.seq);
    const kept = lane.items.length > 0;
    lane.stopped = true;
    lane.progress = undefined;
    this.cancelRetry(lane);
    const { code, message } = err as { code?: string; message: string };
    // A host-side cancel whose operation the API already finished is the normal case, not news.
    if (!onlyFinal && unsent > 0)
      this.log(`[relay] ${lane.id}: the API answered ${code} (${message}); dropped ${unsent} unsent item(s)`);
    if (lane.open) {
      this.heartbeats.stop(lane);
      this.opts.onStop?.(lane.id, message);
    }
    if (kept) this.pump(lane);
    this.retire(lane);
  }

  /** Hands a stop decision in `reply` to onControl, once per open training. */
  private heard(lane: Lane, reply: unknown): void {
    const control = stopIn(reply);
    if (!control || !lane.open || lane.controlled) return;
    lane.controlled = true;
    this.opts.onControl?.(lane.id, control);
  }

  private cancelRetry(lane: Lane): void {
    if (lane.retry) this.clock.clearTimeout(lane.retry);
    lane.retry = null;
  }

  /** An answered call: when it ends an outage, lanes waiting out a long backoff go now rather than at their next retry. */
  private reachable(apiUrl: string): void {
    if (!this.outages.reachable(apiUrl)) return;
    for (const lane of this.lanes.values()) {
      if (lane.apiUrl !== apiUrl || !lane.retry) continue;
      this.cancelRetry(lane);
      lane.attempt = 0;
      this.pump(lane);
    }
  }
}
