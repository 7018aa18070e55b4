/**
 * The Alerts shell (issue 24): a fact in (a flag a write raised, a status reached, a threshold crossed, `hung` from the
 * liveness watchdog), matched against the run's rules and the server's defaults, its payload built from the judgement
 * at that moment, and recorded in the outbox with one pending delivery per configured channel: an insert, never a
 * network call (src/alerts/deliver.ts sends). The operations service calls it after its writes; other parts call
 * `raise`. Everyone who listens (`onAlert`: the SSE streams through the operations service, the delivery worker) hears
 * each recorded alert once per replica: at once on a store of its own, through the shared store's NOTIFY otherwise.
 */
import type { Alert, AlertEvent, AlertRules, AlertRulesView } from "../schemas/alert.ts";
import type { Operation } from "../schemas/operation.ts";
import type { Store } from "../store/store.ts";
import type { AlertStore } from "../store/alerts.ts";
import type { TrendConfig } from "../trends/types.ts";
import { analyzeOperation } from "../operations/reads.ts";
import { alertBody, eventOf, factId, type AlertAdvice, type AlertFact } from "./payload.ts";
import { alertsOn, DEFAULT_ALERT_ON, effectiveEvents } from "./rules.ts";
import { targetsOf } from "./deliver.ts";

/** The delivery channels a server can have: a generic webhook, a Slack incoming webhook. */
export type Channel = "webhook" | "slack";

/** The server's alert settings (src/config.ts): the default events, the channels configured, the pages' base URL. */
export interface AlertSettings {
  /** TRAINWATCH_ALERT_ON (default DEFAULT_ALERT_ON). */
  defaults: readonly AlertEvent[];
  /** The channels with a URL set: each recorded alert gets one delivery per channel. */
  channels: readonly Channel[];
  /** The dashboard's base URL, for the link to the run's page (TRAINWATCH_PUBLIC_URL, else the bound address). */
  publicUrl: () => string;
}

/** The settings of a configuration (src/config.ts AlertConfig): its default events and the channels it names. */
export function alertSettings(
  cfg: Parameters<typeof targetsOf>[0] & { on: readonly AlertEvent[] },
  publicUrl: () => string,
): AlertSettings {
  return { defaults: cfg.on, channels: targetsOf(cfg).map((t) => t.channel), publicUrl };
}

/** Defaults only, no channel: alerts are recorded and streamed, none sent (tests, a server without webhooks). */
export const NO_CHANNELS: AlertSettings = {
  defaults: DEFAULT_ALERT_ON,
  channels: [],
  publicUrl: () => "http://127.0.0.1:8000",
};

/** What the shell needs of the store: the rules, the outbox, and the judgement's reads for the advice. */
type AlertsStore = { readonly alerts: Pick<AlertStore, "getAlertRules" | "recordAlert"> } & Pick<
  Store,
  | "getOperation"
  | "readJudgement"
  | "keepJudgement"
  | "readEpochs"
  | "readEpochsBefore"
  | "readEpochPage"
  | "readStepJudgement"
  | "latestSystemSample"
>;

/** Ids recorded lately, so a threshold past its value on every write costs no insert after the first. */
const REMEMBERED = 4096;

export class Alerts {
  private readonly listeners = new Set<(a: Alert) => void>();
  private readonly recent = new Set<string>();

  constructor(
    private readonly store: AlertsStore,
    private readonly settings: AlertSettings,
    private readonly opts: { trends: TrendConfig; shared: boolean; now?: () => Date },
  ) {}

  /** A run's rules as the API shows them: as set, and the events they come to with the server's defaults. */
  view(operationId: string, rules: AlertRules | null): AlertRulesView {
    return {
      operation_id: operationId,
      rules,
      events: effectiveEvents(rules, this.settings.defaults),
      defaults: [...this.settings.defaults],
      channels: [...this.settings.channels],
    };
  }

  /** Hears every alert recorded (on a shared store: by any replica); returns the unsubscribe function. */
  onAlert(fn: (a: Alert) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** An alert recorded (here, or by a replica: the operations service relays it); its listeners hear it. */
  heard(alert: Alert): void {
    for (const fn of this.listeners) {
      try {
        fn(alert);
      } catch (err) {
        console.error(`[alerts] a listener failed on ${alert.alert.id}:`, err);
      }
    }
  }

  /**
   * Records `fact` when its event alerts for the run (`rules`: the run's, read when not given; a threshold always
   * does: the user set it). Returns the alert, or null when the rules leave it out or it was recorded before (the
   * same fact raised twice: by two replicas, a retried write).
   */
  async raise(fact: AlertFact, rules?: AlertRules | null): Promise<Alert | null> {
    const id = factId(fact);
    if (this.recent.has(id)) return null;
    if (fact.kind !== "threshold") {
      const r = rules === undefined ? await this.store.alerts.getAlertRules(fact.operation_id) : rules;
      if (!alertsOn(fact.kind === "flag" ? fact.event : fact.event, r, this.settings.defaults)) return null;
    }
    const op = await this.store.getOperation(fact.operation_id);
    if (!op) return null;
    const body = alertBody(
      fact,
      op,
      await this.advice(fact, op),
      this.settings.publicUrl(),
      (this.opts.now ?? (() => new Date()))(),
    );
    const seq = await this.store.alerts.recordAlert(body, this.settings.channels);
    this.remember(id);
    if (seq === null) return null;
    const alert: Alert = {
      seq,
      alert: body,
      deliveries: this.settings.channels.map((channel) => ({
        channel,
        state: "pending" as const,
        attempts: 0,
        last_status: null,
        last_error: null,
        next_at: null,
        delivered_at: null,
      })),
    };
    if (!this.opts.shared) this.heard(alert);
    return alert;
  }

  /** The advice at the moment: a stop decision's for `stopped`, else the judgement's recommendation. */
  private async advice(fact: AlertFact, op: Operation): Promise<AlertAdvice | null> {
    if (eventOf(fact) === "stopped" && op.control) {
      const c = op.control;
      return {
        action: c.action,
        reason: c.reason,
        checkpoint_epoch: c.checkpoint_epoch,
        checkpoint_step: c.checkpoint_step ?? null,
      };
    }
    const { analysis } = await analyzeOperation(this.store, op, this.opts.trends);
    const r = analysis.recommendation;
    return {
      action: r.action,
      reason: r.reason,
      checkpoint_epoch: r.checkpoint_epoch,
      checkpoint_step: r.checkpoint_step,
    };
  }

  private remember(id: string): void {
    this.recent.add(id);
    if (this.recent.size > REMEMBERED) this.recent.delete(this.recent.values().next().value!);
  }
}
