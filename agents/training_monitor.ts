#!/usr/bin/env bun
/**
 * Training monitor agent: `bun agents/training_monitor.ts <operation_id> [--interval 30] [--auto-cancel]`.
 * An MCP client (see ./mcp_client.ts) that polls one operation for new epochs, prints them as a table with a progress bar
 * (a run that reports steps: one line per poll, whatever the step rate, with the latest step, its metrics, the steps
 * done of those planned and any evaluation since the last poll),
 * prints each flag the server raises (overfitting, plateau, divergence, stalled) as it appears (a step run: judged on its
 * steps, with every loss spike as it opens and as it recovers or turns into divergence, a gradient explosion, a
 * slow-down, and the stop decision the server recorded; each flag line once, its best a step), prints each alert the
 * server recorded about the run as it comes (list_alerts: `ALERT event: title — reason [webhook delivered]`), and with --auto-cancel stops
 * the run on overfitting, divergence, a stall, or more than 15 epochs without improvement. The judgement is the server's
 * (analyze_training); this agent only acts on it. Exit: 0 when the operation has finished, 1 on failure, 2 on bad usage.
 */
import { parseArgs } from "node:util";
import type { MetricsReply } from "../src/client/api.ts";
import type { WireEpoch } from "../src/schemas/epoch.ts";
import type { WireStep } from "../src/schemas/step.ts";
import type { Operation, TrendSummarySchema } from "../src/schemas/operation.ts";
import type { Static } from "@sinclair/typebox";
import type { Analysis } from "../src/schemas/analysis.ts";
import {
  bestStepText,
  divergenceText,
  isStepRun,
  readBestStep,
  spikeText,
  stepCount,
  type StepsView,
} from "./loss_analyzer.ts";
import { connect, fmt, parseSeconds, ToolError, type McpSession } from "./mcp_client.ts";

/** --auto-cancel also stops a run whose best epoch is more than this many epochs old. */
export const CANCEL_AFTER_EPOCHS_WITHOUT_IMPROVEMENT = 15;
/** After an auto-cancel, how long to wait for the trainer's result (its checkpoints) before the final advice. */
const RESULT_WAIT_MS = 30_000;
/** Consecutive unreachable/timeout polls tolerated before giving up. */
const MAX_TRANSIENT_FAILURES = 5;
/** Larger than any one poll's new epochs, so the table never skips a row. */
const MAX_POINTS = 10_000;
/**
 * A step poll's budget: its line needs only the last step and the last evaluation, which every reduction keeps (each
 * bucket keeps the last value of every metric), so a poll after 3,000 new steps still reads 200 rows.
 */
const STEP_POINTS = 200;
const FINISHED = new Set(["completed", "failed", "cancelled"]);

const USAGE = "usage: bun agents/training_monitor.ts <operation_id> [--interval SECONDS (default 30)] [--auto-cancel]";

const COLUMNS = ["epoch", "train_loss", "val_loss", "train_acc", "val_acc", "lr", "duration"] as const;
const WIDTHS = [6, 11, 11, 10, 10, 10, 9];

function row(cells: readonly string[]): string {
  return cells.map((c, i) => c.padStart(WIDTHS[i]!)).join(" ");
}

function epochRow(e: WireEpoch): string {
  const lr = typeof e.learning_rate === "number" ? e.learning_rate.toExponential(2) : fmt(e.learning_rate);
  const duration = typeof e.duration === "number" ? `${e.duration.toFixed(2)}s` : "-";
  return row([
    String(e.epoch),
    fmt(e.train_loss),
    fmt(e.val_loss),
    fmt(e.train_accuracy),
    fmt(e.val_accuracy),
    lr,
    duration,
  ]);
}

/** `[##########----------] 12/24 epochs (50%)`, or a plain count when the plan is unknown. */
export function progressBar(done: number, planned: number | null, width = 30): string {
  if (!planned) return `${done} epochs done (no planned total)`;
  const ratio = Math.min(1, done / planned);
  const filled = Math.round(ratio * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${planned} epochs (${Math.round(ratio * 100)}%)`;
}

/** The step reply's fields this agent reads (get_operation_metrics at step resolution). */
interface StepReply extends StepsView {
  status: Operation["status"];
  trends: Static<typeof TrendSummarySchema>;
}

/**
 * One line for the steps a poll brought: `step 999/2000 (50%)  epoch 1  train_loss 0.4100  lr 1.00e-04  grad_norm 1.20`,
 * then `  eval @ step 899: val_loss 0.5 val_acc 0.8` when an evaluation came with them. Null when none came.
 */
export function stepLine(steps: readonly WireStep[], completed: number, planned: number | null): string | null {
  const last = steps.at(-1);
  if (!last) return null;
  const latest = <K extends keyof WireStep>(k: K) => steps.findLast((s) => s[k] !== undefined)?.[k];
  const lr = latest("learning_rate");
  const parts = [`step ${last.step}`, `${stepCount(completed, planned)}`];
  if (last.epoch !== undefined) parts.push(`epoch ${last.epoch}`);
  if (latest("train_loss") !== undefined) parts.push(`train_loss ${fmt(latest("train_loss"))}`);
  if (lr !== undefined) parts.push(`lr ${typeof lr === "number" ? lr.toExponential(2) : fmt(lr)}`);
  if (latest("grad_norm") !== undefined) parts.push(`grad_norm ${fmt(latest("grad_norm"))}`);
  const evaluation = steps.findLast((s) => s.val_loss !== undefined || s.val_accuracy !== undefined);
  if (evaluation)
    parts.push(
      `eval @ step ${evaluation.step}: val_loss ${fmt(evaluation.val_loss)} val_acc ${fmt(evaluation.val_accuracy)}`,
    );
  return parts.join("  ");
}

type Flag = "overfitting" | "plateau" | "divergence" | "stalled";

/** The trend fields the flags and --auto-cancel read: an epoch reply's `metrics`, or a step reply's `trends`. */
type Trends = Pick<
  MetricsReply["metrics"],
  | "is_overfitting"
  | "is_plateaued"
  | "is_diverging"
  | "is_stalled"
  | "best_epoch"
  | "monitor"
  | "best_val_loss"
  | "epochs_since_improvement"
>;

function activeFlags(m: Trends): Set<Flag> {
  const flags = new Set<Flag>();
  if (m.is_overfitting) flags.add("overfitting");
  if (m.is_plateaued) flags.add("plateau");
  if (m.is_diverging) flags.add("divergence");
  if (m.is_stalled) flags.add("stalled");
  return flags;
}

/**
 * One line on what the server saw for `flag`, from its analysis (the flag's own facts, not the end-of-run advice). A step
 * run's best is its best step, and its divergence is where it began (the stop decision's line carries the advice).
 */
export function flagText(flag: Flag, a: Analysis): string {
  const t = a.thresholds;
  const steps = isStepRun(a);
  const best = steps
    ? a.best_step === null
      ? ""
      : `best step ${a.best_step}`
    : a.best_epoch === null
      ? ""
      : `best ${a.monitor} ${fmt(a.best_value)} at epoch ${a.best_epoch}`;
  const r = a.recommendation;
  if (flag === "divergence" && steps && a.divergence) return `${divergenceText(a.divergence)}${best && `; ${best}`}`;
  switch (flag) {
    case "overfitting": {
      const s = a.trajectory.since_best;
      const rise = s
        ? `${(s.rise * 100).toFixed(1)}% above its ${best} (margin ${(s.margin * 100).toFixed(1)}%)`
        : `above its ${best}`;
      return `validation loss is ${rise} while training loss keeps falling`;
    }
    case "plateau":
      return `no new best for ${a.epochs_since_improvement} epochs (patience ${t.plateau_patience}); ${best}`;
    case "divergence":
      // Divergence outranks every other rule, so a running run's stop reason is about it.
      return r.action === "stop" ? r.reason : `the loss is exploding or not finite; ${best}`;
    case "stalled":
      return a.flags.diverging || a.flags.overfitting || r.action !== "stop"
        ? `${a.monitor} barely moved over the last ${t.stall_window} epochs (under ${(t.stall_threshold * 100).toFixed(1)}% of its first value)`
        : r.reason;
  }
}

/** The trend fields of a step run's analysis, judged on its steps: what its flags and --auto-cancel read. */
function stepTrends(a: Analysis): Trends {
  return {
    is_overfitting: a.flags.overfitting,
    is_plateaued: a.flags.plateau,
    is_diverging: a.flags.diverging,
    is_stalled: a.flags.stalled,
    best_epoch: a.best_epoch,
    monitor: a.monitor,
    best_val_loss: a.best_value,
    // A step run's plateau is its own flag (in steps); the epoch count past the best is not read.
    epochs_since_improvement: null,
  };
}

/**
 * What a step run's analysis says that the last one did not (`seen`: each spike's step → the outcome printed): a spike
 * that opened, recovered or turned into divergence, a gradient explosion or a slow-down that began.
 */
export function stepEvents(a: Analysis, seen: Map<number | string, string>): string[] {
  const out: string[] = [];
  for (const s of a.spikes) {
    const state = String(s.recovered);
    if (seen.get(s.step) === state) continue;
    seen.set(s.step, state);
    out.push(`${s.recovered === null ? "SPIKE" : "spike"} ${spikeText(s)}`);
  }
  for (const [flag, text] of [
    ["grad_explosion", "grad_norm far above its recent level (an early warning)"],
    ["slowdown", `steps slower than usual${a.slowdowns.length ? ` since step ${a.slowdowns.at(-1)!.step}` : ""}`],
  ] as const) {
    const now = String(a.flags[flag]);
    if ((seen.get(flag) ?? "false") !== now) out.push(a.flags[flag] ? `FLAG ${flag}: ${text}` : `cleared: ${flag}`);
    seen.set(flag, now);
  }
  return out;
}

/** Why --auto-cancel should stop the run now, or null. */
function cancelReason(m: Trends): string | null {
  const best = m.best_epoch === null ? "" : `; best ${m.monitor} ${fmt(m.best_val_loss)} at epoch ${m.best_epoch}`;
  if (m.is_diverging) return `divergence: the loss is exploding or not finite${best}`;
  if (m.is_overfitting) return `overfitting: validation loss well above its best while training loss falls${best}`;
  if (m.is_stalled) return `stalled: the loss is not improving${best}`;
  const since = m.epochs_since_improvement ?? 0;
  if (since > CANCEL_AFTER_EPOCHS_WITHOUT_IMPROVEMENT) {
    return `no improvement for ${since} epochs (more than ${CANCEL_AFTER_EPOCHS_WITHOUT_IMPROVEMENT})${best}`;
  }
  return null;
}

/** An alert as list_alerts gives it: what the monitor prints of it. */
export interface AlertView {
  id: string;
  event: string;
  title: string;
  reason: string | null;
  deliveries: { channel: string; state: string; attempts: number }[];
}

/** One line per alert: `ALERT diverging: Run "x" is diverging at epoch 8 — reason [webhook delivered]`. */
export function alertLine(a: AlertView): string {
  const sent = a.deliveries.map((d) => `${d.channel} ${d.state}`).join(", ");
  return `ALERT ${a.event}: ${a.title}${a.reason ? ` — ${a.reason}` : ""}${sent ? ` [${sent}]` : ""}`;
}

/** The run's alerts not printed yet (`seen`: their ids), oldest first; each printed once. */
async function newAlerts(mcp: McpSession, id: string, seen: Set<string>): Promise<string[]> {
  const { alerts } = await mcp.call<{ alerts: AlertView[] }>("list_alerts", { operation_id: id, limit: 50 });
  const fresh = alerts.filter((a) => !seen.has(a.id)).reverse();
  for (const a of fresh) seen.add(a.id);
  return fresh.map(alertLine);
}

async function monitor(mcp: McpSession, id: string, intervalS: number, autoCancel: boolean): Promise<number> {
  const op = await mcp.call<Operation>("get_operation_status", { operation_id: id });
  const policy = autoCancel
    ? `; --auto-cancel on overfitting, divergence, a stall or more than ${CANCEL_AFTER_EPOCHS_WITHOUT_IMPROVEMENT} epochs without improvement`
    : "";
  console.log(`Monitoring ${id} (${op.name ?? op.operation_type}, ${op.status}), polling every ${intervalS}s${policy}`);

  let since = -1;
  /** A step run's cursor: the last step printed (-1: none yet). */
  let sinceStep = -1;
  /** Until the run has shown epochs or steps, each poll lets the server pick the run's own resolution. */
  let mode: "epoch" | "step" | null = null;
  let headerShown = false;
  let flags = new Set<Flag>();
  let failures = 0;
  let cancelled: string | null = null;
  const stepSeen = new Map<number | string, string>();
  let decisionShown = false;
  /** A step run's flag lines printed (`flag: text`), each printed once. */
  const flagsPrinted = new Set<string>();
  /** The alerts printed, by id. */
  const alertsSeen = new Set<string>();
  for (;;) {
    let reply: MetricsReply | StepReply;
    try {
      const args =
        mode === "step"
          ? { since_step: sinceStep, max_points: STEP_POINTS }
          : mode === "epoch"
            ? { since_epoch: since, max_points: MAX_POINTS }
            : { max_points: STEP_POINTS };
      reply = await mcp.call<MetricsReply | StepReply>("get_operation_metrics", { operation_id: id, ...args });
      failures = 0;
    } catch (err) {
      if (!(err instanceof ToolError) || !err.transient || ++failures >= MAX_TRANSIENT_FAILURES) throw err;
      console.log(`warning: ${err.message} (retry ${failures}/${MAX_TRANSIENT_FAILURES - 1})`);
      await Bun.sleep(intervalS * 1000);
      continue;
    }
    let m: Trends;
    let where = () => `epoch ${since}`;
    /** A step run's analysis of this poll (its flags, spikes and stop decision); null for an epoch run. */
    let stepAnalysis: Analysis | null = null;
    if ("steps" in reply) {
      mode = "step";
      const line = stepLine(reply.steps, reply.steps_completed, reply.total_steps_planned);
      if (line) console.log(line);
      sinceStep = reply.steps.at(-1)?.step ?? sinceStep;
      since = reply.trends.latest_epoch ?? since;
      where = () => `step ${sinceStep}`;
      // A step run is judged on its steps: its flags, spikes and stop decision come from its analysis.
      const a = await mcp.call<Analysis>("analyze_training", { operation_id: id });
      m = stepTrends(a);
      for (const e of stepEvents(a, stepSeen)) console.log(e);
      stepAnalysis = a;
    } else {
      m = reply.metrics;
      const epochs = reply.metrics;
      // Without a cursor the first poll's epochs came reduced: read them again from the start, in full.
      if (mode === null && epochs.epochs.length > 0) {
        mode = "epoch";
        continue;
      }
      if (epochs.epochs.length) {
        if (!headerShown) {
          console.log(row(COLUMNS));
          headerShown = true;
        }
        for (const e of epochs.epochs) console.log(epochRow(e));
        since = epochs.epochs[epochs.epochs.length - 1]!.epoch;
        console.log(progressBar(epochs.total_epochs_completed, epochs.total_epochs_planned));
      } else if (epochs.total_epochs_completed === 0 && !FINISHED.has(reply.status)) {
        console.log(`waiting for metrics (status ${reply.status})`);
      }
    }

    const now = activeFlags(m);
    const raised = [...now].filter((f) => !flags.has(f));
    for (const f of flags) if (!now.has(f)) console.log(`cleared: ${f} no longer detected at ${where()}`);
    flags = now;
    if (raised.length) {
      const a = stepAnalysis ?? (await mcp.call<Analysis>("analyze_training", { operation_id: id }));
      for (const f of raised) {
        const text = flagText(f, a);
        // A step run's flag line says where the flag's fact happened: the same fact is printed once, however often
        // the flag is read again.
        if (stepAnalysis && flagsPrinted.has(`${f}: ${text}`)) continue;
        flagsPrinted.add(`${f}: ${text}`);
        console.log(`FLAG ${f} at ${where()}: ${text}`);
      }
    }
    if (
      stepAnalysis &&
      !decisionShown &&
      (stepAnalysis.flags.diverging ||
        stepAnalysis.flags.overfitting ||
        stepAnalysis.flags.stalled ||
        FINISHED.has(reply.status))
    ) {
      const control = (await mcp.call<Operation>("get_operation_status", { operation_id: id })).control;
      if (control) {
        decisionShown = true;
        const at = control.step != null ? `step ${control.step}` : `epoch ${control.epoch}`;
        const back =
          control.checkpoint_step != null
            ? `; checkpoint: the last one at or before step ${control.checkpoint_step}`
            : "";
        console.log(`DECISION ${control.action} by ${control.decided_by} at ${at}: ${control.reason}${back}`);
      }
    }

    for (const line of await newAlerts(mcp, id, alertsSeen)) console.log(line);

    let status = reply.status;
    const why = autoCancel && !FINISHED.has(status) ? cancelReason(m) : null;
    if (why) {
      try {
        console.log(`auto-cancel: cancelling ${id}: ${why}`);
        const res = await mcp.call<{ status: string }>("cancel_operation", {
          operation_id: id,
          by: "monitor",
          reason: `auto-cancel by training_monitor: ${why}`,
        });
        status = res.status as typeof status;
        cancelled = why;
      } catch (err) {
        // It finished on its own between the poll and the cancel; the summary below says how.
        if (!(err instanceof ToolError) || err.code !== "OPERATION_FINISHED") throw err;
        status = (await mcp.call<Operation>("get_operation_status", { operation_id: id })).status;
      }
    }

    if (FINISHED.has(status)) {
      // The status alert (failed, completed, …) is recorded with the finish: print it before the summary.
      for (const line of await newAlerts(mcp, id, alertsSeen)) console.log(line);
      await summarize(mcp, id, cancelled, mode === "step" ? sinceStep + 1 : null);
      return 0;
    }
    await Bun.sleep(intervalS * 1000);
  }
}

/** A local or host training writes its checkpoints after a cancel; wait (bounded) until its result lists them. */
async function awaitResult(mcp: McpSession, id: string): Promise<Operation> {
  const deadline = Date.now() + RESULT_WAIT_MS;
  for (;;) {
    const op = await mcp.call<Operation>("get_operation_status", { operation_id: id });
    const held = op.metadata.location === "local" || op.metadata.location === "host";
    if (!held || op.result !== null || Date.now() > deadline) return op;
    await Bun.sleep(200);
  }
}

/** The closing lines; `steps`: a step run's steps completed (its highest step + 1), null for an epoch run. */
async function summarize(mcp: McpSession, id: string, cancelled: string | null, steps: number | null): Promise<void> {
  const op = await awaitResult(mcp, id);
  const a = await mcp.call<Analysis>("analyze_training", { operation_id: id });
  const r = a.recommendation;
  const how = op.result?.stop_reason === "early_stopping" ? " (early-stopped)" : cancelled ? " (auto-cancelled)" : "";
  console.log("");
  const count = steps === null ? "" : ` (${steps} steps)`;
  console.log(`Finished: ${id} ${a.status} after ${a.epochs_completed} epochs${count}${how}.`);
  // A step run's best is a step (its derived epochs' best would name an epoch no trainer checkpointed).
  const bestStep = isStepRun(a) ? await readBestStep(mcp, id, a) : null;
  if (bestStep) {
    console.log(`Best step ${bestStepText(bestStep)}; trajectory at the end: ${a.trajectory.trajectory}.`);
  } else if (!isStepRun(a) && a.best_epoch !== null) {
    console.log(
      `Best ${a.monitor} ${fmt(a.best_value)} at epoch ${a.best_epoch}; trajectory at the end: ${a.trajectory.trajectory}.`,
    );
  }
  const checkpoint =
    r.checkpoint_epoch !== null
      ? ` (epoch ${r.checkpoint_epoch})`
      : r.checkpoint_step !== null
        ? ` (the last checkpoint at or before step ${r.checkpoint_step})`
        : "";
  console.log(`Recommendation: ${r.action}${checkpoint}. ${r.reason}`);
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        interval: { type: "string", default: "30" },
        "auto-cancel": { type: "boolean", default: false },
        help: { type: "boolean" },
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const interval = parseSeconds(values.interval);
  if (positionals.length !== 1 || interval === null) {
    console.error(
      interval === null
        ? `--interval: expected a positive number of seconds, got "${values.interval}"\n${USAGE}`
        : USAGE,
    );
    return 2;
  }
  const mcp = await connect("trainwatch-training-monitor");
  try {
    return await monitor(mcp, positionals[0]!, interval, values["auto-cancel"]);
  } catch (err) {
    console.error(`training_monitor: ${(err as Error).message}`);
    return 1;
  } finally {
    await mcp.close();
  }
}

if (import.meta.main) process.exit(await main(Bun.argv.slice(2)));
