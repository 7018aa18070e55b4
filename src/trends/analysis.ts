// The judgement of one run: flags, trajectory, gap and the recommendation, composed from the trend rules with the server's
// configured thresholds. The analysis route, the compare route, the dashboard, MCP and the agents all read this one result.

import { checkpointNoise, chooseAmong, chooseCheckpointPoint, type CheckpointPoint } from "./checkpoint.ts";
import { normalizeHistory, RECENT_EPOCHS } from "./history.ts";
import { judgeStateFits, lowCheckpoint, type JudgeState } from "./judgement_state.ts";
import {
  gapFrom,
  generalizationGap,
  levelSinceBest,
  recommendFrom,
  trajectoryFrom,
  trajectoryOf,
  type CheckpointHolding,
  type RecommendParts,
  type GeneralizationGap,
  type Recommendation,
  type RunStatus,
  type TrajectoryDetail,
} from "./recommend.ts";
import { advanceState, tailSize } from "./summary.ts";
import {
  DEFAULT_TREND_CONFIG,
  EMPTY_STATE,
  type EpochPoint,
  type Monitor,
  type TrendConfig,
  type TrendState,
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
  const trajectory = trajectoryOf(epochs, s.monitor, cfg, state);
  const candidates = input.checkpoints.held_by === "trainwatch" ? input.checkpoints.epochs : null;
  return assemble(
    {
      ...input,
      state,
      trajectory,
      count: epochs.length,
      recent: epochs.slice(-tailSize(cfg)),
      checkpoint: chooseCheckpointPoint(epochs, s.monitor, candidates),
      level: levelSinceBest(epochs.slice(-RECENT_EPOCHS), s),
    },
    epochs[0]?.epoch ?? null,
    generalizationGap(epochs, cfg, s.best_epoch),
    cfg,
  );
}

/** What judgeKept reads: the stored summary, rule state and kept judgement state, and a bounded tail. */
export interface KeptInput {
  status: RunStatus;
  summary: TrendSummary;
  state: TrendState;
  kept: JudgeState;
  /** The last RECENT_EPOCHS (64) stored epochs, ascending. */
  recent: readonly EpochPoint[];
  checkpoints: CheckpointHolding;
  /**
   * With a Trainwatch holding: its epochs that are stored with a finite monitored value, each with its stored
   * neighbours (checkpoint.ts CheckpointPoint); the rest have none.
   */
  candidates?: readonly CheckpointPoint[];
  stop_reason?: string | null;
}

/**
 * The judgement judgeRun gives over the full history, from the state kept on write (judgement_state.ts) and the last
 * RECENT_EPOCHS stored epochs: the same reply, at the same cost at any length. null when the state cannot say (kept for
 * another monitor or configuration, a span kept from another best, or an external trainer's LOW_KEPT lowest epochs all
 * lucky dips): the caller judges the history instead. Pure.
 */
export function judgeKept(input: KeptInput, cfg: TrendConfig = DEFAULT_TREND_CONFIG): Judgement | null {
  const s = input.summary;
  const k = input.kept;
  if (!judgeStateFits(k, s.monitor, cfg) || (s.best_epoch !== null && k.gap.from_best !== s.best_epoch)) return null;
  const recent = input.recent.slice(-tailSize(cfg));
  let checkpoint: CheckpointPoint | null | undefined = null;
  if (s.monitor !== null) {
    const sigma = checkpointNoise(input.recent, s.monitor);
    checkpoint =
      input.checkpoints.held_by === "trainer" ? lowCheckpoint(k, sigma) : chooseAmong(input.candidates ?? [], sigma);
  }
  if (checkpoint === undefined) return null;
  return assemble(
    {
      ...input,
      trajectory: trajectoryFrom(k.traj, recent, s.monitor, input.state, cfg),
      count: s.total_epochs_completed,
      recent,
      checkpoint,
      level: levelSinceBest(input.recent, s),
    },
    k.first_epoch,
    gapFrom(k.gap.latest, k.gap.win, s.best_epoch === null ? null : k.gap.span, cfg),
    cfg,
  );
}

/** The Judgement of a run from the recommendation's parts, its first stored epoch and its gap. */
function assemble(parts: RecommendParts, first: number | null, gap: GeneralizationGap, cfg: TrendConfig): Judgement {
  const s = parts.summary;
  return {
    monitor: s.monitor,
    best_epoch: s.best_epoch,
    best_value: s.best_val_loss,
    epochs_to_best: s.best_epoch === null || first === null ? null : s.best_epoch - first,
    epochs_since_improvement: s.epochs_since_improvement,
    flags: { overfitting: s.is_overfitting, plateau: s.is_plateaued, diverging: s.is_diverging, stalled: s.is_stalled },
    trajectory: parts.trajectory,
    generalization_gap: gap,
    checkpoints:
      parts.checkpoints.held_by === "trainwatch"
        ? { held_by: "trainwatch", epochs: [...new Set(parts.checkpoints.epochs)].sort((a, b) => a - b) }
        : { held_by: "trainer", epochs: null },
    recommendation: recommendFrom(parts, cfg),
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
