/**
 * The `host` executor: a recipe a GPU host declares, run there (`bun run src/host`), picked by the host pool
 * (src/host_pool/pool.ts, unchanged in what it decides: the least busy reachable host that declares the recipe).
 * A thin adapter: the host relays the run's epochs and end itself, and the host watchdog handles a silent host, so
 * `state` asks the host's session and `recover` has nothing to do (host sessions outlive the API). Its external id is
 * the host's URL (the session there is keyed by the operation id).
 */
import type { Operation } from "../schemas/operation.ts";
import type { Session } from "../schemas/host.ts";
import type { LogLines, RecipeList, RecipeRequest } from "../schemas/recipe.ts";
import type { Params } from "../recipes/recipe.ts";
import type { Executor, ExecutorState, Job, Submitted } from "./executor.ts";

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
  /** What `host` says of the session (HostPool.probeSession). */
  probeSession(
    host: string,
    operationId: string,
  ): Promise<{ kind: "session"; session: Session } | { kind: "gone" } | { kind: "unreachable"; error: string }>;
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

  /** What the operation's host says of its session; `unknown` when it cannot be asked (the watchdog handles that). */
  async state(op: Operation): Promise<ExecutorState> {
    const host = typeof op.metadata.host === "string" ? op.metadata.host : null;
    if (!host) return { state: "unknown", message: `operation ${op.operation_id} records no training host` };
    const probe = await this.pool.probeSession(host, op.operation_id);
    if (probe.kind === "unreachable") return { state: "unknown", message: probe.error };
    if (probe.kind === "gone") return { state: "unknown", message: `the training host ${host} no longer has it` };
    const s = probe.session;
    if (s.status === "running") return { state: "running", node: host };
    return {
      state: "finished",
      status: s.status,
      failure_code: s.status === "failed" ? "trainer_error" : null,
      message: s.error_message,
    };
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
