/**
 * TypeBox schemas for alerts (issue 24): the events a run can alert on, its rules (`alerts` at creation, PUT
 * /operations/{id}/alerts), an alert as the API, the SSE streams and the webhooks carry it, and its delivery log. One
 * source for validation, OpenAPI and the MCP tools. Rules name events only, never a URL: channels are the server's.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { ALERT_EVENTS, type AlertEvent } from "./alert_events.ts";

export { ALERT_EVENTS, FLAG_EVENTS, STATUS_EVENTS } from "./alert_events.ts";
export type { AlertEvent, FlagEvent, StatusEvent } from "./alert_events.ts";

// Unsafe over the union of literals: the same schema, with its static type kept as the union (a mapped array of
// literals would type as never).
export const AlertEventSchema = Type.Unsafe<AlertEvent>(
  Type.Union(
    ALERT_EVENTS.map((e) => Type.Literal(e)),
    {
      description:
        "A flag raised (diverging, overfitting, stalled, plateau, hung, grad_explosion, slowdown; a spike that does not recover is diverging) or a status reached (completed, failed, lost, cancelled, stopped: the stop policy's decision).",
    },
  ),
);

/** Threshold metrics: a standard field or a custom metric name, as an epoch or a step carries it. */
export const AlertThreshold = Type.Object(
  {
    metric: Type.String({
      minLength: 1,
      maxLength: 64,
      pattern: "^[A-Za-z_][A-Za-z0-9_./-]*$",
      description: 'The metric, as an epoch or step names it ("val_loss", "train_loss", a custom one).',
    }),
    when: Type.Union([Type.Literal("above"), Type.Literal("below")], {
      description: "above: alert when a value > `value`; below: when a value < `value`.",
    }),
    value: Type.Number({ description: "The value a user set." }),
  },
  { additionalProperties: false },
);
export type AlertThreshold = Static<typeof AlertThreshold>;

/** The most thresholds a run may set: each is checked on every write of its metrics. */
export const MAX_THRESHOLDS = 16;

export const AlertRules = Type.Object(
  {
    on: Type.Optional(
      Type.Array(AlertEventSchema, {
        maxItems: ALERT_EVENTS.length,
        description: "Events that alert for this run, besides the server's defaults (TRAINWATCH_ALERT_ON).",
      }),
    ),
    off: Type.Optional(
      Type.Array(AlertEventSchema, {
        maxItems: ALERT_EVENTS.length,
        description: "Events that do not alert for this run, even when the server's defaults name them.",
      }),
    ),
    thresholds: Type.Optional(
      Type.Array(AlertThreshold, {
        maxItems: MAX_THRESHOLDS,
        description:
          "A metric crossing a value: alerts once per run and threshold, at the first epoch or step past it.",
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      "A run's alert rules: events only, never a URL (the channels are the server's: TRAINWATCH_ALERT_WEBHOOK, TRAINWATCH_ALERT_SLACK_WEBHOOK).",
  },
);
export type AlertRules = Static<typeof AlertRules>;

export const AlertKind = Type.Union([Type.Literal("flag"), Type.Literal("status"), Type.Literal("threshold")]);
export type AlertKind = Static<typeof AlertKind>;

const nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** The body a generic webhook receives (and what the API, the streams and MCP show of an alert). */
export const AlertBody = Type.Object({
  id: Type.String({
    description: "al_ + 24 hex: the same fact always has the same id, so a receiver can drop repeats.",
  }),
  kind: AlertKind,
  event: Type.String({ description: "The event (AlertEvent) or, for a threshold, `threshold`." }),
  at: Type.String({ description: "When it was raised (ISO 8601)." }),
  title: Type.String({ description: "One line for a person: what happened to which run." }),
  operation: Type.Object({
    id: Type.String(),
    name: Type.Union([Type.String(), Type.Null()]),
    status: Type.String(),
    url: Type.String({ description: "The operation's dashboard page." }),
  }),
  reason: Type.Union([Type.String(), Type.Null()], {
    description: "The judgement's reason (or the failure's message).",
  }),
  advice: Type.Union([
    Type.Object({
      action: Type.String({ description: "The judgement's recommendation: continue | stop | use_checkpoint | …" }),
      epoch: nullable(Type.Integer({ description: "Where it happened (epoch run), else null." })),
      step: nullable(Type.Integer({ description: "Where it happened (step run), else null." })),
      checkpoint_epoch: nullable(Type.Integer({ description: "The epoch whose checkpoint to restore." })),
      checkpoint_step: nullable(Type.Integer({ description: "The step whose checkpoint to restore." })),
    }),
    Type.Null(),
  ]),
  threshold: Type.Union([
    Type.Object({
      metric: Type.String(),
      when: Type.String(),
      value: Type.Number(),
      observed: Type.Number({ description: "The value that crossed it." }),
      epoch: nullable(Type.Integer()),
      step: nullable(Type.Integer()),
    }),
    Type.Null(),
  ]),
  failure_code: Type.Union([Type.String(), Type.Null()]),
});
export type AlertBody = Static<typeof AlertBody>;

export const DeliveryState = Type.Union([Type.Literal("pending"), Type.Literal("delivered"), Type.Literal("failed")]);
export type DeliveryState = Static<typeof DeliveryState>;

export const Delivery = Type.Object({
  channel: Type.String({ description: "webhook | slack" }),
  state: DeliveryState,
  attempts: Type.Integer(),
  last_status: Type.Union([Type.Integer(), Type.Null()], { description: "The receiver's last HTTP status." }),
  last_error: Type.Union([Type.String(), Type.Null()]),
  next_at: Type.Union([Type.String(), Type.Null()], { description: "When the next attempt is due (pending)." }),
  delivered_at: Type.Union([Type.String(), Type.Null()]),
});
export type Delivery = Static<typeof Delivery>;

/** An alert as the API lists it: the body, its order (`seq`) and, on GET /alerts/{id}, the delivery log per channel. */
export const Alert = Type.Object({
  seq: Type.Integer({ description: "Recording order, across all runs." }),
  alert: AlertBody,
  deliveries: Type.Array(Delivery),
});
export type Alert = Static<typeof Alert>;

/** Page size of GET /alerts and the MCP list_alerts tool: 1 … 200. */
export const ALERT_LIMIT = { minimum: 1, maximum: 200 } as const;

/** A run's rules as GET/PUT /operations/{id}/alerts reply: as set, and what they come to with the server's. */
export const AlertRulesView = Type.Object({
  operation_id: Type.String(),
  rules: Type.Union([AlertRules, Type.Null()], { description: "The run's rules as set; null: the server's defaults." }),
  events: Type.Array(AlertEventSchema, {
    description: "The events that alert for this run: (the server's defaults ∪ on) − off.",
  }),
  defaults: Type.Array(AlertEventSchema, { description: "The server's defaults (TRAINWATCH_ALERT_ON)." }),
  channels: Type.Array(Type.String(), {
    description: "The server's channels (webhook, slack); none: alerts are recorded and streamed, not sent.",
  }),
});
export type AlertRulesView = Static<typeof AlertRulesView>;
