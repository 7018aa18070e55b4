/**
 * Trainwatch epochs and steps ↔ TensorBoard scalars, both ways, pure. Export: an epoch becomes one event at step =
 * epoch, one scalar per metric under the metric's own name; a step becomes one event at its own step number, its
 * standard fields under the Hugging Face Trainer's tags (train/loss, train/learning_rate, train/grad_norm, eval/loss,
 * …: STEP_TAGS), so TensorBoard shows a step run as the Trainer's own callback would; wall time = the row's timestamp.
 * Import: a run's scalar points become epochs (step = epoch) or steps (importAs decides), each tag mapped to a
 * standard field where its name says so (the tables below), to a custom metric otherwise, or skipped, as the caller's
 * tag map overrides; and a logdir's run directories are grouped into runs, Keras's `<run>/train` + `<run>/validation`
 * pair counting as one.
 */
import {
  CUSTOM_METRIC_NAME,
  MAX_EPOCH,
  RESERVED_METRIC_NAMES,
  STANDARD_FIELDS,
  decodeMetric,
  type EpochRecord,
  type StandardField,
  type WireEpoch,
  type WireMetricValue,
} from "../schemas/epoch.ts";
import { MAX_STEP, STEP_FIELDS, type StepField, type StepRecord, type WireStep } from "../schemas/step.ts";
import { decodeEvent, fileVersionEvent, scalarEvent, type DecodedEvent } from "./events.ts";
import { frameRecord } from "./tfrecord.ts";

// ---------------------------------------------------------------------------------------------------------------------
// Export.

/** Every metric of an epoch that has a value, as [name, value]: standard fields first, then custom metrics. */
export function epochScalars(e: WireEpoch): [string, number][] {
  const out: [string, number][] = [];
  for (const [k, raw] of Object.entries(e)) {
    if (k === "epoch" || k === "timestamp") continue;
    const v = decodeMetric(raw as WireMetricValue | undefined);
    if (v !== undefined && v !== null) out.push([k, v]);
  }
  return out;
}

/** Seconds since 1970 of an ISO timestamp, as TensorBoard's wall_time. */
const wallTime = (iso: string): number => Date.parse(iso) / 1000;

/** One epoch as a framed record: step = epoch, wall time = its timestamp; null when it has no metric at all. */
export function epochRecord(e: WireEpoch): Uint8Array | null {
  const scalars = epochScalars(e);
  return scalars.length === 0 ? null : frameRecord(scalarEvent(wallTime(e.timestamp ?? ""), e.epoch, scalars));
}

/** The opening record of a file (file_version "brain.Event:2") at `createdAt`. */
export const fileHeader = (createdAt: string): Uint8Array => frameRecord(fileVersionEvent(wallTime(createdAt)));

/** Epochs as records one after the other (an epoch without any metric writes none): what a live file appends. */
export function epochRecords(epochs: readonly WireEpoch[]): Uint8Array<ArrayBuffer> {
  return concatBytes(epochs.map(epochRecord).filter((r) => r !== null));
}

/** A whole event file: the opening record at `createdAt`, then one record per epoch that has a metric. */
export const eventFile = (createdAt: string, epochs: readonly WireEpoch[]): Uint8Array<ArrayBuffer> =>
  concatBytes([fileHeader(createdAt), epochRecords(epochs)]);

/**
 * A step's standard fields (and its epoch label) as TensorBoard tags: the Hugging Face Trainer's names, which the
 * import reads back as steps (importAs). Custom metrics keep their own names (`eval/<name>` ones are evaluations).
 */
export const STEP_TAGS: Readonly<Record<StepField | "epoch", string>> = {
  train_loss: "train/loss",
  learning_rate: "train/learning_rate",
  grad_norm: "train/grad_norm",
  duration: "train/duration",
  samples: "train/samples",
  tokens: "train/tokens",
  val_loss: "eval/loss",
  val_accuracy: "eval/accuracy",
  epoch: "train/epoch",
};

/** Every metric of a step that has a value, as [tag, value]: its epoch and standard fields by STEP_TAGS, then customs. */
export function stepScalars(s: WireStep): [string, number][] {
  const out: [string, number][] = [];
  if (s.epoch !== undefined) out.push([STEP_TAGS.epoch, s.epoch]);
  for (const [k, raw] of Object.entries(s)) {
    if (k === "step" || k === "epoch" || k === "timestamp") continue;
    const v = decodeMetric(raw as WireMetricValue | undefined);
    if (v !== undefined && v !== null) out.push([STEP_TAGS[k as StepField] ?? k, v]);
  }
  return out;
}

/** Steps as records one after the other, each at its own step number (a step with no metric and no epoch writes none). */
export function stepRecords(steps: readonly WireStep[]): Uint8Array<ArrayBuffer> {
  const records: Uint8Array[] = [];
  for (const s of steps) {
    const scalars = stepScalars(s);
    if (scalars.length > 0) records.push(frameRecord(scalarEvent(wallTime(s.timestamp ?? ""), s.step, scalars)));
  }
  return concatBytes(records);
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of parts) out.set(r, at), (at += r.length);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// Import: run directories.

/** Which half of a Keras run a directory holds: its `train/` or `validation/` subdirectory; null for any other run. */
export type Role = "train" | "validation" | null;

export interface RunGroup {
  /** The run's name: its path relative to the logdir ("" → the logdir's own name). */
  name: string;
  /** Its directories (relative, "/"-separated, "" for the logdir itself), each with its role. */
  dirs: { dir: string; role: Role }[];
}

/**
 * Runs from the directories that hold event files (relative to the logdir, "/"-separated, "" for the logdir itself):
 * each is a run, except a `train` or `validation` directory, which is a half of the run its parent names (Keras's
 * TensorBoard callback writes `<run>/train` and `<run>/validation`). Sorted by name.
 */
export function groupRuns(dirs: readonly string[], logdirName: string): RunGroup[] {
  const runs = new Map<string, RunGroup>();
  for (const dir of dirs) {
    const cut = dir.lastIndexOf("/");
    const base = dir.slice(cut + 1);
    const role: Role = base === "train" || base === "validation" ? base : null;
    const runPath = role ? (cut === -1 ? "" : dir.slice(0, cut)) : dir;
    const name = runPath === "" ? logdirName : runPath;
    let run = runs.get(name);
    if (!run) runs.set(name, (run = { name, dirs: [] }));
    run.dirs.push({ dir, role });
  }
  for (const r of runs.values()) r.dirs.sort((a, b) => (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0));
  return [...runs.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------------------------------
// Import: scalars out of events.

/** One scalar: a tag's value at a step, from a run directory of a given role. */
export interface ScalarPoint {
  tag: string;
  role: Role;
  step: bigint;
  wallTime: number;
  value: number;
}

/** What a file held besides scalars. */
export interface SkipCounts {
  /** Events with no scalar: graphs, session logs, run metadata, summaries of images, histograms, audio, text … */
  events: number;
  /** Summary values that are no scalar (in events that also held one). */
  values: number;
}

/**
 * The scalars of one file's events. A tensor value counts when it is a float scalar of the `scalars` plugin (or of
 * data class SCALAR); TF2 writes a tag's plugin only with its first value, so `plugins` carries what each tag was
 * declared as across the run's files. `file_version` events are neither scalars nor skipped.
 */
export function eventScalars(
  events: Iterable<DecodedEvent>,
  role: Role,
  plugins: Map<string, boolean>,
): { points: ScalarPoint[]; skipped: SkipCounts } {
  const points: ScalarPoint[] = [];
  const skipped: SkipCounts = { events: 0, values: 0 };
  for (const e of events) {
    if (e.kind === "file_version" || e.kind === "empty") continue;
    let found = 0;
    let others = 0;
    for (const v of e.values) {
      let value: number | null = null;
      if (v.kind === "simple") value = v.value;
      else if (v.kind === "tensor") {
        if (v.plugin !== null || v.scalar) plugins.set(v.tag, v.plugin === "scalars" || v.scalar);
        if (plugins.get(v.tag)) value = v.value;
      } else if (v.plugin !== null) plugins.set(v.tag, false);
      if (value === null) others++;
      else points.push({ tag: v.tag, role, step: e.step, wallTime: e.wallTime, value }), found++;
    }
    if (found === 0) skipped.events++;
    else skipped.values += others;
  }
  return { points, skipped };
}

/** decodeEvent over a file's records, for eventScalars. */
export const decodeEvents = (records: Iterable<{ data: Uint8Array }>): DecodedEvent[] =>
  Array.from(records, (r) => decodeEvent(r.data));

// ---------------------------------------------------------------------------------------------------------------------
// Import: tags to fields.

/**
 * A caller's tag map: tag → a standard field (train_loss, val_loss, train_accuracy, val_accuracy, learning_rate,
 * duration), a custom metric name, or null to skip it. A Keras run's tags may be given as `train/<tag>` or
 * `validation/<tag>`, which win over the bare tag.
 */
export type TagMap = Readonly<Record<string, string | null>>;

/** Tag names (lower case, `/`, spaces and `-` read as `_`) that mean a standard field. */
const STANDARD_TAGS = new Map<string, StandardField>();
const alias = (field: StandardField, ...tags: string[]) => {
  for (const t of tags) STANDARD_TAGS.set(t, field);
};
alias("train_loss", "loss", "train_loss", "training_loss", "epoch_loss", "loss_train", "train_epoch_loss");
alias(
  "val_loss",
  "val_loss",
  "validation_loss",
  "valid_loss",
  "epoch_val_loss",
  "loss_val",
  "loss_validation",
  "eval_loss",
);
alias("train_accuracy", "accuracy", "acc", "train_accuracy", "train_acc", "epoch_accuracy", "accuracy_train");
alias(
  "val_accuracy",
  "val_accuracy",
  "val_acc",
  "validation_accuracy",
  "epoch_val_accuracy",
  "accuracy_val",
  "accuracy_validation",
  "eval_accuracy",
);
alias("learning_rate", "lr", "learning_rate", "epoch_learning_rate", "epoch_lr");
alias("duration", "duration");

/** The default tag table, for the docs and the tests. */
export const DEFAULT_TAGS: ReadonlyMap<string, StandardField> = STANDARD_TAGS;

const STANDARD = new Set<string>(STANDARD_FIELDS);

const normal = (tag: string) => tag.toLowerCase().replace(/[/\s-]+/g, "_");

/** A tag as a custom metric name: characters the API refuses become `_`, at most 64; null when nothing usable is left. */
export function customName(tag: string): string | null {
  let name = tag.replace(/[^A-Za-z0-9_./-]/g, "_").slice(0, 64);
  if (name === "epoch" || name === "timestamp") name = `tb_${name}`;
  if (!CUSTOM_METRIC_NAME.test(name) || RESERVED_METRIC_NAMES.has(name)) return null;
  return name;
}

/**
 * Where a tag goes by default. In a Keras run half, `epoch_` is dropped first and the validation half's names become
 * `val_…` (its `loss` is val_loss); Keras's per-batch and per-iteration tags (`batch_…`, `…_vs_iterations`) are skipped,
 * since their steps are no epochs. Elsewhere: the standard field the table names, or the tag as a custom metric.
 */
export function defaultField(tag: string, role: Role): string | null {
  if (role !== null) {
    if (/^batch_/.test(tag) || /_vs_iterations$/.test(tag)) return null;
    const name = tag.replace(/^epoch_/, "");
    const n = normal(name);
    if (role === "validation") {
      const std = STANDARD_TAGS.get(n);
      if (std === "train_loss" || std === "val_loss") return "val_loss";
      if (std === "train_accuracy" || std === "val_accuracy") return "val_accuracy";
      return std ?? customName(n.startsWith("val_") ? name : `val_${name}`);
    }
    return STANDARD_TAGS.get(n) ?? STANDARD_TAGS.get(normal(tag)) ?? customName(name);
  }
  return STANDARD_TAGS.get(normal(tag)) ?? customName(tag);
}

/**
 * Why a caller's tag map cannot be used, as [tag, reason], or null when it can: a target must be a field name the
 * metrics body accepts (a standard field or a custom metric name; never `epoch`, `timestamp` or a reserved name).
 */
export function tagMapProblem(tagMap: TagMap): [string, string] | null {
  for (const [tag, field] of Object.entries(tagMap)) {
    if (field === null || STANDARD.has(field)) continue;
    if (field === "epoch" || field === "timestamp")
      return [tag, `"${field}" is not a metric (step is the epoch, wall time the timestamp)`];
    if (RESERVED_METRIC_NAMES.has(field) || !CUSTOM_METRIC_NAME.test(field))
      return [tag, `"${field}" is not a metric name (letters, digits and _ . / -, up to 64 characters)`];
  }
  return null;
}

/** The key a tag is reported (and may be mapped) under: `train/<tag>` or `validation/<tag>` in a Keras run. */
export const tagKey = (tag: string, role: Role) => (role === null ? tag : `${role}/${tag}`);

/** What a run's points import as: epochs (step = epoch, the seed's rule) or steps (step = the global step). */
export type ImportAs = "epochs" | "steps";

/** Tag names (normalised as for STANDARD_TAGS) that mean a step field or a step's epoch label, in steps mode. */
const STEP_TAGS_IN = new Map<string, StepField | "epoch">();
const stepAlias = (field: StepField | "epoch", ...tags: string[]) => {
  for (const t of tags) STEP_TAGS_IN.set(t, field);
};
stepAlias("learning_rate", "train_learning_rate", "train_lr");
stepAlias("grad_norm", "grad_norm", "train_grad_norm", "gradient_norm", "grad_norm_total");
stepAlias("duration", "train_duration", "step_duration");
stepAlias("samples", "samples", "train_samples");
stepAlias("tokens", "tokens", "train_tokens", "num_input_tokens_seen", "train_num_input_tokens_seen");
stepAlias("epoch", "epoch", "train_epoch");

/** The steps-mode tag table (besides STANDARD_TAGS, whose step fields count too), for the docs and the tests. */
export const DEFAULT_STEP_TAGS: ReadonlyMap<string, StepField | "epoch"> = STEP_TAGS_IN;

const STEP_SET = new Set<string>(STEP_FIELDS);

/**
 * Where a tag goes by default in steps mode: a step field or the epoch label ("epoch") by STEP_TAGS_IN, else as
 * defaultField says (an epoch-only field such as train_accuracy stays under that name, a custom metric of a step).
 */
export function defaultStepField(tag: string, role: Role): string | null {
  if (role === null) {
    const own = STEP_TAGS_IN.get(normal(tag));
    if (own) return own;
  }
  return defaultField(tag, role);
}

/**
 * What a run imports as, by default: steps when it was logged per step, which its tag names say: a tag of the Hugging
 * Face Trainer's (`train/…` or `eval/…`, its TensorBoard callback's names, and Trainwatch's own step export), or an
 * epoch tag (`epoch`, `train/epoch`, as Lightning and the Trainer log) holding one value at more than one step. Else
 * epochs, as before steps existed.
 */
export function importAs(points: readonly ScalarPoint[]): ImportAs {
  const epochAt = new Map<number, bigint>();
  for (const p of points) {
    if (p.role !== null) continue;
    if (/^(train|eval)\//.test(p.tag)) return "steps";
    if (STEP_TAGS_IN.get(normal(p.tag)) !== "epoch") continue;
    const seen = epochAt.get(p.value);
    if (seen !== undefined && seen !== p.step) return "steps";
    epochAt.set(p.value, p.step);
  }
  return "epochs";
}

/**
 * Each tag's field (as tagKey writes it; null: skipped): where `tagMap` says, else where `byDefault` does; a field
 * two tags would fill goes to the first in name order (tags the caller mapped first), the others to their own custom
 * names.
 */
function tagFields(
  points: readonly ScalarPoint[],
  tagMap: TagMap,
  byDefault: (tag: string, role: Role) => string | null,
  standard: ReadonlySet<string>,
): Map<string, string | null> {
  const keys = new Map<string, { tag: string; role: Role }>();
  for (const p of points) {
    const key = tagKey(p.tag, p.role);
    if (!keys.has(key)) keys.set(key, { tag: p.tag, role: p.role });
  }
  const mapped = (key: string, tag: string): string | null | undefined =>
    Object.hasOwn(tagMap, key) ? tagMap[key] : Object.hasOwn(tagMap, tag) ? tagMap[tag] : undefined;
  const order = [...keys.keys()].sort((a, b) => {
    const ua = mapped(a, keys.get(a)!.tag) !== undefined ? 0 : 1;
    const ub = mapped(b, keys.get(b)!.tag) !== undefined ? 0 : 1;
    return ua - ub || (a < b ? -1 : a > b ? 1 : 0);
  });
  // A Map, not an object: a tag may be called "__proto__".
  const fields = new Map<string, string | null>();
  const taken = new Set<string>();
  for (const key of order) {
    const { tag, role } = keys.get(key)!;
    const asked = mapped(key, tag);
    let field = asked === undefined ? byDefault(tag, role) : asked;
    if (field !== null && taken.has(field)) {
      const own = customName(role === "validation" ? `val_${tag}` : tag);
      field = own !== null && !taken.has(own) && !standard.has(own) ? own : null;
    }
    if (field !== null) taken.add(field);
    fields.set(key, field);
  }
  return fields;
}

/** One TensorBoard step's values, by field (the last value of a tag at a step wins), and its latest wall time. */
interface PointRow {
  step: number;
  wall: number;
  values: Map<string, number>;
}

/**
 * The points of mapped tags grouped by step, ascending, with what was skipped: points of skipped tags, at a step
 * past `max` (or negative), or whose value `valid` refuses.
 */
function gather(
  points: readonly ScalarPoint[],
  fields: ReadonlyMap<string, string | null>,
  max: number,
  valid: (field: string, value: number) => boolean,
): { rows: PointRow[]; skipped: Assembled["skipped"] } {
  const byStep = new Map<number, PointRow>();
  const skipped = { steps: 0, values: 0 };
  for (const p of points) {
    const field = fields.get(tagKey(p.tag, p.role))!;
    if (field === null || !valid(field, p.value)) {
      skipped.values++;
      continue;
    }
    if (p.step < 0n || p.step > BigInt(max)) {
      skipped.steps++;
      continue;
    }
    const step = Number(p.step);
    let row = byStep.get(step);
    if (!row) byStep.set(step, (row = { step, wall: -Infinity, values: new Map() }));
    if (Number.isFinite(p.wallTime) && p.wallTime > row.wall) row.wall = p.wallTime;
    row.values.set(field, p.value);
  }
  return { rows: [...byStep.values()].sort((x, y) => x.step - y.step), skipped };
}

/** A row's timestamp from its wall time, in milliseconds as Trainwatch stores them (exported wall times come back exact). */
function stamp(wall: number): { timestamp: string; timestamp_ms: number } {
  const ms = Number.isFinite(wall) && Math.abs(wall) < 8.64e12 ? Math.round(wall * 1000) : 0;
  return { timestamp: new Date(ms).toISOString(), timestamp_ms: ms };
}

/** A duration (and an epoch label) must be a finite number ≥ 0; anything else is skipped. */
const nonNegative = (field: string, value: number) =>
  (field !== "duration" && field !== "epoch") || (Number.isFinite(value) && value >= 0);

export interface Assembled {
  /** Ascending by epoch. */
  epochs: EpochRecord[];
  /** Every tag seen (as tagKey writes it) and the field it went to; null: skipped. */
  tags: Record<string, string | null>;
  skipped: {
    /** Points at a step that is no epoch (or step) number (negative, or past 2³¹ − 1). */
    steps: number;
    /** Points of skipped tags, and durations that were negative or not finite. */
    values: number;
  };
}

/**
 * A run's epochs from its scalar points (in file order). Each tag goes where `tagMap` says, else where defaultField
 * does (tagFields). Epoch = step; the last value of a tag at a step wins (a resumed writer's); the epoch's
 * timestamp is the latest wall time at its step.
 */
export function assembleEpochs(points: readonly ScalarPoint[], tagMap: TagMap = {}): Assembled {
  const fields = tagFields(points, tagMap, defaultField, STANDARD);
  const { rows, skipped } = gather(points, fields, MAX_EPOCH, nonNegative);
  const epochs = rows.map(({ step, wall, values }) => {
    const rec: EpochRecord = { epoch: step, ...stamp(wall) };
    for (const [field, v] of values) {
      if (STANDARD.has(field)) rec[field as StandardField] = v;
      else (rec.custom ??= {})[field] = v;
    }
    return rec;
  });
  return { epochs, tags: Object.fromEntries(fields), skipped };
}

export interface AssembledSteps extends Omit<Assembled, "epochs"> {
  /** Ascending by step. */
  steps: StepRecord[];
}

/**
 * A run's steps from its scalar points (in file order): step = TensorBoard's step, each tag where `tagMap` says, else
 * where defaultStepField does (tagFields). A tag mapped to "epoch" labels steps: a step's epoch is the value it held
 * at the latest step at or before it, carried forward (the Trainer logs it only with its logs). Whole values are
 * epoch numbers (Lightning's `epoch`, Trainwatch's export); fractional ones are the Trainer's progress (1.0 at the
 * last step of epoch 0), so epoch = ceil(value) − 1, at least 0. The last value of a tag at a step wins; a step's
 * timestamp is the latest wall time at it.
 */
export function assembleSteps(points: readonly ScalarPoint[], tagMap: TagMap = {}): AssembledSteps {
  const fields = tagFields(points, tagMap, defaultStepField, STEP_SET);
  const { rows, skipped } = gather(points, fields, MAX_STEP, nonNegative);
  const labels = rows.flatMap((r) => (r.values.has("epoch") ? [r.values.get("epoch")!] : []));
  const whole = labels.every(Number.isInteger);
  let epoch: number | undefined;
  const steps = rows.map(({ step, wall, values }) => {
    const rec: StepRecord = { step, ...stamp(wall) };
    for (const [field, v] of values) {
      if (field === "epoch") epoch = Math.min(MAX_EPOCH, whole ? v : Math.max(0, Math.ceil(v) - 1));
      else if (STEP_SET.has(field)) rec[field as StepField] = v;
      else (rec.custom ??= {})[field] = v;
    }
    if (epoch !== undefined) rec.epoch = epoch;
    return rec;
  });
  return { steps, tags: Object.fromEntries(fields), skipped };
}
