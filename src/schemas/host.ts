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
 * The TensorFlow.js backend a training (or a host, on its /health) uses: declared once, under these names, for the
 * trainer's start report, the operation's metadata, the heartbeat and the host's health.
 */
export const BackendReport = Type.Object(
  {
    backend: Type.String({
      maxLength: 256,
      description: "The TensorFlow.js backend: tensorflow-gpu, tensorflow, wasm or cpu.",
    }),
    backend_fallback_reason: Type.Union([Type.String({ maxLength: 4096 }), Type.Null()], {
      description:
        'Why the preferred backends were skipped ("tensorflow-gpu: …; tensorflow: …"), or null when none was.',
    }),
    gpu: Type.Union([Name, Type.Null()], {
      description: "GPU the training runs on (tensorflow-gpu only), e.g. NVIDIA H100 80GB HBM3; else null.",
    }),
    gpu_visible: Type.Union([Name, Type.Null()], {
      description:
        "GPU the machine has, used or not (a GPU here with gpu null means the GPU backend did not load: see backend_fallback_reason).",
    }),
  },
  { additionalProperties: false },
);
export type BackendReport = Static<typeof BackendReport>;

/**
 * What a training reports once its worker has data and a backend (the engine's onStart, locally and on a host): merged
 * into the operation's metadata under these names, whoever ran it.
 */
export const StartReport = Type.Object(
  {
    ...BackendReport.properties,
    task: Type.Union([Type.Literal("classification"), Type.Literal("regression")]),
    classes: Type.Optional(
      Type.Union([Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 100_000 }), Type.Null()], {
        description: "Class labels (classification only).",
      }),
    ),
    samples_train: Count,
    samples_val: Count,
    batches_per_epoch: Count,
    total_epochs: Type.Integer({
      ...Count,
      description: "Epochs planned (the operation keeps them as total_epochs_planned).",
    }),
  },
  { additionalProperties: false },
);
export type StartReport = Static<typeof StartReport>;

/** The start report as a heartbeat carries it: only `backend` is required; a field left out is stored as null. */
export const StartedInfo = Type.Composite(
  [Type.Pick(StartReport, ["backend"]), Type.Partial(Type.Omit(StartReport, ["backend"]))],
  {
    additionalProperties: false,
  },
);
export type StartedInfo = Static<typeof StartedInfo>;

/**
 * The start report as the operation's metadata keeps it, whoever trained (the local trainer and the heartbeat route
 * both merge this): every field present, null when not reported; the planned epochs stay on the operation itself.
 */
export function startMetadata(info: StartedInfo) {
  return {
    backend: info.backend,
    backend_fallback_reason: info.backend_fallback_reason ?? null,
    gpu: info.gpu ?? null,
    gpu_visible: info.gpu_visible ?? null,
    task: info.task ?? null,
    classes: info.classes ?? null,
    samples_train: info.samples_train ?? null,
    samples_val: info.samples_val ?? null,
    batches_per_epoch: info.batches_per_epoch ?? null,
  };
}

export const HeartbeatInput = Type.Object(
  {
    progress: Type.Optional(Type.Union([BatchProgressSchema, Type.Null()])),
    started: Type.Optional(StartedInfo),
    checkpoints: Type.Optional(CheckpointList),
  },
  {
    additionalProperties: false,
    description:
      "Every field optional: `{}` only says the host is alive. `checkpoints` replaces the operation's `metadata.checkpoints` (paths on the host).",
  },
);
export type HeartbeatInput = Static<typeof HeartbeatInput>;

export const HeartbeatReply = Type.Object({
  operation_id: Type.String(),
  status: Type.String(),
  revived: Type.Boolean({
    description:
      "True when this heartbeat brought an operation failed by a liveness watchdog (host_unreachable …, lost) back to running.",
  }),
  control: Control,
  heartbeat_interval_s: Type.Number({
    description:
      "Seconds until the next heartbeat is due: TRAINWATCH_HEARTBEAT_INTERVAL for a training host, TRAINWATCH_CLIENT_HEARTBEAT (default 15) for a client. The Python client heartbeats at this interval, so client and server agree.",
  }),
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
    spec: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "The training spec, as for POST /api/v1/trainings (or a recipe instead).",
      }),
    ),
    recipe: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: "A script training: a recipe this host declares (GET /recipes), instead of a spec.",
      }),
    ),
    params: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "The recipe's params, checked by this host against its schema.",
      }),
    ),
    api_url: Type.String({ minLength: 1, description: "Where the host relays epochs, e.g. http://10.0.0.5:8000" }),
  },
  { additionalProperties: false },
);
export type SessionInput = Static<typeof SessionInput>;

export const RelayProblem = Type.Object(
  {
    api_url: Type.String(),
    refused: Type.Boolean({
      description:
        "True for 401/403: the API refuses this host's TRAINWATCH_TOKEN; retrying cannot help until the tokens match.",
    }),
    status: Type.Union([Type.Integer(), Type.Null()], {
      description: "The API's HTTP status; null when it did not answer (network error, timeout).",
    }),
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
    problem: Type.Union([RelayProblem, Type.Null()], {
      description: "Why delivery to this session's API is failing now; null while it delivers.",
    }),
  }),
});
export type Session = Static<typeof Session>;

export const HostHealth = Type.Object({
  status: Type.Literal("ok"),
  version: Type.String(),
  uptime_s: Type.Number(),
  ...BackendReport.properties,
  backend: Type.Union([Type.String(), Type.Null()], {
    description: "The TensorFlow.js backend trainings use on this host; null while it is still being detected.",
  }),
  active_sessions: Type.Integer(),
  relay_pending: Type.Integer({ description: "Relay items waiting for the API's acknowledgement." }),
  relay_problems: Type.Array(RelayProblem, {
    description: "APIs the relay cannot deliver to now; a refused token shows here as refused: true.",
  }),
});
export type HostHealth = Static<typeof HostHealth>;
