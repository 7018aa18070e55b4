/**
 * The `host` executor: a recipe a GPU host declares, run there (`bun run src/host`), picked by the host pool
 * (src/host_pool/pool.ts, unchanged in what it decides: the least busy reachable host that declares the recipe).
 * A thin adapter: the host relays the run's epochs and end itself, and the host watchdog handles a silent host, so
 * `recover` has nothing to do (host sessions outlive the API). Its external id is
 * the host's URL (the session there is keyed by the operation id).
 */
import type { Operation } from "../schemas/operation.ts";
import type { LogLines, RecipeList, RecipeRequest } from "../schemas/recipe.ts";
import type { Params } from "../recipes/recipe.ts";
import type { Executor, Job, Submitted } from "./executor.ts";

/**
 * The host pool as this executor uses it: src/host_pool/pool.ts HostPool (an interface, so executors/ sits below the
 * pool and the Dispatcher in the layers).
 */
export interface HostScripts {
  /** The reachable hosts that declare the recipe, least busy first, and the params checked; creates nothing. */
  prepareScript(req: RecipeRequest): Promise<{ hosts: string[]; params: Params; planned: number | null }>;
  /** The session on the first of `hosts` that takes it; HOST_UNAVAILABLE when none does. */
  submitScript(
    operationId: string,
    recipe: string,
    params: Params,
    hosts: readonly string[],
  ): Promise<{ host: string }>;
  recipes(): Promise<RecipeList>;
  logs(op: Operation, tail: number): Promise<LogLines>;
  logStream(op: Operation, tail: number, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>>;
  cancel(op: Operation): Promise<Record<string, unknown> | null>;
  describe(): Record<string, unknown>;
}

export class HostExecutor implements Executor {
  readonly name = "host" as const;
  readonly location = "host" as const;

  constructor(private readonly pool: HostScripts) {}

  /** The reachable hosts that declare the recipe and its params checked against it (HostPool.prepareScript). */
  async prepare(req: RecipeRequest): Promise<Job> {
    const { hosts, params, planned } = await this.pool.prepareScript(req);
    // A host's recipe runs there with that host's GPUs: its resources are the host's business, not the API's.
    return {
      recipe: req.recipe,
      params,
      resources: { gpus: 0, cpus: null, memory_mb: null, time_limit_minutes: null },
      planned_epochs: planned,
      candidates: hosts,
    };
  }

  /**
   * The session on the first candidate host that takes it (its TRAINWATCH_URL: the API's public one); the host's URL is
   * the external id, recorded with metadata.host. The operation runs from then (`running`): the host trains at once, and
   * the liveness watchdog only watches running operations.
   */
  async submit(op: Operation, job: Job): Promise<Submitted> {
    const id = op.operation_id;
    const { host } = await this.pool.submitScript(id, job.recipe, job.params, job.candidates);
    return { external_id: host, metadata: { host }, running: true };
  }

  logs(op: Operation, tail: number): Promise<LogLines> {
    return this.pool.logs(op, tail);
  }

  logStream(op: Operation, tail: number, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    return this.pool.logStream(op, tail, signal);
  }

  /** DELETE /sessions/{id} on its host (the host's runner: SIGTERM, then SIGKILL after its grace). */
  cancel(op: Operation): Promise<Record<string, unknown> | null> {
    return this.pool.cancel(op);
  }

  /** Nothing to find again: a host keeps its sessions and relays to the API when it is back. */
  async recover(): Promise<string[]> {
    return [];
  }

  recipes() {
    return this.pool.recipes();
  }

  describe(): Record<string, unknown> {
    return this.pool.describe();
  }
}
