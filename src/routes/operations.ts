/** Operations and their metrics: register, list, read, complete, cancel, push and read epochs. */
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import { TrainwatchError, invalid, notFound } from "../errors.ts";
import { EpochNumber, MetricsInput, SinceEpoch, decodeEpoch, type EpochRecord } from "../schemas/epoch.ts";
import {
  CancelInput,
  CompleteOperationInput,
  CreateOperationInput,
  MetricsData,
  MetricsWriteReply,
  OperationStatus,
  OperationType,
  Operation,
  StopPolicy,
  type MetricsReply,
} from "../schemas/operation.ts";
import type { StoreReader } from "../store/store.ts";
import { CONTINUE, normalizeStopPolicy } from "../operations/stop_policy.ts";
import { refuseOwnKeys } from "../operations/ownership.ts";
import { MAX_SMOOTHING, readChart, type ChartQuery } from "../store/charts.ts";
import type { AppDeps } from "./deps.ts";
import { Envelope, ErrorEnvelope, ok, queryInt, queryNumber } from "../http/index.ts";
import { documented } from "../http/openapi.ts";

const IdParams = Type.Object({
  id: Type.String({ description: "Operation id, e.g. op_training_20261126_153000_ab12cd34" }),
});
const errors = { 400: ErrorEnvelope, 404: ErrorEnvelope, 409: ErrorEnvelope };

/** Largest `offset` of the listing: past any real number of operations, and an exact integer for SQLite. */
export const MAX_OFFSET = 2 ** 31 - 1;

// Query schemas use Elysia's `t` so numbers in the query string are coerced.
const ListQuery = t.Object({
  status: t.Optional(OperationStatus),
  operation_type: t.Optional(OperationType),
  limit: queryInt("limit", { minimum: 1, maximum: 1000, default: 50, description: "Page size (default 50)." }),
  // Bounded: past 2^63 SQLite refuses the value ("datatype mismatch") and the reply was a 500.
  offset: queryInt("offset", {
    minimum: 0,
    maximum: MAX_OFFSET,
    default: 0,
    description: `Rows to skip (0 … ${MAX_OFFSET}).`,
  }),
});

/** A `fields` item: a metric name as epochs carry it (CUSTOM_METRIC_NAME), and how many one request may list. */
const FIELD_NAME = "[A-Za-z0-9_./-]{1,64}";
const MAX_FIELDS = 50;

/** The range, smoothing and field parameters GET /metrics and the comparison share. */
export const RangeQuery = {
  from_epoch: queryInt("from_epoch", {
    ...EpochNumber,
    description:
      "Only epochs with epoch ≥ from_epoch (a zoomed chart's left edge); at most to_epoch when both are given.",
  }),
  to_epoch: queryInt("to_epoch", {
    ...EpochNumber,
    description:
      "Only epochs with epoch ≤ to_epoch (its right edge); at least from_epoch when both are given (else 400).",
  }),
  smoothing: queryNumber("smoothing", {
    minimum: 0,
    maximum: MAX_SMOOTHING,
    description: `TensorBoard's EMA weight (0 … ${MAX_SMOOTHING}): adds \`smoothed\`, each metric's debiased EMA over every stored epoch (not over the returned points), at the returned epochs. learning_rate and duration are not smoothed.`,
  }),
  fields: t.Optional(
    t.String({
      field: "query.fields",
      pattern: `^${FIELD_NAME}(,${FIELD_NAME}){0,${MAX_FIELDS - 1}}$`,
      errorMessage: `expected up to ${MAX_FIELDS} comma-separated metric names`,
      description: `Only these metrics (comma-separated, up to ${MAX_FIELDS}; \`timestamp\` too when listed): each epoch carries \`epoch\` and them, and the reduction and the smoothing consider only them, so one chart's curve costs a fraction of every field's.`,
    }),
  ),
};

export const MetricsQuery = t.Object({
  since_epoch: queryInt("since_epoch", SinceEpoch),
  max_points: queryInt("max_points", {
    minimum: 3,
    maximum: 1_000_000,
    description:
      "Reduce to at most this many epochs: every bucket keeps its first, last, lowest and highest value of every metric, no NaN or ±Infinity is hidden, and the first, last and best epochs are kept (README, Charts).",
  }),
  ...RangeQuery,
});

/** The chart query of a request's range parameters; a range that ends before it starts is a 400 naming to_epoch. */
export function rangeOf(q: {
  from_epoch?: number;
  to_epoch?: number;
  smoothing?: number;
  fields?: string;
}): RangeParams {
  if (q.from_epoch !== undefined && q.to_epoch !== undefined && q.to_epoch < q.from_epoch) {
    throw invalid("query.to_epoch", `to_epoch (${q.to_epoch}) is before from_epoch (${q.from_epoch})`);
  }
  const fields = q.fields === undefined ? undefined : [...new Set(q.fields.split(","))];
  return { from: q.from_epoch, to: q.to_epoch, smoothing: q.smoothing, ...(fields && { fields }) };
}

/** What the range parameters ask of a chart read. */
export type RangeParams = Pick<ChartQuery, "from" | "to" | "smoothing" | "fields">;

/** The metrics reply for a loaded operation: the epochs of the range, optionally reduced and smoothed; trends cover the whole history. */
export async function metricsView(
  store: StoreReader,
  op: Operation,
  query: Omit<ChartQuery, "keepEpoch"> = {},
): Promise<MetricsReply> {
  const { epochs, smoothed } = await readChart(store, op.operation_id, { ...query, keepEpoch: op.trends.best_epoch });
  const { latest_epoch: _latest, ...trends } = op.trends;
  return {
    operation_id: op.operation_id,
    operation_type: op.operation_type,
    status: op.status,
    metrics: { epochs, ...trends, total_epochs_planned: op.progress.total_epochs, ...(smoothed && { smoothed }) },
  };
}

/** The operation, or OPERATION_NOT_FOUND. */
export async function loadOperation(store: StoreReader, id: string): Promise<Operation> {
  const op = await store.getOperation(id);
  if (!op) throw notFound(id);
  return op;
}

/** Decodes a validated metrics body into records, naming the field on a bad value. */
export function decodeMetricsBody(body: unknown): EpochRecord[] {
  const now = new Date().toISOString();
  const b = body as { epochs?: unknown[] };
  if (Array.isArray(b.epochs)) return b.epochs.map((e, i) => decodeEpoch(e as never, now, `body.epochs.${i}`));
  return [decodeEpoch(body as never, now, "body")];
}

/**
 * A store names an epoch it refuses as in a batch (`body.epochs.<i>.<name>`, e.g. past the metric-name limit); a body
 * that is one epoch has that name at `body.<name>`, so the error is re-named to the field the client sent.
 */
function asSentField(body: unknown, err: unknown): never {
  const field = err instanceof TrainwatchError ? err.details?.field : undefined;
  if (!Array.isArray((body as { epochs?: unknown }).epochs) && typeof field === "string") {
    const single = /^body\.epochs\.0\./.exec(field);
    if (single) {
      const sent = `body.${field.slice(single[0].length)}`;
      const e = err as TrainwatchError;
      throw new TrainwatchError(e.code, sent + e.message.slice(field.length), { ...e.details, field: sent });
    }
  }
  throw err;
}

export const operationsRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/operations" })
    .post(
      "/operations",
      async ({ body, set }) => {
        refuseOwnKeys(body.metadata ?? {}, "body.metadata", true);
        set.status = 201;
        return ok(
          await deps.operations.createOperation({
            operation_type: body.operation_type,
            name: body.name ?? null,
            total_epochs_planned: body.total_epochs_planned ?? null,
            metadata: { ...body.metadata, location: "external" },
            config: body.config ?? null,
            stop_policy: body.stop_policy ? normalizeStopPolicy(body.stop_policy) : null,
          }),
        );
      },
      {
        body: CreateOperationInput,
        response: { 201: Envelope(Operation), 400: ErrorEnvelope },
        detail: {
          tags: ["operations"],
          summary: "Register an operation run by an external trainer",
          description:
            "Creates an operation in status `running` for a trainer outside Trainwatch (a PyTorch script, say), which then pushes its epochs to `POST /operations/{id}/metrics` and finishes with `POST /operations/{id}/complete`. " +
            "`metadata` is the trainer's own (its GPU, its hostname, …): keys Trainwatch writes itself (location, host, checkpoints, recipe, …; `pid` excepted, the trainer's own process) are refused, 400 naming the key (`body.metadata.location`). " +
            "`config` (the hyper-parameters) is stored and shown on the operation's page; `stop_policy` makes the server record a stop decision when the judgement raises one of its flags (see PUT /operations/{id}/stop_policy).",
        },
      },
    )
    .get(
      "/operations",
      async ({ query }) => {
        const { items, total } = await deps.store.listOperations({
          status: query.status,
          operation_type: query.operation_type,
          limit: query.limit ?? 50,
          offset: query.offset ?? 0,
        });
        return { success: true as const, data: items, total_count: total };
      },
      {
        query: ListQuery,
        response: {
          200: Type.Object({ success: Type.Literal(true), data: Type.Array(Operation), total_count: Type.Integer() }),
          400: ErrorEnvelope,
        },
        detail: {
          tags: ["operations"],
          summary: "List operations, newest first",
          description:
            "Filters by `status` and `operation_type`; pages with `limit` (default 50) and `offset`. `total_count` counts all matches.",
        },
      },
    )
    .get(
      "/operations/:id",
      async ({ params }) => {
        const op = await deps.store.getOperation(params.id);
        if (!op) throw notFound(params.id);
        return ok(op);
      },
      {
        params: IdParams,
        response: { 200: Envelope(Operation), 404: ErrorEnvelope },
        detail: {
          tags: ["operations"],
          summary: "Get an operation",
          description:
            "Status, timestamps, progress (epochs, and batches inside the running epoch), error message, metadata (where it runs, which backend), result and the trend summary.",
        },
      },
    )
    .post(
      "/operations/:id/complete",
      async ({ params, body }) => {
        // A trainer reporting how the cancel it was asked for ended: the operation is cancelled already, and its result
        // (the checkpoints the training kept) is what is new. Retries are harmless: the result is replaced.
        const op = await loadOperation(deps.store, params.id);
        if (body.status === "cancelled" && op.status === "cancelled") {
          if (body.result) await deps.operations.setResult(params.id, body.result);
          return ok(await loadOperation(deps.store, params.id));
        }
        return ok(
          await deps.operations.finish(params.id, body.status, {
            error_message: body.status === "failed" ? (body.error_message ?? "failed") : (body.error_message ?? null),
            failure_code: body.status === "failed" ? (body.failure_code ?? null) : null,
            result: body.result ?? null,
          }),
        );
      },
      {
        params: IdParams,
        body: CompleteOperationInput,
        response: { 200: Envelope(Operation), ...errors },
        detail: {
          tags: ["operations"],
          summary: "Finish an operation",
          description:
            "Sets `completed`, `failed` (with `error_message`) or `cancelled` (a trainer that stopped on a cancel), with an optional `result`. `cancelled` on an operation already cancelled only records the result (a GPU host reports the checkpoints of a training the API cancelled). 409 when the operation is otherwise finished.",
        },
      },
    )
    .delete(
      "/operations/:id",
      async ({ params, body }) => {
        // Cancelled first, so a trainer that stops at once finds it finished and only records its result.
        const finished = await deps.operations.cancel(params.id, body ?? {});
        const note = deps.trainers ? await deps.trainers.cancel(finished) : null;
        return ok(note ? await deps.operations.mergeMetadata(params.id, { cancel: note }) : finished);
      },
      {
        params: IdParams,
        body: t.Optional(CancelInput),
        response: { 200: Envelope(Operation), ...errors },
        detail: {
          tags: ["operations"],
          summary: "Cancel an operation",
          description:
            'Stops a pending or running operation: a local training stops within one batch, a host training is told within 5 s (and is marked cancelled even if the host is unreachable), and a client trainer hears it from its next metrics POST (409 whose details carry `control`). The optional body `{ "reason", "by" }` (by: "dashboard", "mcp", "monitor", … default "api") is recorded as `control` ("cancelled by <by>: <reason>"). 409 when the operation is already finished.',
        },
      },
    )
    .put(
      "/operations/:id/stop_policy",
      async ({ params, body }) => ok(await deps.operations.setStopPolicy(params.id, normalizeStopPolicy(body))),
      {
        params: IdParams,
        body: StopPolicy,
        response: { 200: Envelope(Operation), ...errors },
        detail: {
          tags: ["operations"],
          summary: "Set the stop policy of a running operation",
          description:
            'Body: `{ "on": ["diverging", "overfitting", "stalled", "plateau"], "min_epochs": 0 }` (any non-empty subset of the flags). When the judgement (GET /operations/{id}/analysis) raises one of them at an epoch ≥ min_epochs, the server records one decision, `control` = { action: "stop", reason, checkpoint_epoch, decided_by: "stop_policy", epoch, at }: the operation stays `running`, every later metrics reply carries it, built-in trainings stop within one batch and finish `completed`. A flag already raised decides at once. Replaces any policy before it. 409 on a finished operation.',
        },
      },
    )
    .delete(
      "/operations/:id/stop_policy",
      async ({ params }) => ok(await deps.operations.setStopPolicy(params.id, null)),
      {
        params: IdParams,
        response: { 200: Envelope(Operation), 404: ErrorEnvelope, 409: ErrorEnvelope },
        detail: {
          tags: ["operations"],
          summary: "Clear the stop policy",
          description:
            "Removes the stop policy of a pending or running operation; a decision it already recorded stays. 409 on a finished operation.",
        },
      },
    )
    .post(
      "/operations/:id/metrics",
      async ({ params, body }) => {
        const res = await deps.operations
          .writeEpochs(params.id, decodeMetricsBody(body))
          .catch((err) => asSentField(body, err));
        return ok({
          operation_id: params.id,
          stored: res.stored,
          trends: res.trends,
          control: res.control ?? CONTINUE,
        });
      },
      {
        params: IdParams,
        body: MetricsInput,
        response: {
          200: Envelope(MetricsWriteReply),
          ...errors,
          413: ErrorEnvelope,
        },
        detail: {
          tags: ["metrics"],
          summary: "Store epochs",
          description:
            'Body: one epoch object or `{ "epochs": [...] }` (up to 10,000). Re-posting an existing epoch replaces it, so retries never duplicate. A batch is one transaction, durable before the reply. Values may be numbers, null, or "NaN" / "Infinity" / "-Infinity". Extra numeric fields are kept as custom metrics. The reply\'s `control` is `{ action: "continue" }` or the stop decision recorded on the operation (its stop policy fired, see PUT /operations/{id}/stop_policy): the trainer should then stop. 404 unknown operation, 409 finished operation (details carry `status` and `control`).',
        },
      },
    )
    .get(
      "/operations/:id/metrics",
      async ({ params, query }) => {
        const range = rangeOf(query);
        const op = await loadOperation(deps.store, params.id);
        return ok(
          await metricsView(deps.store, op, { since: query.since_epoch, maxPoints: query.max_points, ...range }),
        );
      },
      {
        params: IdParams,
        query: MetricsQuery,
        // Documented rather than validated: checking 1,000 epochs on every poll would
        // cost more than building them (see bench/storage.ts).
        detail: {
          responses: {
            200: documented("Epochs and trends", Envelope(MetricsData)),
            400: documented("Bad query", ErrorEnvelope),
            404: documented("Unknown operation", ErrorEnvelope),
          },
          tags: ["metrics"],
          summary: "Read epochs and the trend summary",
          description:
            "`since_epoch=N` returns only epochs with epoch > N (for pollers); `from_epoch`/`to_epoch` narrow to a range (a zoomed chart: inclusive, 400 when to_epoch < from_epoch); `max_points=M` reduces for charts with a min/max per bucket, so no spike, NaN or ±Infinity disappears and the first, last and best epochs stay; `smoothing=w` adds each metric's EMA over every stored epoch; `fields=a,b` keeps only those metrics. Trend fields always describe the whole history. Before any metrics: `epochs: []`, null trend values, false flags.",
        },
      },
    );
