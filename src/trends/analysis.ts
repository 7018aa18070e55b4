// The judgement of one run: flags, trajectory, gap and the recommendation, composed from the trend rules with the server's
// configured thresholds. The analysis route, the compare route, the dashboard, MCP and the agents all read this one result.

import { normalizeHistory } from "./history.ts";
import {
  generalizationGap,
  recommend,
  trajectoryOf,
  type CheckpointHolding,
  type GeneralizationGap,
  type Recommendation,
  type RunStatus,
  type TrajectoryDetail,
} from "./recommend.ts";
import { advanceState } from "./summary.ts";
import {
  DEFAULT_TREND_CONFIG,
  EMPTY_STATE,
  type EpochPoint,
  type Monitor,
  type TrendConfig,
  type TrendSummary,
} from "./types.ts";

export interface Judgement {
  /** The loss being judged: val_loss when the run reports one, else train_loss; null before any finite loss. */
  monitor: Monitor | null;
  best_epoch: number | null;
  best_value: number | null;
  /** best_epoch − the first stored epoch. */
  epochs_to_best: number | null;
  epochs_since_improvement: number | null;
  flags: { overfitting: boolean; plateau: boolean; diverging: boolean; stalled: boolean };
  trajectory: TrajectoryDetail;
  generalization_gap: GeneralizationGap;
  /** Who holds the checkpoints, and (when Trainwatch does) the epochs that have one. */
  checkpoints: { held_by: "trainwatch" | "trainer"; epochs: number[] | null };
  recommendation: Recommendation;
  /** The thresholds every rule above applied (the server's configuration). */
  thresholds: TrendConfig;
}

/** Judges a run from its full history and its stored summary (whose flags it reports as they are). Pure. */
export function judgeRun(
  input: {
    status: RunStatus;
    epochs: readonly EpochPoint[];
    summary: TrendSummary;
    checkpoints: CheckpointHolding;
    stop_reason?: string | null;
  },
  cfg: TrendConfig = DEFAULT_TREND_CONFIG,
): Judgement {
  const epochs = normalizeHistory(input.epochs);
  const s = input.summary;
  const state = advanceState(EMPTY_STATE, epochs, s.monitor);
  const first = epochs[0]?.epoch ?? null;
  const trajectory = trajectoryOf(epochs, s.monitor, cfg, state);
  return {
    monitor: s.monitor,
    best_epoch: s.best_epoch,
    best_value: s.best_val_loss,
    epochs_to_best: s.best_epoch === null || first === null ? null : s.best_epoch - first,
    epochs_since_improvement: s.epochs_since_improvement,
    flags: { overfitting: s.is_overfitting, plateau: s.is_plateaued, diverging: s.is_diverging, stalled: s.is_stalled },
    trajectory,
    generalization_gap: generalizationGap(epochs, cfg, s.best_epoch),
    checkpoints:
      input.checkpoints.held_by === "trainwatch"
        ? { held_by: "trainwatch", epochs: [...new Set(input.checkpoints.epochs)].sort((a, b) => a - b) }
        : { held_by: "trainer", epochs: null },
    recommendation: recommend({ ...input, epochs, state, trajectory }, cfg),
    thresholds: { ...cfg },
  };
}

/**
 * Who holds an operation's checkpoints. local and host trainings: Trainwatch, with the `listed` epochs (its result's final
 * list, or the ones written so far); while it may still run, its best and latest epochs count too, because stopping it writes
 * its best and last checkpoints. Anything else (an external trainer): the trainer.
 */
export function checkpointHolding(
  op: {
    status: RunStatus;
    metadata: Record<string, unknown>;
    trends: Pick<TrendSummary, "best_epoch" | "latest_epoch">;
  },
  listed: readonly number[],
): CheckpointHolding {
  const location = op.metadata.location;
  if (location !== "local" && location !== "host") return { held_by: "trainer" };
  const live = op.status === "pending" || op.status === "running";
  const extra = live ? [op.trends.best_epoch, op.trends.latest_epoch].filter((e): e is number => e !== null) : [];
  return { held_by: "trainwatch", epochs: [...new Set([...listed, ...extra])] };
}
