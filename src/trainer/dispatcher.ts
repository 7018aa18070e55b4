/**
 * Where a training runs: locally in a worker, or on a GPU host. Agents cannot tell
 * the difference; the operation records it in `metadata.location` (and `.host`).
 */
import type { Trainers } from "./types.ts";
import type { Config } from "../config.ts";
import { TrainwatchError } from "../errors.ts";
import type { OperationsService } from "../operations/service.ts";
import type { Operation } from "../schemas/operation.ts";
import type { NormalizedSpec, TrainingSpecInput } from "../schemas/spec.ts";
import { specError, validateSpec } from "../schemas/spec_rules.ts";
import { resolveSpecPaths } from "./datasets/data_dir.ts";
import type { LocalTrainer } from "./local.ts";
import { normalizeStopPolicy } from "../operations/stop_policy.ts";
import type { LogLines, RecipeList, RecipeRequest, RecipeView } from "../schemas/recipe.ts";

export type Target = "local" | "host";

/** The GPU-host side of dispatch (src/host_pool/pool.ts). */
export interface RemoteHosts {
  /**
   * Starts the session on the least busy reachable host. `open` creates the operation and returns
   * its id; it is called once a host has answered, so a start refused because no host answers
   * (HOST_UNAVAILABLE) has created nothing.
   */
  start(spec: NormalizedSpec, open: () => Promise<string>): Promise<{ host: string }>;
  /** Tells the host to stop; returns a note when the host could not be reached. */
  cancel(op: Operation): Promise<Record<string, unknown> | null>;
  /** A checkpoint the operation's host kept, as a tar. */
  checkpoint(op: Operation, epoch: number): Promise<Uint8Array>;
  describe(): Record<string, unknown>;
  /** Script trainings on a host: the host checks the recipe and params (a 400 passes through, naming the field). */
  startScript?(
    req: RecipeRequest,
    open: (planned: number | null, params: Record<string, unknown>) => Promise<string>,
  ): Promise<{ host: string }>;
  recipes?(): Promise<RecipeList>;
  logs?(op: Operation, tail: number): Promise<LogLines>;
  logStream?(op: Operation, tail: number, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>>;
}

/** Script trainings on this server (src/script_trainings/trainer.ts), as the dispatcher uses them. */
export interface LocalScripts {
  start(req: RecipeRequest): Promise<Operation>;
  views(): RecipeView[];
  /** 404 when this server has no log of the operation. */
  logs(op: Operation, tail: number): LogLines;
  logStream(op: Operation, tail: number): ReadableStream<Uint8Array>;
}

export const INTERRUPTED = "interrupted: server restarted";

export const INTERRUPTED_BY_STOP = "interrupted: server stopped";

/** Run by this process and lost with it: local trainings and imports (metadata.location "import", src/tensorboard). */
const RUNS_HERE = (op: Operation) => op.metadata.location === "local" || op.metadata.location === "import";

export class Dispatcher implements Trainers {
  constructor(
    private readonly operations: OperationsService,
    private readonly local: LocalTrainer,
    private readonly hosts: RemoteHosts | null,
    private readonly config: Pick<Config, "useHostService" | "dataDir" | "maxModelMb">,
    private readonly scripts: LocalScripts | null = null,
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
    const store = this.operations.reader;
    const create = async () =>
      (
        await this.operations.createOperation({
          operation_type: "training",
          name: spec.name,
          total_epochs_planned: spec.training.epochs,
          status: "pending",
          metadata: { location: target, spec },
          // Run by this process: on a shared database it is leased to this replica.
          owned: target === "local",
        })
      ).operation_id;
    if (target === "local") {
      const id = await create();
      this.local.submit(id, runSpec);
      return (await store.getOperation(id))!;
    }
    // A refused request stores nothing: a 503 leaves no operation behind, not even a failed one.
    if (!this.hosts)
      throw new TrainwatchError("HOST_UNAVAILABLE", "no training host configured (set TRAINING_HOST_URL)");
    return this.onHost((created) => this.hosts!.start(spec, async () => created(await create())));
  }

  async startRecipe(req: RecipeRequest): Promise<Operation> {
    const target: Target = req.target ?? (this.config.useHostService ? "host" : "local");
    if (target === "local") {
      if (!this.scripts) throw new TrainwatchError("HOST_UNAVAILABLE", "this server runs no script trainings");
      return this.scripts.start(req);
    }
    if (!this.hosts?.startScript)
      throw new TrainwatchError("HOST_UNAVAILABLE", "no training host configured (set TRAINING_HOST_URL)");
    const startScript = this.hosts.startScript.bind(this.hosts);
    return this.onHost((created) =>
      startScript(req, async (planned, params) =>
        created(
          (
            await this.operations.createOperation({
              operation_type: "training",
              name: req.name ?? req.recipe,
              total_epochs_planned: planned,
              status: "pending",
              metadata: { location: "host", kind: "script", recipe: req.recipe, params },
              stop_policy: req.stop_policy ? normalizeStopPolicy(req.stop_policy) : null,
            })
          ).operation_id,
        ),
      ),
    );
  }

  /**
   * Starts a training on a host: `start` asks the pool, calling `created(id)` once it made the operation. The
   * operation runs from then (the host trains at once, and the liveness watchdog only watches running operations).
   * A refused request stores nothing: if the host answered /health but refused the session, the operation made
   * for it goes too, unless it was cancelled while the host was being asked (then the cancel is what the user sees).
   */
  private async onHost(start: (created: (id: string) => string) => Promise<{ host: unknown }>): Promise<Operation> {
    let id: string | null = null;
    try {
      const { host } = await start((made) => (id = made));
      await this.operations.mergeMetadata(id!, { host });
      await this.operations.touch(id!);
      await this.operations.markStarted(id!);
      return (await this.operations.reader.getOperation(id!))!;
    } catch (err) {
      if (id !== null) await this.operations.discardOperation(id);
      if (err instanceof TrainwatchError) throw err;
      throw new TrainwatchError("HOST_UNAVAILABLE", err instanceof Error ? err.message : String(err));
    }
  }

  async recipes(): Promise<RecipeList> {
    const local = this.scripts ? this.scripts.views() : [];
    const remote = this.hosts?.recipes ? await this.hosts.recipes() : { recipes: [], hosts: [] };
    return { recipes: [...local, ...remote.recipes], hosts: remote.hosts };
  }

  async logs(op: Operation, tail: number): Promise<LogLines> {
    if (op.metadata.location === "host" && this.hosts?.logs) return this.hosts.logs(op, tail);
    return this.localScripts(op).logs(op, tail);
  }

  async logStream(op: Operation, tail: number, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    if (op.metadata.location === "host" && this.hosts?.logStream) return this.hosts.logStream(op, tail, signal);
    return this.localScripts(op).logStream(op, tail);
  }

  private localScripts(op: Operation): LocalScripts {
    if (!this.scripts)
      throw new TrainwatchError("NOT_FOUND", `operation ${op.operation_id} has no logs on this server`, {
        operation_id: op.operation_id,
      });
    return this.scripts;
  }

  async cancel(op: Operation): Promise<Record<string, unknown> | null> {
    if (op.metadata.location === "host") return this.hosts ? this.hosts.cancel(op) : null;
    this.local.cancel(op.operation_id);
    return null;
  }

  async checkpoint(op: Operation, epoch: number): Promise<Uint8Array> {
    if (op.metadata.location !== "host") return this.local.checkpoint(op.operation_id, epoch);
    if (!this.hosts)
      throw new TrainwatchError("HOST_UNAVAILABLE", "no training host configured (set TRAINING_HOST_URL)", {
        operation_id: op.operation_id,
      });
    return this.hosts.checkpoint(op, epoch);
  }

  /** At shutdown: this process's local trainings end as failed (they cannot resume) and their workers stop. */
  async shutdown(): Promise<void> {
    await this.operations.failInterrupted(RUNS_HERE, INTERRUPTED_BY_STOP);
    await this.local.stopAll();
  }

  /**
   * At start: local trainings the previous process was running cannot resume. On a shared database only this replica
   * id's own (a restart under the same TRAINWATCH_REPLICA_ID); another replica's are left to its lease.
   */
  recoverInterrupted(): Promise<string[]> {
    return this.operations.failInterrupted(RUNS_HERE, INTERRUPTED);
  }

  describe(): Record<string, unknown> {
    return { local: this.local.describe(), hosts: this.hosts?.describe() ?? null };
  }
}
