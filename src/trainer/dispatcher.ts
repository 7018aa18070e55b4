/**
 * Where a training runs: locally in a worker, or on a GPU host. Agents cannot tell
 * the difference; the operation records it in `metadata.location` (and `.host`).
 */
import type { Trainers } from "../app.ts";
import type { Config } from "../config.ts";
import { TrainwatchError } from "../errors.ts";
import type { Hub } from "../hub.ts";
import { FINISHED, type Operation } from "../schemas/operation.ts";
import { specError, validateSpec, type NormalizedSpec, type TrainingSpecInput } from "../schemas/spec.ts";
import type { LocalTrainer } from "./local.ts";

export type Target = "local" | "host";

/** The GPU-host side of dispatch (src/host/dispatch.ts). */
export interface RemoteHosts {
  /** Starts the session on the least busy reachable host; throws HOST_UNAVAILABLE when none answers. */
  start(operationId: string, spec: NormalizedSpec): Promise<{ host: string }>;
  /** Tells the host to stop; returns a note when the host could not be reached. */
  cancel(op: Operation): Promise<Record<string, unknown> | null>;
  describe(): Record<string, unknown>;
}

export const INTERRUPTED = "interrupted: server restarted";
export const INTERRUPTED_BY_STOP = "interrupted: server stopped";

export class Dispatcher implements Trainers {
  constructor(
    private readonly hub: Hub,
    private readonly local: LocalTrainer,
    private readonly hosts: RemoteHosts | null,
    private readonly config: Pick<Config, "useHostService">,
  ) {}

  async start(input: TrainingSpecInput, requested?: Target): Promise<Operation> {
    const target: Target = requested ?? (this.config.useHostService ? "host" : "local");
    // The cross-field rules the schema cannot express (e.g. a val_* monitor needs a validation split).
    const checked = validateSpec(input);
    if (!checked.ok) throw specError("body", checked);
    const spec = checked.spec;
    const store = this.hub.store;
    const op = store.createOperation({
      operation_type: "training",
      name: spec.name,
      total_epochs_planned: spec.training.epochs,
      status: "pending",
      metadata: { location: target, spec },
    });
    const id = op.operation_id;
    if (target === "local") {
      this.local.submit(id, spec);
      return store.getOperation(id)!;
    }
    if (!this.hosts) {
      const msg = "no training host configured (set TRAINING_HOST_URL)";
      this.hub.finish(id, "failed", { error_message: msg });
      throw new TrainwatchError("HOST_UNAVAILABLE", msg, { operation_id: id });
    }
    try {
      const { host } = await this.hosts.start(id, spec);
      store.mergeMetadata(id, { host });
      store.touch(id);
      // Running from here: the host trains at once, and the liveness watchdog only watches running operations.
      this.hub.markStarted(id);
      return store.getOperation(id)!;
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      // Not left dangling: the operation is failed with the reason, then the client gets 503
      // (unless it was cancelled while the host was being asked).
      const current = store.getOperation(id);
      if (current && !FINISHED.has(current.status)) this.hub.finish(id, "failed", { error_message: msg });
      if (err instanceof TrainwatchError) throw new TrainwatchError(err.code, err.message, { ...err.details, operation_id: id });
      throw new TrainwatchError("HOST_UNAVAILABLE", msg, { operation_id: id });
    }
  }

  async cancel(op: Operation): Promise<Record<string, unknown> | null> {
    if (op.metadata.location === "host") return this.hosts ? this.hosts.cancel(op) : null;
    this.local.cancel(op.operation_id);
    return null;
  }

  /** At shutdown: local trainings end as failed (they cannot resume) and their workers stop. */
  async shutdown(): Promise<void> {
    this.hub.store.failInterrupted((op) => op.metadata.location === "local", INTERRUPTED_BY_STOP);
    await this.local.stopAll();
  }

  /** At start: local trainings the previous process was running cannot resume. */
  recoverInterrupted(): string[] {
    return this.hub.store.failInterrupted((op) => op.metadata.location === "local", INTERRUPTED);
  }

  describe(): Record<string, unknown> {
    return { local: this.local.describe(), hosts: this.hosts?.describe() ?? null };
  }
}
