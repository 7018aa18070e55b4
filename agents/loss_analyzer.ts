#!/usr/bin/env bun
/**
 * Loss analyzer agent: `bun agents/loss_analyzer.ts <operation_id> [--json]`. An MCP client (see ./mcp_client.ts) that asks
 * analyze_training about one operation's full history and prints the trajectory, best epoch, flags, generalization gap
 * and the recommendation with its reason; for a run that reports steps, also its steps completed (of those planned), the
 * latest step's train_loss and the last evaluation with its step, from get_operation_metrics at step resolution, and the
 * step judgement: the best step with its value (in place of the best epoch, which for a step run is only its derived
 * epochs'), every loss spike (its step, size, and whether it recovered), the divergence (where it
 * began) and the slow-downs, the step flags and the checkpoint step of the recommendation. --json prints the analysis as
 * one JSON object (with `steps` for a step run). Exit: 0, 1 on failure, 2 on bad usage.
 */
import { parseArgs } from "node:util";
import type { Analysis } from "../src/schemas/analysis.ts";
import type { WireStep } from "../src/schemas/step.ts";
import { connect, fmt, ToolError, type McpSession } from "./mcp_client.ts";

const USAGE = "usage: bun agents/loss_analyzer.ts <operation_id> [--json]";

function signed(v: number, digits = 4): string {
  return `${v >= 0 ? "+" : ""}${v.toFixed(digits)}`;
}

/** What get_operation_metrics answers at step resolution (the part this agent reads). */
export interface StepsView {
  resolution: "step";
  steps_completed: number;
  total_steps_planned: number | null;
  steps: WireStep[];
}

/** A step run's state for the report: its steps, the latest train_loss and the last evaluation, each with its step. */
export interface StepSummary {
  completed: number;
  planned: number | null;
  latest: { step: number; train_loss: WireStep["train_loss"] } | null;
  evaluation: {
    step: number;
    val_loss: WireStep["val_loss"] | null;
    val_accuracy: WireStep["val_accuracy"] | null;
  } | null;
  /** The best step (the analysis's best_step) and its value; null before one. */
  best: BestStep | null;
}

/** A step run's best: its step and the value it was judged on there (val_loss, or without evaluations train_loss). */
export interface BestStep {
  step: number;
  metric: "val_loss" | "train_loss";
  value: WireStep["val_loss"] | null;
}

/** True for a step run's analysis (judged on its steps): its best is a step, not one of its derived epochs. */
export const isStepRun = (a: Analysis): boolean => a.judged_on === "steps" || a.best_step !== null;

/** The best step's row (get_operation_metrics from_step = to_step = best_step) as a BestStep; null without a best step. */
export async function readBestStep(mcp: McpSession, id: string, a: Analysis): Promise<BestStep | null> {
  if (a.best_step === null) return null;
  const view = await mcp.call<StepsView>("get_operation_metrics", {
    operation_id: id,
    from_step: a.best_step,
    to_step: a.best_step,
  });
  const row = view.steps.find((s) => s.step === a.best_step);
  return row?.val_loss !== undefined
    ? { step: a.best_step, metric: "val_loss", value: row.val_loss }
    : { step: a.best_step, metric: "train_loss", value: row?.train_loss ?? null };
}

/** `149: val_loss 1.3805` */
export const bestStepText = (b: BestStep): string => `${b.step}: ${b.metric} ${fmt(b.value)}`;

/**
 * The summary of a step reply. Its rows may be reduced, but every bucket keeps the last value of each metric, so the
 * last row holding train_loss (or val_loss/val_accuracy) is the last stored step holding it.
 */
export function stepSummary(v: StepsView, best: BestStep | null = null): StepSummary {
  const last = (has: (s: WireStep) => boolean) => v.steps.findLast(has) ?? null;
  const loss = last((s) => s.train_loss !== undefined);
  const evaluation = last((s) => s.val_loss !== undefined || s.val_accuracy !== undefined);
  return {
    completed: v.steps_completed,
    planned: v.total_steps_planned,
    latest: loss && { step: loss.step, train_loss: loss.train_loss },
    evaluation: evaluation && {
      step: evaluation.step,
      val_loss: evaluation.val_loss ?? null,
      val_accuracy: evaluation.val_accuracy ?? null,
    },
    best,
  };
}

/** `1000/3000 (33%)`, or the count alone when nothing is planned. */
export const stepCount = (done: number, planned: number | null): string =>
  planned ? `${done}/${planned} (${Math.round(Math.min(1, done / planned) * 100)}%)` : `${done} (no planned total)`;

/** One spike as a report line: `step 500: 4.2× the level before it, recovered at step 512`. */
export function spikeText(s: Analysis["spikes"][number]): string {
  const size = `${s.size.toPrecision(3)}× the level before it`;
  const outcome =
    s.recovered === true
      ? `recovered at step ${s.end_step}`
      : s.recovered === false
        ? `did not recover (divergence, judged at step ${s.end_step})`
        : "being watched";
  return `step ${s.step}: ${size}, ${outcome}`;
}

/** Where a step run diverged: `train_loss NaN at step 123`, `the spike at step 151 did not recover (judged at step 168)`. */
export function divergenceText(d: NonNullable<Analysis["divergence"]>): string {
  return d.kind === "non_finite"
    ? `${d.metric} ${d.value} at step ${d.step}${d.only_non_finite ? " (no finite loss at all)" : ""}`
    : `the spike at step ${d.step} did not recover (judged at step ${d.decided_step})`;
}

/**
 * A step run's judgement as report lines [label, text]: steps judged, the best step (with its value when `best` has
 * it), spikes, divergence, slow-downs, flags.
 */
export function stepJudgementLines(a: Analysis, best: BestStep | null = null): [string, string][] {
  if (a.judged_on !== "steps") return [];
  const yes = (b: boolean) => (b ? "YES" : "no");
  const out: [string, string][] = [["judged on", `${a.steps_judged} steps`]];
  if (a.best_step !== null)
    out.push(["best step", best?.step === a.best_step ? bestStepText(best) : String(a.best_step)]);
  if (a.spikes.length === 0) out.push(["spikes", "none"]);
  for (const [i, s] of a.spikes.entries()) out.push([i === 0 ? "spikes" : "", spikeText(s)]);
  const d = a.divergence;
  if (d) out.push(["divergence", `${divergenceText(d)}; last finite step before it: ${d.before_step ?? "none"}`]);
  for (const [i, s] of a.slowdowns.entries())
    out.push([
      i === 0 ? "slow-downs" : "",
      `from step ${s.step}: ${s.ratio.toPrecision(3)}× the typical step time${s.end_step === null ? " (still slow)" : `, over at step ${s.end_step}`}`,
    ]);
  const f = a.flags;
  out.push([
    "step flags",
    `spike ${yes(f.spike)}   grad explosion ${yes(f.grad_explosion)}   slow-down ${yes(f.slowdown)}`,
  ]);
  return out;
}

/** The analysis as a short aligned report; `steps` adds a step run's lines. */
export function report(a: Analysis, steps: StepSummary | null = null): string {
  const lines: string[] = [];
  const line = (label: string, text: string) => lines.push(`  ${label.padEnd(17)}${text}`);
  const planned = a.total_epochs_planned ? `/${a.total_epochs_planned}` : "";
  lines.push(
    `Loss analysis of ${a.operation_id} (${a.operation_type}, ${a.status}, ${a.epochs_completed}${planned} epochs)`,
  );
  if (steps) {
    line("steps", stepCount(steps.completed, steps.planned));
    line(
      "latest step",
      steps.latest ? `${steps.latest.step}: train_loss ${fmt(steps.latest.train_loss)}` : "no train_loss yet",
    );
    const e = steps.evaluation;
    line(
      "last evaluation",
      e ? `step ${e.step}: val_loss ${fmt(e.val_loss)}  val_acc ${fmt(e.val_accuracy)}` : "none yet",
    );
  }
  if (a.epochs_completed === 0) {
    lines.push(
      !steps
        ? `  No epochs recorded yet; nothing to analyze until the run reports metrics.`
        : ["completed", "failed", "cancelled"].includes(a.status)
          ? `  Its steps carry no epoch, so no per-epoch record was derived and there is no epoch judgement (log the epoch with each step: run.log(..., step=n, epoch=e)).`
          : `  No epoch closed yet; the judgement starts once the first epoch ends (a step of the next epoch, or the finish).`,
    );
  } else {
    const t = a.trajectory;
    let detail: string;
    if (t.basis === "since_best" && t.since_best) {
      detail = `since the best epoch: ${signed(t.since_best.rise * 100, 1)}% above its best at epoch ${t.since_best.best_epoch}, margin ${(t.since_best.margin * 100).toFixed(1)}%`;
    } else {
      const change =
        t.relative_change === null
          ? ""
          : `, fitted change ${signed(t.relative_change * 100, 1)}% over the last ${t.points} epochs`;
      const slope = t.slope === null ? "" : `, slope ${signed(t.slope)}/epoch`;
      detail = `${change}${slope}`.replace(/^, /, "");
    }
    line("trajectory", `${t.trajectory} (${a.monitor ?? "no finite loss"}${detail ? `; ${detail}` : ""})`);
    // A step run's best is a step (below); its derived epochs' best would name an epoch no trainer checkpointed.
    if (!isStepRun(a) && a.best_epoch === null) line("best epoch", "none (no finite loss recorded)");
    else if (!isStepRun(a)) {
      const ago = a.epochs_since_improvement ? `${a.epochs_since_improvement} epochs ago` : "the latest epoch";
      line("best epoch", `${a.best_epoch}: ${a.monitor} ${fmt(a.best_value)} (${ago})`);
    }
    const yes = (b: boolean) => (b ? "YES" : "no");
    line(
      "flags",
      `overfitting ${yes(a.flags.overfitting)}   plateau ${yes(a.flags.plateau)}   divergence ${yes(a.flags.diverging)}   stalled ${yes(a.flags.stalled)}`,
    );
    const g = a.generalization_gap;
    if (g.latest === null) line("gap (val-train)", "n/a (needs both train_loss and val_loss)");
    else {
      const trend =
        g.trend === null
          ? "too few epochs for a trend"
          : `${g.trend}${g.slope === null ? "" : `, ${signed(g.slope)}/epoch`}`;
      line("gap (val-train)", `${signed(g.latest)} at the last epoch, ${trend}`);
    }
    const f = a.final;
    if (f) {
      line(
        "final epoch",
        `${f.epoch}: train_loss ${fmt(f.train_loss)}  val_loss ${fmt(f.val_loss)}  train_acc ${fmt(f.train_accuracy)}  val_acc ${fmt(f.val_accuracy)}`,
      );
    }
  }
  for (const [label, text] of stepJudgementLines(a, steps?.best ?? null)) line(label, text);
  const r = a.recommendation;
  if (a.checkpoints.held_by === "trainwatch") {
    line(
      "checkpoints",
      a.checkpoints.epochs?.length ? `epochs ${a.checkpoints.epochs.join(", ")} (held by Trainwatch)` : "none written",
    );
  }
  line(
    "thresholds",
    `plateau patience ${a.thresholds.plateau_patience}, overfit ≥ ${(a.thresholds.overfit_threshold * 100).toFixed(1)}% and ${a.thresholds.overfit_noise_z}σ, stall < ${(a.thresholds.stall_threshold * 100).toFixed(1)}% in ${a.thresholds.stall_window} epochs`,
  );
  line(
    "recommendation",
    `${r.action}${r.checkpoint_epoch === null ? "" : ` -> checkpoint at epoch ${r.checkpoint_epoch}`}${r.checkpoint_step === null ? "" : ` -> the last checkpoint at or before step ${r.checkpoint_step}`}`,
  );
  line("reason", r.reason);
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { json: { type: "boolean", default: false }, help: { type: "boolean" } },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const mcp = await connect("trainwatch-loss-analyzer");
  try {
    const id = parsed.positionals[0]!;
    const a = await mcp.call<Analysis>("analyze_training", { operation_id: id });
    // The default resolution is the run's own: steps when it reports them.
    const view = await mcp.call<StepsView | { resolution: "epoch" }>("get_operation_metrics", { operation_id: id });
    const steps = view.resolution === "step" ? stepSummary(view, await readBestStep(mcp, id, a)) : null;
    console.log(parsed.values.json ? JSON.stringify(steps ? { ...a, steps } : a) : report(a, steps));
    return 0;
  } catch (err) {
    if (parsed.values.json) {
      console.log(
        JSON.stringify({
          error: { code: err instanceof ToolError ? err.code : "AGENT_ERROR", message: (err as Error).message },
        }),
      );
    }
    console.error(`loss_analyzer: ${(err as Error).message}`);
    return 1;
  } finally {
    await mcp.close();
  }
}

if (import.meta.main) process.exit(await main(Bun.argv.slice(2)));
