/**
 * Where a declared training (a recipe) runs: one small interface for this server's script runner (`local`), a GPU
 * host (`host`) and a cluster's scheduler (`slurm`, next). The routes, MCP and the dashboard see only this; the
 * Dispatcher (src/trainer/dispatcher.ts) picks one by the request's or the recipe's target from the registry
 * (src/executors/registry.ts). The built-in TF.js trainer is not an executor: it trains a spec, not a recipe.
 *
 * A start has two steps so that a refused request stores nothing: `prepare` checks the request on the executor's
 * side (its recipe, params, resources; 400 naming the field, 503 when it cannot be reached) and creates nothing; the
 * Dispatcher then creates the operation (its `executor` recorded from the first moment) and calls `submit`, which
 * hands the run over and returns its external id (a process group, a host's URL, a Slurm job id) and what to record;
 * it does nothing after the handover, so a submit that throws has started nothing and leaves no operation behind
 * (Store.discardOperation).
 *
 * What each executor does with the operation afterwards, through the operations service: the local runner and the
 * GPU host report the status themselves as today (the script's exit, the host's relay); a cluster executor polls its
 * scheduler and writes what it learns as an ExecutorState (OperationsService.setPending, markStarted, finish with a
 * failure_code; src/executors/slurm.ts applyState).
 */
import type { Operation } from "../schemas/operation.ts";
import type { FailureCode } from "../operations/lifecycle.ts";
import type { Location } from "../operations/ownership.ts";
import type { LogLines, RecipeRequest, RecipeView, Target } from "../schemas/recipe.ts";
import { plannedEpochs, resourcesOf, type Params, type Recipe, type Resources } from "../recipes/recipe.ts";

/** A request as the executor will run it: the recipe it resolved, the checked params (defaults filled), the resources. */
export interface Job {
  /** The recipe's name (declared on this server, or on the host that will run it). */
  recipe: string;
  params: Params;
  resources: Resources;
  /** The operation's planned epochs (the recipe's epochs_param), null when it declares none. */
  planned_epochs: number | null;
  /**
   * Where the executor found the recipe, in the order it will try them: the GPU hosts that declare it, least busy
   * first. Empty for an executor that runs its own book's recipes (local, slurm).
   */
  candidates: string[];
}

/**
 * What a run needs to attach to its operation as `trainwatch.init()` does: TRAINWATCH_URL (as the run's machine
 * reaches the API), TRAINWATCH_TOKEN and TRAINWATCH_OPERATION_ID. Each executor builds it from its own configuration,
 * because the address differs by where the run is: the API's loopback for a local script, TRAINWATCH_PUBLIC_URL for a
 * GPU host or a cluster node (a host relays with a token of its own: it is told only the URL).
 */
export interface JobEnv {
  api_url: string;
  token: string | null;
  operation_id: string;
}

/**
 * What the executor returned for a submit, recorded by the Dispatcher once the run is handed over: the run's id there
 * (null when it has none yet: a queued local script), the server-owned metadata to add, and `running` when the run
 * started at once (a GPU host trains as soon as it takes the session).
 */
export interface Submitted {
  external_id: string | null;
  metadata?: Record<string, unknown>;
  running?: boolean;
}

/**
 * The run as its executor sees it now. `pending` with the reason and queue position it gives (null: it does not say);
 * `running` with the node it runs on (null: not known); `finished` with the operation status it maps to and, for a
 * failure, its failure_code and message; `unknown` when it cannot be asked now (a scheduler or host down: the
 * operation keeps its state, the executor asks again later).
 */
export type ExecutorState =
  | { state: "pending"; reason: string | null; position: number | null }
  | { state: "running"; node: string | null }
  | {
      state: "finished";
      status: "completed" | "failed" | "cancelled";
      failure_code: FailureCode | null;
      message: string | null;
    }
  | { state: "unknown"; message: string };

export interface Executor {
  /** Its name: what a recipe's or a request's `target` says, and the operation's `executor` column. */
  readonly name: Target;
  /** The operation's location (metadata.location): where the liveness rules and the checkpoint route look. */
  readonly location: Location;
  /** The request checked on its side: 400 naming the field (an unknown recipe, a bad param); 503 when unreachable. Creates nothing. */
  prepare(req: RecipeRequest): Promise<Job>;
  /**
   * Hands the job over for `op` (created, pending) with its resources and the run's environment (JobEnv); returns its
   * external id and what to record, which the Dispatcher writes. Throws (and nothing runs) when refused; the handover
   * is its last step, so a throw never leaves a run behind.
   */
  submit(op: Operation, job: Job): Promise<Submitted>;
  /** The last `tail` lines it printed; 404 when the executor keeps no log of it, 503 when it cannot be reached. */
  logs(op: Operation, tail: number): Promise<LogLines>;
  /** Its log as an SSE byte stream (the tail, live lines, `end`), where the executor can follow it live. */
  logStream?(op: Operation, tail: number, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>>;
  /**
   * Stops the run: SIGTERM first, so the Python client's goodbye is sent, then a kill after a grace. Returns a note to
   * record on the operation (say the host could not be told), or null.
   */
  cancel(op: Operation): Promise<Record<string, unknown> | null>;
  /**
   * After an API restart: finds its operations again and keeps their state (a cluster's jobs outlive the API), or
   * ends the ones that cannot have survived (a local script died with the API). Returns the ids it ended.
   */
  recover(): Promise<string[]>;
  /** The recipes it can run, as GET /recipes lists them, with the hosts it asked (and their errors). */
  recipes(): Promise<{ recipes: RecipeView[]; hosts: { host: string; error: string | null; recipes: number }[] }>;
  describe(): Record<string, unknown>;
}

/** The Job of a recipe run from this server's own file (local, slurm): its resources and planned epochs from the recipe. */
export function ownJob(recipe: Recipe, params: Params): Job {
  return {
    recipe: recipe.name,
    params,
    resources: resourcesOf(recipe),
    planned_epochs: plannedEpochs(recipe, params),
    candidates: [],
  };
}

/**
 * A log that is followed by polling (a file another machine writes): its last lines now, then `next` for each new batch
 * ([] none yet), null once the run is over and everything was read. src/script_trainings/log_stream.ts serves it as
 * the same Server-Sent Events as a local script's log.
 */
export interface LogFeed {
  /** The operation whose log it is (for the server's log when a read fails). */
  operation_id: string;
  lines: string[];
  next(): Promise<string[] | null>;
}

/** The metadata every script training records, wherever it runs (its executor's location). */
export function scriptMetadata(recipe: string, params: Params, location: Location): Record<string, unknown> {
  return { location, kind: "script", recipe, params };
}

/** The error_message of a training whose run could not survive an API restart (a local one: it died with the API). */
export const INTERRUPTED = "interrupted: server restarted";

/**
 * What to configure for an executor this server does not have: the end of the 400 a request naming it gets. One table,
 * so the route, MCP and the docs say the same.
 */
export const CONFIGURE: Readonly<Record<Target, string>> = {
  local: "this server runs no script trainings",
  host: "set TRAINING_HOST_URL (or USE_TRAINING_HOST_SERVICE=true) to the GPU hosts running `bun run src/host`",
  slurm:
    "set TRAINWATCH_SLURM_URL, TRAINWATCH_SLURM_USER and TRAINWATCH_SLURM_TOKEN (or TRAINWATCH_SLURM_TOKEN_FILE); see docs/clusters.md",
};
