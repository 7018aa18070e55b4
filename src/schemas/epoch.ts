/**
 * The epoch record: one TypeBox schema for the wire (validation, OpenAPI, MCP) and
 * the codec between the wire form and the in-process form.
 *
 * On the wire a metric is a finite number, null, or one of the strings "NaN",
 * "Infinity", "-Infinity" (JSON has no literal for them). In process a metric is a
 * plain JS number, so NaN and ±Infinity are just numbers.
 */
import { Type, type Static } from "@sinclair/typebox";
import { invalid } from "../errors.ts";
import { decodeMetric, encodeMetric } from "../trends/wire.ts";
import { STANDARD_FIELDS, type StandardField } from "./fields.ts";

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

/** Custom metric names: letters, digits and `_ . / -`, 1 to 64 characters. */
export const CUSTOM_METRIC_NAME = /^[A-Za-z0-9_./-]{1,64}$/;

/**
 * Names a custom metric may not have: as keys of a plain object they are the prototype machinery (`obj.__proto__ = 1`
 * stores nothing), so a value under them would be lost somewhere between the body and the reply.
 */
export const RESERVED_METRIC_NAMES: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/**
 * The most distinct custom metric names one operation may hold (standard fields do not count). Every export has a column
 * or a scalar per name, so without a bound 10,000 epochs naming one new metric each (289 KB stored) exported as a
 * 100 MB CSV; at 256 a CSV row has at most 264 columns, and the same 10,000 epochs naming one of 256 names each
 * export as 3.5 MB (bench/export.ts). A write that would take an operation past it is refused whole (issue 20, defect 4).
 */
export const MAX_METRIC_NAMES = 256;

/** Where a batch first takes an operation past MAX_METRIC_NAMES: the epoch's index in the batch and the new name. */
export interface MetricNamesOver {
  index: number;
  name: string;
}

/**
 * The custom metric names an operation holds after a batch, by the rule both stores apply in the write's transaction:
 * `known` (the operation's names so far) plus the batch's new ones, sorted, at most `limit` (default MAX_METRIC_NAMES).
 * `names` is null when the batch adds none (nothing to store); `over` names the first new name past the limit (then
 * `names` is null and nothing of the batch may be stored). Costs O(batch's metrics + known), never the history.
 */
export function mergeMetricNames(
  known: readonly string[] | (() => readonly string[]),
  epochs: readonly EpochRecord[],
  limit = MAX_METRIC_NAMES,
): { names: string[] | null; over: MetricNamesOver | null } {
  let names: Set<string> | null = null;
  let added = false;
  for (let i = 0; i < epochs.length; i++) {
    const custom = epochs[i]!.custom;
    if (!custom) continue;
    // The stored list is read only for a batch with custom metrics: most writes have none.
    names ??= new Set(typeof known === "function" ? known() : known);
    for (const k in custom) {
      if (names.has(k)) continue;
      if (names.size >= limit) return { names: null, over: { index: i, name: k } };
      names.add(k);
      added = true;
    }
  }
  return { names: added ? [...names!].sort() : null, over: null };
}

/**
 * mergeMetricNames for a store's write: the new name list (null: unchanged), or a VALIDATION_ERROR naming the epoch's
 * field in a `{ epochs: [...] }` body (`body.epochs.<index>.<name>`) and the limit.
 */
export function admitMetricNames(
  known: readonly string[] | (() => readonly string[]),
  epochs: readonly EpochRecord[],
  limit = MAX_METRIC_NAMES,
): string[] | null {
  const { names, over } = mergeMetricNames(known, epochs, limit);
  if (over)
    throw invalid(
      `body.epochs.${over.index}.${over.name}`,
      `an operation holds at most ${limit} distinct custom metric names; this one would be name ${limit + 1} (nothing of the batch was stored)`,
      { limit, epoch: epochs[over.index]!.epoch },
    );
  return names;
}

export const MetricValue = Type.Union(
  [Type.Number(), Type.Null(), Type.Literal("NaN"), Type.Literal("Infinity"), Type.Literal("-Infinity")],
  {
    description: 'A finite number, null, or "NaN" / "Infinity" / "-Infinity" for a diverged value.',
    errorMessage: 'expected a finite number, null, "NaN", "Infinity" or "-Infinity"',
  },
);
export type WireMetricValue = Static<typeof MetricValue>;

export const EpochInput = Type.Object(
  {
    epoch: Type.Integer({ ...EpochNumber, description: "Epoch number, 0 … 2³¹ − 1 (0-based or resumed, e.g. 50)." }),
    train_loss: Type.Optional(MetricValue),
    val_loss: Type.Optional(MetricValue),
    train_accuracy: Type.Optional(MetricValue),
    val_accuracy: Type.Optional(MetricValue),
    learning_rate: Type.Optional(MetricValue),
    duration: Type.Optional(
      Type.Union([Type.Number({ minimum: 0 }), Type.Null()], { description: "Seconds the epoch took." }),
    ),
    timestamp: Type.Optional(
      Type.String({ format: "date-time", description: "ISO-8601; the server's time when absent." }),
    ),
  },
  {
    additionalProperties: MetricValue,
    // For the document and generated clients: TypeBox does not check propertyNames; decodeEpoch refuses such names.
    propertyNames: {
      pattern: CUSTOM_METRIC_NAME.source,
      not: { enum: [...RESERVED_METRIC_NAMES] },
      description: "Field names: the standard ones, or a custom metric's (letters, digits and _ . / -, 1 to 64).",
    },
    description: `One epoch. Any other numeric field is kept as a custom metric (name: letters, digits and _ . / -, up to 64 characters); an operation holds at most ${MAX_METRIC_NAMES} distinct custom metric names, and a batch that would add one more is a 400 that stores nothing.`,
  },
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
export interface EpochRecord {
  epoch: number;
  /** ISO-8601. */
  timestamp: string;
  /** The same instant in ms, when already known (saves parsing it again on the write path). */
  timestamp_ms?: number;
  train_loss?: number | null;
  val_loss?: number | null;
  train_accuracy?: number | null;
  val_accuracy?: number | null;
  learning_rate?: number | null;
  duration?: number | null;
  custom?: Record<string, number | null>;
}

// The codec of one value is pure and also runs in the dashboard, so it lives in the trend core.
export { decodeMetric, encodeMetric } from "../trends/wire.ts";

const CANONICAL_ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const STANDARD = new Set<string>(["epoch", "timestamp", ...STANDARD_FIELDS]);

/**
 * Wire epoch → in-process record. `path` prefixes field names in errors
 * (e.g. "body.epochs.3"). The timestamp defaults to `now`.
 */
export function decodeEpoch(w: WireEpoch, now: string, path = "epoch"): EpochRecord {
  const rec: EpochRecord = { epoch: w.epoch, timestamp: now };
  const src = w as Record<string, unknown>;
  // One pass over the keys: this runs for every epoch of every batch.
  for (const key in src) {
    if (key === "epoch") continue;
    const raw = src[key];
    if (key === "timestamp") {
      const ms = Date.parse(raw as string);
      if (Number.isNaN(ms)) throw invalid(`${path}.timestamp`, `"${String(raw)}" is not an ISO-8601 date-time`);
      // Already canonical (what toISOString prints) is kept as sent; anything else is normalised to UTC.
      rec.timestamp = CANONICAL_ISO.test(raw as string) ? (raw as string) : new Date(ms).toISOString();
      rec.timestamp_ms = ms;
      continue;
    }
    const v = decodeMetric(raw as WireMetricValue | undefined);
    if (v === undefined) continue;
    if (STANDARD.has(key)) {
      rec[key as StandardField] = v;
    } else if (RESERVED_METRIC_NAMES.has(key)) {
      throw invalid(
        `${path}.${key}`,
        `"${key}" is reserved; custom metric names cannot be ${[...RESERVED_METRIC_NAMES].join(", ")}`,
      );
    } else if (CUSTOM_METRIC_NAME.test(key)) {
      (rec.custom ??= {})[key] = v;
    } else {
      throw invalid(`${path}.${key}`, "custom metric names may use letters, digits and _ . / - (1 to 64 characters)");
    }
  }
  return rec;
}

/**
 * A validated MetricsInput body (one epoch, or `{ epochs: [...] }`) → its records, naming the field of a bad value
 * (`body.timestamp`, `body.epochs.3.val_loss`). Epochs without a timestamp get `now` (ISO-8601, the request's time).
 */
export function decodeMetricsBody(body: Static<typeof MetricsInput>, now: string): EpochRecord[] {
  const batch = (body as { epochs?: unknown }).epochs;
  if (Array.isArray(batch)) return batch.map((e: WireEpoch, i) => decodeEpoch(e, now, `body.epochs.${i}`));
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
