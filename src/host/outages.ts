/**
 * Whether each API URL the relay delivers to is taking its calls, for `problem()` (on /health and each session) and
 * for the log: one line when an outage starts, one when it ends, never one per retry; a refused token (401/403) is
 * its own problem, logged naming TRAINWATCH_TOKEN, since only a person can fix it.
 */
import { ApiError } from "../client/api.ts";
import type { RelayProblem } from "../schemas/host.ts";
import type { Clock } from "./clock.ts";

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

export interface OutagesOptions {
  clock: Clock;
  log: (line: string) => void;
  /** Items not yet acknowledged, over all operations, for the log lines. */
  pending: () => number;
  /** The capped retry delay, for the log lines. */
  maxDelayMs: number;
}

export class Outages {
  private readonly byUrl = new Map<string, Outage>();

  constructor(private readonly opts: OutagesOptions) {}

  /** True while calls to `apiUrl` fail (an outage or a refused token). */
  down(apiUrl: string): boolean {
    return this.byUrl.get(apiUrl)?.down ?? false;
  }

  /**
   * Records a failed call to `apiUrl`; `refusedStatus` is the 401/403 it was answered with when the API refused the
   * token (the relay policy's "park"), else null. Logs the start of an outage, and the start of a refusal.
   */
  failed(apiUrl: string, err: unknown, refusedStatus: number | null): void {
    const o = this.outage(apiUrl);
    const { clock, log, pending, maxDelayMs } = this.opts;
    o.failures++;
    const why = err instanceof Error ? err.message : String(err);
    o.error = why;
    if (refusedStatus !== null) {
      if (o.refused) return;
      o.refused = { status: refusedStatus, since: clock.now() };
      if (!o.down) o.since = clock.now();
      o.down = true;
      log(
        `[relay] ${tokenRefusedMessage(apiUrl, refusedStatus)} (${why}); keeping ${pending()} unacknowledged item(s), retrying every ${maxDelayMs / 1000} s`,
      );
      return;
    }
    o.refused = null;
    if (o.down) return;
    o.down = true;
    o.since = clock.now();
    log(
      `[relay] cannot deliver to the API at ${apiUrl} — ${why} — keeping ${pending()} unacknowledged item(s) and retrying (backoff up to ${maxDelayMs / 1000} s); one more line when it is back`,
    );
  }

  /** Records an answered call; true when it ends an outage (logged), so lanes waiting out a backoff can go now. */
  reachable(apiUrl: string): boolean {
    const o = this.byUrl.get(apiUrl);
    if (!o?.down) return false;
    o.down = false;
    o.refused = null;
    o.error = null;
    const secs = ((this.opts.clock.now() - o.since) / 1000).toFixed(1);
    this.opts.log(
      `[relay] the API at ${apiUrl} is reachable again after ${secs} s (${o.failures} failed attempt(s)); delivering the ${this.opts.pending()} item(s) queued meanwhile`,
    );
    o.failures = 0;
    return true;
  }

  /** What stops delivery to `apiUrl` now (a refused token, or an outage), or null while it delivers. */
  problem(apiUrl: string): RelayProblem | null {
    const o = this.byUrl.get(apiUrl);
    if (!o?.down) return null;
    const since = new Date(o.refused?.since ?? o.since).toISOString();
    if (o.refused)
      return {
        api_url: apiUrl,
        refused: true,
        status: o.refused.status,
        message: tokenRefusedMessage(apiUrl, o.refused.status),
        since,
      };
    return { api_url: apiUrl, refused: false, status: null, message: o.error ?? "unreachable", since };
  }

  /** Every API URL that delivery is failing to now. */
  problems(): RelayProblem[] {
    return [...this.byUrl.keys()].map((url) => this.problem(url)).filter((p): p is RelayProblem => p !== null);
  }

  private outage(apiUrl: string): Outage {
    let o = this.byUrl.get(apiUrl);
    if (!o) this.byUrl.set(apiUrl, (o = { down: false, since: 0, failures: 0, error: null, refused: null }));
    return o;
  }
}

/** The HTTP status a failed relay call was answered with; null when there was no answer (network, timeout). */
export const statusOf = (err: unknown): number | null => (err instanceof ApiError ? err.status : null);
