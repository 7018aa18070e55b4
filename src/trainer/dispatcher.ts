/**
 * Where a training runs: a built-in spec locally in a worker or on a GPU host; a declared recipe on an executor
 * (src/executors: local, host, and what else is registered, Slurm next) picked by its target. Agents cannot tell the
 * difference; the operation records it in `metadata.location` (and `.host`), and a recipe's in `executor` and
 * `external_id`.
 */
import type { RunLabels, Trainers } from "./types.ts";
import type { Config } from "../config.ts";
import { TrainwatchError, invalid } from "../errors.ts";
import type { OperationsService } from "../operations/service.ts";
import type { Operation } from "../schemas/operation.ts";
import type { NormalizedSpec, TrainingSpecInput } from "../schemas/spec.ts";
import { specError, validateSpec } from "../schemas/spec_rules.ts";
import { resolveSpecPaths } from "./datasets/data_dir.ts";
import type { LocalTrainer } from "./local.ts";
import { normalizeStopPolicy } from "../operations/stop_policy.ts";
import type { LogLines, RecipeList, RecipeRequest, Target } from "../schemas/recipe.ts";
import { CONFIGURE, scriptMetadata, type Executor, type Submitted } from "../executors/executor.ts";
import { HostExecutor, type HostScripts } from "../executors/host.ts";
import { LocalExecutor, type LocalScripts } from "../executors/local.ts";
import { Executors, chooseTarget } from "../executors/registry.ts";

import { INTERRUPTED } from "../executors/executor.ts";

export { INTERRUPTED };

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
}

export const INTERRUPTED_BY_STOP = "interrupted: server stopped";

/** Run by this process and lost with it: local trainings and imports (metadata.location "import", src/tensorboard). */
const RUNS_HERE = (op: Operation) => op.metadata.location === "local" || op.metadata.location === "import";

export class Dispatcher implements Trainers {
  /** The recipe executors by name: this server's script runner, the GPU hosts, and what else is registered (Slurm). */
  readonly executors = new Executors();

  constructor(
    private readonly operations: OperationsService,
    private readonly local: LocalTrainer,
    private readonly hosts: (RemoteHosts & HostScripts) | null,
    private readonly config: Pick<Config, "useHostService" | "dataDir" | "maxModelMb">,
    private readonly scripts: LocalScripts | null = null,
  ) {
    if (scripts) this.executors.register(new LocalExecutor(scripts, local, operations));
    if (hosts) this.executors.register(new HostExecutor(hosts));
  }

  async start(input: TrainingSpecInput, requested?: Target, labels: RunLabels = {}): Promise<Operation> {
    if (requested === "slurm")
      throw invalid("body.target", "a built-in spec trains locally or on a GPU host; slurm runs declared recipes");
    const target = requested ?? (this.config.useHostService ? "host" : "local");
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
          ...labels,
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

  /**
   * A declared recipe on its executor (chooseTarget: the request's target when the recipe allows it, else the recipe's
   * first). The executor checks the request first (prepare: 400 naming the field, 503 when unreachable), so a refused
   * one stores nothing; then the operation is created with its executor, and submitted. Only the submit itself is
   * undone on failure (the operation removed again, unless it was cancelled meanwhile: then the cancel is what the user
   * sees); once the executor took the run, a failure to record it keeps the operation (its run exists) and is logged.
   */
  async startRecipe(req: RecipeRequest, labels: RunLabels = {}): Promise<Operation> {
    const declared = this.scripts?.declared(req.recipe) ?? null;
    const target = chooseTarget(req.target, declared, this.config.useHostService ? "host" : "local");
    const executor = this.executors.get(target);
    const job = await executor.prepare(req);
    const op = await this.operations.createOperation({
      operation_type: "training",
      name: req.name ?? job.recipe,
      total_epochs_planned: job.planned_epochs,
      status: "pending",
      metadata: scriptMetadata(job.recipe, job.params, executor.location),
      stop_policy: req.stop_policy ? normalizeStopPolicy(req.stop_policy) : null,
      // Run by this process: on a shared database it is leased to this replica.
      owned: executor.location === "local",
      executor: executor.name,
      ...labels,
    });
    const id = op.operation_id;
    let submitted: Submitted;
    try {
      submitted = await executor.submit(op, job);
    } catch (err) {
      await this.operations.discardOperation(id);
      throw err;
    }
    return this.handedOver(id, submitted);
  }

  /**
   * Starts a training on a host: `start` asks the pool, calling `created(id)` once it made the operation. The
   * operation runs from then (the host trains at once, and the liveness watchdog only watches running operations).
   * A refused request stores nothing: if the host answered /health but refused the session, the operation made
   * for it goes too, unless it was cancelled while the host was being asked (then the cancel is what the user sees).
   */
  private async onHost(start: (created: (id: string) => string) => Promise<{ host: string }>): Promise<Operation> {
    let id: string | null = null;
    let host: string;
    try {
      ({ host } = await start((made) => (id = made)));
    } catch (err) {
      if (id !== null) await this.operations.discardOperation(id);
      throw err;
    }
    return this.handedOver(id!, { external_id: null, metadata: { host }, running: true });
  }

  /**
   * Records what an executor or host said when it took the run (its metadata, its external id, started when it runs
   * at once). The run exists by then, so a failure here keeps the operation, is logged with its id, and reaches the
   * caller as it is (an unknown error: the generic INTERNAL_ERROR).
   */
  private async handedOver(id: string, submitted: Submitted): Promise<Operation> {
    try {
      if (submitted.metadata) await this.operations.mergeMetadata(id, submitted.metadata);
      if (submitted.running) {
        await this.operations.touch(id);
        await this.operations.markStarted(id);
      }
      const now = (await this.operations.reader.getOperation(id))!;
      if (submitted.external_id !== null && now.external_id !== submitted.external_id)
        return await this.operations.setExternalId(id, submitted.external_id);
      return now;
    } catch (err) {
      console.error(`[trainer] operation ${id}: handed over, but recording it failed:`, err);
      throw err;
    }
  }

  /** Every executor's recipes (this server's first), with the GPU hosts asked and their errors. */
  async recipes(): Promise<RecipeList> {
    const lists = await Promise.all(this.executors.all().map((e) => e.recipes()));
    const hostList = lists.flatMap((l) => l.hosts);
    // A recipe this server declares once, whatever number of its targets have an executor.
    const seen = new Set<string>();
    const recipes = lists
      .flatMap((l) => l.recipes)
      .filter((r) => {
        const key = `${r.host ?? ""}|${r.name}`;
        return !seen.has(key) && (seen.add(key), true);
      });
    return { recipes, hosts: hostList };
  }

  async logs(op: Operation, tail: number): Promise<LogLines> {
    return this.executorOf(op).logs(op, tail);
  }

  async logStream(op: Operation, tail: number, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const executor = this.executorOf(op);
    if (!executor.logStream)
      throw new TrainwatchError(
        "NOT_FOUND",
        `operation ${op.operation_id} has no live log: its ${executor.name} executor gives its log at the end (GET /operations/{id}/logs)`,
        { operation_id: op.operation_id, executor: executor.name },
      );
    return executor.logStream(op, tail, signal);
  }

  /**
   * The executor that keeps the operation's log: its own, else (a built-in or client run, or an executor not configured
   * here) this server's runner, which answers 404 saying why it has none. 404 when this server runs no scripts.
   */
  private executorOf(op: Operation): Executor {
    const executor = this.executors.of(op) ?? (this.executors.has("local") ? this.executors.get("local") : null);
    if (!executor)
      throw new TrainwatchError("NOT_FOUND", `operation ${op.operation_id} has no logs on this server`, {
        operation_id: op.operation_id,
      });
    return executor;
  }

  async cancel(op: Operation): Promise<Record<string, unknown> | null> {
    // A recipe's executor stops it (an older row without one: by its location, as below).
    if (op.executor !== null) {
      const executor = this.executors.of(op);
      if (executor) return executor.cancel(op);
      // Not configured here (say after a restart without it): nothing was told to stop, and the note says so. The stop
      // stays owed, so the executor, once configured again, still cancels the run (Store.cancelsOwed).
      const name = op.executor as Target;
      return {
        [name]: `no ${name} executor is configured on this server, so its run (${op.external_id ?? "no external id"}) was not told to stop: ${CONFIGURE[name] ?? "configure it"}`,
        owed: op.external_id,
      };
    }
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
   * At start: local trainings the previous process was running cannot resume; each executor recovers its own
   * (Executor.recover: the local one fails its scripts, a cluster finds its jobs again). On a shared database only
   * this replica id's own (a restart under the same TRAINWATCH_REPLICA_ID); another replica's are left to its lease.
   */
  async recoverInterrupted(): Promise<string[]> {
    const builtIn = await this.operations.failInterrupted((op) => RUNS_HERE(op) && op.executor === null, INTERRUPTED);
    const recovered = await Promise.all(this.executors.all().map((e) => e.recover()));
    return [...builtIn, ...recovered.flat()];
  }

  describe(): Record<string, unknown> {
    return {
      local: this.local.describe(),
      hosts: this.hosts?.describe() ?? null,
      // Each executor's own state, by name (Slurm: whether slurmrestd answers, the outage's message, its polls).
      executors: Object.fromEntries(this.executors.all().map((e) => [e.name, e.describe()])),
    };
  }
}
