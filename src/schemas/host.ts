/**
 * Wire shapes between the API and a GPU training host: the host's own routes
 * (health, sessions) and the heartbeat the host sends the API. One source for
 * route validation, OpenAPI and the typed clients.
 */
import { Type, type Static } from "@sinclair/typebox";
import { CheckpointList } from "./checkpoint.ts";
import { Control } from "./control.ts";
import { EpochNumber } from "./epoch.ts";

/** Bound of batch counts and sample counts a host reports (2³¹ − 1). */
const Count = Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 });
/** Bound of the short strings a host reports (backend and GPU names, class labels). */
const Name = Type.String({ maxLength: 256 });

/** Closed and bounded: it is kept in memory and echoed in every operation reply. `batch ≤ batches` is checked by the route. */
export const BatchProgressSchema = Type.Object(
  {
    epoch: EpochNumber,
    batch: Type.Integer({ ...Count, description: "Batches done in this epoch, at most `batches`." }),
    batches: Type.Integer({ ...Count, description: "Batches in this epoch." }),
  },
  { additionalProperties: false, description: "Batches done over batches total inside the running epoch." },
);
export type BatchProgress = Static<typeof BatchProgressSchema>;

/**
 * What a host reports once its worker has data and a backend: merged into the
 * operation's metadata under the same names a local training uses.
 */
export const StartedInfo = Type.Object(
  {
    backend: Name,
    backend_fallback_reason: Type.Optional(Type.Union([Type.String({ maxLength: 4096 }), Type.Null()])),
    gpu: Type.Optional(Type.Union([Name, Type.Null()], { description: "GPU the training runs on, e.g. NVIDIA H100 80GB HBM3." })),
    gpu_visible: Type.Optional(Type.Union([Name, Type.Null()], { description: "GPU the host has, whether or not its backend uses it." })),
    task: Type.Optional(Type.Union([Type.Literal("classification"), Type.Literal("regression")])),
    classes: Type.Optional(Type.Union([Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 100_000 }), Type.Null()])),
    samples_train: Type.Optional(Count),
    samples_val: Type.Optional(Count),
    batches_per_epoch: Type.Optional(Count),
  },
  { additionalProperties: false },
);
export type StartedInfo = Static<typeof StartedInfo>;

export const HeartbeatInput = Type.Object(
  {
    progress: Type.Optional(Type.Union([BatchProgressSchema, Type.Null()])),
    started: Type.Optional(StartedInfo),
    checkpoints: Type.Optional(CheckpointList),
  },
  {
    additionalProperties: false,
    description: "Every field optional: `{}` only says the host is alive. `checkpoints` replaces the operation's `metadata.checkpoints` (paths on the host).",
  },
);
export type HeartbeatInput = Static<typeof HeartbeatInput>;

export const HeartbeatReply = Type.Object({
  operation_id: Type.String(),
  status: Type.String(),
  revived: Type.Boolean({ description: "True when this heartbeat brought a host-unreachable operation back to running." }),
  control: Control,
});
export type HeartbeatReply = Static<typeof HeartbeatReply>;

export const SessionStatus = Type.Union([
  Type.Literal("running"),
  Type.Literal("completed"),
  Type.Literal("failed"),
  Type.Literal("cancelled"),
]);
export type SessionStatus = Static<typeof SessionStatus>;

export const SessionInput = Type.Object(
  {
    operation_id: Type.String({ minLength: 1, maxLength: 200 }),
    spec: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "The training spec, as for POST /api/v1/trainings (or a recipe instead)." })),
    recipe: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: "A script training: a recipe this host declares (GET /recipes), instead of a spec." })),
    params: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "The recipe's params, checked by this host against its schema." })),
    api_url: Type.String({ minLength: 1, description: "Where the host relays epochs, e.g. http://10.0.0.5:8000" }),
  },
  { additionalProperties: false },
);
export type SessionInput = Static<typeof SessionInput>;

export const RelayProblem = Type.Object(
  {
    api_url: Type.String(),
    refused: Type.Boolean({ description: "True for 401/403: the API refuses this host's TRAINWATCH_TOKEN; retrying cannot help until the tokens match." }),
    status: Type.Union([Type.Integer(), Type.Null()], { description: "The API's HTTP status; null when it did not answer (network error, timeout)." }),
    message: Type.String(),
    since: Type.String({ format: "date-time" }),
  },
  { description: "What stops this host's relay from delivering to an API right now." },
);
export type RelayProblem = Static<typeof RelayProblem>;

export const Session = Type.Object({
  operation_id: Type.String(),
  status: SessionStatus,
  api_url: Type.String(),
  started_at: Type.String({ format: "date-time" }),
  finished_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
  epochs_trained: Type.Integer(),
  progress: Type.Union([BatchProgressSchema, Type.Null()]),
  backend: Type.Union([Type.String(), Type.Null()]),
  error_message: Type.Union([Type.String(), Type.Null()]),
  relay: Type.Object({
    pending: Type.Integer({ description: "Items (epochs, start info, final status) not yet acknowledged by the API." }),
    delivered: Type.Integer(),
    problem: Type.Union([RelayProblem, Type.Null()], { description: "Why delivery to this session's API is failing now; null while it delivers." }),
  }),
});
export type Session = Static<typeof Session>;

export const HostHealth = Type.Object({
  status: Type.Literal("ok"),
  version: Type.String(),
  uptime_s: Type.Number(),
  backend: Type.Union([Type.String(), Type.Null()], { description: "The TensorFlow.js backend trainings use on this host." }),
  backend_fallback_reason: Type.Union([Type.String(), Type.Null()]),
  gpu: Type.Union([Type.String(), Type.Null()], { description: "GPU model when the tensorflow-gpu backend runs, else null." }),
  gpu_visible: Type.Union([Type.String(), Type.Null()], {
    description: "GPU the host has, used or not (a GPU here with gpu null means the GPU backend did not load: see backend_fallback_reason).",
  }),
  active_sessions: Type.Integer(),
  relay_pending: Type.Integer({ description: "Relay items waiting for the API's acknowledgement." }),
  relay_problems: Type.Array(RelayProblem, { description: "APIs the relay cannot deliver to now; a refused token shows here as refused: true." }),
});
export type HostHealth = Static<typeof HostHealth>;
