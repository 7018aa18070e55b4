/**
 * Trainwatch epochs ↔ TensorBoard scalars, both ways, pure. Export: an epoch becomes one event at step = epoch, wall
 * time = the epoch's timestamp, one scalar per metric under the metric's own name. Import: a run's scalar points
 * become epochs (step = epoch), each tag mapped to a standard field where its name says so (the table below), to a
 * custom metric otherwise, or skipped, as the caller's tag map overrides; and a logdir's run directories are grouped
 * into runs, Keras's `<run>/train` + `<run>/validation` pair counting as one.
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

export interface Assembled {
  /** Ascending by epoch. */
  epochs: EpochRecord[];
  /** Every tag seen (as tagKey writes it) and the field it went to; null: skipped. */
  tags: Record<string, string | null>;
  skipped: {
    /** Points at a step that is no epoch number (negative, or past 2³¹ − 1). */
    steps: number;
    /** Points of skipped tags, and durations that were negative or not finite. */
    values: number;
  };
}

/**
 * A run's epochs from its scalar points (in file order). Each tag goes where `tagMap` says, else where defaultField
 * does; a field two tags would fill goes to the first in name order (tags the caller mapped first), and the others
 * to their own custom names. Epoch = step; the last value of a tag at a step wins (a resumed writer's); the epoch's
 * timestamp is the latest wall time at its step.
 */
export function assembleEpochs(points: readonly ScalarPoint[], tagMap: TagMap = {}): Assembled {
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
    let field = asked === undefined ? defaultField(tag, role) : asked;
    if (field !== null && taken.has(field)) {
      const own = customName(role === "validation" ? `val_${tag}` : tag);
      field = own !== null && !taken.has(own) && !STANDARD.has(own) ? own : null;
    }
    if (field !== null) taken.add(field);
    fields.set(key, field);
  }

  const byEpoch = new Map<number, EpochRecord & { wall: number }>();
  const skipped = { steps: 0, values: 0 };
  for (const p of points) {
    const field = fields.get(tagKey(p.tag, p.role))!;
    if (field === null) {
      skipped.values++;
      continue;
    }
    if (p.step < 0n || p.step > BigInt(MAX_EPOCH)) {
      skipped.steps++;
      continue;
    }
    if (field === "duration" && !(Number.isFinite(p.value) && p.value >= 0)) {
      skipped.values++;
      continue;
    }
    const epoch = Number(p.step);
    let rec = byEpoch.get(epoch);
    if (!rec) byEpoch.set(epoch, (rec = { epoch, timestamp: "", wall: -Infinity }));
    if (Number.isFinite(p.wallTime) && p.wallTime > rec.wall) rec.wall = p.wallTime;
    if (STANDARD.has(field)) rec[field as StandardField] = p.value;
    else (rec.custom ??= {})[field] = p.value;
  }
  const epochs = [...byEpoch.values()]
    .sort((a, b) => a.epoch - b.epoch)
    .map(({ wall, ...rec }) => {
      // Milliseconds, as Trainwatch stores timestamps: an exported file's wall times come back exact.
      const ms = Number.isFinite(wall) && Math.abs(wall) < 8.64e12 ? Math.round(wall * 1000) : 0;
      return { ...rec, timestamp: new Date(ms).toISOString(), timestamp_ms: ms };
    });
  return { epochs, tags: Object.fromEntries(fields), skipped };
}
