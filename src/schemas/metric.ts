/**
 * What the epoch and the step rows share: the wire form of a metric value, the custom-metric name rule, the bound on an
 * operation's custom metric names (one list for both series), and the decoding of a row's timestamp and metric fields.
 * src/schemas/epoch.ts and src/schemas/step.ts build their rows from these, so the two series cannot drift apart.
 */
import { Type, type Static } from "@sinclair/typebox";
import { invalid, TrainwatchError } from "../errors.ts";
import { decodeMetric } from "../trends/wire.ts";

/** Custom metric names: letters, digits and `_ . / -`, 1 to 64 characters. */
export const CUSTOM_METRIC_NAME = /^[A-Za-z0-9_./-]{1,64}$/;

/**
 * Names a custom metric may not have: as keys of a plain object they are the prototype machinery (`obj.__proto__ = 1`
 * stores nothing), so a value under them would be lost somewhere between the body and the reply.
 */
export const RESERVED_METRIC_NAMES: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/**
 * The most distinct custom metric names one operation may hold (standard fields do not count), its epochs' and its
 * steps' together. Every export has a column or a scalar per name, so without a bound 10,000 epochs naming one new
 * metric each (289 KB stored) exported as a 100 MB CSV; at 256 a CSV row has at most 264 columns, and the same 10,000
 * epochs naming one of 256 names each export as 3.5 MB (bench/export.ts). A write that would take an operation past it
 * is refused whole (issue 20, defect 4).
 */
export const MAX_METRIC_NAMES = 256;

export const MetricValue = Type.Union(
  [Type.Number(), Type.Null(), Type.Literal("NaN"), Type.Literal("Infinity"), Type.Literal("-Infinity")],
  {
    description: 'A finite number, null, or "NaN" / "Infinity" / "-Infinity" for a diverged value.',
    errorMessage: 'expected a finite number, null, "NaN", "Infinity" or "-Infinity"',
  },
);
export type WireMetricValue = Static<typeof MetricValue>;

/** A row's timestamp field: ISO-8601, the server's time when absent. */
export const Timestamp = Type.String({ format: "date-time", description: "ISO-8601; the server's time when absent." });

/** A duration field: seconds, ≥ 0, or null. */
export const Duration = (description: string) =>
  Type.Union([Type.Number({ minimum: 0 }), Type.Null()], { description });

/**
 * The options of a row object whose other fields are custom metrics: their values (MetricValue) and, for the document
 * and generated clients, their names (TypeBox does not check propertyNames; decodeMetricFields refuses such names).
 */
export const customMetricFields = (description: string) => ({
  additionalProperties: MetricValue,
  propertyNames: {
    pattern: CUSTOM_METRIC_NAME.source,
    not: { enum: [...RESERVED_METRIC_NAMES] },
    description: "Field names: the standard ones, or a custom metric's (letters, digits and _ . / -, 1 to 64).",
  },
  description: `${description} Any other numeric field is kept as a custom metric (name: letters, digits and _ . / -, up to 64 characters); an operation holds at most ${MAX_METRIC_NAMES} distinct custom metric names (its epochs' and steps' together), and a batch that would add one more is a 400 that stores nothing.`,
});

/** A row in process: its timestamp (ISO-8601, and in ms when already known) and its custom metrics. */
export interface MetricRow {
  timestamp: string;
  /** The same instant in ms, when already known (saves parsing it again on the write path). */
  timestamp_ms?: number;
  custom?: Record<string, number | null>;
}

const CANONICAL_ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Decodes a wire row's fields into `rec` (one pass over the keys: this runs for every row of every batch): `timestamp`,
 * the `standard` metrics as they are, every other numeric field as a custom metric (name rule above); keys in `skip`
 * (the row's key) are left to the caller. `path` prefixes field names in errors (e.g. "body.steps.3").
 */
export function decodeMetricFields<R extends MetricRow>(
  src: Record<string, unknown>,
  rec: R,
  standard: ReadonlySet<string>,
  skip: ReadonlySet<string>,
  path: string,
): R {
  for (const key in src) {
    if (skip.has(key)) continue;
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
    if (standard.has(key)) {
      (rec as Record<string, unknown>)[key] = v;
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
 * A batch's rows decoded in order by `decode`, stopping after the row that brings the batch's own distinct custom
 * metric names past MAX_METRIC_NAMES. Such a batch is refused whatever the operation holds (its names only add to
 * the stored ones), and the store's bound (admitMetricNames) names the same field from the rows up to that one as
 * from the whole batch (the first row past the bound is found in order), so the rows after it are never built: a
 * hostile batch of 10,000 epochs each naming a new metric is decoded 257 rows deep (bench/attack.ts).
 */
export function decodeBatch<T, R extends MetricRow>(rows: readonly T[], decode: (row: T, index: number) => R): R[] {
  const out: R[] = [];
  let names: Set<string> | null = null;
  for (let i = 0; i < rows.length; i++) {
    const r = decode(rows[i]!, i);
    out.push(r);
    if (!r.custom) continue;
    names ??= new Set();
    for (const k in r.custom) names.add(k);
    if (names.size > MAX_METRIC_NAMES) break;
  }
  return out;
}

/** Where a batch first takes an operation past MAX_METRIC_NAMES: the row's index in the batch and the new name. */
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
  rows: readonly { custom?: Record<string, unknown> }[],
  limit = MAX_METRIC_NAMES,
): { names: string[] | null; over: MetricNamesOver | null } {
  let names: Set<string> | null = null;
  let added = false;
  for (let i = 0; i < rows.length; i++) {
    const custom = rows[i]!.custom;
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
 * mergeMetricNames for a store's write: the new name list (null: unchanged), or a VALIDATION_ERROR naming the row's
 * field in a `{ epochs: [...] }` or `{ steps: [...] }` body (`body.<series>.<index>.<name>`) and the limit.
 */
export function admitMetricNames(
  known: readonly string[] | (() => readonly string[]),
  rows: readonly ({ custom?: Record<string, unknown> } & ({ epoch: number } | { step: number }))[],
  limit = MAX_METRIC_NAMES,
  series: "epochs" | "steps" = "epochs",
): string[] | null {
  const { names, over } = mergeMetricNames(known, rows, limit);
  if (over) {
    const row = rows[over.index]! as { epoch?: number; step?: number };
    throw invalid(
      `body.${series}.${over.index}.${over.name}`,
      `an operation holds at most ${limit} distinct custom metric names; this one would be name ${limit + 1} (nothing of the batch was stored)`,
      series === "steps" ? { limit, step: row.step } : { limit, epoch: row.epoch },
    );
  }
  return names;
}

/**
 * A store names a row it refuses as in a batch (`body.<series>.<i>.<name>`, e.g. past the metric-name limit); a body
 * that is one row has that name at `body.<name>`, so the error is re-named to the field the client sent. Rethrows.
 */
export function asSentField(body: unknown, err: unknown, series: "epochs" | "steps"): never {
  const field = err instanceof TrainwatchError ? err.details?.field : undefined;
  if (!Array.isArray((body as Record<string, unknown>)[series]) && typeof field === "string") {
    const prefix = `body.${series}.0.`;
    if (field.startsWith(prefix)) {
      const sent = `body.${field.slice(prefix.length)}`;
      const e = err as TrainwatchError;
      throw new TrainwatchError(e.code, sent + e.message.slice(field.length), { ...e.details, field: sent });
    }
  }
  throw err;
}
