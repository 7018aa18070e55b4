/**
 * The judgement's reply shapes (GET /operations/{id}/analysis, the compare route's per-run summary, the MCP analyze_training
 * tool): one TypeBox source for validation, OpenAPI, MCP and the typed client. The rules behind the values live in src/trends.
 */
import { Type, type Static } from "@sinclair/typebox";
import { EpochInput } from "./epoch.ts";
import { StepInput } from "./step.ts";
import { OperationStatus, SmoothedCurves } from "./operation.ts";

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
  },
  { description: "The stored summary's flags, as the dashboard shows them." },
);

export const Action = Type.Union(
  [Type.Literal("continue"), Type.Literal("stop"), Type.Literal("use_checkpoint"), Type.Literal("insufficient_data")],
  { description: "continue | stop | use_checkpoint | insufficient_data" },
);

export const Trajectory = Type.Union([Type.Literal("improving"), Type.Literal("worsening"), Type.Literal("flat")]);

export const Recommendation = Type.Object({
  action: Action,
  reason: Type.String({ description: "One sentence citing the numbers behind the action and the thresholds applied." }),
  checkpoint_epoch: Type.Union([Type.Integer(), Type.Null()], {
    description:
      "The epoch to restore (stop, use_checkpoint). For local and host trainings always one with a checkpoint (see checkpoints).",
  }),
  trajectory: Trajectory,
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
  flags: Flags,
  trajectory: TrajectoryDetail,
  generalization_gap: GeneralizationGap,
  checkpoints: CheckpointsHeld,
  final: Type.Union([EpochInput, Type.Null()], { description: "The last stored epoch, every field." }),
  recommendation: Recommendation,
  thresholds: Thresholds,
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
