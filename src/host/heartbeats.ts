/**
 * Heartbeats of the trainings running on this host: one call when a training opens, then one every period (default
 * 10 s) while it runs, so the API's watchdog knows the host is alive; each carries the latest batch progress, which is
 * coalesced (only the newest is kept, never persisted) and sent at once when no heartbeat is in flight and the API is
 * reachable. A heartbeat answered "done" (409/404: cancelled or finished on the API) stops the training; any other
 * failure only counts towards the outage, and the next period tries again. An answer's `control` (the operation's stop
 * decision, recorded between epochs) goes to the outbox, which hands it to the session.
 */
import type { BatchProgress, HeartbeatInput } from "../schemas/host.ts";
import type { Clock } from "./clock.ts";
import type { Lane } from "./lanes.ts";
import { statusOf } from "./outages.ts";
import { verdict } from "./relay_policy.ts";

export interface HeartbeatsOptions {
  /** The period; 0 sends only the heartbeat at open and those that carry progress. */
  periodMs: number;
  clock: Clock;
  api: (apiUrl: string) => { heartbeat(id: string, body?: HeartbeatInput): Promise<unknown> };
  /** The outbox's view of delivery, which heartbeats share with the queue's calls. */
  relay: {
    /** False once the outbox is stopped. */
    running(): boolean;
    down(apiUrl: string): boolean;
    reachable(apiUrl: string): void;
    /** A failed call; `refusedStatus`: the 401/403 when the API refused the token. */
    unreachable(apiUrl: string, err: unknown, refusedStatus: number | null): void;
    /** The API takes no more for this operation. */
    done(lane: Lane, err: unknown): void;
    /** An acknowledged heartbeat's reply (it carries the operation's control). */
    heard(lane: Lane, reply: unknown): void;
    /** A heartbeat settled: the lane may have nothing left to do. */
    settled(lane: Lane): void;
  };
}

export class Heartbeats {
  constructor(private readonly opts: HeartbeatsOptions) {}

  /** A training starts: a heartbeat now, and one every period until stop(). */
  start(lane: Lane): void {
    lane.open = true;
    if (this.opts.periodMs > 0)
      lane.heartbeat ??= this.opts.clock.setInterval(() => this.beat(lane), this.opts.periodMs);
    this.beat(lane);
  }

  /** Latest batch progress: kept in place of any unsent one, sent now unless a heartbeat is in flight or the API is down. */
  progress(lane: Lane, progress: BatchProgress): void {
    if (!lane.open || lane.stopped) return;
    lane.progress = progress;
    if (!this.opts.relay.down(lane.apiUrl)) this.beat(lane);
  }

  /** The training ended, or the API stopped it: no more heartbeats. */
  stop(lane: Lane): void {
    lane.open = false;
    lane.progress = undefined;
    if (lane.heartbeat) this.opts.clock.clearInterval(lane.heartbeat);
    lane.heartbeat = null;
  }

  private beat(lane: Lane): void {
    const { relay } = this.opts;
    if (!relay.running() || lane.beating || !lane.open || lane.stopped) return;
    const progress = lane.progress;
    lane.progress = undefined;
    lane.beating = true;
    this.opts
      .api(lane.apiUrl)
      .heartbeat(lane.id, progress ? { progress } : {})
      .then(
        (reply) => {
          relay.reachable(lane.apiUrl);
          relay.heard(lane, reply);
        },
        (err: unknown) => {
          const status = statusOf(err);
          const v = verdict(status);
          if (v === "done") return relay.done(lane, err);
          lane.progress ??= progress;
          relay.unreachable(lane.apiUrl, err, v === "park" ? status : null);
        },
      )
      .finally(() => {
        lane.beating = false;
        if (lane.progress && !relay.down(lane.apiUrl)) this.beat(lane);
        relay.settled(lane);
      });
  }
}
