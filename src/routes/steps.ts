/**
 * Steps (issue 22): push a step run's rows, read them as a chart (GET /metrics's reads with step names), and where its
 * epochs ended. The write goes through the operations service, the one write path; the reads through
 * src/operations/reads.ts. Exports of the steps are in src/routes/export.ts.
 */
import { Elysia } from "elysia";
import { asSentField } from "../schemas/metric.ts";
import { MetricsWriteReply, StepsData, operationIdParams } from "../schemas/operation.ts";
import { StepsInput, decodeStepsBody } from "../schemas/step.ts";
import { StepsQuery } from "../schemas/query.ts";
import { loadOperation } from "../store/load.ts";
import { rangeOf, stepsView } from "../operations/reads.ts";
import { writeReply } from "../operations/write_reply.ts";
import type { AppDeps } from "./deps.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";
import { documented } from "../http/openapi.ts";

const IdParams = operationIdParams("Operation id, e.g. op_training_20261126_153000_ab12cd34");

export const stepsRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/steps" })
    .post(
      "/operations/:id/steps",
      async ({ params, body }) => {
        const res = await deps.operations
          .writeSteps(params.id, decodeStepsBody(body, new Date().toISOString()))
          .catch((err) => asSentField(body, err, "steps"));
        return ok(writeReply(params.id, res));
      },
      {
        params: IdParams,
        body: StepsInput,
        response: {
          200: Envelope(MetricsWriteReply),
          400: ErrorEnvelope,
          404: ErrorEnvelope,
          409: ErrorEnvelope,
          413: ErrorEnvelope,
        },
        detail: {
          tags: ["metrics"],
          summary: "Store steps",
          description:
            'Body: one step object or `{ "steps": [...] }` (up to 10,000), keyed by a global `step` (0 … 2³¹ − 1), with the `epoch` it ran in when known. Re-posting a step replaces it; a batch is one transaction, durable before the reply. Values may be numbers, null, or "NaN" / "Infinity" / "-Infinity"; `val_loss`, `val_accuracy` and `eval/<name>` customs are evaluations taken at that step; other numeric fields are custom metrics (one list of names with the epochs\', at most 256). When a step of a later epoch arrives (or the operation finishes), the closed epoch\'s record is derived from its steps and stored as by POST /operations/{id}/metrics: `train_loss` the mean of its finite train_loss, the last evaluation, the learning rate of its first step, its duration, the custom `step` (its last step); trends, the stop policy and streams see it. The reply is POST /metrics\'s: `control` says whether to stop. 404 unknown operation, 409 finished operation (details carry `status` and `control`), 400 naming the field (`body.steps.3.grad_norm`).',
        },
      },
    )
    .get(
      "/operations/:id/steps",
      async ({ params, query }) => {
        const range = rangeOf(query, "step");
        const op = await loadOperation(deps.store, params.id);
        return ok(await stepsView(deps.store, op, { since: query.since_step, maxPoints: query.max_points, ...range }));
      },
      {
        params: IdParams,
        query: StepsQuery,
        // Documented rather than validated, as GET /metrics: checking a thousand rows per poll costs more than building them.
        detail: {
          responses: {
            200: documented("Steps, the steps planned and the epoch ends", Envelope(StepsData)),
            400: documented("Bad query", ErrorEnvelope),
            404: documented("Unknown operation", ErrorEnvelope),
          },
          tags: ["metrics"],
          summary: "Read steps",
          description:
            "GET /metrics's chart reads with step names: `since_step=N` returns only steps with step > N (for pollers); `from_step`/`to_step` narrow to an inclusive range (400 when to_step < from_step); `max_points=M` reduces with a min/max per bucket, so no spike, NaN or ±Infinity disappears and the first and last steps stay; `smoothing=w` adds each metric's EMA over every stored step; `fields=a,b` keeps only those metrics (`epoch` too when listed). `epoch_ends` gives each epoch's last step (where a chart marks the epoch boundary); `total_steps_planned` the steps planned (null when unknown).",
        },
      },
    );
