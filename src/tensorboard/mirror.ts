/**
 * The live TensorBoard mirror (TRAINWATCH_TENSORBOARD_DIR): every epoch and step the operations service stores is
 * appended, as it is stored, to its operation's event file `<dir>/<name>-<id>/events.out.tfevents.<time>.<host>.<pid>`, so
 * `tensorboard --logdir <dir>` shows trainings as they run. A thin shell: it listens to the service's events (it adds
 * no write path) and writes what src/tensorboard/metrics.ts encodes. Each batch is one write(2) straight to the file,
 * nothing buffered in the process, so TensorBoard's reader sees it at once; a write that fails is logged with the
 * operation id and the training goes on. A step run's file holds its steps at their step numbers (metrics.ts's
 * STEP_TAGS), not the epoch records derived from them: epochs at step = epoch would share its x axis.
 */
import { closeSync, fstatSync, mkdirSync, openSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { OperationEvent, OperationsService } from "../operations/service.ts";
import type { WireEpoch } from "../schemas/epoch.ts";
import type { WireStep } from "../schemas/step.ts";
import { FINISHED } from "../schemas/operation.ts";
import { epochRecords, fileHeader, stepRecords } from "./metrics.ts";

/** A file or folder name from an operation's name: characters other than letters, digits, `.`, `_` and `-` become `_`. */
export function safeName(name: string, max = 80): string {
  return name
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/^\.+/, "_")
    .slice(0, max);
}

/** The run folder of an operation: `<name>-<id>`, or the id alone for an operation without a name. */
export const runFolder = (op: { operation_id: string; name: string | null }): string =>
  op.name ? `${safeName(op.name)}-${op.operation_id}` : op.operation_id;

/** TensorBoard's own file name pattern: events.out.tfevents.<seconds>.<host>.<pid>. */
export const eventFileName = (nowMs: number, host = hostname(), pid = process.pid): string =>
  `events.out.tfevents.${Math.floor(nowMs / 1000)}.${safeName(host, 200)}.${pid}`;

interface Run {
  path: string | null;
  fd: number | null;
  /** A step run (steps heard, or stored when the file opened): its epochs are derived, and not mirrored. */
  steps: boolean;
  /** The operation's writes, one after the other, so its events land in the order they were stored. */
  queue: Promise<void>;
}

export class TensorboardMirror {
  private readonly runs = new Map<string, Run>();
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly operations: OperationsService,
    private readonly dir: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Creates the folder and starts listening; the first epochs of each operation open its file. */
  start(): void {
    mkdirSync(this.dir, { recursive: true });
    this.unsubscribe ??= this.operations.subscribe("*", (e) => this.hear(e), { epochs: true });
  }

  /** Stops listening, lets the writes in flight finish and closes every file. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    await this.settled();
    for (const id of [...this.runs.keys()]) this.close(id);
  }

  /** The event file of an operation, once its first epochs were mirrored (for tests and the log). */
  fileOf(operationId: string): string | null {
    return this.runs.get(operationId)?.path ?? null;
  }

  /** Resolves when every write heard so far is on disk. */
  async settled(): Promise<void> {
    await Promise.all([...this.runs.values()].map((r) => r.queue));
  }

  private hear(e: OperationEvent): void {
    if (e.type === "epochs" && e.epochs.length > 0)
      this.enqueue(e.operation_id, () => this.append(e.operation_id, e.epochs, null));
    else if (e.type === "steps" && e.steps.length > 0) {
      this.enqueue(e.operation_id, () => this.append(e.operation_id, null, e.steps));
    }
    // A finished operation's file is closed; should it come back (a revived host training), it is reopened.
    else if ((e.type === "status" && FINISHED.has(e.operation.status)) || e.type === "removed")
      if (this.runs.has(e.operation_id)) this.enqueue(e.operation_id, async () => this.close(e.operation_id));
  }

  private enqueue(id: string, job: () => Promise<void>): void {
    let run = this.runs.get(id);
    if (!run) this.runs.set(id, (run = { path: null, fd: null, steps: false, queue: Promise.resolve() }));
    run.queue = run.queue.then(job).catch((err) => {
      console.error(`[tensorboard] ${id}: mirroring epochs failed:`, err instanceof Error ? err.message : err);
    });
  }

  /** Appends epochs or steps (one of the two) to the operation's file, opening it first. */
  private async append(
    id: string,
    epochs: readonly WireEpoch[] | null,
    steps: readonly WireStep[] | null,
  ): Promise<void> {
    const run = this.runs.get(id)!;
    if (steps) run.steps = true;
    if (run.path === null) {
      const op = await this.operations.reader.getOperation(id);
      if (!op) return;
      run.steps ||= (op.progress.steps_completed ?? 0) > 0;
      const folder = join(this.dir, runFolder(op));
      mkdirSync(folder, { recursive: true });
      run.path = join(folder, eventFileName(this.now()));
    }
    if (run.fd === null) {
      run.fd = openSync(run.path, "a");
      if (fstatSync(run.fd).size === 0) writeAll(run.fd, fileHeader(new Date(this.now()).toISOString()));
    }
    if (steps) writeAll(run.fd, stepRecords(steps));
    else if (epochs && !run.steps) writeAll(run.fd, epochRecords(epochs));
  }

  private close(id: string): void {
    const run = this.runs.get(id);
    if (!run) return;
    if (run.fd !== null) closeSync(run.fd);
    run.fd = null;
  }
}

/** write(2) until every byte is out (a regular file takes them at once; a short write is carried on). */
function writeAll(fd: number, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
}
