/**
 * System metrics (issue 24): a client posts samples of its process, machine and GPUs (POST …/system), and a chart reads
 * them back bounded (GET …/system). The write goes through the operations service (a sign of life, heard by the
 * operation's stream as `system` events); exports of the series are in src/routes/export.ts.
 */
import { Elysia } from "elysia";
import { invalid } from "../errors.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";
import { documented } from "../http/openapi.ts";
import { operationIdParams } from "../schemas/operation.ts";
import { SystemQuery } from "../schemas/query.ts";
import {
  decodeSystemSamples,
  MAX_GPUS,
  MAX_SYSTEM_SAMPLES,
  SYSTEM_MAX_POINTS,
  SystemBatchInput,
  SystemData,
  SystemWriteReply,
} from "../schemas/system.ts";
import type { AppDeps } from "./deps.ts";

const IdParams = operationIdParams("Operation id, e.g. op_training_20261126_153000_ab12cd34");

/** A query instant in ms; the format check already passed, so only an impossible date is refused here. */
function instant(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw invalid(`query.${name}`, `"${v}" is not an ISO-8601 date-time`);
  return ms;
}

export const systemRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/system" })
    .post(
      "/operations/:id/system",
      async ({ params, body }) => {
        const stored = await deps.operations.writeSystem(params.id, decodeSystemSamples(body.samples), body.samples);
        return ok({ operation_id: params.id, stored });
      },
      {
        params: IdParams,
        body: SystemBatchInput,
        response: {
          200: Envelope(SystemWriteReply),
          400: ErrorEnvelope,
          404: ErrorEnvelope,
          409: ErrorEnvelope,
          413: ErrorEnvelope,
        },
        detail: {
          tags: ["metrics"],
          summary: "Store system samples",
          description: `Body: \`{ "samples": [...] }\`, 1 … ${MAX_SYSTEM_SAMPLES.toLocaleString("en")} samples stored in one transaction. A sample is \`timestamp\` (ISO-8601) and the groups the client could read: \`process\` {cpu_percent, rss_mb}, \`machine\` {cpu_percent, memory_used_mb, memory_total_mb, load_1m}, \`gpus\` (up to ${MAX_GPUS}) [{index, name, utilization_percent, memory_used_mb, memory_total_mb, temperature_c, power_w}]; each reading a bounded number or null when its source lacks it, no other keys. A re-posted timestamp replaces its sample. Stored as the run's system series (not as epochs or steps), a sign of life for the run, and sent on its stream as a \`system\` event. The Python client samples every 15 s by default (\`trainwatch.init(system_metrics=15)\`). 404 unknown operation, 409 finished operation (a failure the server may revive still takes them), 400 naming the field (\`body.samples.2.gpus.0.power_w\`).`,
        },
      },
    )
    .get(
      "/operations/:id/system",
      async ({ params, query }) => {
        const since = instant("since", query.since);
        const until = instant("until", query.until);
        if (since !== undefined && until !== undefined && until < since)
          throw invalid("query.until", `${query.until} is before since (${query.since})`);
        const samples = await deps.store.systemChart(
          params.id,
          { since, until },
          query.max_points ?? SYSTEM_MAX_POINTS.default,
        );
        return ok({ operation_id: params.id, samples });
      },
      {
        params: IdParams,
        query: SystemQuery,
        // Documented rather than validated, as GET /metrics: the store built every sample from a validated one.
        detail: {
          tags: ["metrics"],
          summary: "Read system samples (chart)",
          description: `The run's system samples after \`since\` and up to \`until\` (ISO-8601; default all), ascending, at most \`max_points\` (default ${SYSTEM_MAX_POINTS.default}): the range is cut into max_points equal time buckets and each gives its first sample, read through the index, so the reply costs the same for a 1-hour run and a 1-month one. A short run comes back whole; in a dense one a peak between two chosen samples is not shown (GET …/system.csv and …/system.json have every sample). \`samples\` is empty for a run without any (the operation page then hides its chart).`,
          responses: {
            200: documented("System samples, ascending", Envelope(SystemData)),
            400: documented("Bad query", ErrorEnvelope),
            404: documented("Unknown operation", ErrorEnvelope),
          },
        },
      },
    );
