// Worker entry: runs one training (engine.ts) off the main thread. The main side (worker_client.ts) calls `train`
// through Comlink and gets every event back over a MessagePort of its own.

import { Value } from "@sinclair/typebox/value";
import * as Comlink from "comlink";
import { TrainwatchError } from "../errors.ts";
import { describeProblem } from "../schemas/explain.ts";
import { NormalizedTrainingSpec, type NormalizedSpec } from "../schemas/spec.ts";
import { runTraining } from "./engine.ts";
import type { TrainingEvents, TrainingResult } from "./types.ts";

export interface WorkerRunOptions {
  modelsDir: string;
  operationId: string;
  /** Int32Array over a SharedArrayBuffer; the main thread stores CANCEL or STOP (types.ts). */
  cancelFlag: Int32Array;
}

/** Errors come back as data: Comlink's own error transfer keeps only name and message, and the code matters. */
export type WorkerOutcome =
  | { ok: true; result: TrainingResult }
  | { ok: false; error: { message: string; code: string | null; details: Record<string, unknown> | null } };

export interface TrainerWorkerApi {
  /** `events` is a MessagePort exposing TrainingEvents on the main thread (Comlink.expose). */
  train(spec: NormalizedSpec, opts: WorkerRunOptions, events: MessagePort): Promise<WorkerOutcome>;
}

const api: TrainerWorkerApi = {
  async train(spec, opts, eventsPort) {
    const events = Comlink.wrap<TrainingEvents>(eventsPort);
    try {
      if (!Value.Check(NormalizedTrainingSpec, spec)) {
        const p = describeProblem(NormalizedTrainingSpec, spec, "spec");
        throw new TrainwatchError("VALIDATION_ERROR", p?.message ?? "spec: invalid", { field: p?.field ?? "spec" });
      }
      // The Comlink remote returns promises; the engine awaits onEpoch and fire-and-forgets onProgress.
      const result = await runTraining(spec, opts, events as unknown as TrainingEvents);
      return { ok: true, result };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      // The caller logs and records the message; only an unexpected error (a bug, not bad input) needs its stack here.
      if (!(err instanceof TrainwatchError)) console.error(`[trainer] ${opts.operationId}: ${e.stack ?? e.message}`);
      return {
        ok: false,
        error: {
          message: e.message,
          code: err instanceof TrainwatchError ? err.code : null,
          details: err instanceof TrainwatchError ? err.details : null,
        },
      };
    } finally {
      events[Comlink.releaseProxy]();
      eventsPort.close();
    }
  },
};

Comlink.expose(api);
