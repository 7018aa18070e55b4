/**
 * What an alert says, as pure functions: the fact (src/alerts/service.ts raises it) turned into the generic webhook
 * body (stored once in the outbox, and what the API, the streams and MCP show), and that body turned into a Slack
 * incoming-webhook message (`text` for the notification, `blocks` for the message: header, the reason, fields, a
 * button to the run's page), short enough to read on a phone. No I/O.
 */
import type { AlertBody, FlagEvent, StatusEvent } from "../schemas/alert.ts";
import { alertId, thresholdName, type Crossing } from "./rules.ts";

/** A fact that may alert: a flag raised, a status reached, a threshold crossed. */
export type AlertFact =
  | {
      kind: "flag";
      event: FlagEvent;
      operation_id: string;
      /** Where it was raised: the epoch (an epoch run) or the step (a step run). */
      epoch: number | null;
      step: number | null;
      /** Overrides the judgement's reason (the liveness watchdog's "no step for 12 min, median 30 s"). */
      reason?: string;
    }
  | { kind: "status"; event: StatusEvent; operation_id: string; reason?: string }
  | { kind: "threshold"; operation_id: string; crossing: Crossing };

/** The fact's event name (a threshold's is `threshold`). */
export const eventOf = (f: AlertFact): string => (f.kind === "threshold" ? "threshold" : f.event);

/** The fact's id (alertId): the flag's epoch or step, none for a status, the threshold's name. */
export function factId(f: AlertFact): string {
  if (f.kind === "flag") return alertId(f.operation_id, "flag", f.event, f.step ?? f.epoch);
  if (f.kind === "status") return alertId(f.operation_id, "status", f.event, null);
  return alertId(f.operation_id, "threshold", thresholdName(f.crossing.threshold), null);
}

/** What the payload reads of the operation. */
export interface AlertOperation {
  operation_id: string;
  name: string | null;
  status: string;
  error_message: string | null;
  failure_code: string | null;
}

/** The judgement's recommendation at the time (src/operations/reads.ts), or a stop decision's; null when none applies. */
export interface AlertAdvice {
  action: string;
  reason: string;
  checkpoint_epoch: number | null;
  checkpoint_step: number | null;
}

const FLAG_TITLE: Record<FlagEvent, string> = {
  diverging: "is diverging",
  overfitting: "is overfitting",
  stalled: "has stalled",
  plateau: "has plateaued",
  hung: "looks hung",
  grad_explosion: "has exploding gradients",
  slowdown: "slowed down",
};
const STATUS_TITLE: Record<StatusEvent, string> = {
  completed: "completed",
  failed: "failed",
  lost: "was lost: its trainer went silent",
  cancelled: "was cancelled",
  stopped: "was stopped by its stop policy",
};

/** The operation page on the dashboard. */
export const pageUrl = (publicUrl: string, operationId: string) =>
  `${publicUrl.replace(/\/+$/, "")}/#/op/${encodeURIComponent(operationId)}`;

/**
 * The generic webhook body of `fact` about `op`, raised `at`: the id (the same fact always has the same one), a
 * one-line title, the run with a link to its page, the reason (the fact's own, else the advice's, else a failure's
 * message), the advice (where it happened and the checkpoint to restore), the threshold and the value that crossed it.
 */
export function alertBody(
  fact: AlertFact,
  op: AlertOperation,
  advice: AlertAdvice | null,
  publicUrl: string,
  at: Date,
): AlertBody {
  const who = op.name ? `"${op.name}"` : op.operation_id;
  const threshold =
    fact.kind === "threshold"
      ? {
          metric: fact.crossing.threshold.metric,
          when: fact.crossing.threshold.when,
          value: fact.crossing.threshold.value,
          observed: fact.crossing.observed,
          epoch: fact.crossing.epoch,
          step: fact.crossing.step,
        }
      : null;
  const title =
    fact.kind === "flag"
      ? `Run ${who} ${FLAG_TITLE[fact.event]}${where(fact.epoch, fact.step, " at ")}`
      : fact.kind === "status"
        ? `Run ${who} ${STATUS_TITLE[fact.event]}`
        : `Run ${who}: ${thresholdName(fact.crossing.threshold)} (${fmt(fact.crossing.observed)}${where(fact.crossing.epoch, fact.crossing.step, " at ")})`;
  const own = fact.kind === "threshold" ? null : (fact.reason ?? null);
  const failed = op.status === "failed" ? op.error_message : null;
  return {
    id: factId(fact),
    kind: fact.kind,
    event: eventOf(fact),
    at: at.toISOString(),
    title,
    operation: { id: op.operation_id, name: op.name, status: op.status, url: pageUrl(publicUrl, op.operation_id) },
    reason: own ?? (fact.kind === "status" && failed ? failed : (advice?.reason ?? failed)),
    advice:
      advice === null
        ? null
        : {
            action: advice.action,
            epoch: fact.kind === "flag" ? fact.epoch : fact.kind === "threshold" ? fact.crossing.epoch : null,
            step: fact.kind === "flag" ? fact.step : fact.kind === "threshold" ? fact.crossing.step : null,
            checkpoint_epoch: advice.checkpoint_epoch,
            checkpoint_step: advice.checkpoint_step,
          },
    threshold,
    failure_code: op.failure_code,
  };
}

/** " at step 412" / " at epoch 12" / "". */
function where(epoch: number | null, step: number | null, lead: string): string {
  if (step !== null) return `${lead}step ${step}`;
  if (epoch !== null) return `${lead}epoch ${epoch}`;
  return "";
}

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toPrecision(4));

const ICON: Record<AlertBody["kind"], string> = {
  flag: ":warning:",
  status: ":information_source:",
  threshold: ":bell:",
};
const STATUS_ICON: Record<string, string> = {
  failed: ":red_circle:",
  lost: ":red_circle:",
  completed: ":white_check_mark:",
  cancelled: ":black_square_for_stop:",
  stopped: ":octagonal_sign:",
};

/** Slack treats &, < and > as markup (`<!channel>` pings everyone): a run's name and reason are escaped. */
const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
const cut = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

/**
 * A Slack incoming-webhook message for `body`: `text` (the notification, and what a client without blocks shows),
 * then `blocks`: a header (plain text, ≤ 150 characters), the reason, two-column fields (run, status, where, the
 * checkpoint to restore or the threshold), a button to the run's page, and the alert id in a context line.
 */
export function slackMessage(body: AlertBody): { text: string; blocks: unknown[] } {
  const icon = body.kind === "status" ? (STATUS_ICON[body.event] ?? ICON.status) : ICON[body.kind];
  const fields: string[] = [
    `*Run*\n<${body.operation.url}|${esc(cut(body.operation.name ?? body.operation.id, 80))}>`,
    `*Status*\n${esc(body.operation.status)}${body.failure_code ? ` (${esc(body.failure_code)})` : ""}`,
  ];
  const a = body.advice;
  if (a && (a.step !== null || a.epoch !== null)) fields.push(`*Where*\n${where(a.epoch, a.step, "").trim()}`);
  if (a && (a.checkpoint_step !== null || a.checkpoint_epoch !== null))
    fields.push(`*Restore*\ncheckpoint of ${where(a.checkpoint_epoch, a.checkpoint_step, "").trim()}`);
  if (a) fields.push(`*Advice*\n${esc(a.action)}`);
  if (body.threshold)
    fields.push(
      `*Threshold*\n${esc(body.threshold.metric)} ${body.threshold.when} ${fmt(body.threshold.value)}: ${fmt(body.threshold.observed)}`,
    );
  const blocks: unknown[] = [{ type: "header", text: { type: "plain_text", text: cut(body.title, 150), emoji: true } }];
  if (body.reason) blocks.push({ type: "section", text: { type: "mrkdwn", text: esc(cut(body.reason, 2900)) } });
  blocks.push({ type: "section", fields: fields.slice(0, 10).map((text) => ({ type: "mrkdwn", text })) });
  blocks.push({
    type: "actions",
    elements: [{ type: "button", text: { type: "plain_text", text: "Open the run" }, url: body.operation.url }],
  });
  blocks.push({ type: "context", elements: [{ type: "mrkdwn", text: `${esc(body.id)} · ${body.at}` }] });
  return { text: `${icon} ${esc(body.title)}${body.reason ? `: ${esc(cut(body.reason, 200))}` : ""}`, blocks };
}
