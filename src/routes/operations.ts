/** Operations and their metrics: register, list, read, complete, cancel, push and read epochs. */
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import { MetricsInput, decodeMetricsBody } from "../schemas/epoch.ts";
import { asSentField } from "../schemas/metric.ts";
import {
  CancelInput,
  CompleteOperationInput,
  CreateOperationInput,
  MetricsData,
  MetricsWriteReply,
  Operation,
  StopPolicy,
  operationIdParams,
} from "../schemas/operation.ts";
import { ListQuery, MetricsQuery } from "../schemas/query.ts";
import { LabelsInput } from "../schemas/labels.ts";
import { parseQuery, parseSort } from "../schemas/search.ts";
import { loadOperation } from "../store/load.ts";
import { metricsView, rangeOf } from "../operations/reads.ts";
import { normalizeStopPolicy } from "../operations/stop_policy.ts";
import { normalizeRules } from "../alerts/rules.ts";
import { refuseOwnKeys } from "../operations/ownership.ts";
import { writeReply } from "../operations/write_reply.ts";
import type { AppDeps } from "./deps.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";
import { documented } from "../http/openapi.ts";

const IdParams = operationIdParams("Operation id, e.g. op_training_20261126_153000_ab12cd34");
const errors = { 400: ErrorEnvelope, 404: ErrorEnvelope, 409: ErrorEnvelope };

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
            total_steps_planned: body.total_steps_planned ?? null,
            metadata: { ...body.metadata, location: "external" },
            config: body.config ?? null,
            stop_policy: body.stop_policy ? normalizeStopPolicy(body.stop_policy) : null,
            alert_rules: body.alerts ? normalizeRules(body.alerts) : null,
            tags: body.tags ?? [],
            group: body.group ?? null,
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
            "`config` (the hyper-parameters) is stored and shown on the operation's page; `stop_policy` makes the server record a stop decision when the judgement raises one of its flags (see PUT /operations/{id}/stop_policy); `alerts` sets the run's alert rules (see PUT /operations/{id}/alerts); `tags` and `group` label it (see PATCH /operations/{id}/labels).",
        },
      },
    )
    .get(
      "/operations",
      async ({ query }) => {
        const { items, total } = await deps.store.listOperations({
          status: query.status,
          operation_type: query.operation_type,
          query: parseQuery(query.q ?? ""),
          sort: parseSort(query.sort),
          order: query.order,
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
          summary: "List and search operations",
          description:
            'Searches with `q` (a filter language over name, status, tags, group, configuration values, summary figures, flags and dates, e.g. `tags has "bert" and group = "sweep-7" and config.lr < 1e-3 and not flags.diverging`: see docs/api.md), beside the `status` and `operation_type` filters; sorts by `sort` (any field but tags, `config.<path>` too; default created_at) in `order` (default desc; runs without a value last); pages with `limit` (default 50) and `offset`. `total_count` counts all matches. A query that does not parse is a 400 QUERY_SYNTAX, an unknown field a 400 QUERY_FIELD, each with `details.position`, the 0-based offset in `q`.',
        },
      },
    )
    .patch("/operations/:id/labels", async ({ params, body }) => ok(await deps.operations.setLabels(params.id, body)), {
      params: IdParams,
      body: LabelsInput,
      response: { 200: Envelope(Operation), 400: ErrorEnvelope, 404: ErrorEnvelope },
      detail: {
        tags: ["operations"],
        summary: "Change an operation's tags and group",
        description:
          'Body: `{ "tags"?: [...], "add_tags"?: [...], "remove_tags"?: [...], "group"?: "sweep-7" | null }`. `tags` replaces every tag, then `add_tags` adds and `remove_tags` removes; `group` replaces the group (null removes it); a key left out keeps its value. Tags are kept sorted and unique (at most 32, each 1–64 characters of `[A-Za-z0-9_.:/+=@-]`); a group is 1–128 characters of the same and spaces inside. Works in any status: a finished run can be re-labelled. 400 naming the field, 404 unknown operation.',
      },
    })
    .get("/operations/:id", async ({ params }) => ok(await loadOperation(deps.store, params.id)), {
      params: IdParams,
      response: { 200: Envelope(Operation), 404: ErrorEnvelope },
      detail: {
        tags: ["operations"],
        summary: "Get an operation",
        description:
          "Status, timestamps, progress (epochs, and batches inside the running epoch), error message, metadata (where it runs, which backend), result and the trend summary.",
      },
    })
    .post("/operations/:id/complete", async ({ params, body }) => ok(await deps.operations.complete(params.id, body)), {
      params: IdParams,
      body: CompleteOperationInput,
      response: { 200: Envelope(Operation), ...errors },
      detail: {
        tags: ["operations"],
        summary: "Finish an operation",
        description:
          "Sets `completed`, `failed` (with `error_message`) or `cancelled` (a trainer that stopped on a cancel), with an optional `result`. `cancelled` on an operation already cancelled only records the result (a GPU host reports the checkpoints of a training the API cancelled). 409 when the operation is otherwise finished.",
      },
    })
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
            'Stops a pending or running operation: a local training stops within one batch, a host training is told within 5 s (and is marked cancelled even if the host is unreachable), and a client trainer hears it from its next metrics POST or its poll of the operation. The cancelled operation still takes the epoch that was in progress (`control.epoch` + 1, and the steps of it on a step run): that POST answers 200 carrying the stop; a later epoch is a 409 whose details carry `control`. The optional body `{ "reason", "by" }` (by: "dashboard", "mcp", "monitor", … default "api") is recorded as `control` ("cancelled by <by>: <reason>"). 409 when the operation is already finished.',
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
          .writeEpochs(params.id, decodeMetricsBody(body, new Date().toISOString()))
          .catch((err) => asSentField(body, err, "epochs"));
        return ok(writeReply(params.id, res));
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
