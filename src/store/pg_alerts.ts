/**
 * The PostgreSQL store's alert outbox (src/store/alerts.ts AlertStore): the rules column, the alerts and their
 * delivery rows. Recording an alert tells every replica once committed (NOTIFY, pg_notify.ts alertNotice, sent by
 * pg_announce.ts), so each one's streams hear it and the leading replica's delivery worker wakes. Its SQL alone; PostgresStore delegates to it.
 */
import type { SQL } from "bun";
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
import { alertNotice } from "./pg_notify.ts";

export class PgAlerts implements AlertStore {
  constructor(
    private readonly sql: SQL,
    /** The store's announcement of a committed change (src/store/pg_announce.ts). */
    private readonly announce: (payloads: string[]) => Promise<void>,
  ) {}

  async getAlertRules(operationId: string): Promise<AlertRules | null> {
    const [r] = await this.sql<
      { alert_rules: string | null }[]
    >`SELECT alert_rules FROM operations WHERE operation_id = ${operationId}`;
    if (!r) throw notFound(operationId);
    return r.alert_rules === null ? null : (JSON.parse(r.alert_rules) as AlertRules);
  }

  async setAlertRules(operationId: string, rules: AlertRules | null): Promise<void> {
    const rows = await this.sql`
      UPDATE operations SET alert_rules = ${rules === null ? null : JSON.stringify(rules)}
      WHERE operation_id = ${operationId} RETURNING id`;
    if (rows.length === 0) throw notFound(operationId);
  }

  async recordAlert(body: AlertBody, channels: readonly string[]): Promise<number | null> {
    const seq = await this.sql.begin(async (tx) => {
      const [r] = await tx<{ seq: string }[]>`
        INSERT INTO alerts (id, operation_id, kind, event, payload, created_at)
        VALUES (${body.id}, ${body.operation.id}, ${body.kind}, ${body.event}, ${JSON.stringify(body)}, ${body.at})
        ON CONFLICT (id) DO NOTHING RETURNING seq`;
      if (!r) return null;
      await Promise.all([
        ...channels.map(
          (ch) => tx`INSERT INTO alert_deliveries (alert_id, channel, seq, state, attempts)
                     VALUES (${body.id}, ${ch}, ${r.seq}, 'pending', 0)`,
        ),
      ]);
      return Number(r.seq);
    });
    if (seq !== null) await this.announce([alertNotice(body.operation.id, body.id)]);
    return seq;
  }

  async listAlerts(f: AlertFilter): Promise<Alert[]> {
    const rows = await this.sql<AlertRow[]>`
      SELECT seq, id, payload FROM alerts
      WHERE (${f.operation_id ?? null}::text IS NULL OR operation_id = ${f.operation_id ?? null})
        AND (${f.since ?? null}::timestamptz IS NULL OR created_at > ${f.since ?? null}::timestamptz)
      ORDER BY seq DESC LIMIT ${f.limit}`;
    return toAlerts(rows, await this.deliveriesOf(rows.map((r) => r.id)));
  }

  async getAlert(id: string): Promise<Alert | null> {
    const [row] = await this.sql<AlertRow[]>`SELECT seq, id, payload FROM alerts WHERE id = ${id}`;
    return row ? toAlerts([row], await this.deliveriesOf([id]))[0]! : null;
  }

  private async deliveriesOf(ids: readonly string[]): Promise<DeliveryRow[]> {
    if (ids.length === 0) return [];
    const rows = await this.sql<DeliveryRow[]>`
      SELECT * FROM alert_deliveries WHERE alert_id = ANY(${this.sql.array([...ids], "TEXT")})`;
    return [...rows];
  }

  async pendingDeliveries(channel: string, limit: number): Promise<PendingDelivery[]> {
    const rows = await this.sql<(Omit<PendingDelivery, "payload"> & { payload: string })[]>`
      SELECT d.alert_id, d.channel, d.seq, d.attempts, d.next_at, a.payload
        FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id
       WHERE d.channel = ${channel} AND d.state = 'pending' ORDER BY d.seq LIMIT ${limit}`;
    return rows.map((r) => {
      const payload = JSON.parse(r.payload) as AlertBody;
      return {
        ...r,
        seq: Number(r.seq),
        next_at: r.next_at === null ? null : Number(r.next_at),
        payload,
        created_at: Date.parse(payload.at),
      };
    });
  }

  async updateDelivery(alertId: string, channel: string, u: DeliveryUpdate): Promise<void> {
    await this.sql`
      UPDATE alert_deliveries SET state = ${u.state}, attempts = ${u.attempts}, last_status = ${u.last_status},
             last_error = ${u.last_error}, next_at = ${u.next_at}, delivered_at = ${u.delivered_at}
       WHERE alert_id = ${alertId} AND channel = ${channel}`;
  }
}
