/**
 * Trainings on this host: each session runs the same worker as a local training and
 * hands every event to the relay outbox, so the API sees exactly what a local
 * training would write. Nothing here waits on the API.
 */
import { TrainwatchError } from "../errors.ts";
import { TRAINER_ERROR } from "../operations/lifecycle.ts";
import { isCancelControl } from "../operations/stop_policy.ts";
import type { Checkpoint } from "../schemas/checkpoint.ts";
import { checkpointDir, checkpointTar } from "../trainer/checkpoints.ts";
import { encodeEpoch } from "../schemas/epoch.ts";
import type { BatchProgress } from "../schemas/host.ts";
import type { Session, SessionStatus } from "../schemas/host.ts";
import type { NormalizedSpec } from "../schemas/spec.ts";
import type { StartTraining } from "../trainer/worker_client.ts";
import type { TrainingResult } from "../trainer/types.ts";
import type { StartReport } from "../schemas/host.ts";
import { startWorkerTraining } from "../trainer/worker_client.ts";
import type { Outbox } from "./outbox.ts";
import { pruneFinished, sessionOf, sessionView, type SessionCore } from "./session_table.ts";
import type { StopControl } from "../schemas/control.ts";

interface State extends SessionCore {
  progress: BatchProgress | null;
  backend: string | null;
  /** The checkpoints the training has written so far (relayed as they change). */
  checkpoints: Checkpoint[];
  /** Stopped by a host shutdown rather than a cancel. */
  interrupted: boolean;
  /** Stopped by the operation's control (its stop policy fired): it finishes `completed`. */
  stopRequested: boolean;
  handle: { cancel(): void; stop?(): void; done: Promise<TrainingResult> };
}

/** The error an operation gets when its host is shut down while training it. */
export const HOST_STOPPED = "interrupted: training host stopped";

export interface SessionsOptions {
  outbox: Outbox;
  modelsDir: string;
  /** Starts one training; the default runs it in a worker thread. Tests pass a scripted one. */
  start?: StartTraining;
  /** Finished sessions kept for GET /sessions/{id} (default 200). */
  keep?: number;
  log?: (line: string) => void;
}

export class Sessions {
  private readonly sessions = new Map<string, State>();
  /** The backend the latest session's worker picked (null before the first). */
  lastStart: StartReport | null = null;

  private readonly log: (line: string) => void;

  constructor(private readonly opts: SessionsOptions) {
    this.log = opts.log ?? ((line) => console.log(line));
  }

  /** Starts training. Idempotent: a retried POST for a running session returns it unchanged. */
  start(input: { operation_id: string; spec: NormalizedSpec; api_url: string }): Session {
    const id = input.operation_id;
    const existing = this.sessions.get(id);
    if (existing?.status === "running") return this.view(existing);
    const { outbox } = this.opts;
    outbox.open(id, input.api_url);
    const log = this.log;
    const s: State = {
      operationId: id,
      apiUrl: input.api_url,
      status: "running",
      startedAt: new Date().toISOString(),
      finishedAt: null,
      epochs: 0,
      progress: null,
      backend: null,
      error: null,
      checkpoints: [],
      interrupted: false,
      stopRequested: false,
      // Replaced just below; the events close over `s`, and a scripted trainer may fire them before it returns.
      handle: { cancel: () => {}, done: Promise.resolve({} as TrainingResult) },
    };
    s.handle = (this.opts.start ?? startWorkerTraining)(
      { operationId: id, spec: input.spec, modelsDir: this.opts.modelsDir },
      {
        onStart: (info) => {
          this.lastStart = info;
          s.backend = info.backend;
          outbox.started(id, info);
        },
        onEpoch: (epoch) => {
          s.epochs++;
          try {
            outbox.epoch(id, encodeEpoch(epoch));
          } catch (err) {
            log(
              `[host] ${id}: keeping epoch ${epoch.epoch} for the relay failed (training goes on): ${(err as Error).message}`,
            );
          }
        },
        onProgress: (p) => {
          s.progress = p;
          outbox.progress(id, p);
        },
        onCheckpoints: (list) => {
          s.checkpoints = list;
          try {
            outbox.checkpoints(id, list);
          } catch (err) {
            log(
              `[host] ${id}: keeping the checkpoint list for the relay failed (training goes on): ${(err as Error).message}`,
            );
          }
        },
      },
    );
    this.sessions.delete(id);
    this.sessions.set(id, s);
    this.prune();
    log(`[host] ${id}: training started, relaying to ${input.api_url}`);
    s.handle.done.then(
      (result) => {
        const data = result as unknown as Record<string, unknown>;
        if (s.interrupted) {
          this.settle(s, "failed", HOST_STOPPED);
          outbox.close(id, { status: "failed", error_message: HOST_STOPPED, result: data });
        } else if (result.stop_reason === "cancelled" && !s.stopRequested) {
          this.settle(s, "cancelled", null);
          outbox.close(id, { status: "cancelled", result: data });
        } else {
          this.settle(s, "completed", null);
          outbox.close(id, { status: "completed", result: data });
        }
        log(
          `[host] ${id}: ${s.status} after ${s.epochs} epoch(s); ${outbox.pending(id)} relay item(s) still to deliver`,
        );
      },
      (err: Error) => {
        log(`[host] ${id}: training failed: ${err.message}`);
        this.settle(s, "failed", err.message);
        // Like a local training: what the epochs before the failure left is still listed.
        const result = s.checkpoints.length > 0 ? { checkpoints: s.checkpoints } : null;
        outbox.close(id, { status: "failed", error_message: err.message, failure_code: TRAINER_ERROR, result });
      },
    );
    return this.view(s);
  }

  /** The session's state; NOT_FOUND when this host does not know it. */
  get(operationId: string): Session {
    return this.view(this.state(operationId));
  }

  /**
   * A checkpoint of one of this host's trainings as a tar, read from `<modelsDir>/<operationId>/checkpoints/epoch-<N>/`
   * (so it outlives the session and a host restart); CHECKPOINT_NOT_FOUND when that folder is not there.
   */
  checkpoint(operationId: string, epoch: number): Uint8Array {
    return checkpointTar(checkpointDir(this.opts.modelsDir, operationId, epoch), () => {
      const kept = this.sessions.get(operationId)?.checkpoints.map((c) => c.epoch);
      const which = kept?.length ? `; it keeps epochs ${[...new Set(kept)].join(", ")}` : "";
      return new TrainwatchError(
        "CHECKPOINT_NOT_FOUND",
        `this host has no checkpoint of epoch ${epoch} for operation ${operationId}${which}`,
        {
          operation_id: operationId,
          epoch,
        },
      );
    });
  }

  /** Stops a running session and waits up to `waitMs` for its worker to stop. */
  async cancel(operationId: string, waitMs = 2000): Promise<Session> {
    const s = this.state(operationId);
    if (s.status === "running") {
      s.handle.cancel();
      await Promise.race([s.handle.done.catch(() => {}), Bun.sleep(waitMs)]);
    }
    return this.view(s);
  }

  /** The API takes no more relays for this operation (cancelled there, say): stop training. */
  stopFromApi(operationId: string, reason: string): void {
    const s = this.sessions.get(operationId);
    if (s?.status !== "running") return;
    this.log(`[host] ${operationId}: stopping training, the API answered: ${reason}`);
    s.handle.cancel();
  }

  /**
   * A stop in an API reply: a cancel's (a relay the cancelled operation still took, src/operations/lifecycle.ts
   * canAcceptRows, answers 200 carrying it) cancels the training as a 409 would; a stop policy's stops it (stopFromControl).
   */
  heedControl(operationId: string, control: StopControl): void {
    if (isCancelControl(control)) this.stopFromApi(operationId, control.reason);
    else this.stopFromControl(operationId, control);
  }

  /**
   * The API recorded a stop decision on the operation (its stop policy fired): stop before the next batch and finish
   * `completed`, keeping the result and checkpoints. A runner without stop() is cancelled and still completes.
   */
  stopFromControl(operationId: string, control: StopControl): void {
    const s = this.sessions.get(operationId);
    if (s?.status !== "running" || s.stopRequested) return;
    s.stopRequested = true;
    this.log(`[host] ${operationId}: stopping training, ${control.decided_by} decided: ${control.reason}`);
    (s.handle.stop ?? s.handle.cancel).call(s.handle);
  }

  /** Host shutdown: stops every running training; each ends as failed (HOST_STOPPED). Resolves when all have stopped. */
  async shutdown(waitMs = 5000): Promise<void> {
    const running = [...this.sessions.values()].filter((s) => s.status === "running");
    for (const s of running) {
      s.interrupted = true;
      s.handle.cancel();
    }
    await Promise.race([Promise.all(running.map((s) => s.handle.done.catch(() => {}))), Bun.sleep(waitMs)]);
  }

  active(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.status === "running") n++;
    return n;
  }

  private state(operationId: string): State {
    return sessionOf(this.sessions, operationId);
  }

  private settle(s: State, status: SessionStatus, error: string | null): void {
    s.status = status;
    s.error = error;
    s.progress = null;
    s.finishedAt = new Date().toISOString();
  }

  private prune(): void {
    pruneFinished(this.sessions, this.opts.keep);
  }

  private view(s: State): Session {
    return sessionView(s, this.opts.outbox, { progress: s.progress, backend: s.backend });
  }
}
