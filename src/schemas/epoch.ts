/**
 * The epoch record: one TypeBox schema for the wire (validation, OpenAPI, MCP) and
 * the codec between the wire form and the in-process form.
 *
 * On the wire a metric is a finite number, null, or one of the strings "NaN",
 * "Infinity", "-Infinity" (JSON has no literal for them). In process a metric is a
 * plain JS number, so NaN and ±Infinity are just numbers.
 */
import { Type, type Static } from "@sinclair/typebox";
import { encodeMetric } from "../trends/wire.ts";
import { STANDARD_FIELDS } from "./fields.ts";
import {
  customMetricFields,
  decodeBatch,
  decodeMetricFields,
  Duration,
  MetricValue,
  Timestamp,
  type MetricRow,
} from "./metric.ts";

// The value rules and the name bound are shared with the step rows; their home is ./metric.ts.
export {
  admitMetricNames,
  CUSTOM_METRIC_NAME,
  MAX_METRIC_NAMES,
  mergeMetricNames,
  MetricValue,
  RESERVED_METRIC_NAMES,
  type MetricNamesOver,
  type WireMetricValue,
} from "./metric.ts";

// The list has a module of its own, which imports nothing, so the dashboard runs it too.
export { STANDARD_FIELDS, type StandardField } from "./fields.ts";

/**
 * The largest epoch number accepted anywhere (2³¹ − 1): far beyond any training, an exact integer in SQLite, JSON and
 * every client, so no two epoch numbers can collapse into one (2⁵³ + 1 would overwrite 2⁵³).
 */
export const MAX_EPOCH = 2 ** 31 - 1;

/** An epoch number, 0 … 2³¹ − 1: the one declaration the metrics body, the queries and the host relay use. */
export const EpochNumber = Type.Integer({ minimum: 0, maximum: MAX_EPOCH, description: "Epoch number, 0 … 2³¹ − 1." });

/** A poller's cursor: only epochs with epoch > since_epoch (-1, the default, means all). */
export const SinceEpoch = Type.Integer({
  minimum: -1,
  maximum: MAX_EPOCH,
  description: "Only epochs with epoch > since_epoch (-1: all).",
});

export const EpochInput = Type.Object(
  {
    epoch: Type.Integer({ ...EpochNumber, description: "Epoch number, 0 … 2³¹ − 1 (0-based or resumed, e.g. 50)." }),
    train_loss: Type.Optional(MetricValue),
    val_loss: Type.Optional(MetricValue),
    train_accuracy: Type.Optional(MetricValue),
    val_accuracy: Type.Optional(MetricValue),
    learning_rate: Type.Optional(MetricValue),
    duration: Type.Optional(Duration("Seconds the epoch took.")),
    timestamp: Type.Optional(Timestamp),
  },
  customMetricFields("One epoch."),
);
export type WireEpoch = Static<typeof EpochInput>;

export const MAX_EPOCHS_PER_BATCH = 10_000;
export const EpochBatchInput = Type.Object(
  { epochs: Type.Array(EpochInput, { minItems: 1, maxItems: MAX_EPOCHS_PER_BATCH }) },
  { additionalProperties: false, description: "Up to 10,000 epochs stored in one transaction." },
);
export const MetricsInput = Type.Union([EpochInput, EpochBatchInput], {
  description: "A single epoch object, or { epochs: [...] }.",
});

/** In-process epoch: metric values are JS numbers (NaN and ±Infinity allowed). */
export interface EpochRecord extends MetricRow {
  epoch: number;
  train_loss?: number | null;
  val_loss?: number | null;
  train_accuracy?: number | null;
  val_accuracy?: number | null;
  learning_rate?: number | null;
  duration?: number | null;
}

// The codec of one value is pure and also runs in the dashboard, so it lives in the trend core.
export { decodeMetric, encodeMetric } from "../trends/wire.ts";

const STANDARD: ReadonlySet<string> = new Set<string>(STANDARD_FIELDS);
const KEY: ReadonlySet<string> = new Set(["epoch"]);

/**
 * Wire epoch → in-process record. `path` prefixes field names in errors
 * (e.g. "body.epochs.3"). The timestamp defaults to `now`.
 */
export function decodeEpoch(w: WireEpoch, now: string, path = "epoch"): EpochRecord {
  return decodeMetricFields(w as Record<string, unknown>, { epoch: w.epoch, timestamp: now }, STANDARD, KEY, path);
}

/**
 * A validated MetricsInput body (one epoch, or `{ epochs: [...] }`) → its records, naming the field of a bad value
 * (`body.timestamp`, `body.epochs.3.val_loss`). Epochs without a timestamp get `now` (ISO-8601, the request's time).
 */
export function decodeMetricsBody(body: Static<typeof MetricsInput>, now: string): EpochRecord[] {
  const batch = (body as { epochs?: unknown }).epochs;
  if (Array.isArray(batch)) return decodeBatch(batch as WireEpoch[], (e, i) => decodeEpoch(e, now, `body.epochs.${i}`));
  return [decodeEpoch(body as WireEpoch, now, "body")];
}

/**
 * In-process record → wire epoch (non-finite values become strings). A null or absent
 * standard field is left out, exactly as the store returns it (a NULL column cannot tell
 * them apart), so live streams and GET agree.
 */
export function encodeEpoch(rec: EpochRecord): WireEpoch {
  const out: Record<string, unknown> = { epoch: rec.epoch };
  for (const f of STANDARD_FIELDS) {
    const v = rec[f];
    if (v !== undefined && v !== null) out[f] = encodeMetric(v);
  }
  if (rec.custom) for (const [k, v] of Object.entries(rec.custom)) out[k] = encodeMetric(v);
  out.timestamp = rec.timestamp;
  return out as WireEpoch;
}
