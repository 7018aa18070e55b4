#!/usr/bin/env bun
/**
 * Loss analyzer agent: `bun agents/loss_analyzer.ts <operation_id> [--json]`. An MCP client (see ./mcp_client.ts) that asks
 * analyze_training about one operation's full history and prints the trajectory, best epoch, flags, generalization gap
 * and the recommendation with its reason; --json prints the analysis as one JSON object. Exit: 0, 1 on failure, 2 on bad usage.
 */
import { parseArgs } from "node:util";
import type { Analysis } from "../src/schemas/analysis.ts";
import { connect, fmt, ToolError } from "./mcp_client.ts";

const USAGE = "usage: bun agents/loss_analyzer.ts <operation_id> [--json]";

function signed(v: number, digits = 4): string {
  return `${v >= 0 ? "+" : ""}${v.toFixed(digits)}`;
}

/** The analysis as a short aligned report. */
export function report(a: Analysis): string {
  const lines: string[] = [];
  const line = (label: string, text: string) => lines.push(`  ${label.padEnd(17)}${text}`);
  const planned = a.total_epochs_planned ? `/${a.total_epochs_planned}` : "";
  lines.push(
    `Loss analysis of ${a.operation_id} (${a.operation_type}, ${a.status}, ${a.epochs_completed}${planned} epochs)`,
  );
  if (a.epochs_completed === 0) {
    lines.push(`  No epochs recorded yet; nothing to analyze until the run reports metrics.`);
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
    if (a.best_epoch === null) line("best epoch", "none (no finite loss recorded)");
    else {
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
    `${r.action}${r.checkpoint_epoch === null ? "" : ` -> checkpoint at epoch ${r.checkpoint_epoch}`}`,
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
    const a = await mcp.call<Analysis>("analyze_training", { operation_id: parsed.positionals[0] });
    console.log(parsed.values.json ? JSON.stringify(a) : report(a));
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
