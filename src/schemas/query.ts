/**
 * The query and path parameters of the API's reads, as Elysia coerces them from strings: the coercing builders
 * (queryInt, pathInt, queryNumber: each names its parameter in a refusal), the bounds a caller may ask for (page size,
 * offset, points, smoothing, fields) and the range shape GET /metrics and the comparison share. The MCP tools read
 * the same bounds (src/schemas/operation.ts holds those that are plain TypeBox).
 */
import { t } from "elysia";
import type { TSchema } from "@sinclair/typebox";
import { SinceStep, StepNumber } from "./step.ts";
import { EpochNumber, SinceEpoch } from "./epoch.ts";
import { SYSTEM_MAX_POINTS } from "./system.ts";
import { LIST_LIMIT, MAX_OFFSET, MAX_POINTS, OperationStatus, OperationType } from "./operation.ts";
import { SearchParams } from "./search.ts";

/**
 * An integer query parameter, coerced from the query string; `opts` may be a TypeBox integer schema (the bounded
 * epoch, say). It names itself because Elysia reports range errors of coerced values without the parameter.
 */
export function queryInt(name: string, opts: IntOptions) {
  return t.Optional(namedInt(`query.${name}`, opts));
}

/**
 * An integer path parameter, coerced and named like queryInt. Only plain decimal digits are one: `0x9`, `9e0`, `+9`,
 * ` 9` and `9.0` are 400, not epoch 9 (Elysia's own coercion reads anything `Number()` reads).
 */
export function pathInt(name: string, opts: IntOptions) {
  const schema = namedInt(`params.${name}`, opts);
  // t.Integer is a union of its string form and the integer; the string form gets the pattern.
  for (const branch of (schema.anyOf ?? []) as TSchema[]) if (branch.type === "string") branch.pattern = "^[0-9]+$";
  return schema;
}

type IntOptions = { minimum?: number; maximum?: number; default?: number; description?: string };

/** A number query parameter (fractions allowed), coerced and named like queryInt. */
export function queryNumber(name: string, opts: { minimum: number; maximum: number; description?: string }) {
  const field = `query.${name}`;
  return t.Optional(
    t.Number({ ...opts, field, errorMessage: `expected a number from ${opts.minimum} to ${opts.maximum}` }),
  );
}

function namedInt(field: string, opts: IntOptions) {
  const { minimum = 0, maximum, description } = opts;
  const range = maximum === undefined ? `≥ ${minimum}` : `from ${minimum} to ${maximum}`;
  // Only the bounds are copied: a schema passed as `opts` brings TypeBox's own keys too.
  const bounds = {
    minimum,
    ...(maximum !== undefined && { maximum }),
    ...(opts.default !== undefined && { default: opts.default }),
  };
  return t.Integer({ ...bounds, description, field, errorMessage: `expected an integer ${range}` });
}

/** Largest smoothing weight: its warm-up (emaWarmup) is ~27,600 values; past it a zoomed range would read most of a history. */
export const MAX_SMOOTHING = 0.999;

/** A `fields` item: a metric name as epochs carry it (CUSTOM_METRIC_NAME), and how many one request may list. */
const FIELD_NAME = "[A-Za-z0-9_./-]{1,64}";
const MAX_FIELDS = 50;

/** GET /operations: the filters and the page. */
export const ListQuery = t.Object({
  status: t.Optional(OperationStatus),
  operation_type: t.Optional(OperationType),
  ...SearchParams,
  limit: queryInt("limit", { ...LIST_LIMIT, default: 50, description: "Page size (default 50)." }),
  // Bounded: past 2^63 SQLite refuses the value ("datatype mismatch") and the reply was a 500.
  offset: queryInt("offset", {
    minimum: 0,
    maximum: MAX_OFFSET,
    default: 0,
    description: `Rows to skip (0 … ${MAX_OFFSET}).`,
  }),
});

/** The range, smoothing and field parameters GET /metrics and the comparison share (decoded by rangeOf, src/operations/reads.ts). */
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

/** GET /operations/{id}/metrics: what is new since an epoch, reduced to `max_points`, and the shared range. */
export const MetricsQuery = t.Object({
  since_epoch: queryInt("since_epoch", SinceEpoch),
  max_points: queryInt("max_points", {
    ...MAX_POINTS,
    description:
      "Reduce to at most this many epochs: every bucket keeps its first, last, lowest and highest value of every metric, no NaN or ±Infinity is hidden, and the first, last and best epochs are kept (README, Charts).",
  }),
  ...RangeQuery,
});

/** GET /operations/{id}/steps: GET /metrics's reads with step names (decoded by rangeOf(q, "step")). */
export const StepsQuery = t.Object({
  since_step: queryInt("since_step", SinceStep),
  from_step: queryInt("from_step", {
    ...StepNumber,
    description: "Only steps with step ≥ from_step (a zoomed chart's left edge); at most to_step when both are given.",
  }),
  to_step: queryInt("to_step", {
    ...StepNumber,
    description: "Only steps with step ≤ to_step (its right edge); at least from_step when both are given (else 400).",
  }),
  max_points: queryInt("max_points", {
    ...MAX_POINTS,
    description:
      "Reduce to at most this many steps: every bucket keeps its first, last, lowest and highest value of every metric, no NaN or ±Infinity is hidden, and the first and last steps are kept.",
  }),
  smoothing: queryNumber("smoothing", {
    minimum: 0,
    maximum: MAX_SMOOTHING,
    description: `TensorBoard's EMA weight (0 … ${MAX_SMOOTHING}): adds \`smoothed\`, each metric's debiased EMA over every stored step (not over the returned points), at the returned steps. learning_rate and duration are not smoothed, nor the evaluations (val_loss, val_accuracy, eval/*: sparse, drawn as points) or the counters samples and tokens.`,
  }),
  fields: RangeQuery.fields,
});

/** An ISO-8601 instant in the query, named in a refusal like queryInt. */
const queryInstant = (name: string, description: string) =>
  t.Optional(
    t.String({
      format: "date-time",
      field: `query.${name}`,
      errorMessage: "expected an ISO-8601 date-time",
      description,
    }),
  );

/** GET /operations/{id}/system: the chart read of the system series. */
export const SystemQuery = t.Object({
  since: queryInstant("since", "Only samples taken after this instant (ISO-8601; a poller's last timestamp)."),
  until: queryInstant("until", "Only samples taken at or before this instant (ISO-8601)."),
  max_points: queryInt("max_points", {
    ...SYSTEM_MAX_POINTS,
    description: `At most this many samples (${SYSTEM_MAX_POINTS.minimum} … ${SYSTEM_MAX_POINTS.maximum}, default ${SYSTEM_MAX_POINTS.default}): the first sample of each of max_points equal time buckets between the range's first and last sample.`,
  }),
});
