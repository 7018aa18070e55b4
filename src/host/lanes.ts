/**
 * One lane per operation: the relay's in-memory queue of what that operation still has to deliver, in order, with the
 * state its heartbeats and retries need. The rules of a lane live here as plain functions over it:
 * - first in, first out; consecutive epochs go as one call, consecutive step batches as one call of at most
 *   MAX_STEPS_PER_BATCH steps (re-posting is safe: the API replaces an existing epoch or step);
 * - the final status is queued last, so it goes only after every epoch is acknowledged;
 * - once the API takes no more for the operation ("done"), only a final "cancelled" carrying a result still goes
 *   (the API records the result of the cancel it asked for: the checkpoints the training kept);
 * - a lane is forgotten once its training ended and nothing is left to send, keeping only its delivered count.
 */
import type { Checkpoint } from "../schemas/checkpoint.ts";
import type { WireEpoch } from "../schemas/epoch.ts";
import { MAX_STEPS_PER_BATCH, type WireStep } from "../schemas/step.ts";
import type { BatchProgress, HeartbeatInput, StartedInfo } from "../schemas/host.ts";

export type FinalStatus =
  | { status: "completed"; result?: Record<string, unknown> | null }
  | { status: "failed"; error_message: string; failure_code?: "trainer_error"; result?: Record<string, unknown> | null }
  | { status: "cancelled"; result?: Record<string, unknown> | null };

export type OutboxItem =
  | { kind: "started"; info: StartedInfo }
  | { kind: "checkpoints"; checkpoints: Checkpoint[] }
  | { kind: "epoch"; epoch: WireEpoch }
  /** One batch of steps as the script posted it (a step run posts batches, not rows: one file row per batch). */
  | { kind: "steps"; steps: WireStep[] }
  | { kind: "final"; final: FinalStatus };

/** An item and its sequence number in the outbox file. */
export interface Queued {
  seq: number;
  item: OutboxItem;
}

export interface Lane {
  id: string;
  apiUrl: string;
  items: Queued[];
  /** A training is running: heartbeats go out. */
  open: boolean;
  /** A relay call is in flight. */
  busy: boolean;
  /** The pending retry timer, if any. */
  retry: unknown;
  /** Retries since the last acknowledgement (the relay policy's backoff exponent). */
  attempt: number;
  delivered: number;
  /** Latest batch progress not yet sent (undefined: nothing new). */
  progress: BatchProgress | undefined;
  /** A heartbeat call is in flight. */
  beating: boolean;
  /** The heartbeat interval, while open. */
  heartbeat: unknown;
  /** The API said finished/unknown: anything new for this operation is dropped. */
  stopped: boolean;
  /** The training ended (close() was called): the lane goes once its queue is empty. */
  closed: boolean;
  /** The open training was handed the API's stop decision (onControl): once per training. */
  controlled: boolean;
}

export const newLane = (id: string, apiUrl: string): Lane => ({
  id,
  apiUrl,
  items: [],
  open: false,
  busy: false,
  retry: null,
  attempt: 0,
  delivered: 0,
  progress: undefined,
  beating: false,
  heartbeat: null,
  stopped: false,
  closed: false,
  controlled: false,
});

/** A cancel the API asked for still wants the training's result (its checkpoints), though the lane is stopped. */
export const survivesStop = (final: FinalStatus) => final.status === "cancelled" && final.result != null;

/** The body of POST /operations/{id}/complete. */
export interface CompleteBody {
  status: "completed" | "failed" | "cancelled";
  error_message?: string;
  failure_code?: "trainer_error";
  result?: Record<string, unknown>;
}

/** One relay call: which API endpoint, with what. */
export type RelayCall =
  | { to: "metrics"; epochs: WireEpoch[] }
  | { to: "steps"; steps: WireStep[] }
  | { to: "heartbeat"; body: HeartbeatInput }
  | { to: "complete"; body: CompleteBody };

/**
 * The call that delivers the head of the lane: up to `maxBatch` consecutive epochs, consecutive step batches up to
 * `maxSteps` steps in all (a batch is never split: the first goes whole), or the one item there; `n` items, through
 * sequence number `upto` (by sequence number, not count: a stop may drop items while the call is in flight).
 */
export function headCall(
  lane: Lane,
  maxBatch: number,
  maxSteps = MAX_STEPS_PER_BATCH,
): { call: RelayCall; n: number; upto: number } | null {
  const head = lane.items[0]?.item;
  if (!head) return null;
  let n = 1;
  let call: RelayCall;
  if (head.kind === "epoch") {
    const epochs: WireEpoch[] = [];
    for (const q of lane.items) {
      if (q.item.kind !== "epoch" || epochs.length >= maxBatch) break;
      epochs.push(q.item.epoch);
    }
    n = epochs.length;
    call = { to: "metrics", epochs };
  } else if (head.kind === "steps") {
    const steps: WireStep[] = [...head.steps];
    for (const q of lane.items.slice(1)) {
      if (q.item.kind !== "steps" || steps.length + q.item.steps.length > maxSteps) break;
      for (const st of q.item.steps) steps.push(st);
      n++;
    }
    call = { to: "steps", steps };
  } else if (head.kind === "started") {
    call = { to: "heartbeat", body: { started: head.info } };
  } else if (head.kind === "checkpoints") {
    call = { to: "heartbeat", body: { checkpoints: head.checkpoints } };
  } else {
    const f = head.final;
    call = {
      to: "complete",
      body: {
        status: f.status,
        ...(f.status === "failed"
          ? { error_message: f.error_message, ...(f.failure_code ? { failure_code: f.failure_code } : {}) }
          : {}),
        ...(f.result ? { result: f.result } : {}),
      },
    };
  }
  return { call, n, upto: lane.items[n - 1]!.seq };
}

/** Removes the items through sequence number `upto` from the lane and returns them. */
export function takeThrough(lane: Lane, upto: number): Queued[] {
  const i = lane.items.findIndex((q) => q.seq > upto);
  return lane.items.splice(0, i === -1 ? lane.items.length : i);
}

/**
 * The API takes no more for this operation: how many of the lane's items go unsent (the rest, 0 or 1, is a cancelled
 * final with a result, kept unless it is what the API just refused: `refused` is the sequence number through which
 * the refused call went, null for a heartbeat).
 */
export function unsentOnStop(lane: Lane, refused: number | null): number {
  const last = lane.items.at(-1);
  const keep =
    last?.item.kind === "final" && survivesStop(last.item.final) && (refused === null || last.seq > refused) ? 1 : 0;
  return lane.items.length - keep;
}

/** A lane whose training ended, with nothing queued, in flight or scheduled: it can be forgotten. */
export const retirable = (lane: Lane) =>
  lane.closed && !lane.open && !lane.busy && !lane.beating && lane.items.length === 0 && !lane.retry;

/** Delivered counts of forgotten lanes, for GET /sessions, oldest dropped beyond `keep`. */
export class RetiredCounts {
  private readonly counts = new Map<string, number>();

  constructor(private readonly keep = 1000) {}

  add(id: string, delivered: number): void {
    this.counts.set(id, delivered);
    if (this.counts.size > this.keep) this.counts.delete(this.counts.keys().next().value!);
  }

  get(id: string): number | undefined {
    return this.counts.get(id);
  }
}
