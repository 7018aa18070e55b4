/**
 * The alert outbox as both stores keep it (issue 24): the Store's alert methods, the rows they read, and the rows back
 * as the API's Alert and Delivery. Pure: each store has its SQL (sqlite_alerts.ts, pg_alerts.ts); the delivery worker
 * (src/alerts/deliver.ts) and the Alerts shell (src/alerts/service.ts) call them.
 */
import type { Alert, AlertBody, AlertRules, Delivery, DeliveryState } from "../schemas/alert.ts";

/** What GET /alerts filters on: an operation, alerts recorded after `since` (ISO), the page size (recent first). */
export interface AlertFilter {
  operation_id?: string;
  since?: string;
  limit: number;
}

/** One channel's undelivered alert, as the worker sends it. */
export interface PendingDelivery {
  alert_id: string;
  channel: string;
  seq: number;
  attempts: number;
  /** When the next attempt is due (ms); null: at once. */
  next_at: number | null;
  /** When the alert was recorded (ms): retries stop RETRY_FOR_MS after it. */
  created_at: number;
  payload: AlertBody;
}

/** An attempt's outcome, written on the delivery row. */
export interface DeliveryUpdate {
  state: DeliveryState;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_at: number | null;
  delivered_at: string | null;
}

/** The alert part of the Store (src/store/store.ts), on both stores; one contract suite checks both. */
export interface AlertStore {
  /** A run's alert rules (null: the server's defaults); OPERATION_NOT_FOUND for an unknown id. */
  getAlertRules(operationId: string): Promise<AlertRules | null>;
  /** Replaces (null clears) a run's alert rules, finished or not; OPERATION_NOT_FOUND for an unknown id. */
  setAlertRules(operationId: string, rules: AlertRules | null): Promise<void>;
  /**
   * Records an alert and one pending delivery per channel, in one transaction; returns its seq, or null when an alert
   * with its id is already recorded (a fact raised twice: nothing changes). On a shared store replicas hear it.
   */
  recordAlert(body: AlertBody, channels: readonly string[]): Promise<number | null>;
  /** Alerts, most recent first, each with its deliveries. */
  listAlerts(filter: AlertFilter): Promise<Alert[]>;
  /** One alert with its deliveries; null when unknown. */
  getAlert(id: string): Promise<Alert | null>;
  /** A channel's pending deliveries, oldest first (the head of the line first), at most `limit`. */
  pendingDeliveries(channel: string, limit: number): Promise<PendingDelivery[]>;
  /** Records an attempt's outcome on the delivery of `alertId` to `channel`. */
  updateDelivery(alertId: string, channel: string, update: DeliveryUpdate): Promise<void>;
}

/** A delivery row as both stores read it (next_at in ms, delivered_at ISO). */
export interface DeliveryRow {
  alert_id: string;
  channel: string;
  state: DeliveryState;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_at: number | string | null;
  delivered_at: string | null;
}

/** An alert row: its seq and payload (the generic webhook body as JSON). */
export interface AlertRow {
  seq: number | string;
  id: string;
  payload: string;
}

/** The API's Delivery from its row. */
export const toDelivery = (r: DeliveryRow): Delivery => ({
  channel: r.channel,
  state: r.state,
  attempts: r.attempts,
  last_status: r.last_status,
  last_error: r.last_error,
  next_at: r.next_at === null || r.state !== "pending" ? null : new Date(Number(r.next_at)).toISOString(),
  delivered_at: r.delivered_at,
});

/** Alert rows with their deliveries (grouped by alert id, channels in name order), in the rows' order. */
export function toAlerts(rows: readonly AlertRow[], deliveries: readonly DeliveryRow[]): Alert[] {
  const by = new Map<string, Delivery[]>();
  for (const d of [...deliveries].sort((a, b) => a.channel.localeCompare(b.channel))) {
    let list = by.get(d.alert_id);
    if (!list) by.set(d.alert_id, (list = []));
    list.push(toDelivery(d));
  }
  return rows.map((r) => ({
    seq: Number(r.seq),
    alert: JSON.parse(r.payload) as AlertBody,
    deliveries: by.get(r.id) ?? [],
  }));
}
