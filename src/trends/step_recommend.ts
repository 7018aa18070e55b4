// Turns a step run's verdict into one action with a one-sentence reason citing the steps and numbers behind it, and the
// step whose checkpoint to go back to. The trainer keeps a step run's checkpoints, so the advice names a step and says
// "the last checkpoint at or before it" / "before step N": Trainwatch does not know which steps have one.

import { fmtLoss, pct, plural, times } from "./format.ts";
import type { Action, RunStatus, Trajectory } from "./recommend.ts";
import type { StepVerdict } from "./step_judgement.ts";
import { DEFAULT_STEP_CONFIG, type StepConfig } from "./step_types.ts";

export interface StepRecommendation {
  action: Action;
  reason: string;
  /** Always null for a step run: its checkpoints are named by step. */
  checkpoint_epoch: null;
  /** The step whose checkpoint to restore (stop, use_checkpoint); null when there is none to advise. */
  checkpoint_step: number | null;
  trajectory: Trajectory;
}

/**
 * One recommendation for a step run, in this order:
 * 1. diverging: stop (running or pending), naming the step it began and the last checkpoint before it; a finished run is
 *    told it diverged (also one that reported nothing but non-finite losses), with the same checkpoint advice;
 * 2. fewer than `spike_min_points` (20) steps judged: insufficient_data;
 * 3. finished: use_checkpoint at the best step (insufficient_data without a finite loss);
 * 4. running: overfitting → stop at the best evaluation; stalled → stop (nothing to restore); plateau → stop at the best;
 *    else continue, saying which spike is being watched and whether the steps slowed down.
 */
export function recommendSteps(
  v: StepVerdict,
  status: RunStatus,
  trajectory: Trajectory,
  cfg: StepConfig = DEFAULT_STEP_CONFIG,
): StepRecommendation {
  const result = (action: Action, reason: string, checkpoint_step: number | null = null): StepRecommendation => ({
    action,
    reason,
    checkpoint_epoch: null,
    checkpoint_step,
    trajectory,
  });
  const finished = status === "completed" || status === "failed" || status === "cancelled";
  const best = bestText(v);
  const d = v.divergence;
  if (d) {
    const what =
      d.kind === "non_finite"
        ? d.only_non_finite
          ? `Every ${d.metric} was non-finite (${d.value} first at step ${d.step})`
          : `${d.metric} became ${d.value} at step ${d.step}`
        : `A loss spike at step ${d.step} (${times(d.size ?? 1)} the level before it) did not come back within its pre-spike band ` +
          (d.kind === "spike_with_gradient"
            ? `while grad_norm exploded (judged at step ${d.decided_step})`
            : `in ${plural(cfg.recover_steps, "step")} (judged at step ${d.decided_step})`);
    // The overall best may lie elsewhere (after a recovered spike, say): its value is quoted only when it is this step's.
    const back =
      v.checkpoint_step !== null && v.checkpoint_step !== d.before_step
        ? `restore the last checkpoint taken before step ${d.step} (the best before it: step ${v.checkpoint_step}${best && v.best_step === v.checkpoint_step ? `, ${best}` : ""})`
        : `restore the last checkpoint taken before step ${d.step}`;
    const fix = d.only_non_finite
      ? "; there is no finite loss to go back to: lower the learning rate and check the inputs for NaN"
      : `; ${back}, and lower the learning rate`;
    const verb = finished ? "the run diverged" : "the run is diverging, so stop it";
    return result("stop", `${what}: ${verb}${fix}.`, d.only_non_finite ? null : v.checkpoint_step);
  }
  if (v.steps_judged < cfg.spike_min_points)
    return result(
      "insufficient_data",
      `Only ${plural(v.steps_judged, "step")} judged; at least ${cfg.spike_min_points} are needed to tell a trend from noise.`,
    );
  if (finished) {
    if (v.best_step === null)
      return result("insufficient_data", `The run ended after ${plural(v.steps_judged, "step")} with no finite loss.`);
    return result(
      "use_checkpoint",
      `The run ended at step ${v.last_step}; restore the last checkpoint at or before step ${v.best_step} (${best}).`,
      v.best_step,
    );
  }
  if (v.flags.overfitting) {
    const o = v.overfit;
    return result(
      "stop",
      `Validation loss is ${pct(o.rise ?? 0)} above its best ${fmtLoss(o.best_value!)} at step ${o.best_step} over the last ` +
        `${plural(Math.min(3, o.evals_after), "evaluation")} (margin ${pct(o.margin ?? 0)}: at least ${pct(cfg.overfit_threshold)} and ` +
        `${cfg.overfit_noise_z}× the evaluations' noise) while training loss fell ${pct(o.train_change ?? 0)}: the run is overfitting, ` +
        `so stop it and restore the last checkpoint at or before step ${v.best_step}.`,
      v.best_step,
    );
  }
  if (v.flags.stalled) {
    const st = v.stall;
    return result(
      "stop",
      `The training loss improved ${pct(Math.max(0, st.window_improvement ?? 0))} of its first level over the last ${plural(st.window, "step")} ` +
        `(threshold ${pct(cfg.stall_threshold)}) and ${pct(Math.max(0, st.total_improvement ?? 0))} in all (under ${pct(cfg.learned_fraction)}): ` +
        `the run is not learning; check the learning rate (too low?), that the weights are trainable, and that the labels match the inputs.`,
    );
  }
  if (v.flags.plateau) {
    return result(
      "stop",
      `${v.plateau.monitor} has set no new best for ${plural(v.plateau.steps_since_best ?? 0, "step")} (patience ${cfg.plateau_steps} steps); ` +
        `stop and restore the last checkpoint at or before step ${v.best_step} (${best}).`,
      v.best_step,
    );
  }
  const notes: string[] = [];
  const watching = v.flags.spike ? v.spikes[v.spikes.length - 1] : undefined;
  if (watching)
    notes.push(
      `a loss spike at step ${watching.step} (${times(watching.size)} the level before it) is being watched: it is divergence only if it is not back within its band by step ${watching.step + cfg.recover_steps}`,
    );
  if (v.flags.grad_explosion) notes.push("grad_norm is far above its recent level (an early warning)");
  const slow = v.flags.slowdown ? v.slowdowns[v.slowdowns.length - 1] : undefined;
  if (slow) notes.push(`steps have been ${times(slow.ratio)} slower than usual since step ${slow.step}`);
  const recovered = v.spikes.filter((s) => s.recovered === true).length;
  if (recovered > 0) notes.push(`${plural(recovered, "spike")} recovered`);
  return result(
    "continue",
    `${best ? `Best ${best}` : "No best yet"}${notes.length ? `; ${notes.join("; ")}` : ""}; keep training.`,
  );
}

/** "val_loss 1.2345 at step 800", or null without a best. */
function bestText(v: StepVerdict): string | null {
  if (v.best_step === null || v.best_value === null || v.monitor === null) return null;
  return `${v.monitor === "val_loss" ? "val_loss" : "training level"} ${fmtLoss(v.best_value)} at step ${v.best_step}`;
}
