/**
 * What the relay does with a call the API did not acknowledge, as a pure function of the HTTP status of the answer
 * (null: no answer at all — refused connection, DNS, timeout) and of the retries the lane has made. No I/O and no
 * clock: the outbox turns the action into a timer, a drop or a stop, and a table test pins every row.
 *
 * | status                         | action  | what the outbox does                                                    |
 * | ------------------------------ | ------- | ----------------------------------------------------------------------- |
 * | none, 5xx, any other           | retry   | keeps the items, tries again after initialMs · 2^attempt (capped)       |
 * | 401, 403                       | park    | keeps the items, reports the refused token, tries again at the cap      |
 * | 409, 404                       | done    | the API takes no more for this operation: drops its items, stops it     |
 * | 400, 413                       | fail    | this call can never succeed: drops what it carried, logs it, goes on    |
 *
 * A refused token is retried at the capped delay from the first failure: only a person can fix it, and once fixed the
 * items should go without waiting out a long backoff, but nothing is gained by knocking every 250 ms meanwhile.
 */

/** Retry delays: initialMs doubling up to maxMs. */
export interface Backoff {
  initialMs: number;
  maxMs: number;
}

/** The relay's default: 250 ms doubling up to 5 s. */
export const DEFAULT_BACKOFF: Backoff = { initialMs: 250, maxMs: 5000 };

export type RelayAction =
  /** A transient failure: try again after `delayMs`; `attempt` is the lane's retry count from now on. */
  | { action: "retry"; delayMs: number; attempt: number }
  /** The API refuses this host's token: keep everything, try again after `delayMs` (the cap); `attempt` unchanged. */
  | { action: "park"; delayMs: number; attempt: number }
  /** The API takes no more relays for this operation (finished, cancelled, unknown). */
  | { action: "done" }
  /** The API will never take this call: drop what it carried. */
  | { action: "fail" };

/** Delay before retry number `attempt` (0-based): initialMs · 2^attempt, capped at maxMs. */
export function backoffDelay(attempt: number, b: Backoff): number {
  return Math.min(b.maxMs, b.initialMs * 2 ** attempt);
}

/** What an answer means for the relay: the action without its timing. */
export type Verdict = RelayAction["action"];

/** The verdict on a call answered `status` (null: no answer). Heartbeats use it alone: their period is their retry. */
export function verdict(status: number | null): Verdict {
  switch (status) {
    case 409:
    case 404:
      return "done";
    case 400:
    case 413:
      return "fail";
    case 401:
    case 403:
      return "park";
    default:
      return "retry";
  }
}

/** The action for a call answered `status` (null: no answer) after `attempt` retries. */
export function relayAction(status: number | null, attempt: number, backoff: Backoff): RelayAction {
  const v = verdict(status);
  if (v === "retry") return { action: v, delayMs: backoffDelay(attempt, backoff), attempt: attempt + 1 };
  if (v === "park") return { action: v, delayMs: backoff.maxMs, attempt };
  return { action: v };
}
