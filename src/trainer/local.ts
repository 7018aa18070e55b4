/**
 * Local trainings: a FIFO queue with at most `maxConcurrent` trainings at once (src/trainer/queue.ts, shared with
 * script trainings). Each built-in training runs in its own Comlink-wrapped worker; every epoch goes through the operations service,
 * the same write path as `POST /operations/{id}/metrics`.
 */
import type { OperationsService } from "../operations/service.ts";
import type { Checkpoint } from "../schemas/checkpoint.ts";
import type { NormalizedSpec } from "../schemas/spec.ts";
import { TrainwatchError } from "../errors.ts";
import { TRAINER_ERROR } from "../operations/lifecycle.ts";
import { FINISHED } from "../schemas/operation.ts";
import { checkpointDir, checkpointTar } from "./checkpoints.ts";
import { startWorkerTraining, type StartTraining } from "./worker_client.ts";
import type { TrainingResult } from "./types.ts";
import { startMetadata } from "../schemas/host.ts";
import { TaskQueue, type Task } from "./queue.ts";

/** Starts one training; the default runs it in a worker thread. Tests pass a scripted one. */
export type { StartTraining };

export class LocalTrainer {
  private readonly tasks: TaskQueue;

  constructor(
    private readonly operations: OperationsService,
    private readonly opts: {
      maxConcurrent: number;
      modelsDir: string;
      start?: StartTraining;
      gpus?: readonly string[];
    },
  ) {
    this.tasks = new TaskQueue(opts.maxConcurrent, opts.gpus ?? []);
  }

  /** Queues a training; it starts now if a slot is free, else when one frees up (in order). */
  submit(operationId: string, spec: NormalizedSpec): void {
    this.tasks.submit(operationId, { gpus: 0, launch: () => this.launch(operationId, spec) });
  }

  /** Queues another kind of training (a script) in the same queue, under the same limit. */
  submitTask(operationId: string, task: Task): void {
    this.tasks.submit(operationId, task);
  }

  /** The GPU ids this machine's queue hands out. */
  get gpus(): readonly string[] {
    return this.tasks.gpus;
  }

  /** Stops a queued or running training. True when it was known here. */
  cancel(operationId: string): boolean {
    return this.tasks.cancel(operationId);
  }

  /** Resolves when the training (if running) has stopped and its worker is gone. */
  async settled(operationId: string): Promise<void> {
    await this.tasks.settled(operationId);
  }

  /** A checkpoint a local training kept, read from its folder under modelsDir, as a tar. */
  checkpoint(operationId: string, epoch: number): Uint8Array {
    return checkpointTar(
      checkpointDir(this.opts.modelsDir, operationId, epoch),
      () =>
        new TrainwatchError(
          "CHECKPOINT_NOT_FOUND",
          `the checkpoint of epoch ${epoch} of ${operationId} is no longer on disk`,
          { operation_id: operationId, epoch },
        ),
    );
  }

  describe() {
    return this.tasks.describe();
  }

  /** Stops every queued and running training and waits until their workers are gone (server shutdown). */
  async stopAll(): Promise<void> {
    await this.tasks.stopAll();
  }

  private launch(id: string, spec: NormalizedSpec): { cancel(): void; done: Promise<unknown> } {
    const log = (what: string, err: unknown) =>
      console.error(`[trainer] ${id}: ${what}:`, err instanceof Error ? err.message : err);
    // A trainer may report before start() returns (a scripted one in tests): cancel and stop through this.
    let cancelRequested = false;
    let stopRequested = false;
    let handle: { cancel(): void; stop?(): void } = { cancel: () => void (cancelRequested = true), stop: () => {} };
    // The operation's recorded stop decision (its stop policy fired, on an epoch write or when the policy was set):
    // stop before the next batch and finish `completed`. A stand-in without stop() is cancelled, and still completes.
    const stop = () => {
      if (stopRequested) return;
      stopRequested = true;
      console.log(`[trainer] ${id}: stopping: the operation's control says stop`);
      (handle.stop ?? handle.cancel).call(handle);
    };
    const unsubscribe = this.operations.subscribe(id, (e) => {
      if (e.type !== "status") return;
      if (e.operation.control !== null && !FINISHED.has(e.operation.status)) stop();
      // Cancelled through another replica (on a shared database): this one runs it, so this one stops it.
      else if (e.operation.status === "cancelled") handle.cancel();
    });
    // The latest list the trainer wrote: a failed training's result still names them.
    let checkpoints: Checkpoint[] = [];
    // What the trainer reports is stored in the order it came, one report at a time: epoch 5 never lands before
    // epoch 4, and the finish waits for the last epoch.
    let reports: Promise<void> = Promise.resolve();
    const report = (what: string, f: () => Promise<unknown>) => {
      reports = reports.then(async () => {
        try {
          await f();
        } catch (err) {
          // Cancelled or completed meanwhile: the training has no reader left.
          if (err instanceof TrainwatchError && err.code === "OPERATION_FINISHED") return handle.cancel();
          log(what, err);
        }
      });
    };
    handle = (this.opts.start ?? startWorkerTraining)(
      { operationId: id, spec, modelsDir: this.opts.modelsDir },
      {
        onStart: (info) =>
          report("recording the start failed", async () => {
            await this.operations.mergeMetadata(id, startMetadata(info));
            await this.operations.markStarted(id);
          }),
        onEpoch: (epoch) =>
          report(`storing epoch ${epoch.epoch} failed (training goes on)`, () =>
            this.operations.writeEpochs(id, [epoch]),
          ),
        onProgress: (p) => report("storing batch progress failed", () => this.operations.setBatchProgress(id, p)),
        onCheckpoints: (list) => {
          checkpoints = list;
          report("recording checkpoints failed", () => this.operations.mergeMetadata(id, { checkpoints: list }));
        },
      },
    );
    const started = handle as ReturnType<StartTraining>;
    if (cancelRequested) started.cancel();
    else if (stopRequested) (started.stop ?? started.cancel).call(started);
    const done = started.done
      .then(
        async (result) => {
          await reports;
          await this.finishWith(id, result, stopRequested);
        },
        async (err: Error) => {
          await reports;
          await this.failWith(id, err, checkpoints);
        },
      )
      .finally(unsubscribe);
    return { cancel: () => started.cancel(), done };
  }

  /** `stopped`: the operation's control stopped it, so it completes (keeping its result) whatever the runner reports. */
  private async finishWith(id: string, result: TrainingResult, stopped: boolean): Promise<void> {
    const current = await this.operations.reader.getOperation(id);
    const data = result as unknown as Record<string, unknown>;
    if (current && (current.status === "pending" || current.status === "running")) {
      await this.operations.finish(id, result.stop_reason === "cancelled" && !stopped ? "cancelled" : "completed", {
        result: data,
      });
    } else {
      await this.operations.setResult(id, data);
    }
  }

  /** A failed training's result holds only what outlives it: the checkpoints written before the failure. */
  private async failWith(id: string, err: Error, checkpoints: Checkpoint[]): Promise<void> {
    console.error(`[trainer] ${id}: training failed: ${err.message}`);
    try {
      const current = await this.operations.reader.getOperation(id);
      const result = checkpoints.length > 0 ? { checkpoints } : null;
      if (current && (current.status === "pending" || current.status === "running")) {
        await this.operations.finish(id, "failed", { error_message: err.message, failure_code: TRAINER_ERROR, result });
      } else if (result) {
        await this.operations.setResult(id, result);
      }
    } catch (e) {
      console.error(`[trainer] ${id}: recording the failure failed:`, e);
    }
  }
}
