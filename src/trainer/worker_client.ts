// Main-thread side of a local training: one Bun Worker per training, driven through Comlink, always terminated at the
// end so its TF.js memory goes with it. Nothing heavy runs here; this module never imports TF.js.

import * as Comlink from "comlink";
import { TrainwatchError, type ErrorCode } from "../errors.ts";
import type { Checkpoint } from "../schemas/checkpoint.ts";
import type { NormalizedSpec } from "../schemas/spec.ts";
import { CANCEL, RUN, STOP, type TrainingEvents, type TrainingResult } from "./types.ts";
import type { TrainerWorkerApi, WorkerOutcome } from "./worker.ts";

export interface WorkerTraining {
  /** Resolves with the result (also when cancelled); rejects with TrainwatchError: WORKER_EXITED, or the training's own error. */
  done: Promise<TrainingResult>;
  /** Asks the worker to stop before its next batch; `done` then resolves with stop_reason "cancelled". */
  cancel(): void;
  /**
   * Asks the worker to stop before its next batch and keep its model as a finished run would (the operation's stop
   * policy fired); `done` then resolves with stop_reason "stop_requested". A cancel after it still cancels. Optional for
   * stand-ins: without it the runner cancels, and still finishes the operation `completed`.
   */
  stop?(): void;
}

export interface WorkerTrainingArgs {
  operationId: string;
  spec: NormalizedSpec;
  modelsDir: string;
}

/** Test seams: another worker script (e.g. one that crashes or ignores the cancel flag), a shorter grace. */
export interface WorkerTrainingOptions {
  workerUrl?: string | URL;
  /** Default CANCEL_GRACE_MS. */
  cancelGraceMs?: number;
}

/**
 * How long a cancelled worker may take to stop by itself before it is terminated. A healthy one stops within a batch;
 * after the batch loop it still writes its checkpoint (engine.ts), which this window leaves it time for. One stuck in a
 * huge kernel, or whose memory grows faster than it checks the flag, is terminated: its memory goes with its thread.
 */
export const CANCEL_GRACE_MS = 3000;

const TRAINING_ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>(["VALIDATION_ERROR", "TRAINING_FAILED"]);

/**
 * Starts a training in a new worker. Event handlers run on this thread; one that throws is logged with the operation id
 * and the training goes on.
 */
export function startWorkerTraining(
  args: WorkerTrainingArgs,
  events: TrainingEvents,
  options: WorkerTrainingOptions = {},
): WorkerTraining {
  const { operationId } = args;
  const worker = new Worker(options.workerUrl ?? new URL("./worker.ts", import.meta.url).href);
  const cancelFlag = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  const channel = new MessageChannel();
  // What the events told us, for the result of a worker terminated before it could report one.
  let epochsSeen = 0;
  let backend = "unknown";
  let checkpoints: Checkpoint[] = [];
  Comlink.expose(
    guarded(operationId, {
      onStart: (info) => {
        backend = info.backend;
        events.onStart(info);
      },
      onEpoch: (epoch) => {
        epochsSeen++;
        events.onEpoch(epoch);
      },
      onProgress: (p) => events.onProgress(p),
      onCheckpoints: (list) => {
        checkpoints = list;
        events.onCheckpoints?.(list);
      },
    }),
    channel.port1,
  );
  const api = Comlink.wrap<TrainerWorkerApi>(worker);

  let finished = false;
  let terminated = false;
  let grace: ReturnType<typeof setTimeout> | null = null;
  // Bun fires "close" when the worker's thread has ended, whatever the cause: only then is its memory gone.
  const gone = new Promise<void>((resolve) => worker.addEventListener("close", () => resolve()));
  let resolveDone: (r: TrainingResult) => void = () => {};
  const done = new Promise<TrainingResult>((resolve, reject) => {
    resolveDone = resolve;
    const exited = (why: string) => {
      if (finished || terminated) return;
      reject(
        new TrainwatchError("WORKER_EXITED", `training worker of ${operationId} exited unexpectedly: ${why}`, {
          operation_id: operationId,
        }),
      );
    };
    worker.addEventListener("error", (e) => exited(e.message || "uncaught error"));
    worker.addEventListener("messageerror", () => exited("a message could not be deserialised"));
    worker.addEventListener("close", (e) => exited(`exit code ${(e as Event & { code?: number }).code ?? "unknown"}`));
    api
      .train(
        args.spec,
        { modelsDir: args.modelsDir, operationId, cancelFlag },
        Comlink.transfer(channel.port2, [channel.port2]),
      )
      .then(
        (outcome: WorkerOutcome) => {
          if (outcome.ok) return resolve(outcome.result);
          const code =
            outcome.error.code !== null && TRAINING_ERROR_CODES.has(outcome.error.code)
              ? (outcome.error.code as ErrorCode)
              : "TRAINING_FAILED";
          reject(
            new TrainwatchError(code, outcome.error.message, { operation_id: operationId, ...outcome.error.details }),
          );
        },
        (err: unknown) => exited(err instanceof Error ? err.message : String(err)),
      );
  }).finally(async () => {
    finished = true;
    if (grace) clearTimeout(grace);
    api[Comlink.releaseProxy]();
    channel.port1.close();
    worker.terminate();
    // Settled only once the thread is gone, so whoever waits on `done` (the queue's slot) waits for its memory too.
    await gone;
  });
  const terminate = () => {
    if (finished) return;
    terminated = true;
    const stopReason = Atomics.load(cancelFlag, 0) === STOP ? "stop_requested" : "cancelled";
    console.warn(
      `[trainer] ${operationId}: the worker did not stop within ${graceMs} ms of the ${stopReason === "cancelled" ? "cancel" : "stop"}; terminating it`,
    );
    resolveDone({
      stop_reason: stopReason,
      epochs_run: epochsSeen,
      best_epoch: null,
      best_metrics: null,
      final_metrics: null,
      model_path: null,
      checkpoints,
      backend,
    });
  };
  const graceMs = options.cancelGraceMs ?? CANCEL_GRACE_MS;
  const ask = (value: number) => {
    Atomics.store(cancelFlag, 0, value);
    grace ??= setTimeout(terminate, graceMs);
  };
  return {
    done,
    cancel: () => ask(CANCEL),
    stop: () => {
      // Never downgrades a cancel to a stop.
      if (Atomics.compareExchange(cancelFlag, 0, RUN, STOP) === RUN) grace ??= setTimeout(terminate, graceMs);
    },
  };
}

function guarded(operationId: string, events: TrainingEvents): TrainingEvents {
  const guard =
    <A>(name: string, fn: (arg: A) => void) =>
    (arg: A) => {
      try {
        fn(arg);
      } catch (err) {
        console.error(`[trainer] ${operationId}: ${name} handler failed (training goes on):`, err);
      }
    };
  return {
    onStart: guard("onStart", (i) => events.onStart(i)),
    onEpoch: guard("onEpoch", (e) => events.onEpoch(e)),
    onProgress: guard("onProgress", (p) => events.onProgress(p)),
    onCheckpoints: guard("onCheckpoints", (list) => events.onCheckpoints?.(list)),
  };
}

/** How a training is started: the worker by default, a scripted stand-in in tests (local trainer and GPU host alike). */
export type StartTraining = typeof startWorkerTraining;
