/**
 * Server-Sent Events plumbing: the wire framing and the fan-out that turns operations events
 * into bytes once per write, whatever the number of open streams. A stream holds
 * nothing but its controller; the fan-out holds one service listener per watched operation.
 */
import type { OperationsService, OperationEvent } from "./service.ts";
import type { WireEpoch } from "../schemas/epoch.ts";
import { FINISHED, type Operation } from "../schemas/operation.ts";
import type { TrendSummary } from "../trends/types.ts";
import { sseEvent } from "../http/sse.ts";
import { StreamOrder, type Piece } from "./stream_order.ts";

const encoder = new TextEncoder();

export { RETRY_MS, SSE_HEADERS, sseEvent } from "../http/sse.ts";

/** One `epoch` event per epoch, id = epoch number (what a reconnect sends back as Last-Event-ID), then one `trends` event. */
export function epochEvents(epochs: readonly WireEpoch[], trends: TrendSummary | null): string {
  let out = "";
  for (const e of epochs) out += sseEvent("epoch", e, e.epoch);
  return trends ? out + sseEvent("trends", trends) : out;
}

/** A stream whose unsent backlog exceeds this is closed; the client reconnects with Last-Event-ID and loses nothing. */
export const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;

export interface FanoutOptions {
  /** Interval of `: heartbeat` comments, which keep proxies and idle timers from closing a quiet stream. Default 15 s. */
  heartbeatMs?: number;
  /** Minimum interval between two `operation` events for one operation on the global stream (epochs only; status changes go at once). Default 250 ms. */
  listThrottleMs?: number;
  /** Minimum interval between two liveness `status` events on one operation's stream (heartbeats, batch progress). Default 1 s. */
  liveThrottleMs?: number;
}

type Controller = ReadableStreamDefaultController<Uint8Array>;

/** A piece of a stream (src/operations/stream_order.ts); `end`: the stream closes once it went out. */
type Ended = Piece & { end?: boolean };

/** Throttled updates waiting to be read and sent, by operation id (Fanout.readSoon). */
type Timers = Map<string, ReturnType<typeof setTimeout>>;

/** Clears operation `id`'s update waiting in `timers`, if one does. */
function cancel(timers: Timers, id: string): void {
  const t = timers.get(id);
  if (t) clearTimeout(t), timers.delete(id);
}

/** An operation a liveness update may show: one still going. */
const live = (op: Operation) => !FINISHED.has(op.status);

/** The key of the global channel: status and progress of every operation. */
export const ALL = "*";

/**
 * One stream. While its replay is being read it only collects (`held`); then it sends the replay, then what it held
 * and every later event in its operation's write order (`order`, src/operations/stream_order.ts: what the replay holds
 * is dropped, a write that comes early waits for the ones before it); the global stream keeps no order.
 */
interface Client {
  readonly c: Controller;
  held: Piece[] | null;
  order: StreamOrder | null;
}

interface Channel {
  readonly clients: Map<Controller, Client>;
  readonly unsubscribe: () => void;
}

/** What a joining stream sends first: its replay (as bytes to send), and the write versions that replay reflects. */
export interface Replayed {
  initial: string;
  /** The epoch and step versions of the replay; null for the global stream, which keeps no order. */
  versions: { epochs: number; steps: number } | null;
  /** The operation had finished: the stream ends after the replay. */
  finished: boolean;
}

/**
 * Per-operation fan-out. The first stream on an operation subscribes to the operations service; every
 * operations event is serialised and encoded once and the same bytes are enqueued on every
 * stream; the last stream to leave unsubscribes. When the operation finishes each stream
 * gets `end` and is closed.
 */
export class Fanout {
  private readonly channels = new Map<string, Channel>();
  private readonly heartbeatMs: number;
  private readonly listThrottleMs: number;
  private readonly liveThrottleMs: number;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  /** Global-stream progress updates waiting out the throttle, by operation id. */
  private readonly pendingList: Timers = new Map();
  /** Operation streams' liveness updates waiting out the throttle, by operation id. */
  private readonly pendingLive: Timers = new Map();

  constructor(
    private readonly operations: OperationsService,
    opts: FanoutOptions = {},
  ) {
    this.heartbeatMs = opts.heartbeatMs ?? 15_000;
    this.listThrottleMs = opts.listThrottleMs ?? 250;
    this.liveThrottleMs = opts.liveThrottleMs ?? 1000;
    // Changes may have been missed: every stream closes, and its client reconnects (with Last-Event-ID) to a replay.
    operations.onResync(() => {
      for (const [key, ch] of [...this.channels]) {
        for (const c of ch.clients.keys()) close(c);
        this.drop(key, ch);
      }
    });
  }

  /**
   * Adds a stream to `key`'s channel (an operation id, or ALL). It listens before `replay` reads, and holds what it
   * hears meanwhile; then it sends the replay, and of what it held only what the replay lacks: a live epochs event
   * whose version the replay reflects is dropped. So every write lands once, in the replay or after it, also when the
   * read waits on a database while other replicas write. Resolves once the replay is sent (rejects when it failed).
   */
  async join(key: string, controller: Controller, replay: () => Promise<Replayed> | Replayed): Promise<void> {
    const ch = this.channel(key);
    const client: Client = { c: controller, held: [], order: null };
    ch.clients.set(controller, client);
    let r: Replayed;
    try {
      r = await replay();
    } catch (err) {
      this.leave(key, controller);
      throw err;
    }
    if (!ch.clients.has(controller)) return; // gone while the replay was read
    const held = client.held ?? [];
    client.held = null;
    client.order = r.versions && new StreamOrder(r.versions);
    this.send(ch, client, { bytes: encoder.encode(r.initial) });
    if (r.finished) {
      ch.clients.delete(controller);
      close(controller);
      this.prune(key);
      return;
    }
    for (const h of held) if (ch.clients.has(controller)) this.send(ch, client, h);
    if (!ch.clients.has(controller)) return this.prune(key);
    this.heartbeat ??= setInterval(() => this.beat(), this.heartbeatMs);
    // Never keep a process (a test, a bench) alive for a heartbeat.
    (this.heartbeat as { unref?: () => void }).unref?.();
  }

  private channel(key: string): Channel {
    let ch = this.channels.get(key);
    if (!ch) {
      const unsubscribe = this.operations.subscribe(
        key,
        key === ALL ? (e) => this.onGlobal(e) : (e) => this.onOperation(key, e),
      );
      ch = { clients: new Map(), unsubscribe };
      this.channels.set(key, ch);
    }
    return ch;
  }

  /** Removes a stream (closed, aborted or lagging); the last one out unsubscribes from the operations service. */
  leave(key: string, controller: Controller): void {
    const ch = this.channels.get(key);
    if (!ch?.clients.delete(controller)) return;
    if (ch.clients.size === 0) this.drop(key, ch);
  }

  /** Open channels and streams, for tests and the bench. */
  stats(): { channels: number; streams: number } {
    let streams = 0;
    for (const ch of this.channels.values()) streams += ch.clients.size;
    return { channels: this.channels.size, streams };
  }

  private drop(key: string, ch: Channel): void {
    ch.unsubscribe();
    this.channels.delete(key);
    if (key === ALL) {
      for (const t of this.pendingList.values()) clearTimeout(t);
      this.pendingList.clear();
    } else cancel(this.pendingLive, key);
    if (this.channels.size === 0 && this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = null;
    }
  }

  private onOperation(key: string, e: OperationEvent): void {
    const ch = this.channels.get(key);
    if (!ch) return;
    if (e.type === "epochs") {
      this.broadcast(ch, {
        bytes: encoder.encode(epochEvents(e.epochs, e.trends)),
        at: { series: "epochs", version: e.version },
      });
      this.prune(key);
      return;
    }
    if (e.type === "steps") {
      // One event per write (a step run writes hundreds of steps a second): the page reads its history with GET …/steps.
      // An empty one is still counted (its version is the next one's predecessor).
      const bytes =
        e.steps.length > 0 ? encoder.encode(sseEvent("steps", { steps: e.steps, version: e.version })) : null;
      this.broadcast(ch, { bytes, at: { series: "steps", version: e.version } });
      this.prune(key);
      return;
    }
    if (e.type === "versions") {
      // The relay's periodic check: a stream that still lacks what it lacked at the previous one replays (it closes,
      // and its client reconnects with Last-Event-ID).
      for (const client of [...ch.clients.values()]) {
        if (client.held || !client.order?.check(e.versions)) continue;
        ch.clients.delete(client.c);
        close(client.c);
      }
      return this.prune(key);
    }
    if (e.type === "system") {
      // One event per write (a client posts every minute or so): the page charts the samples it holds.
      if (e.samples.length > 0)
        this.broadcast(ch, { bytes: encoder.encode(sseEvent("system", { samples: e.samples })) });
      this.prune(key);
      return;
    }
    // Liveness and batch progress (a heartbeat, batches inside the epoch): the operation as it now reads, at most once
    // per liveThrottleMs, so an open page sees `last_seen_at`, `stale` and the progress move without asking.
    // A finish goes out as its own status event, with end.
    if (e.type === "changed") return this.readSoon(this.pendingLive, key, key, this.liveThrottleMs, "status", live);
    if (e.type === "alert") {
      this.broadcast(ch, { bytes: encoder.encode(sseEvent("alert", e.alert)) });
      return this.prune(key);
    }
    cancel(this.pendingLive, key);
    if (e.type === "removed") {
      for (const client of [...ch.clients.values()]) {
        ch.clients.delete(client.c);
        close(client.c);
      }
      return this.prune(key);
    }
    const finished = FINISHED.has(e.operation.status);
    const bytes = encoder.encode(
      sseEvent("status", e.operation) + (finished ? sseEvent("end", { status: e.operation.status }) : ""),
    );
    // A finish ends each stream once the writes it follows are out (at once where they are, or on one store).
    this.broadcast(ch, finished ? { bytes, after: e.after ?? { epochs: 0, steps: 0 }, end: true } : { bytes });
    this.prune(key);
  }

  /**
   * The global stream carries whole operations: at once on a status change, throttled while epochs, heartbeats and
   * batch progress pour in; and `removed` when one is discarded.
   */
  private onGlobal(e: OperationEvent): void {
    const ch = this.channels.get(ALL);
    if (!ch) return;
    // Lists hear a system write through its touch (`changed`); the samples are no list's business.
    if (e.type === "system") return;
    if (e.type === "removed") {
      cancel(this.pendingList, e.operation_id);
      this.broadcast(ch, { bytes: encoder.encode(sseEvent("removed", { operation_id: e.operation_id })) });
      this.prune(ALL);
      return;
    }
    if (e.type === "alert") {
      this.broadcast(ch, { bytes: encoder.encode(sseEvent("alert", e.alert)) });
      this.prune(ALL);
      return;
    }
    if (e.type === "versions") return;
    if (e.type === "status") {
      cancel(this.pendingList, e.operation_id);
      this.broadcast(ch, { bytes: encoder.encode(sseEvent("operation", e.operation)) });
      this.prune(ALL);
      return;
    }
    this.readSoon(this.pendingList, e.operation_id, ALL, this.listThrottleMs, "operation");
  }

  /**
   * The throttle of both streams' progress: at most one update of operation `id` waits in `timers`. When it fires,
   * `ms` later, the operation as it then reads goes to channel `key` as `event`, unless the channel is gone or
   * `keep` refuses the operation. A status change cancels it (cancel) and goes out at once.
   */
  private readSoon(
    timers: Timers,
    id: string,
    key: string,
    ms: number,
    event: "operation" | "status",
    keep: (op: Operation) => boolean = () => true,
  ): void {
    if (timers.has(id)) return;
    const timer = setTimeout(async () => {
      timers.delete(id);
      let op: Operation | null;
      try {
        op = await this.operations.reader.getOperation(id);
      } catch (err) {
        return console.error(
          `[fanout] reading ${id} for ${key === ALL ? "the global stream" : "its stream"} failed:`,
          err,
        );
      }
      const ch = this.channels.get(key);
      if (!op || !ch || !keep(op)) return;
      this.broadcast(ch, { bytes: encoder.encode(sseEvent(event, op)) });
      this.prune(key);
    }, ms);
    timers.set(id, timer);
  }

  private beat(): void {
    const bytes = encoder.encode(": heartbeat\n\n");
    for (const [key, ch] of [...this.channels]) {
      this.broadcast(ch, { bytes });
      this.prune(key);
    }
  }

  /** The same piece (the same bytes) to every stream, each in its own order. */
  private broadcast(ch: Channel, piece: Ended): void {
    for (const client of [...ch.clients.values()]) this.send(ch, client, piece);
  }

  /** Drops a channel that lost its last stream to lag or a dead socket. */
  private prune(key: string): void {
    const ch = this.channels.get(key);
    if (ch && ch.clients.size === 0) this.drop(key, ch);
  }

  /**
   * Enqueues the shared bytes of what the stream's order lets out now; a stream too far behind is closed rather than
   * buffered without bound, and one whose finish went out ends.
   */
  private send(ch: Channel, client: Client, piece: Ended): void {
    if (client.held) {
      client.held.push(piece);
      return;
    }
    const c = client.c;
    for (const p of (client.order?.accept(piece) ?? [piece]) as Ended[]) {
      if (!ch.clients.has(c)) return;
      try {
        if (p.bytes) c.enqueue(p.bytes);
        if (p.end || (c.desiredSize ?? 0) < -MAX_BACKLOG_BYTES) {
          ch.clients.delete(c);
          close(c);
        }
      } catch {
        // The stream was closed underneath us (client gone); forget it.
        ch.clients.delete(c);
      }
    }
  }
}

function close(c: Controller): void {
  try {
    c.close();
  } catch {
    // already closed or errored
  }
}
