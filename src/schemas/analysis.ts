/**
 * The judgement's reply shapes (GET /operations/{id}/analysis, the compare route's per-run summary, the MCP analyze_training
 * tool): one TypeBox source for validation, OpenAPI, MCP and the typed client. The rules behind the values live in src/trends.
 */
import { Type, type Static } from "@sinclair/typebox";
import { EpochInput } from "./epoch.ts";
import { StepInput } from "./step.ts";
import { LivenessSchema, OperationStatus, SmoothedCurves } from "./operation.ts";

const NullableInt = Type.Union([Type.Integer(), Type.Null()]);
const NullableNumber = Type.Union([Type.Number(), Type.Null()]);

export const Monitor = Type.Union([Type.Literal("val_loss"), Type.Literal("train_loss"), Type.Null()], {
  description:
    "The loss being judged: val_loss when the run reports one, else train_loss; null before any finite loss.",
});

export const Flags = Type.Object(
  {
    overfitting: Type.Boolean({
      description: "Validation sits above its best by more than noise explains while training improves.",
    }),
    plateau: Type.Boolean({ description: "No new best for plateau_patience epochs." }),
    diverging: Type.Boolean({
      description: "A non-finite loss, an exploded training loss, or training and validation both rising.",
    }),
    stalled: Type.Boolean({
      description: "Barely any improvement over stall_window epochs, and little before: the run is not learning.",
    }),
    spike: Type.Boolean({
      description:
        "A step run: a loss spike is being watched (not yet back within its pre-spike band, not yet divergence). Never an alarm: see `spikes`.",
    }),
    grad_explosion: Type.Boolean({
      description:
        "A step run: grad_norm is far above its recent level now (an early warning; divergence needs the loss).",
    }),
    slowdown: Type.Boolean({
      description: "A step run: the step time is well above the run's typical step time now (see `slowdowns`).",
    }),
  },
  {
    description:
      "The judgement's flags, as the dashboard shows them. A step run's are judged on its steps (the step rules, docs/judgement.md); an epoch run's are the stored summary's, and its spike, grad_explosion and slowdown are false.",
  },
);

/** The liveness flags of a run (src/operations/liveness.ts), as the operation reads them: the analysis adds them to Flags. */
export const LivenessFlags = Type.Object({
  stale: Type.Boolean({
    description:
      "The trainer is silent past its limit: a host training's heartbeats are late, or a watched client run sent no heartbeat, epoch or step for TRAINWATCH_STALE_AFTER (default 60 s). Failed `lost` after TRAINWATCH_LOST_AFTER.",
  }),
  hung: Type.Boolean({
    description:
      "A watched client run's heartbeats arrive but it logged no epoch or step for longer than max(10 × its median interval, 1.5 × its longest gap, TRAINWATCH_HUNG_AFTER): a deadlocked collective, a data loader that stopped. See `liveness`.",
  }),
});

/** The analysis's flags: the judgement's and the liveness ones. */
export const AnalysisFlags = Type.Composite([Flags, LivenessFlags], {
  description: "The judgement's flags, as the dashboard shows them, and the liveness flags (stale, hung).",
});

export const Action = Type.Union(
  [
    Type.Literal("continue"),
    Type.Literal("stop"),
    Type.Literal("use_checkpoint"),
    Type.Literal("insufficient_data"),
    Type.Literal("check_trainer"),
  ],
  {
    description:
      "continue | stop | use_checkpoint | insufficient_data | check_trainer (the trainer is stale or hung: its curves cannot say whether it lives; see flags.stale, flags.hung and liveness)",
  },
);

export const Trajectory = Type.Union([Type.Literal("improving"), Type.Literal("worsening"), Type.Literal("flat")]);

export const Recommendation = Type.Object({
  action: Action,
  reason: Type.String({ description: "One sentence citing the numbers behind the action and the thresholds applied." }),
  checkpoint_epoch: Type.Union([Type.Integer(), Type.Null()], {
    description:
      "The epoch to restore (stop, use_checkpoint). For local and host trainings always one with a checkpoint (see checkpoints). null for a step run.",
  }),
  checkpoint_step: Type.Union([Type.Integer(), Type.Null()], {
    description:
      "A step run: the step whose checkpoint to restore (the last one the trainer took at or before it; after a divergence, the best step before it began). null for an epoch run.",
  }),
  trajectory: Trajectory,
});

export const Spike = Type.Object({
  step: Type.Integer({ description: "The first step above the band." }),
  before_step: NullableInt,
  peak_step: Type.Integer(),
  size: Type.Number({ description: "Peak train_loss ÷ the level before the spike." }),
  noise_multiple: Type.Union([Type.Number(), Type.Null()], {
    description: "(log peak − log level) ÷ the noise σ of log train_loss before it.",
  }),
  recovered: Type.Union([Type.Boolean(), Type.Null()], {
    description:
      "true: back within its pre-spike band; false: not within recover_steps (divergence); null: still watched.",
  }),
  end_step: Type.Union([Type.Integer(), Type.Null()], {
    description: "The step it recovered at, or was judged divergence at; null while watched.",
  }),
});

export const Slowdown = Type.Object({
  step: Type.Integer({ description: "The first slow step." }),
  ratio: Type.Number({ description: "The highest recent median step time ÷ the run's typical step time." }),
  end_step: Type.Union([Type.Integer(), Type.Null()], { description: "Over at this step; null while it lasts." }),
});

export const StepDivergence = Type.Object({
  kind: Type.Union([Type.Literal("non_finite"), Type.Literal("spike"), Type.Literal("spike_with_gradient")]),
  step: Type.Integer({ description: "The step it began: the non-finite loss's, or the spike's first." }),
  before_step: Type.Union([Type.Integer(), Type.Null()], {
    description: "The last step before it with a finite train_loss.",
  }),
  decided_step: Type.Integer({ description: "The step it was judged divergence at." }),
  metric: Type.Union([Type.Literal("train_loss"), Type.Literal("val_loss"), Type.Null()], {
    description: "The loss that decided it.",
  }),
  value: Type.Union([Type.String(), Type.Number(), Type.Null()], {
    description: 'A non-finite value: "NaN", "Infinity", "-Infinity".',
  }),
  size: NullableNumber,
  only_non_finite: Type.Boolean({ description: "No train_loss was ever finite." }),
});

export const TrajectoryDetail = Type.Object({
  trajectory: Trajectory,
  slope: Type.Union([Type.Number(), Type.Null()], { description: "Fitted slope per epoch over the recent window." }),
  relative_change: Type.Union([Type.Number(), Type.Null()], {
    description: "Fitted relative change over the recent window.",
  }),
  points: Type.Integer({ description: "Finite points in the recent window." }),
  basis: Type.Union([Type.Literal("recent"), Type.Literal("since_best")], {
    description:
      "since_best: the loss sits well above its best, which decides the trajectory whatever the recent window says.",
  }),
  since_best: Type.Union([
    Type.Object({
      best_epoch: Type.Integer(),
      rise: Type.Number({ description: "(mean of the last 3 epochs after the best − best) / |best|." }),
      margin: Type.Number({
        description: "The rise that counts: max(overfit_threshold, overfit_noise_z × relative noise).",
      }),
    }),
    Type.Null(),
  ]),
});

export const GeneralizationGap = Type.Object({
  latest: NullableNumber,
  slope: NullableNumber,
  trend: Type.Union([Type.Literal("widening"), Type.Literal("narrowing"), Type.Literal("stable"), Type.Null()], {
    description: "Judged from the best epoch on (at least the last trajectory_window epochs).",
  }),
});

export const Thresholds = Type.Object(
  {
    plateau_patience: Type.Number(),
    overfit_window: Type.Number(),
    overfit_threshold: Type.Number(),
    overfit_noise_z: Type.Number(),
    diverge_window: Type.Number(),
    diverge_threshold: Type.Number(),
    explode_factor: Type.Number(),
    stall_window: Type.Number(),
    stall_threshold: Type.Number(),
    trajectory_window: Type.Number(),
    trajectory_threshold: Type.Number(),
  },
  { description: "The thresholds applied (the server's TRAINWATCH_* configuration); every reason quotes these." },
);

export const CheckpointsHeld = Type.Object({
  held_by: Type.Union([Type.Literal("trainwatch"), Type.Literal("trainer")], {
    description:
      "trainwatch: a local or host training whose checkpoints the server keeps; trainer: an external trainer keeps its own.",
  }),
  epochs: Type.Union([Type.Array(Type.Integer()), Type.Null()], {
    description: "Epochs with a checkpoint (null for an external trainer).",
  }),
});

/** GET /operations/{id}/analysis. */
export const Analysis = Type.Object({
  operation_id: Type.String(),
  operation_type: Type.String(),
  status: OperationStatus,
  epochs_completed: Type.Integer(),
  total_epochs_planned: NullableInt,
  monitor: Monitor,
  best_epoch: NullableInt,
  best_value: NullableNumber,
  epochs_to_best: Type.Union([Type.Integer(), Type.Null()], { description: "best_epoch − the first stored epoch." }),
  epochs_since_improvement: NullableInt,
  flags: AnalysisFlags,
  trajectory: TrajectoryDetail,
  generalization_gap: GeneralizationGap,
  checkpoints: CheckpointsHeld,
  final: Type.Union([EpochInput, Type.Null()], { description: "The last stored epoch, every field." }),
  recommendation: Recommendation,
  thresholds: Thresholds,
  judged_on: Type.Union([Type.Literal("epochs"), Type.Literal("steps")], {
    description: "steps: a step run, judged on its steps (flags, best_step, spikes, recommendation); epochs otherwise.",
  }),
  steps_judged: Type.Integer({ description: "Steps the step judgement has read (0 for an epoch run)." }),
  liveness: Type.Union([LivenessSchema, Type.Null()], {
    description:
      "A watched running client run's liveness: silent_s (since the last heartbeat, epoch or step), rows_silent_s, median_interval_s and longest_gap_s of its writes, hung_after_s; null for a run that does not heartbeat or has finished.",
  }),
  best_step: Type.Union([Type.Integer(), Type.Null()], {
    description:
      "A step run: the step of the lowest evaluation (val_loss), or without evaluations of the lowest training level; null otherwise.",
  }),
  spikes: Type.Array(Spike, {
    description: "A step run's loss spikes (the most recent 100), each with its step, size and whether it recovered.",
  }),
  slowdowns: Type.Array(Slowdown, { description: "A step run's slow-downs (the most recent 50)." }),
  divergence: Type.Union([StepDivergence, Type.Null()], {
    description: "A step run: where and how it diverged; null when it did not (or for an epoch run).",
  }),
});
export type Analysis = Static<typeof Analysis>;

/** GET /operations/compare: each run's summary (from its judgement) and downsampled curves, plus the ranking. */
export const RunSummary = Type.Object({
  monitor: Monitor,
  best_epoch: NullableInt,
  best_loss: Type.Union([Type.Number(), Type.Null()], { description: "The best (lowest finite) monitored loss." }),
  first_epoch: NullableInt,
  last_epoch: NullableInt,
  epochs_to_best: Type.Union([Type.Integer(), Type.Null()], {
    description: "best_epoch − first_epoch: epochs trained past the first before the best.",
  }),
  epochs_completed: Type.Integer(),
  total_epochs_planned: NullableInt,
  final: Type.Union([EpochInput, Type.Null()], { description: "The last stored epoch, every field." }),
  flags: Flags,
  recommendation: Recommendation,
});

/** The x axis a comparison overlays its runs on (`x`): epochs (a step run's derived epoch records), or steps. */
export const CompareX = Type.Union([Type.Literal("epoch"), Type.Literal("step")], {
  field: "query.x",
  errorMessage: 'expected "epoch" or "step"',
  description:
    "Overlay the runs by `epoch` (the default; a step run by the epoch records derived from its steps) or by `step` (each run's steps; a run without steps has no curve).",
});

/** A run's chart curves: the comparison's, and GET /operations/curves'. */
const Curves = Type.Array(Type.Union([EpochInput, StepInput]), {
  description:
    "The epochs in the range (by step: the steps; every field, or those `fields` names), reduced to max_points: every bucket's first, last, lowest and highest value of every metric, every NaN/±Infinity run's ends, the first, last and best epochs (by step: the first and last steps).",
});

/** Which run, in the comparison and in the curves. */
const RunNames = {
  operation_id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  operation_type: Type.String(),
};
/** A run's curves, and their EMA when smoothing was asked: the comparison's and the curves'. */
const RunCurves = { curves: Curves, smoothed: Type.Optional(SmoothedCurves) };

export const CompareData = Type.Object({
  x: CompareX,
  runs: Type.Array(
    Type.Object({
      ...RunNames,
      status: OperationStatus,
      location: Type.Union([Type.String(), Type.Null()], {
        description: "metadata.location: local, host or external.",
      }),
      summary: RunSummary,
      ...RunCurves,
    }),
  ),
  best_run: Type.Union([Type.String(), Type.Null()], {
    description:
      "Lowest best loss; runs monitoring val_loss are ranked among themselves when any has one; ties go to fewer epochs to best.",
  }),
  basis: Type.String({ description: "One sentence on why best_run won." }),
  max_points: Type.Integer(),
});
export type CompareData = Static<typeof CompareData>;

/** GET /operations/curves: each run's chart curves alone, read as GET /metrics reads them; the runs are not judged. */
export const CurvesData = Type.Object({
  x: CompareX,
  runs: Type.Array(Type.Object({ ...RunNames, ...RunCurves })),
  max_points: Type.Integer(),
});
export type CurvesData = Static<typeof CurvesData>;
