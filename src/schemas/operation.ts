/** TypeBox schemas for operations, their progress and trend summary: one source for validation, OpenAPI and MCP. */
import { Type, type Static } from "@sinclair/typebox";
import { EpochInput, MetricValue } from "./epoch.ts";
import { StepInput } from "./step.ts";
import { BatchProgressSchema } from "./host.ts";
import { Control, StopControl, StopPolicy } from "./control.ts";
import { AlertRules } from "./alert.ts";
import { Group, LabelFields, Tags } from "./labels.ts";

export { Control, STOP_FLAGS, StopControl, StopPolicy, type StopFlag, type StopPolicyInput } from "./control.ts";

export const OperationStatus = Type.Union(
  [
    Type.Literal("pending"),
    Type.Literal("running"),
    Type.Literal("completed"),
    Type.Literal("failed"),
    Type.Literal("cancelled"),
  ],
  {
    description: "pending → running → completed | failed | cancelled",
  },
);
export type OperationStatus = Static<typeof OperationStatus>;
export const FINISHED: ReadonlySet<OperationStatus> = new Set(["completed", "failed", "cancelled"]);

/**
 * An operation id as a caller passes it (`op_<type>_<yyyymmdd>_<hhmmss>_<8 hex>`). Each place that takes one says
 * where to find one in its own `description`; the MCP tools also refuse an empty one (`minLength: 1`).
 */
export const operationId = (options: { minLength?: number; description?: string } = {}) => Type.String(options);

/** The `{id}` path parameter of every operation route, on the API and the GPU host; `description` documents it. */
export const operationIdParams = (description?: string) =>
  Type.Object({ id: operationId(description === undefined ? {} : { description }) });
export const OperationIdParams = operationIdParams();

/** Page size of a listing of operations (GET /operations, the MCP list_operations tool): 1 … 1000. */
export const LIST_LIMIT = { minimum: 1, maximum: 1000 } as const;
/** Largest `offset` of the listing: past any real number of operations, and an exact integer for SQLite. */
export const MAX_OFFSET = 2 ** 31 - 1;
/** `max_points` of one run's read (GET /metrics, get_operation_metrics): 3 (first, best, last) … 1,000,000 epochs. */
export const MAX_POINTS = { minimum: 3, maximum: 1_000_000 } as const;
/** `max_points` per run of a comparison (GET /operations/compare and /curves): up to 100 runs, so at most 100,000 each. */
export const COMPARE_MAX_POINTS = { minimum: 3, maximum: 100_000 } as const;

export const OperationType = Type.String({
  pattern: "^[a-z][a-z0-9_]{0,31}$",
  description: 'Kind of operation, e.g. "training".',
});

export const TrendSummarySchema = Type.Object(
  {
    monitor: Type.Union([Type.Literal("val_loss"), Type.Literal("train_loss"), Type.Null()], {
      description: "val_loss when any epoch has a finite val_loss, else train_loss.",
    }),
    best_epoch: Type.Union([Type.Integer(), Type.Null()], {
      description: "Epoch number of the lowest monitored value (ties: earliest).",
    }),
    best_val_loss: Type.Union([Type.Number(), Type.Null()], { description: "The best monitored value." }),
    epochs_since_improvement: Type.Union([Type.Integer(), Type.Null()]),
    is_overfitting: Type.Boolean(),
    is_plateaued: Type.Boolean(),
    is_diverging: Type.Boolean(),
    is_stalled: Type.Boolean({
      description: "The monitored loss barely moved over stall_window epochs and never learned much: not learning.",
    }),
    latest_epoch: Type.Union([Type.Integer(), Type.Null()]),
    total_epochs_completed: Type.Integer(),
  },
  { description: "How the training is going, recomputed on every metrics write." },
);

export const Progress = Type.Object({
  percentage: Type.Number({ description: "0–100, including the fraction of the current epoch when known." }),
  current_epoch: Type.Union([Type.Integer(), Type.Null()], { description: "Latest stored epoch number." }),
  total_epochs: Type.Union([Type.Integer(), Type.Null()], { description: "Epochs planned." }),
  epochs_completed: Type.Integer(),
  steps_completed: Type.Optional(
    Type.Integer({
      description:
        "A step run's highest stored step + 1 (0 before any step); the percentage counts steps when they are planned. Present once the operation has steps or plans them.",
    }),
  ),
  total_steps: Type.Optional(
    Type.Union([Type.Integer(), Type.Null()], { description: "Optimisation steps planned (total_steps_planned)." }),
  ),
  steps_pruned_at: Type.Optional(
    Type.String({
      format: "date-time",
      description:
        "When retention (TRAINWATCH_STEP_RETENTION_DAYS) removed this finished run's step rows; its epochs, trends, step judgement and step chart stay (the chart then shows each metric's extremes per block of 128 steps). Absent while every step is stored.",
    }),
  ),
  batch: Type.Optional(BatchProgressSchema),
});

/** A watched run's liveness (src/operations/liveness.ts livenessOf), in the operation and its analysis. */
export const LivenessSchema = Type.Object(
  {
    stale: Type.Boolean(),
    hung: Type.Boolean(),
    silent_s: Type.Number({ description: "Seconds since the last heartbeat, epoch or step." }),
    rows_silent_s: Type.Number({
      description: "Seconds since the last epoch or step (since the first heartbeat before any).",
    }),
    median_interval_s: Type.Union([Type.Number(), Type.Null()], {
      description: "The median interval between writes of rows over the recent 32 (s); null before two.",
    }),
    longest_gap_s: Type.Union([Type.Number(), Type.Null()], {
      description: "The longest interval between writes of rows seen (s); null before two.",
    }),
    hung_after_s: Type.Number({
      description:
        "Row silence past which the run reads hung: max(10 × median_interval_s, 1.5 × longest_gap_s, TRAINWATCH_HUNG_AFTER).",
    }),
    utilisation: Type.Optional(
      Type.String({
        description:
          "In the analysis of a hung run that samples system metrics: the GPU utilisation of its latest sample (else the process's or the machine's CPU), and its age.",
      }),
    ),
  },
  { description: "A watched client run's liveness: how long it has been silent against its own usual interval." },
);

/**
 * Why an operation failed, when the cause is the link to its training host rather than the training:
 * - host_unreachable: no epoch or heartbeat for TRAINWATCH_HOST_TIMEOUT, and the host does not answer;
 * - host_lost_session: the host answers but no longer has the session (it restarted or lost the training);
 * - host_token_refused: the host trains but the API refuses its token, so nothing it sends arrives.
 * All three are revivable: the next epoch or heartbeat from the host brings the operation back to running (a restarted
 * host still delivers what its outbox kept; a fixed token lets the queued epochs through).
 */
export const HOST_FAILURES = ["host_unreachable", "host_lost_session", "host_token_refused"] as const;

/** The training itself failed (a bad CSV, a worker that died, an uncaught exception in a client's script): its trainer reports it, error_message says why. Final. */
export const TRAINER_ERROR = "trainer_error";

/**
 * A watched client run (one that sent a heartbeat) went silent, no heartbeat, epoch or step, for TRAINWATCH_LOST_AFTER
 * (default 300 s): its process was killed (kill -9, the OOM killer), or its machine or network went away. Revivable:
 * a heartbeat, epoch or step from it brings it back to running (src/operations/liveness.ts).
 */
export const LOST = "lost";

/**
 * A client's goodbye on SIGTERM or SIGINT (error_message "stopped by SIGTERM" / "stopped by SIGINT"): a preemption, a
 * scheduler's stop or a Ctrl-C, told apart from a crash (trainer_error). Final.
 */
export const TERMINATED = "terminated";

/** The failure codes a trainer may report itself (CompleteOperationInput.failure_code). */
export const REPORTED_FAILURES = [TRAINER_ERROR, TERMINATED] as const;

/**
 * Why a cluster's scheduler ended a job (src/executors/slurm_states.ts), each final: node_fail (its node failed:
 * NODE_FAIL, BOOT_FAIL), out_of_memory (it passed its memory allocation), time_limit (it passed its time limit:
 * TIMEOUT, DEADLINE), preempted (a higher-priority job took its resources and the partition's PreemptMode cancels
 * rather than requeues; a requeued job reads pending again instead).
 */
export const SCHEDULER_FAILURES = ["node_fail", "out_of_memory", "time_limit", "preempted"] as const;

/** Every failure code, in the order the operation's schema lists them (src/operations/lifecycle.ts has the rules). */
export const FAILURE_CODES = [...HOST_FAILURES, TRAINER_ERROR, LOST, TERMINATED, ...SCHEDULER_FAILURES] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

export const Operation = Type.Object({
  operation_id: Type.String(),
  operation_type: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  status: OperationStatus,
  tags: { ...Tags, description: "The run's tags, sorted and unique; [] when none (PATCH /operations/{id}/labels)." },
  group: Type.Union([Group, Type.Null()], { description: "The run's group (a sweep, an experiment); null when none." }),
  created_at: Type.String({ format: "date-time" }),
  started_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
  completed_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
  progress: Progress,
  error_message: Type.Union([Type.String(), Type.Null()]),
  // Unsafe over the union: the same schema (a flat anyOf of the codes and null), its static type kept as FailureCode.
  failure_code: Type.Unsafe<FailureCode | null>(
    Type.Union([...FAILURE_CODES.map((c) => Type.Literal(c)), Type.Null()], {
      description:
        "Why a failed operation failed, as data. Because of its host, not the training: host_unreachable (silent for TRAINWATCH_HOST_TIMEOUT), host_lost_session (the host no longer has it), host_token_refused (the API refuses the host's TRAINWATCH_TOKEN); the next epoch or heartbeat from the host revives such an operation. trainer_error: the training itself failed (a built-in training's error, a script training that exited non-zero, was killed by a signal or could not start, or a Python client's uncaught exception, as `error_message` says), final. lost: a client run that heartbeats went silent (no heartbeat, epoch or step) for TRAINWATCH_LOST_AFTER (default 300 s): killed with kill -9, or its machine or network went away; its next heartbeat, epoch or step revives it. terminated: the client stopped on SIGTERM or SIGINT (`error_message` \"stopped by SIGTERM\"): a preemption or a Ctrl-C, not a crash; final (on a Slurm training, the scheduler's cause below replaces it once the job has ended in Slurm). From a cluster's scheduler (a Slurm job, `error_message` naming the job), each final: node_fail (its node failed), out_of_memory (it passed its memory allocation), time_limit (it passed its time limit), preempted (another job took its resources; a requeued job reads pending instead). Null otherwise.",
    }),
  ),
  last_seen_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()], {
    description:
      "When the trainer was last heard from: the latest stored epoch or step, or heartbeat (a host's or a client's). Null before any.",
  }),
  stale: Type.Boolean({
    description:
      "True while a running training is silent past its limit: a host training whose heartbeats are late (nothing heard for 1.5 × TRAINWATCH_HEARTBEAT_INTERVAL: the API is asking the host about it), or a watched client run (one that sent a heartbeat) with no heartbeat, epoch or step for TRAINWATCH_STALE_AFTER (default 60 s; failed `lost` after TRAINWATCH_LOST_AFTER). Always false for local trainings and for client runs that never heartbeat.",
  }),
  hung: Type.Boolean({
    description:
      "True while a watched running client run is hung: its heartbeats arrive but it logged no epoch or step for longer than max(10 × its median interval, 1.5 × its longest gap, TRAINWATCH_HUNG_AFTER): a deadlocked collective, a data loader that stopped. See `liveness`.",
  }),
  liveness: Type.Union([LivenessSchema, Type.Null()], {
    description: "A watched running client run's liveness (its heartbeats and row cadence); null otherwise.",
  }),
  executor: Type.Union([Type.String(), Type.Null()], {
    description:
      "The executor that runs this declared training (src/executors: local, host, slurm); null for a built-in training and a client's own run. Set by the server, never by a client.",
  }),
  external_id: Type.Union([Type.String(), Type.Null()], {
    description:
      "The run's id at its executor: a local script's process group id, the GPU host's URL, a Slurm job id. Null until the executor has one. Set by the server.",
  }),
  pending_reason: Type.Optional(
    Type.String({
      description:
        "While pending: why it waits, as its executor says (a local queue full, Slurm's Resources, Priority, QOSMaxGpuPerUser…). Absent otherwise.",
    }),
  ),
  queue_position: Type.Optional(
    Type.Integer({
      minimum: 1,
      description:
        "While pending: its place in its executor's queue (1: next), where the executor can tell. Absent otherwise.",
    }),
  ),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  config: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], {
    description: "The hyper-parameters the trainer registered with, as given.",
  }),
  stop_policy: Type.Union([StopPolicy, Type.Null()]),
  control: Type.Union([StopControl, Type.Null()], {
    description: "The stop decision recorded on the operation (by its stop policy or a cancel); null while none.",
  }),
  result: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  trends: TrendSummarySchema,
  final_loss: Type.Union([Type.Number(), Type.Null()], {
    description:
      "The latest stored epoch's train_loss; null before any epoch or when it is not finite. Kept on write (a search field: `final_loss`).",
  }),
  final_val_loss: Type.Union([Type.Number(), Type.Null()], {
    description: "The latest stored epoch's val_loss, as `final_loss` (a search field: `final_val_loss`).",
  }),
});
export type Operation = Static<typeof Operation>;

export const CreateOperationInput = Type.Object(
  {
    operation_type: OperationType,
    name: Type.Optional(Type.String({ maxLength: 200 })),
    total_epochs_planned: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
    total_steps_planned: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 2 ** 31 - 1,
        description: "Optimisation steps planned: a step run's progress is in steps (steps_completed / total_steps).",
      }),
    ),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    config: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "Hyper-parameters, stored and shown on the operation's page.",
      }),
    ),
    stop_policy: Type.Optional(StopPolicy),
    alerts: Type.Optional(AlertRules),
    ...LabelFields,
  },
  { additionalProperties: false },
);
export type CreateOperationInput = Static<typeof CreateOperationInput>;

export const CompleteOperationInput = Type.Object(
  {
    status: Type.Union([Type.Literal("completed"), Type.Literal("failed"), Type.Literal("cancelled")], {
      description:
        "cancelled: the trainer stopped on a cancel; on an operation already cancelled it only records `result`.",
    }),
    error_message: Type.Optional(Type.String({ maxLength: 10_000 })),
    failure_code: Type.Optional(
      Type.Unsafe<(typeof REPORTED_FAILURES)[number]>(
        Type.Union(
          REPORTED_FAILURES.map((c) => Type.Literal(c)),
          {
            description:
              'With `failed`: trainer_error, the training itself failed (what a GPU host reports for its training\'s error, and the Python client for an uncaught exception); terminated, the trainer was stopped by SIGTERM or SIGINT (the Python client\'s goodbye, error_message "stopped by SIGTERM" / "stopped by SIGINT": a preemption, not a crash).',
          },
        ),
      ),
    ),
    result: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type CompleteOperationInput = Static<typeof CompleteOperationInput>;

/** `smoothing=w`: each metric's EMA over every stored epoch, at the returned epochs, and where each EMA stands after the last. */
export const SmoothedCurves = Type.Object(
  {
    weight: Type.Number({ description: "The EMA weight asked for." }),
    series: Type.Record(Type.String(), Type.Array(MetricValue), {
      description:
        "Per metric (learning_rate and duration excepted), one value per returned epoch, in the same order; null where the epoch has no value.",
    }),
    state: Type.Record(Type.String(), Type.Object({ last: Type.Number(), n: Type.Integer({ minimum: 0 }) }), {
      description:
        "Each EMA after the range's last epoch (the running mean and how many finite values it has seen), to go on smoothing live epochs.",
    }),
  },
  { description: "TensorBoard's debiased EMA computed on the full-resolution history, not on the returned points." },
);

/** DELETE /operations/{id}: an optional body saying who cancels and why, recorded as the operation's `control`. */
export const CancelInput = Type.Object(
  {
    reason: Type.Optional(Type.String({ maxLength: 2000, description: "Why it is stopped." })),
    by: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        pattern: "^[A-Za-z0-9_.:-]+$",
        description: 'Who cancels: "dashboard", "mcp", "monitor", "api" (default).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CancelInput = Static<typeof CancelInput>;

/** POST /operations/{id}/metrics. */
export const MetricsWriteReply = Type.Object({
  operation_id: Type.String(),
  stored: Type.Integer(),
  trends: TrendSummarySchema,
  control: Control,
});

/** GET /operations/{id}/metrics: the epochs asked for, and the trends of the whole history. */
export const MetricsData = Type.Object({
  operation_id: Type.String(),
  operation_type: Type.String(),
  status: OperationStatus,
  metrics: Type.Intersect([
    Type.Object({
      epochs: Type.Array(EpochInput),
      total_epochs_planned: Type.Union([Type.Integer(), Type.Null()]),
      smoothed: Type.Optional(SmoothedCurves),
    }),
    Type.Omit(TrendSummarySchema, ["latest_epoch"]),
  ]),
});
export type MetricsReply = Static<typeof MetricsData>;

/** GET /operations/{id}/steps: the steps asked for, the steps planned, and where each epoch ended. */
export const StepsData = Type.Object({
  operation_id: Type.String(),
  status: OperationStatus,
  steps: Type.Array(StepInput, { description: "In wire form: { step, epoch?, timestamp, …fields }, ascending." }),
  smoothed: Type.Optional(SmoothedCurves),
  total_steps_planned: Type.Union([Type.Integer(), Type.Null()]),
  epoch_ends: Type.Array(Type.Object({ epoch: Type.Integer(), step: Type.Integer() }), {
    description: "The end of every epoch with steps: its last stored step, ascending by epoch.",
  }),
  steps_pruned_at: Type.Optional(
    Type.String({
      format: "date-time",
      description:
        "Present when retention removed this run's step rows: `steps` are then drawn from its chart blocks, each metric's lowest and highest value (and the ends of non-finite runs) per block of 128 steps, at the steps that held them, without timestamps. A range inside one block shows those of its extremes that lie in it, possibly none.",
    }),
  ),
});
export type StepsReply = Static<typeof StepsData>;
