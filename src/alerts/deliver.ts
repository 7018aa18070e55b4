/**
 * The alert delivery worker (issue 24): a thin shell that sends the outbox's pending deliveries to the server's
 * channels. Per channel, in recording order (head of line: a channel's oldest undelivered alert goes first, so a
 * receiver that was down gets every alert afterwards, in order); one POST per attempt with a timeout; delivered on a
 * 2xx; otherwise retried with backoff (1 s doubling to 5 min) until RETRY_FOR_MS after the alert was recorded, then
 * `failed` and the next one goes. Woken at once when an alert is recorded, and by a timer for retries; it keeps no
 * state of its own, so a restart loses nothing (the pending rows are read back). The clock and fetch are parameters.
 * On replicas only the leader runs it (src/operations/replicas.ts LeaderJob), so an alert is sent once.
 */
import { createHmac } from "node:crypto";
import type { AlertBody } from "../schemas/alert.ts";
import type { AlertStore, PendingDelivery } from "../store/alerts.ts";
import { slackMessage } from "./payload.ts";
import type { Channel } from "./service.ts";

/** How long an alert is retried before its delivery is `failed`: an hour. */
export const RETRY_FOR_MS = 60 * 60 * 1000;
/** At least this many attempts before `failed`, however old the alert (a server down for a day still tries). */
export const MIN_ATTEMPTS = 5;

/** The wait after the `attempts`-th failed attempt: 1 s doubling, at most 5 min. */
export const retryDelayMs = (attempts: number): number => Math.min(1000 * 2 ** Math.max(0, attempts - 1), 300_000);

/** A channel as the worker sends to it. */
export interface Target {
  channel: Channel;
  url: string;
  /** The HMAC key of X-Trainwatch-Signature; null: unsigned. */
  secret: string | null;
}

/** The channels a configuration names (src/config.ts AlertConfig), in a fixed order. */
export function targetsOf(cfg: { webhook: string | null; secret: string | null; slack: string | null }): Target[] {
  const out: Target[] = [];
  if (cfg.webhook) out.push({ channel: "webhook", url: cfg.webhook, secret: cfg.secret });
  if (cfg.slack) out.push({ channel: "slack", url: cfg.slack, secret: null });
  return out;
}

/** The bytes a channel receives for `body`: the generic body as is, Slack's message for Slack. */
export const bodyFor = (channel: Channel, body: AlertBody): string =>
  JSON.stringify(channel === "slack" ? slackMessage(body) : body);

/** `sha256=<hex HMAC-SHA256 of the body under secret>`: the X-Trainwatch-Signature header. */
export const signature = (secret: string, body: string): string =>
  `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

export interface DelivererOptions {
  store: Pick<AlertStore, "pendingDeliveries" | "updateDelivery">;
  targets: readonly Target[];
  fetch?: typeof fetch;
  /** The clock, in ms (default Date.now). */
  now?: () => number;
  /** One attempt's timeout (default 10 s). */
  timeoutMs?: number;
  log?: (line: string) => void;
}

/** Rows read per query: a backlog drains in pages, in order. */
const PAGE = 50;

export class Deliverer {
  private readonly fetch: typeof fetch;
  private readonly now: () => number;
  private running: Promise<void> | null = null;
  private again = false;
  private started = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly opts: DelivererOptions) {
    this.fetch = opts.fetch ?? fetch;
    this.now = opts.now ?? Date.now;
  }

  /** Starts sending: at once what is pending (a restart's backlog), then whenever woken or a retry is due. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.wake();
  }

  /** Stops the timer and waits for the pass in flight. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer), (this.timer = null);
    await this.running;
  }

  /** An alert was recorded: send it now (a pass in flight runs once more after itself). */
  wake(): void {
    if (!this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => (this.running = null));
  }

  private async loop(): Promise<void> {
    let next: number | null = null;
    do {
      this.again = false;
      try {
        next = await this.drain();
      } catch (err) {
        (this.opts.log ?? console.error)(`[alerts] delivery pass failed: ${err instanceof Error ? err.message : err}`);
        next = this.now() + 1000;
      }
    } while (this.again && this.started);
    if (this.timer) clearTimeout(this.timer), (this.timer = null);
    if (next !== null && this.started) {
      this.timer = setTimeout(() => this.wake(), Math.max(0, next - this.now()));
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  /**
   * One pass: every channel sends what is due, in order, until its head must wait (a retry) or nothing is pending.
   * Returns when the earliest retry is due (ms), or null when nothing waits.
   */
  async drain(): Promise<number | null> {
    const due = await Promise.all(this.opts.targets.map((t) => this.drainChannel(t)));
    const waits = due.filter((d): d is number => d !== null);
    return waits.length ? Math.min(...waits) : null;
  }

  private async drainChannel(t: Target): Promise<number | null> {
    for (;;) {
      const page = await this.opts.store.pendingDeliveries(t.channel, PAGE);
      if (page.length === 0) return null;
      for (const d of page) {
        if (d.next_at !== null && d.next_at > this.now()) return d.next_at;
        const wait = await this.attempt(t, d);
        if (wait !== null) return wait;
      }
    }
  }

  /** One attempt of `d`; null when the line moves on (delivered, or failed for good), else when to retry it. */
  private async attempt(t: Target, d: PendingDelivery): Promise<number | null> {
    const body = bodyFor(t.channel, d.payload);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": "trainwatch-alerts",
      "x-trainwatch-alert-id": d.alert_id,
    };
    if (t.secret) headers["x-trainwatch-signature"] = signature(t.secret, body);
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await this.fetch(t.url, {
        method: "POST",
        headers,
        body,
        // A receiver's redirect is not followed (the signed body would go where the configuration never named): a 3xx
        // is an answer that is not a 2xx, retried like any other.
        redirect: "manual",
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
      });
      status = res.status;
      await res.body?.cancel();
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (err) {
      error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    const attempts = d.attempts + 1;
    const now = this.now();
    if (error === null) {
      await this.opts.store.updateDelivery(d.alert_id, t.channel, {
        state: "delivered",
        attempts,
        last_status: status,
        last_error: null,
        next_at: null,
        delivered_at: new Date(now).toISOString(),
      });
      return null;
    }
    const giveUp = now - d.created_at >= RETRY_FOR_MS && attempts >= MIN_ATTEMPTS;
    const next = giveUp ? null : now + retryDelayMs(attempts);
    await this.opts.store.updateDelivery(d.alert_id, t.channel, {
      state: giveUp ? "failed" : "pending",
      attempts,
      last_status: status,
      last_error: error.slice(0, 500),
      next_at: next,
      delivered_at: null,
    });
    if (giveUp)
      (this.opts.log ?? console.warn)(
        `[alerts] ${d.alert_id}: ${t.channel} failed for good after ${attempts} attempts: ${error}`,
      );
    return next;
  }
}
