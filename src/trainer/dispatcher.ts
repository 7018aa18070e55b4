/**
 * Where a training runs: locally in a worker, or on a GPU host. Agents cannot tell
 * the difference; the operation records it in `metadata.location` (and `.host`).
 */
import type { Trainers } from "./types.ts";
import type { Config } from "../config.ts";
import { TrainwatchError } from "../errors.ts";
import type { Hub } from "../hub.ts";
import type { Operation } from "../schemas/operation.ts";
import { specError, validateSpec, type NormalizedSpec, type TrainingSpecInput } from "../schemas/spec.ts";
import { resolveSpecPaths } from "./datasets/data_dir.ts";
import type { LocalTrainer } from "./local.ts";

export type Target = "local" | "host";

/** The GPU-host side of dispatch (src/hosts/pool.ts). */
export interface RemoteHosts {
  /**
   * Starts the session on the least busy reachable host. `open` creates the operation and returns
   * its id; it is called once a host has answered, so a start refused because no host answers
   * (HOST_UNAVAILABLE) has created nothing.
   */
  start(spec: NormalizedSpec, open: () => string): Promise<{ host: string }>;
  /** Tells the host to stop; returns a note when the host could not be reached. */
  cancel(op: Operation): Promise<Record<string, unknown> | null>;
  /** A checkpoint the operation's host kept, as a tar. */
  checkpoint(op: Operation, epoch: number): Promise<Uint8Array>;
  describe(): Record<string, unknown>;
}

export const INTERRUPTED = "interrupted: server restarted";
export const INTERRUPTED_BY_STOP = "interrupted: server stopped";

export class Dispatcher implements Trainers {
  constructor(
    private readonly hub: Hub,
    private readonly local: LocalTrainer,
    private readonly hosts: RemoteHosts | null,
    private readonly config: Pick<Config, "useHostService" | "dataDir" | "maxModelMb">,
  ) {}

  async start(input: TrainingSpecInput, requested?: Target): Promise<Operation> {
    const target: Target = requested ?? (this.config.useHostService ? "host" : "local");
    // The cross-field rules the schema cannot express (e.g. a val_* monitor needs a validation split), and the memory budget.
    const checked = validateSpec(input, { maxModelMb: this.config.maxModelMb });
    if (!checked.ok) throw specError("body", checked);
    const spec = checked.spec;
    // A local training reads its CSV here, so the file must be in this server's data directory; a host checks its own.
    // The operation keeps the path as given; only the worker gets the resolved one.
    const runSpec = target === "local" ? resolveSpecPaths(spec, this.config.dataDir, "body") : spec;
    const store = this.hub.store;
    const create = () =>
      this.hub.createOperation({
        operation_type: "training",
        name: spec.name,
        total_epochs_planned: spec.training.epochs,
        status: "pending",
        metadata: { location: target, spec },
      }).operation_id;
    if (target === "local") {
      const id = create();
      this.local.submit(id, runSpec);
      return store.getOperation(id)!;
    }
    // A refused request stores nothing: a 503 leaves no operation behind, not even a failed one.
    if (!this.hosts) throw new TrainwatchError("HOST_UNAVAILABLE", "no training host configured (set TRAINING_HOST_URL)");
    let id: string | null = null;
    try {
      const { host } = await this.hosts.start(spec, () => (id = create()));
      this.hub.mergeMetadata(id!, { host });
      store.touch(id!);
      // Running from here: the host trains at once, and the liveness watchdog only watches running operations.
      this.hub.markStarted(id!);
      return store.getOperation(id!)!;
    } catch (err) {
      // A host answered /health but refused the session: the operation it was created for goes too,
      // unless it was cancelled while the host was being asked (then the cancel is what the user sees).
      if (id !== null) store.discardOperation(id);
      if (err instanceof TrainwatchError) throw err;
      throw new TrainwatchError("HOST_UNAVAILABLE", err instanceof Error ? err.message : String(err));
    }
  }

  async cancel(op: Operation): Promise<Record<string, unknown> | null> {
    if (op.metadata.location === "host") return this.hosts ? this.hosts.cancel(op) : null;
    this.local.cancel(op.operation_id);
    return null;
  }

  async checkpoint(op: Operation, epoch: number): Promise<Uint8Array> {
    if (op.metadata.location !== "host") return this.local.checkpoint(op.operation_id, epoch);
    if (!this.hosts) throw new TrainwatchError("HOST_UNAVAILABLE", "no training host configured (set TRAINING_HOST_URL)", { operation_id: op.operation_id });
    return this.hosts.checkpoint(op, epoch);
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
