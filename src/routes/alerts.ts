/**
 * Alerts (issue 24): the recent alerts of every run or one (GET /alerts), one with its delivery log (GET /alerts/{id}),
 * and a run's rules (GET/PUT /operations/{id}/alerts). Thin: the outbox is the store's, the rules' meaning the Alerts
 * shell's (src/alerts/service.ts); the live `alert` events are on the SSE streams.
 */
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import { TrainwatchError } from "../errors.ts";
import { Alert, ALERT_LIMIT, AlertRules, AlertRulesView } from "../schemas/alert.ts";
import { operationIdParams } from "../schemas/operation.ts";
import { queryInt } from "../schemas/query.ts";
import { normalizeRules } from "../alerts/rules.ts";
import { loadOperation } from "../store/load.ts";
import type { AppDeps } from "./deps.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";

const IdParams = operationIdParams("Operation id, e.g. op_training_20261126_153000_ab12cd34");

const AlertsQuery = t.Object({
  operation_id: t.Optional(t.String({ minLength: 1, maxLength: 200, description: "Only this operation's alerts." })),
  since: t.Optional(
    t.String({
      format: "date-time",
      description: "Only alerts recorded after this instant (ISO 8601), e.g. what a page last saw.",
    }),
  ),
  limit: queryInt("limit", { ...ALERT_LIMIT, default: 50, description: "Most alerts returned (default 50)." }),
});

const RULES_DOC =
  'Body: `{ "on": ["overfitting", "completed"], "off": ["hung"], "thresholds": [{ "metric": "val_loss", "when": "above", "value": 2.5 }] }` (every part optional). ' +
  "The run alerts on (the server's TRAINWATCH_ALERT_ON ∪ on) − off, and once per threshold when a metric of a posted epoch or step crosses it. Events only: where alerts go is the server's configuration (TRAINWATCH_ALERT_WEBHOOK, TRAINWATCH_ALERT_SLACK_WEBHOOK), never a client's. Replaces the rules before it; allowed on a finished run.";

export const alertsRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/alerts" })
    .get(
      "/alerts",
      async ({ query }) =>
        ok(
          await deps.store.alerts.listAlerts({
            ...(query.operation_id !== undefined && { operation_id: query.operation_id }),
            ...(query.since !== undefined && { since: new Date(query.since).toISOString() }),
            limit: query.limit ?? 50,
          }),
        ),
      {
        query: AlertsQuery,
        response: { 200: Envelope(Type.Array(Alert)), 400: ErrorEnvelope },
        detail: {
          tags: ["alerts"],
          summary: "Recent alerts, most recent first",
          description:
            "Every alert recorded (a flag raised, a status reached, a threshold crossed), with its delivery per channel (state pending | delivered | failed, attempts, the receiver's last status). `alert` is the body a generic webhook receives.",
        },
      },
    )
    .get(
      "/alerts/:id",
      async ({ params }) => {
        const alert = await deps.store.alerts.getAlert(params.id);
        if (!alert) throw new TrainwatchError("NOT_FOUND", `alert ${params.id} not found`, { alert_id: params.id });
        return ok(alert);
      },
      {
        params: t.Object({ id: t.String({ description: "Alert id (al_…)" }) }),
        response: { 200: Envelope(Alert), 404: ErrorEnvelope },
        detail: {
          tags: ["alerts"],
          summary: "One alert with its delivery log",
          description:
            "The alert and, per channel, its delivery: attempts, the receiver's last HTTP status or error, when the next attempt is due, when it was delivered.",
        },
      },
    )
    .get(
      "/operations/:id/alerts",
      async ({ params }) => {
        await loadOperation(deps.store, params.id);
        return ok(deps.operations.alerts.view(params.id, await deps.store.alerts.getAlertRules(params.id)));
      },
      {
        params: IdParams,
        response: { 200: Envelope(AlertRulesView), 404: ErrorEnvelope },
        detail: {
          tags: ["alerts"],
          summary: "A run's alert rules",
          description:
            "The rules as set (null: the server's defaults), the events they come to, the server's defaults and channels.",
        },
      },
    )
    .put(
      "/operations/:id/alerts",
      async ({ params, body }) => ok(await deps.operations.setAlertRules(params.id, normalizeRules(body))),
      {
        params: IdParams,
        body: AlertRules,
        response: { 200: Envelope(AlertRulesView), 400: ErrorEnvelope, 404: ErrorEnvelope },
        detail: { tags: ["alerts"], summary: "Set a run's alert rules", description: RULES_DOC },
      },
    );
