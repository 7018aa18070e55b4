// Main-thread side of a local training: one Bun Worker per training, driven through Comlink, always terminated at the
// end so its TF.js memory goes with it. Nothing heavy runs here; this module never imports TF.js.

import * as Comlink from "comlink";
import { TrainwatchError, type ErrorCode } from "../errors.ts";
import type { NormalizedSpec } from "../schemas/spec.ts";
import type { TrainingEvents, TrainingResult } from "./types.ts";
import type { TrainerWorkerApi, WorkerOutcome } from "./worker.ts";

export interface WorkerTraining {
  /** Resolves with the result (also when cancelled); rejects with TrainwatchError: WORKER_EXITED, or the training's own error. */
  done: Promise<TrainingResult>;
  /** Asks the worker to stop before its next batch; `done` then resolves with stop_reason "cancelled". */
  cancel(): void;
}

export interface WorkerTrainingArgs {
  operationId: string;
  spec: NormalizedSpec;
  modelsDir: string;
}

/** Test seam: another worker script (e.g. one that crashes). */
export interface WorkerTrainingOptions {
  workerUrl?: string | URL;
}

const TRAINING_ERROR_CODES: ReadonlySet<string> = new Set<ErrorCode>(["VALIDATION_ERROR", "TRAINING_FAILED"]);

/**
 * Starts a training in a new worker. Event handlers run on this thread; one that throws is logged with the operation id
 * and the training goes on.
 */
export function startWorkerTraining(args: WorkerTrainingArgs, events: TrainingEvents, options: WorkerTrainingOptions = {}): WorkerTraining {
  const { operationId } = args;
  const worker = new Worker(options.workerUrl ?? new URL("./worker.ts", import.meta.url).href);
  const cancelFlag = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  const channel = new MessageChannel();
  Comlink.expose(guarded(operationId, events), channel.port1);
  const api = Comlink.wrap<TrainerWorkerApi>(worker);

  let finished = false;
  const done = new Promise<TrainingResult>((resolve, reject) => {
    const exited = (why: string) => {
      if (finished) return;
      reject(new TrainwatchError("WORKER_EXITED", `training worker of ${operationId} exited unexpectedly: ${why}`, { operation_id: operationId }));
    };
    worker.addEventListener("error", (e) => exited(e.message || "uncaught error"));
    worker.addEventListener("messageerror", () => exited("a message could not be deserialised"));
    // Bun fires "close" when the worker's thread ends, whatever the cause.
    worker.addEventListener("close", (e) => exited(`exit code ${(e as Event & { code?: number }).code ?? "unknown"}`));
    api
      .train(args.spec, { modelsDir: args.modelsDir, operationId, cancelFlag }, Comlink.transfer(channel.port2, [channel.port2]))
      .then(
        (outcome: WorkerOutcome) => {
          if (outcome.ok) return resolve(outcome.result);
          const code = outcome.error.code !== null && TRAINING_ERROR_CODES.has(outcome.error.code) ? (outcome.error.code as ErrorCode) : "TRAINING_FAILED";
          reject(new TrainwatchError(code, outcome.error.message, { operation_id: operationId, ...outcome.error.details }));
        },
        (err: unknown) => exited(err instanceof Error ? err.message : String(err)),
      );
  }).finally(() => {
    finished = true;
    api[Comlink.releaseProxy]();
    channel.port1.close();
    worker.terminate();
  });
  return {
    done,
    cancel: () => {
      Atomics.store(cancelFlag, 0, 1);
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
  };
}
