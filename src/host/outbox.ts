/**
 * The host's relay outbox. Every epoch, start report and final status of a host
 * training waits here, in memory and in a small SQLite file, until the API has
 * acknowledged it; a host restart still delivers what was left. Training never
 * waits on it: enqueueing is a local insert, delivery runs on its own.
 *
 * Rules, per operation (a "lane"):
 * - first in, first out; consecutive epochs go as one batch (re-posting is safe,
 *   the API replaces an existing epoch);
 * - the final status goes last, so only after every epoch is acknowledged;
 * - a failed call (network, timeout, 5xx) is retried with capped exponential
 *   backoff (default 250 ms doubling up to 5 s) until it succeeds;
 * - 401/403 mean the API refuses this host's token: not an outage, so it is reported
 *   as such (`problem()`, on /health and each session) and logged naming
 *   TRAINWATCH_TOKEN; items are kept and retried at the capped delay, so a fixed
 *   token on the API lets them through;
 * - 409 or 404 mean the API takes no more relays for the operation (cancelled,
 *   finished, unknown): its items are dropped and `onStop` tells the session to stop;
 *   only a final "cancelled" carrying a result still goes (the API records the
 *   result of the cancel it asked for: the checkpoints the training kept);
 * - 400/413 can never succeed: that item is dropped and logged.
 * Failures are logged once per outage of an API URL, then the recovery.
 */
import type { Database } from "bun:sqlite";
import { ApiError } from "../client/api.ts";
import { closeDatabase, openDatabase } from "../store/database.ts";
import type { WireEpoch } from "../schemas/epoch.ts";
import type { BatchProgress } from "../schemas/host.ts";
import type { Checkpoint } from "../schemas/checkpoint.ts";
import type { HeartbeatInput, RelayProblem, StartedInfo } from "../schemas/host.ts";

export type FinalStatus =
  | { status: "completed"; result?: Record<string, unknown> | null }
  | { status: "failed"; error_message: string; result?: Record<string, unknown> | null }
  | { status: "cancelled"; result?: Record<string, unknown> | null };

export type OutboxItem =
  | { kind: "started"; info: StartedInfo }
  | { kind: "checkpoints"; checkpoints: Checkpoint[] }
  | { kind: "epoch"; epoch: WireEpoch }
  | { kind: "final"; final: FinalStatus };

/** What the outbox needs from the API: a slice of TrainwatchClient, so tests can fake it in memory. */
export interface RelayApi {
  postMetrics(id: string, epochs: WireEpoch[]): Promise<unknown>;
  completeOperation(id: string, body: { status: "completed" | "failed" | "cancelled"; error_message?: string; result?: Record<string, unknown> }): Promise<unknown>;
  heartbeat(id: string, body?: HeartbeatInput): Promise<unknown>;
}

export interface OutboxOptions {
  /** SQLite file (":memory:" in tests). */
  path: string;
  /** The API client for an API base URL. */
  api: (apiUrl: string) => RelayApi;
  /** Retry delays: initialMs doubling up to maxMs (default 250 ms → 5 s). */
  backoff?: { initialMs: number; maxMs: number };
  /** Heartbeat period while a training is open (default 10 s). */
  heartbeatMs?: number;
  /** Most epochs per POST (default 500). */
  maxBatch?: number;
  log?: (line: string) => void;
  /** The API takes no more relays for this operation: stop its training. */
  onStop?: (operationId: string, reason: string) => void;
  /** Time and timers (default the system's): tests pass a manual clock, so retries and heartbeats run without sleeping. */
  clock?: Clock;
}

/** The outbox's only view of time: the retry timers, the heartbeat interval and outage timestamps. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};

/** Delay before retry number `attempt` (0-based): initialMs · 2^attempt, capped at maxMs. */
export function backoffDelay(attempt: number, b: { initialMs: number; maxMs: number }): number {
  return Math.min(b.maxMs, b.initialMs * 2 ** attempt);
}

/** The message an operation gets when the host died while training it. */
export const HOST_RESTARTED = "interrupted: training host restarted";

interface Queued {
  seq: number;
  item: OutboxItem;
}

interface Lane {
  id: string;
  apiUrl: string;
  items: Queued[];
  /** A training is running: heartbeats go out. */
  open: boolean;
  busy: boolean;
  retry: unknown;
  attempt: number;
  delivered: number;
  /** Latest batch progress not yet sent (undefined: nothing new). */
  progress: BatchProgress | undefined;
  beating: boolean;
  heartbeat: unknown;
  /** The API said finished/unknown: anything new for this operation is dropped. */
  stopped: boolean;
  /** The training ended (close() was called): the lane goes once its queue is empty. */
  closed: boolean;
}

/** A cancel the API asked for still wants the training's result (its checkpoints), though the lane is stopped. */
const survivesStop = (final: FinalStatus) => final.status === "cancelled" && final.result != null;

/** Delivered counts of retired lanes kept for GET /sessions (bounded). */
const RETIRED_KEPT = 1000;

interface Outage {
  down: boolean;
  since: number;
  failures: number;
  /** Why the latest call failed, while down. */
  error: string | null;
  /** Set while the API refuses this host's token (401/403). */
  refused: { status: number; since: number } | null;
}

/** Refused while the host sends TRAINWATCH_TOKEN: the one problem only a person can fix. */
export const tokenRefusedMessage = (apiUrl: string, status: number) =>
  `the API at ${apiUrl} refused this host's token (${status}); set the same TRAINWATCH_TOKEN on the API and on the host`;

export class Outbox {
  private readonly db: Database;
  private readonly lanes = new Map<string, Lane>();
  private readonly retired = new Map<string, number>();
  /** Items not yet acknowledged, over all lanes (kept, not recounted, on the ack path). */
  private unacked = 0;
  private readonly outages = new Map<string, Outage>();
  private readonly waiters: (() => void)[] = [];
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly heartbeatMs: number;
  private readonly maxBatch: number;
  private readonly log: (line: string) => void;
  private readonly clock: Clock;
  private closed = false;

  constructor(private readonly opts: OutboxOptions) {
    this.backoff = opts.backoff ?? { initialMs: 250, maxMs: 5000 };
    this.heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.maxBatch = opts.maxBatch ?? 500;
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? ((line) => console.warn(line));
    // Locked for this process (a second host on the file is refused) and durable before the worker's
    // onEpoch returns, like the API's own store: an epoch the API has not acknowledged survives a crash or power loss.
    this.db = openDatabase(opts.path, { variable: "TRAINWATCH_HOST_DB" });
    this.db.run(`CREATE TABLE IF NOT EXISTS outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, operation_id TEXT NOT NULL, api_url TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL)`);
    this.db.run(`CREATE TABLE IF NOT EXISTS open_sessions (
      operation_id TEXT PRIMARY KEY, api_url TEXT NOT NULL, opened_at INTEGER NOT NULL)`);
    this.recover();
  }

  /** A training starts: heartbeats begin, and a crash from here on is reported at the next start. */
  open(operationId: string, apiUrl: string): void {
    this.db.query("INSERT OR REPLACE INTO open_sessions (operation_id, api_url, opened_at) VALUES (?, ?, ?)").run(operationId, apiUrl, this.clock.now());
    const lane = this.lane(operationId, apiUrl);
    lane.stopped = false;
    lane.open = true;
    if (this.heartbeatMs > 0) lane.heartbeat ??= this.clock.setInterval(() => this.beat(lane), this.heartbeatMs);
    this.beat(lane);
  }

  /** The worker's backend and data facts, merged into the operation's metadata. */
  started(operationId: string, info: StartedInfo): void {
    this.enqueue(operationId, { kind: "started", info });
  }

  epoch(operationId: string, epoch: WireEpoch): void {
    this.enqueue(operationId, { kind: "epoch", epoch });
  }

  /** The checkpoints the training has on disk now, for the operation's metadata. */
  checkpoints(operationId: string, checkpoints: Checkpoint[]): void {
    this.enqueue(operationId, { kind: "checkpoints", checkpoints });
  }

  /** Latest batch progress: coalesced, sent as a heartbeat when none is in flight; never persisted. */
  progress(operationId: string, progress: BatchProgress): void {
    const lane = this.lanes.get(operationId);
    if (!lane || !lane.open || lane.stopped) return;
    lane.progress = progress;
    if (!this.outage(lane.apiUrl).down) this.beat(lane);
  }

  /** The training ended: its final status goes after every queued epoch. */
  close(operationId: string, final: FinalStatus): void {
    const lane = this.lanes.get(operationId);
    this.db.transaction(() => {
      this.db.query("DELETE FROM open_sessions WHERE operation_id = ?").run(operationId);
      if (lane && (!lane.stopped || survivesStop(final))) this.persist(lane, { kind: "final", final });
    })();
    if (!lane) return;
    lane.closed = true;
    this.stopBeating(lane);
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
    const o = this.outages.get(apiUrl);
    if (!o?.down) return null;
    const since = new Date(o.refused?.since ?? o.since).toISOString();
    if (o.refused) return { api_url: apiUrl, refused: true, status: o.refused.status, message: tokenRefusedMessage(apiUrl, o.refused.status), since };
    return { api_url: apiUrl, refused: false, status: null, message: o.error ?? "unreachable", since };
  }

  /** Every API URL that delivery is failing to now. */
  problems(): RelayProblem[] {
    return [...this.outages.keys()].map((url) => this.problem(url)).filter((p): p is RelayProblem => p !== null);
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
      this.stopBeating(lane);
      if (lane.retry) this.clock.clearTimeout(lane.retry);
      lane.retry = null;
    }
    closeDatabase(this.db, this.opts.path);
  }

  private lane(id: string, apiUrl: string): Lane {
    let lane = this.lanes.get(id);
    if (!lane) {
      lane = { id, apiUrl, items: [], open: false, busy: false, retry: null, attempt: 0, delivered: 0, progress: undefined, beating: false, heartbeat: null, stopped: false, closed: false };
      this.lanes.set(id, lane);
    }
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
    const { lastInsertRowid } = this.db
      .query("INSERT INTO outbox (operation_id, api_url, kind, body) VALUES (?, ?, ?, ?)")
      .run(lane.id, lane.apiUrl, item.kind, JSON.stringify(item));
    lane.items.push({ seq: Number(lastInsertRowid), item });
    this.unacked++;
  }

  /** Reloads what a previous process left; trainings it had open were cut off, so they end as failed. */
  private recover(): void {
    const rows = this.db.query<{ seq: number; operation_id: string; api_url: string; body: string }, []>("SELECT * FROM outbox ORDER BY seq").all();
    for (const r of rows) {
      const lane = this.lane(r.operation_id, r.api_url);
      lane.items.push({ seq: r.seq, item: JSON.parse(r.body) as OutboxItem });
      // Left by the previous run: its training is over, so the lane goes once delivered.
      lane.closed = true;
      this.unacked++;
    }
    const open = this.db.query<{ operation_id: string; api_url: string }, []>("SELECT operation_id, api_url FROM open_sessions").all();
    for (const s of open) {
      const lane = this.lane(s.operation_id, s.api_url);
      this.db.transaction(() => {
        this.db.query("DELETE FROM open_sessions WHERE operation_id = ?").run(s.operation_id);
        this.persist(lane, { kind: "final", final: { status: "failed", error_message: HOST_RESTARTED } });
      })();
    }
    if (rows.length || open.length) {
      this.log(`[relay] resuming delivery of ${this.pending()} item(s) for ${this.lanes.size} operation(s) left by the previous run`);
    }
    for (const lane of this.lanes.values()) this.pump(lane);
  }

  private pump(lane: Lane): void {
    if (this.closed || lane.busy || lane.retry || lane.items.length === 0) return;
    const head = lane.items[0]!.item;
    const api = this.opts.api(lane.apiUrl);
    let n = 1;
    let send: Promise<unknown>;
    if (head.kind === "epoch") {
      const epochs: WireEpoch[] = [];
      for (const q of lane.items) {
        if (q.item.kind !== "epoch" || epochs.length >= this.maxBatch) break;
        epochs.push(q.item.epoch);
      }
      n = epochs.length;
      send = api.postMetrics(lane.id, epochs);
    } else if (head.kind === "started") {
      send = api.heartbeat(lane.id, { started: head.info });
    } else if (head.kind === "checkpoints") {
      send = api.heartbeat(lane.id, { checkpoints: head.checkpoints });
    } else {
      const f = head.final;
      send = api.completeOperation(lane.id, {
        status: f.status,
        ...(f.status === "failed" ? { error_message: f.error_message } : {}),
        ...(f.result ? { result: f.result } : {}),
      });
    }
    lane.busy = true;
    // By sequence number, not count: a stop may drop items while this call is in flight.
    const upto = lane.items[n - 1]!.seq;
    send.then(
      () => this.acknowledged(lane, n, upto),
      (err: unknown) => this.failed(lane, n, upto, err),
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
    if (!lane.closed || lane.open || lane.busy || lane.beating || lane.items.length > 0 || lane.retry) return;
    this.lanes.delete(lane.id);
    this.retired.set(lane.id, lane.delivered);
    if (this.retired.size > RETIRED_KEPT) this.retired.delete(this.retired.keys().next().value!);
  }

  private failed(lane: Lane, n: number, upto: number, err: unknown): void {
    lane.busy = false;
    if (this.closed) return;
    const status = err instanceof ApiError ? err.status : null;
    if (status === 409 || status === 404) {
      this.reachable(lane.apiUrl);
      return this.stopLane(lane, err as ApiError, upto);
    }
    if (status === 400 || status === 413) {
      this.reachable(lane.apiUrl);
      const kind = lane.items[0]!.item.kind;
      this.log(`[relay] ${lane.id}: the API refused ${n} ${kind} item(s) for good (${(err as ApiError).message}); dropped`);
      this.drop(lane, upto);
      return this.pump(lane);
    }
    // A refused token is retried at the capped delay from the start: only a person can fix it, and then it should go.
    const delay = this.unreachable(lane.apiUrl, err) ? this.backoff.maxMs : backoffDelay(lane.attempt++, this.backoff);
    lane.retry = this.clock.setTimeout(() => {
      lane.retry = null;
      this.pump(lane);
    }, delay);
  }

  /** Removes the items up to sequence number `upto` from memory and from the file. */
  private drop(lane: Lane, upto: number): void {
    const i = lane.items.findIndex((q) => q.seq > upto);
    const gone = lane.items.splice(0, i === -1 ? lane.items.length : i);
    this.unacked -= gone.length;
    if (gone.length) this.db.query("DELETE FROM outbox WHERE operation_id = ? AND seq <= ?").run(lane.id, gone[gone.length - 1]!.seq);
    if (this.pending() === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** `refused`: the sequence number up to which the call the API refused went (null for a heartbeat). */
  private stopLane(lane: Lane, err: ApiError, refused: number | null = null): void {
    const unsent = lane.items.length;
    const onlyFinal = unsent === 1 && lane.items[0]!.item.kind === "final";
    // A cancelled final with a result outlives the stop, unless it is what the API just refused.
    const last = lane.items[unsent - 1];
    const keep = last?.item.kind === "final" && survivesStop(last.item.final) && (refused === null || last.seq > refused) ? 1 : 0;
    if (unsent - keep > 0) this.drop(lane, lane.items[unsent - keep - 1]!.seq);
    lane.stopped = true;
    lane.progress = undefined;
    if (lane.retry) this.clock.clearTimeout(lane.retry);
    lane.retry = null;
    // A host-side cancel whose operation the API already finished is the normal case, not news.
    if (!onlyFinal && unsent - keep > 0) this.log(`[relay] ${lane.id}: the API answered ${err.code} (${err.message}); dropped ${unsent - keep} unsent item(s)`);
    if (lane.open) {
      this.stopBeating(lane);
      this.opts.onStop?.(lane.id, err.message);
    }
    if (keep) this.pump(lane);
    this.retire(lane);
  }

  private beat(lane: Lane): void {
    if (this.closed || lane.beating || !lane.open || lane.stopped) return;
    const progress = lane.progress;
    lane.progress = undefined;
    lane.beating = true;
    this.opts
      .api(lane.apiUrl)
      .heartbeat(lane.id, progress ? { progress } : {})
      .then(
        () => this.reachable(lane.apiUrl),
        (err: unknown) => {
          const status = err instanceof ApiError ? err.status : null;
          if (status === 409 || status === 404) return this.stopLane(lane, err as ApiError);
          lane.progress ??= progress;
          this.unreachable(lane.apiUrl, err);
        },
      )
      .finally(() => {
        lane.beating = false;
        if (lane.progress && !this.outage(lane.apiUrl).down) this.beat(lane);
        this.retire(lane);
      });
  }

  private stopBeating(lane: Lane): void {
    lane.open = false;
    lane.progress = undefined;
    if (lane.heartbeat) this.clock.clearInterval(lane.heartbeat);
    lane.heartbeat = null;
  }

  private outage(apiUrl: string): Outage {
    let o = this.outages.get(apiUrl);
    if (!o) this.outages.set(apiUrl, (o = { down: false, since: 0, failures: 0, error: null, refused: null }));
    return o;
  }

  /** Records a failed call; true when it was a refused token (401/403). Logs the start of an outage, and a refusal. */
  private unreachable(apiUrl: string, err: unknown): boolean {
    const o = this.outage(apiUrl);
    o.failures++;
    const why = err instanceof Error ? err.message : String(err);
    o.error = why;
    const status = err instanceof ApiError ? err.status : null;
    const refused = status === 401 || status === 403;
    if (refused && !o.refused) {
      o.refused = { status: status!, since: this.clock.now() };
      if (!o.down) o.since = this.clock.now();
      o.down = true;
      this.log(`[relay] ${tokenRefusedMessage(apiUrl, status!)} (${why}); keeping ${this.pending()} unacknowledged item(s), retrying every ${this.backoff.maxMs / 1000} s`);
      return true;
    }
    if (refused) return true;
    o.refused = null;
    if (o.down) return false;
    o.down = true;
    o.since = this.clock.now();
    this.log(`[relay] cannot deliver to the API at ${apiUrl} — ${why} — keeping ${this.pending()} unacknowledged item(s) and retrying (backoff up to ${this.backoff.maxMs / 1000} s); one more line when it is back`);
    return false;
  }

  private reachable(apiUrl: string): void {
    const o = this.outage(apiUrl);
    if (!o.down) return;
    o.down = false;
    o.refused = null;
    o.error = null;
    const secs = ((this.clock.now() - o.since) / 1000).toFixed(1);
    this.log(`[relay] the API at ${apiUrl} is reachable again after ${secs} s (${o.failures} failed attempt(s)); delivering the ${this.pending()} item(s) queued meanwhile`);
    o.failures = 0;
    // Lanes waiting out a long backoff go now rather than at their next retry.
    for (const lane of this.lanes.values()) {
      if (lane.apiUrl !== apiUrl || !lane.retry) continue;
      this.clock.clearTimeout(lane.retry);
      lane.retry = null;
      lane.attempt = 0;
      this.pump(lane);
    }
  }
}
