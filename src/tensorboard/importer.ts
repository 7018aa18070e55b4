/**
 * The TensorBoard import (POST /imports/tensorboard, `trainwatch import-tensorboard`): every run directory of a logdir
 * becomes an operation whose epochs, or steps (importAs, or the caller's `as`), are its scalars. A thin shell around the pure codec: it finds and reads the event
 * files, and writes through the operations service. The import is an operation of its own (operation_type `import`):
 * its progress counts records read (`progress.batch`: batch = records so far, batches = all records, counted up front
 * from the record headers), its `result` is the report, and a cancel stops it before the next run.
 *
 * Every file is read and checked before anything is written, so a damaged record (a checksum mismatch, bytes that are
 * no Event) fails the import naming the file and the offset, and creates no run; so does a run with more custom
 * metrics than an operation may hold (MAX_METRIC_NAMES). A last record cut short is a file
 * still being written: what precedes it is imported and the report says where it was cut.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { invalid } from "../errors.ts";
import type { OperationsService } from "../operations/service.ts";
import { MAX_EPOCHS_PER_BATCH, MAX_METRIC_NAMES, mergeMetricNames, type EpochRecord } from "../schemas/epoch.ts";
import { MAX_STEPS_PER_BATCH, type StepRecord } from "../schemas/step.ts";
import type { Operation } from "../schemas/operation.ts";
import type { ImportedRun, TensorboardImportReport } from "../schemas/tensorboard.ts";
import { MalformedEventError, decodeEvent } from "./events.ts";
import {
  assembleEpochs,
  assembleSteps,
  eventScalars,
  groupRuns,
  importAs,
  type ImportAs,
  type RunGroup,
  type ScalarPoint,
  type TagMap,
} from "./metrics.ts";
import { CorruptRecordError, nextRecordOffset, readRecords } from "./tfrecord.ts";

/** TensorBoard's own test for an event file: "tfevents" in the name (its writers name them events.out.tfevents.*). */
const isEventFile = (name: string) => name.includes("tfevents");

/** Records decoded between two progress reports; after each, the server answers what waited meanwhile. */
const PROGRESS_EVERY = 5000;

/**
 * Lets the event loop run what is waiting (requests, other trainings' writes) before the import goes on: SQLite's
 * answers are already-resolved promises, so without this a long import would hold the loop for its whole length.
 */
const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface LogdirPlan {
  runs: RunGroup[];
  /** Event files per directory (relative to the logdir, "/"-separated), in name order (= time order). */
  files: Map<string, string[]>;
}

/**
 * The runs of a logdir (its real path): every directory holding event files, walked without following symbolic links
 * (a link could lead out of the data directory). A 400 naming `field` when there is no event file at all.
 */
export function planLogdir(root: string, label: string, field: string): LogdirPlan {
  const files = new Map<string, string[]>();
  const walk = (rel: string) => {
    const entries = readdirSync(rel ? join(root, rel) : root, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    const here: string[] = [];
    for (const e of entries) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path);
      else if (e.isFile() && isEventFile(e.name)) here.push(path);
    }
    if (here.length > 0) files.set(rel, here);
  };
  walk("");
  if (files.size === 0)
    throw invalid(field, `no TensorBoard event file (events.out.tfevents.*) under ${JSON.stringify(label)}`);
  return { runs: groupRuns([...files.keys()], basename(root)), files };
}

/** Records in a file, from their length headers alone (8 bytes each; nothing checked: the read does that). */
function countRecords(path: string): number {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const header = new Uint8Array(8);
    let n = 0;
    for (let at = 0; at < size && readSync(fd, header, 0, 8, at) === 8; n++) at = nextRecordOffset(header, at);
    return n;
  } finally {
    closeSync(fd);
  }
}

interface DecodedRun {
  group: RunGroup;
  files: string[];
  records: number;
  as: ImportAs;
  epochs: EpochRecord[];
  steps: StepRecord[];
  tags: Record<string, string | null>;
  skipped: ImportedRun["skipped"];
  truncated: ImportedRun["truncated"];
}

export interface ImportOptions {
  /** The logdir's real path (already checked to lie inside the data directory). */
  root: string;
  /** The logdir as the caller wrote it: the report and messages name it. */
  label: string;
  tagMap?: TagMap;
  /** What every run imports as; default: importAs decides per run. */
  as?: ImportAs;
  /** The request field errors name (a damaged file is "body.logdir"). */
  field: string;
}

/**
 * Starts an import of a planned logdir: creates its `import` operation at once and returns it, with `done`, which
 * resolves to the report once every run is stored (the operation completed, the report its result), or rejects with
 * the error that failed it (the operation failed with that message).
 */
export async function startImport(
  operations: OperationsService,
  plan: LogdirPlan,
  opts: ImportOptions,
): Promise<{ operation: Operation; done: Promise<TensorboardImportReport> }> {
  const operation = await operations.createOperation({
    operation_type: "import",
    name: `tensorboard: ${opts.label}`.slice(0, 200),
    // One "epoch" whose batches are the records: progress.percentage is the share of records read.
    total_epochs_planned: 1,
    metadata: { location: "import", source: "tensorboard", logdir: opts.label, runs: plan.runs.length },
    owned: true,
  });
  const id = operation.operation_id;
  const done = runImport(operations, plan, opts, id).then(
    async (report) => {
      if (!report.cancelled) await operations.finish(id, "completed", { result: report });
      else await operations.setResult(id, report);
      return report;
    },
    async (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      await operations.finish(id, "failed", { error_message: message }).catch(() => {});
      throw err;
    },
  );
  return { operation, done };
}

async function runImport(
  operations: OperationsService,
  plan: LogdirPlan,
  opts: ImportOptions,
  importId: string,
): Promise<TensorboardImportReport> {
  const total = [...plan.files.values()].flat().reduce((n, f) => n + countRecords(join(opts.root, f)), 0);
  let read = 0;
  const progress = () =>
    operations.setBatchProgress(importId, { epoch: 0, batch: Math.min(read, total), batches: total });
  // A cancel (DELETE /operations/{id}) finishes the import operation: the import stops at the next file or run.
  const cancelled = async () => (await operations.reader.getOperation(importId))?.status !== "running";
  await progress();

  // Read and check everything first: a damaged file creates nothing.
  const decoded: DecodedRun[] = [];
  for (const group of plan.runs) {
    const run: DecodedRun = {
      group,
      files: [],
      records: 0,
      as: "epochs",
      epochs: [],
      steps: [],
      tags: {},
      skipped: { events: 0, values: 0, steps: 0 },
      truncated: [],
    };
    const points: ScalarPoint[] = [];
    const plugins = new Map<string, boolean>();
    for (const { dir, role } of group.dirs) {
      for (const file of plan.files.get(dir) ?? []) {
        if (await cancelled()) return report(opts.label, importId, [], true);
        run.files.push(file);
        const scan = readFile(join(opts.root, file), file, opts.field, importId);
        if (scan.truncated) run.truncated.push({ file, ...scan.truncated });
        for (let i = 0; i < scan.records.length; i += PROGRESS_EVERY) {
          const chunk = scan.records.slice(i, i + PROGRESS_EVERY).map((r) => {
            try {
              return decodeEvent(r.data);
            } catch (err) {
              if (err instanceof MalformedEventError)
                throw damaged(
                  opts.field,
                  file,
                  r.offset,
                  `the record at byte offset ${r.offset} is ${err.message}`,
                  importId,
                );
              throw err;
            }
          });
          const found = eventScalars(chunk, role, plugins);
          for (const p of found.points) points.push(p); // not push(...): a chunk may hold more points than a call's arguments
          run.skipped.events += found.skipped.events;
          run.skipped.values += found.skipped.values;
          read += chunk.length;
          await progress();
          await breathe();
        }
        run.records += scan.records.length;
      }
    }
    run.as = opts.as ?? importAs(points);
    const assembled = run.as === "steps" ? assembleSteps(points, opts.tagMap) : assembleEpochs(points, opts.tagMap);
    if ("steps" in assembled) run.steps = assembled.steps;
    else run.epochs = assembled.epochs;
    run.tags = assembled.tags;
    run.skipped.values += assembled.skipped.values;
    run.skipped.steps += assembled.skipped.steps;
    tooManyNames(run, opts.field, importId);
    decoded.push(run);
  }

  const runs: ImportedRun[] = [];
  for (const run of decoded) {
    if (await cancelled()) return report(opts.label, importId, runs, true);
    runs.push({
      name: run.group.name,
      operation_id: await writeRun(operations, run, opts.label, importId),
      as: run.as,
      epochs:
        run.as === "steps"
          ? new Set(run.steps.map((st) => st.epoch).filter((e) => e !== undefined)).size
          : run.epochs.length,
      steps: run.steps.length,
      files: run.files,
      records: run.records,
      tags: run.tags,
      skipped: run.skipped,
      truncated: run.truncated,
    });
  }
  return report(opts.label, importId, runs, false);
}

const report = (
  logdir: string,
  importId: string,
  runs: ImportedRun[],
  cancelled: boolean,
): TensorboardImportReport => ({
  import_operation_id: importId,
  logdir,
  runs,
  epochs: runs.reduce((n, r) => n + r.epochs, 0),
  steps: runs.reduce((n, r) => n + r.steps, 0),
  skipped_events: runs.reduce((n, r) => n + r.skipped.events, 0),
  cancelled,
});

/** One file's records; a damaged one is a 400 naming the file and the offset. */
function readFile(path: string, file: string, field: string, importId: string): ReturnType<typeof readRecords> {
  try {
    return readRecords(new Uint8Array(readFileSync(path)));
  } catch (err) {
    if (err instanceof CorruptRecordError) throw damaged(field, file, err.offset, err.message, importId);
    throw err;
  }
}

/**
 * A 400 when a run has more custom metrics (tags mapped to no standard field) than an operation may hold: its writes
 * would be refused part-way, so the import refuses it before it creates anything.
 */
function tooManyNames(run: DecodedRun, field: string, importId: string): void {
  const count = mergeMetricNames([], run.as === "steps" ? run.steps : run.epochs, Infinity).names?.length ?? 0;
  if (count <= MAX_METRIC_NAMES) return;
  const name = JSON.stringify(run.group.name.slice(0, 200));
  throw invalid(
    field,
    `run ${name} has ${count} custom metrics (tags that map to no standard field), more than the ${MAX_METRIC_NAMES} an operation may hold; skip tags with tag_map (a tag mapped to null is skipped); nothing was imported`,
    { run: run.group.name, custom_metrics: count, limit: MAX_METRIC_NAMES, import_operation_id: importId },
  );
}

const damaged = (field: string, file: string, offset: number, why: string, importId: string) =>
  invalid(field, `${file}: ${why}; nothing was imported`, { file, offset, import_operation_id: importId });

/** A run as a completed operation, its epochs or steps written in batches; null (nothing created) when it held no scalar. */
async function writeRun(
  operations: OperationsService,
  run: DecodedRun,
  logdir: string,
  importId: string,
): Promise<string | null> {
  if (run.epochs.length === 0 && run.steps.length === 0) return null;
  const op = await operations.createOperation({
    operation_type: "training",
    name: run.group.name.slice(0, 200),
    metadata: {
      location: "import",
      source: "tensorboard",
      tensorboard: { logdir, run: run.group.name, files: run.files },
      import_operation_id: importId,
    },
    owned: true,
  });
  for (let i = 0; i < run.epochs.length; i += MAX_EPOCHS_PER_BATCH) {
    await operations.writeEpochs(op.operation_id, run.epochs.slice(i, i + MAX_EPOCHS_PER_BATCH));
    await breathe();
  }
  // A step run's epochs close as its steps move on, and the last one at the finish below.
  for (let i = 0; i < run.steps.length; i += MAX_STEPS_PER_BATCH) {
    await operations.writeSteps(op.operation_id, run.steps.slice(i, i + MAX_STEPS_PER_BATCH));
    await breathe();
  }
  await operations.finish(op.operation_id, "completed");
  return op.operation_id;
}
