/**
 * The `local` executor: a recipe run as a child process of this server (src/script_trainings/trainer.ts and
 * runner.ts, unchanged), in the local trainings' queue. A thin adapter: the runner reports the start, its place in
 * the queue while it waits, and the exit through the operations service; its external id is the process group id.
 */
import type { OperationsService } from "../operations/service.ts";
import type { Params, Recipe } from "../recipes/recipe.ts";
import type { Operation } from "../schemas/operation.ts";
import type { LogLines, RecipeRequest, RecipeView } from "../schemas/recipe.ts";
import { INTERRUPTED, ownJob, type Executor, type Job, type JobEnv, type Submitted } from "./executor.ts";

/** This machine's queue of trainings as the adapter reads it (src/trainer/local.ts LocalTrainer). */
export interface LocalQueue {
  /** Stops a queued or running training. True when it was known here. */
  cancel(operationId: string): boolean;
  describe(): Record<string, unknown>;
}

/**
 * The script runner as this adapter uses it: src/script_trainings/trainer.ts ScriptTrainer. An interface, so that
 * neither this adapter nor the Dispatcher imports how the runner's logs are served (the layering rule).
 */
export interface LocalScripts {
  /** The recipe and checked params of a request; 400 naming the field otherwise. Creates nothing. */
  resolve(req: RecipeRequest): { recipe: Recipe; params: Params };
  /** The recipe as this server's file declares it; null when it does not. */
  declared(name: string): Recipe | null;
  /** The declared recipe (400 naming body.recipe when undeclared). */
  recipe(name: string): Recipe;
  /** Its runs' environment: the API on loopback, the API's token. */
  env(operationId: string): JobEnv;
  /** Queues the script of a created operation; its process group id when it started at once, else null. */
  launch(id: string, recipe: Recipe, params: Params, env: JobEnv): Promise<number | null>;
  views(): RecipeView[];
  /** 404 when this server has no log of the operation. */
  logs(op: Operation, tail: number): LogLines;
  logStream(op: Operation, tail: number): ReadableStream<Uint8Array>;
}

export class LocalExecutor implements Executor {
  readonly name = "local" as const;
  readonly location = "local" as const;

  constructor(
    private readonly scripts: LocalScripts,
    private readonly local: LocalQueue,
    private readonly operations: OperationsService,
  ) {}

  async prepare(req: RecipeRequest): Promise<Job> {
    const { recipe, params } = this.scripts.resolve(req);
    return ownJob(recipe, params);
  }

  /** Queues the script; its process group id when a free slot started it at once, else null (set when it starts). */
  async submit(op: Operation, job: Job): Promise<Submitted> {
    const id = op.operation_id;
    const pid = await this.scripts.launch(id, this.scripts.recipe(job.recipe), job.params, this.scripts.env(id));
    return { external_id: pid === null ? null : String(pid) };
  }

  async logs(op: Operation, tail: number): Promise<LogLines> {
    return this.scripts.logs(op, tail);
  }

  async logStream(op: Operation, tail: number): Promise<ReadableStream<Uint8Array>> {
    return this.scripts.logStream(op, tail);
  }

  /** The runner's stop: SIGTERM to the process group, SIGKILL after TRAINWATCH_KILL_GRACE (a queued one is dropped). */
  async cancel(op: Operation): Promise<Record<string, unknown> | null> {
    this.local.cancel(op.operation_id);
    return null;
  }

  /**
   * A local script cannot outlive the API (what the previous process left was killed at start, runner.ts
   * killLeftovers): the ones still pending or running fail as interrupted. On a shared database only this replica's.
   */
  recover(): Promise<string[]> {
    return this.operations.failInterrupted((op) => op.executor === this.name, INTERRUPTED);
  }

  async recipes() {
    return { recipes: this.scripts.views(), hosts: [] };
  }

  describe(): Record<string, unknown> {
    return { queue: this.local.describe() };
  }
}
