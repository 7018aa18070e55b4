/**
 * The SQLite store's alert outbox (src/store/alerts.ts AlertStore): the rules column, the alerts and their delivery
 * rows. Its SQL alone; SqliteStore delegates to it.
 */
import type { Database } from "bun:sqlite";
import { notFound } from "../errors.ts";
import type { Alert, AlertBody, AlertRules } from "../schemas/alert.ts";
import {
  toAlerts,
  type AlertFilter,
  type AlertRow,
  type AlertStore,
  type DeliveryRow,
  type DeliveryUpdate,
  type PendingDelivery,
} from "./alerts.ts";

export class SqliteAlerts implements AlertStore {
  constructor(private readonly db: Database) {}

  async getAlertRules(operationId: string): Promise<AlertRules | null> {
    const r = this.db
      .query<{ alert_rules: string | null }, [string]>("SELECT alert_rules FROM operations WHERE operation_id = ?")
      .get(operationId);
    if (!r) throw notFound(operationId);
    return r.alert_rules === null ? null : (JSON.parse(r.alert_rules) as AlertRules);
  }

  async setAlertRules(operationId: string, rules: AlertRules | null): Promise<void> {
    const r = this.db
      .query("UPDATE operations SET alert_rules = ? WHERE operation_id = ?")
      .run(rules === null ? null : JSON.stringify(rules), operationId);
    if (r.changes === 0) throw notFound(operationId);
  }

  async recordAlert(body: AlertBody, channels: readonly string[]): Promise<number | null> {
    return this.db
      .transaction(() => {
        const r = this.db
          .query<{ seq: number }, [string, string, string, string, string, string]>(
            `INSERT INTO alerts (id, operation_id, kind, event, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO NOTHING RETURNING seq`,
          )
          .get(body.id, body.operation.id, body.kind, body.event, JSON.stringify(body), body.at);
        if (!r) return null;
        const insert = this.db.query(
          "INSERT INTO alert_deliveries (alert_id, channel, seq, state, attempts) VALUES (?, ?, ?, 'pending', 0)",
        );
        for (const ch of channels) insert.run(body.id, ch, r.seq);
        return r.seq;
      })
      .immediate();
  }

  async listAlerts(f: AlertFilter): Promise<Alert[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.operation_id !== undefined) where.push("operation_id = ?"), args.push(f.operation_id);
    if (f.since !== undefined) where.push("created_at > ?"), args.push(f.since);
    const w = where.length ? `WHERE ${where.join(" AND ")}` : "";
    const rows = this.db
      .query<AlertRow, (string | number)[]>(`SELECT seq, id, payload FROM alerts ${w} ORDER BY seq DESC LIMIT ?`)
      .all(...args, f.limit);
    return toAlerts(rows, this.deliveriesOf(rows.map((r) => r.id)));
  }

  async getAlert(id: string): Promise<Alert | null> {
    const row = this.db.query<AlertRow, [string]>("SELECT seq, id, payload FROM alerts WHERE id = ?").get(id);
    return row ? toAlerts([row], this.deliveriesOf([id]))[0]! : null;
  }

  private deliveriesOf(ids: readonly string[]): DeliveryRow[] {
    if (ids.length === 0) return [];
    return this.db
      .query<DeliveryRow, [string]>("SELECT * FROM alert_deliveries WHERE alert_id IN (SELECT value FROM json_each(?))")
      .all(JSON.stringify(ids));
  }

  async pendingDeliveries(channel: string, limit: number): Promise<PendingDelivery[]> {
    return this.db
      .query<PendingDelivery & { payload: string }, [string, number]>(
        `SELECT d.alert_id, d.channel, d.seq, d.attempts, d.next_at, a.payload
           FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id
          WHERE d.channel = ? AND d.state = 'pending' ORDER BY d.seq LIMIT ?`,
      )
      .all(channel, limit)
      .map((r) => {
        const payload = JSON.parse(r.payload as unknown as string) as AlertBody;
        return { ...r, payload, created_at: Date.parse(payload.at) };
      });
  }

  async updateDelivery(alertId: string, channel: string, u: DeliveryUpdate): Promise<void> {
    this.db
      .query(
        `UPDATE alert_deliveries SET state = ?, attempts = ?, last_status = ?, last_error = ?, next_at = ?, delivered_at = ?
          WHERE alert_id = ? AND channel = ?`,
      )
      .run(u.state, u.attempts, u.last_status, u.last_error, u.next_at, u.delivered_at, alertId, channel);
  }
}
