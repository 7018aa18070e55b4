/**
 * The step row (issue 22): one TypeBox schema for the wire (validation, OpenAPI, MCP) and the codec between the wire form
 * and the in-process form, with the epoch row's value rules, name rule and name bound (./metric.ts). A step is keyed by
 * a global step number; `epoch` labels the epoch it ran in (not a metric); evaluations land on the step they were taken
 * at, so `val_loss`, `val_accuracy` and `eval/*` customs are sparse.
 */
import { Type, type Static } from "@sinclair/typebox";
import { encodeMetric } from "../trends/wire.ts";
import { STEP_FIELDS, type StepField } from "./fields.ts";
import {
  customMetricFields,
  decodeBatch,
  decodeMetricFields,
  Duration,
  MetricValue,
  Timestamp,
  type MetricRow,
} from "./metric.ts";
import { EpochNumber } from "./epoch.ts";

export { STEP_FIELDS, type StepField } from "./fields.ts";

/** The largest step number accepted anywhere (2³¹ − 1), as MAX_EPOCH: an exact integer in every store and client. */
export const MAX_STEP = 2 ** 31 - 1;

/** A step number, 0 … 2³¹ − 1. */
export const StepNumber = Type.Integer({
  minimum: 0,
  maximum: MAX_STEP,
  description: "Global step number, 0 … 2³¹ − 1.",
});

/** A poller's cursor: only steps with step > since_step (-1, the default, means all). */
export const SinceStep = Type.Integer({
  minimum: -1,
  maximum: MAX_STEP,
  description: "Only steps with step > since_step (-1: all).",
});

export const StepInput = Type.Object(
  {
    step: StepNumber,
    epoch: Type.Optional(
      Type.Integer({
        ...EpochNumber,
        description:
          "The epoch this step ran in: the end of epoch e is its last stored step, and GET …/metrics answers each closed epoch's record derived from its steps.",
      }),
    ),
    train_loss: Type.Optional(MetricValue),
    val_loss: Type.Optional(MetricValue),
    val_accuracy: Type.Optional(MetricValue),
    learning_rate: Type.Optional(MetricValue),
    grad_norm: Type.Optional(MetricValue),
    duration: Type.Optional(Duration("Seconds the step took.")),
    samples: Type.Optional(MetricValue),
    tokens: Type.Optional(MetricValue),
    timestamp: Type.Optional(Timestamp),
  },
  customMetricFields(
    "One optimisation step. val_loss, val_accuracy and `eval/<name>` customs are evaluations taken at this step; samples and tokens count what was seen so far.",
  ),
);
export type WireStep = Static<typeof StepInput>;

export const MAX_STEPS_PER_BATCH = 10_000;
export const StepBatchInput = Type.Object(
  { steps: Type.Array(StepInput, { minItems: 1, maxItems: MAX_STEPS_PER_BATCH }) },
  { additionalProperties: false, description: "Up to 10,000 steps stored in one transaction." },
);
export const StepsInput = Type.Union([StepInput, StepBatchInput], {
  description: "A single step object, or { steps: [...] }.",
});

/** In-process step: metric values are JS numbers (NaN and ±Infinity allowed). */
export interface StepRecord extends MetricRow {
  step: number;
  epoch?: number;
  train_loss?: number | null;
  val_loss?: number | null;
  val_accuracy?: number | null;
  learning_rate?: number | null;
  grad_norm?: number | null;
  duration?: number | null;
  samples?: number | null;
  tokens?: number | null;
}

const STANDARD: ReadonlySet<string> = new Set<string>(STEP_FIELDS);
const KEYS: ReadonlySet<string> = new Set(["step", "epoch"]);

/** Wire step → in-process record. `path` prefixes field names in errors (e.g. "body.steps.3"); the timestamp defaults to `now`. */
export function decodeStep(w: WireStep, now: string, path = "step"): StepRecord {
  const rec: StepRecord = { step: w.step, timestamp: now };
  if (w.epoch !== undefined) rec.epoch = w.epoch;
  return decodeMetricFields(w as Record<string, unknown>, rec, STANDARD, KEYS, path);
}

/** Decodes a validated steps body (one step or `{ steps: [...] }`) into records, naming the field on a bad value. */
export function decodeStepsBody(body: unknown, now: string): StepRecord[] {
  const b = body as { steps?: unknown[] };
  if (Array.isArray(b.steps))
    return decodeBatch(b.steps as WireStep[], (s, i) => decodeStep(s, now, `body.steps.${i}`));
  return [decodeStep(body as WireStep, now, "body")];
}

/** In-process record → wire step (non-finite values become strings; null standard fields left out, as the store returns them). */
export function encodeStep(rec: StepRecord): WireStep {
  const out: Record<string, unknown> = { step: rec.step };
  if (rec.epoch !== undefined) out.epoch = rec.epoch;
  for (const f of STEP_FIELDS) {
    const v = rec[f as StepField];
    if (v !== undefined && v !== null) out[f] = encodeMetric(v);
  }
  if (rec.custom) for (const [k, v] of Object.entries(rec.custom)) out[k] = encodeMetric(v);
  out.timestamp = rec.timestamp;
  return out as WireStep;
}
