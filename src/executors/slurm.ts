/**
 * The `slurm` executor: a recipe with `target: "slurm"` run as a Slurm batch job, through slurmrestd (slurm_rest.ts),
 * so the API needs no login node. The job's script is one `exec` of the recipe's argv, every word quoted
 * (slurm_script.ts); the Trainwatch URL (TRAINWATCH_PUBLIC_URL, else the bound address), token and operation id travel
 * in the job's environment, with PATH (slurmrestd passes none) and the recipe's own variables. Its external id is the
 * Slurm job id; the operation's location is `cluster`.
 *
 * Unlike a local script, nothing here hears the job end: `poll` reads the queue (one `GET /jobs` for every unfinished
 * Slurm operation, not one call per job) and writes what changed through the operations service: pending with
 * Slurm's reason and queue position, running (the node in metadata.node), finished with a failure_code
 * (slurm_states.ts). The server runs it as a leader job every TRAINWATCH_SLURM_POLL. slurmrestd down: the operations
 * keep their state, one warning per outage, submissions fail with SLURM_UNREACHABLE naming the URL.
 *
 * Logs: the job writes stdout and stderr to one file, `trainwatch-<operation id>.out` in TRAINWATCH_SLURM_LOG_DIR (a
 * folder the nodes and the API share; default the recipe's cwd), its path recorded in metadata.output. The API reads its tail where it can read the file
 * (404 saying so otherwise); the live stream follows the file as it grows.
 */
import { join } from "node:path";
import { TrainwatchError } from "../errors.ts";
import { LOST, refinesTermination } from "../operations/lifecycle.ts";
import type { OperationsService } from "../operations/service.ts";
import { argvOf, checkParams, viaOf, type Recipe } from "../recipes/recipe.ts";
import type { Operation } from "../schemas/operation.ts";
import type { LogLines, RecipeRequest, RecipeView } from "../schemas/recipe.ts";
import {
  ownJob,
  type LogFeed,
  type Executor,
  type ExecutorState,
  type Job,
  type JobEnv,
  type Submitted,
} from "./executor.ts";
import { isUnknownJob, type SlurmJob, type SlurmJobSpec, type SlurmSignal } from "./slurm_rest.ts";
import { batchScript, jobEnvironment } from "./slurm_script.ts";
import { paramsText } from "../recipes/run_env.ts";
import { FileFollower, tailFile } from "./file_tail.ts";
import { SlurmQueue, slurmOutcome } from "./slurm_states.ts";

/** What the executor asks of slurmrestd (SlurmRestClient; a fake in the unit tests). */
export interface SlurmApi {
  submit(script: string, job: SlurmJobSpec): Promise<number>;
  jobs(): Promise<SlurmJob[]>;
  job(id: number): Promise<SlurmJob | null>;
  cancel(id: number, signal?: SlurmSignal): Promise<void>;
}

/** The recipe file as this executor reads it (src/recipes/book.ts RecipeBook). */
export interface SlurmRecipes {
  /** The declared recipe (400 naming `field` when undeclared). */
  get(name: string, field?: string): Recipe;
  views(host: null): RecipeView[];
}

export interface SlurmExecutorOptions {
  api: SlurmApi;
  /** slurmrestd's URL, for the messages. */
  url: string;
  recipes: SlurmRecipes;
  operations: OperationsService;
  /** The job's environment: the API's URL as the nodes reach it (read at each submit), its token. */
  env: (operationId: string) => JobEnv;
  /** Where jobs write their output; null: the recipe's cwd. */
  logDir: string | null;
  /** Serves a followed log as Server-Sent Events (src/script_trainings/log_stream.ts feedEventStream); none: no live log. */
  stream?: (feed: LogFeed, signal?: AbortSignal) => ReadableStream<Uint8Array>;
  log?: (line: string) => void;
}

/** Polls a run its trainer finished is asked about while its job still reads running (Slurm's KillWait, 30 s by default). */
const SETTLE_POLLS = 30;

const jobIdOf = (op: Operation): number | null => {
  const n = op.external_id === null ? Number.NaN : Number(op.external_id);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
};

export class SlurmExecutor implements Executor {
  readonly name = "slurm" as const;
  readonly location = "cluster" as const;
  /** The message of the outage in progress (one warning each), null while slurmrestd answers. */
  private outage: string | null = null;
  private polls = 0;
  /** The Slurm runs the last poll found unfinished, with their job ids. */
  private watched = new Map<string, number>();
  /** Runs their trainer finished, waiting for their job's end in Slurm (settle). */
  private settling = new Map<string, { jobId: number; polls: number }>();

  constructor(private readonly opts: SlurmExecutorOptions) {}

  /** The recipe from this server's file and its params checked (400 naming the field); creates nothing. */
  async prepare(req: RecipeRequest): Promise<Job> {
    const recipe = this.opts.recipes.get(req.recipe);
    return ownJob(recipe, checkParams(recipe, req.params));
  }

  /** The output file of an operation's job: stdout and stderr together, in arrival order. */
  private outputOf(op: Pick<Operation, "operation_id">, recipe: Recipe): string {
    return join(this.opts.logDir ?? recipe.cwd, `trainwatch-${op.operation_id}.out`);
  }

  /**
   * Submits the batch job (its argv quoted, its resources, the recipe's `slurm` settings); the job id. The operation
   * stays pending until the poller sees the job run. SLURM_UNREACHABLE (503) naming the URL when slurmrestd does not
   * answer, SLURM_REFUSED (502) with Slurm's reason when it refuses.
   */
  async submit(op: Operation, job: Job): Promise<Submitted> {
    const id = op.operation_id;
    const recipe = this.opts.recipes.get(job.recipe);
    const argv = argvOf(recipe, job.params);
    const output = this.outputOf(op, recipe);
    const env = this.opts.env(id);
    const r = job.resources;
    const slurm = recipe.slurm ?? {};
    const gres = [r.gpus > 0 ? `gpu:${r.gpus}` : null, slurm.gres ?? null].filter((g) => g !== null).join(",");
    const spec: SlurmJobSpec = {
      name: `trainwatch-${job.recipe}`.slice(0, 128),
      current_working_directory: recipe.cwd,
      standard_output: output,
      standard_error: output,
      environment: jobEnvironment({
        url: env.api_url,
        token: env.token,
        operationId: id,
        env: recipe.env,
      }),
      ...(slurm.partition ? { partition: slurm.partition } : {}),
      ...(slurm.account ? { account: slurm.account } : {}),
      ...(slurm.qos ? { qos: slurm.qos } : {}),
      ...(r.cpus !== null ? { cpus_per_task: r.cpus } : {}),
      ...(r.memory_mb !== null ? { memory_per_node: r.memory_mb } : {}),
      ...(r.time_limit_minutes !== null ? { time_limit: r.time_limit_minutes } : {}),
      ...(gres ? { gres } : {}),
    };
    const params = viaOf(recipe).includes("file") ? paramsText(job.params) : null;
    const jobId = await this.opts.api.submit(batchScript(argv, params), spec);
    return { external_id: String(jobId), metadata: { command: argv, output } };
  }

  /**
   * Reads the queue once and applies each unfinished Slurm operation's state (applyState), then retries the cancels
   * owed (payCancels). Returns what it changed, by operation id. slurmrestd unreachable: nothing changes, one warning per outage.
   */
  async poll(): Promise<Record<string, ExecutorState["state"]>> {
    const reader = this.opts.operations.reader;
    const ops = await reader.unfinishedOf(this.name);
    const owed = await reader.cancelsOwed(this.name);
    const tracked = ops.filter((op) => jobIdOf(op) !== null);
    // A run tracked last poll that is no longer unfinished ended by its trainer's word: settle it with Slurm's (below).
    const now = new Set(tracked.map((op) => op.operation_id));
    for (const [id, jobId] of this.watched) if (!now.has(id)) this.settling.set(id, { jobId, polls: 0 });
    this.watched = new Map(tracked.map((op) => [op.operation_id, jobIdOf(op) as number]));
    if (tracked.length === 0 && this.settling.size === 0 && owed.length === 0) return {};
    let jobs: SlurmQueue<SlurmJob>;
    const changed: Record<string, ExecutorState["state"]> = {};
    try {
      // Indexed once: each tracked run's lookup is then O(1), not a scan of the cluster's queue.
      jobs = new SlurmQueue(await this.opts.api.jobs());
      if (this.outage !== null) this.warn(`[slurm] slurmrestd at ${this.opts.url} answers again`);
      this.outage = null;
      this.polls++;
      for (const op of tracked) {
        const state = await this.stateIn(jobIdOf(op) as number, jobs);
        if (await applyState(this.opts.operations, op, state)) changed[op.operation_id] = state.state;
      }
      await this.settle(jobs, changed);
      await this.payCancels(owed);
    } catch (err) {
      if (!(err instanceof TrainwatchError) || (err.code !== "SLURM_UNREACHABLE" && err.code !== "SLURM_REFUSED"))
        throw err;
      if (this.outage === null)
        this.warn(`[slurm] cannot read the queue; Slurm trainings keep their state: ${err.message}`);
      this.outage = err.message;
    }
    return changed;
  }

  /**
   * The job's state in `jobs`; a job no longer listed is asked for alone, and one Slurm no longer knows at all
   * (finished longer than its MinJobAge ago, while no API was polling) fails `lost`: how it ended is unknown, and the
   * next sign of life from its trainer revives it as for any lost run.
   */
  private async stateIn(jobId: number, jobs: SlurmQueue<SlurmJob>): Promise<ExecutorState> {
    const state = stateOf(jobId, jobs);
    if (state.state !== "unknown" || jobs.job(jobId) !== undefined) return state;
    const one = await this.opts.api.job(jobId);
    if (one) return stateOf(jobId, new SlurmQueue([one]));
    return {
      state: "finished",
      status: "failed",
      failure_code: LOST,
      message: `Slurm no longer knows job ${jobId}: it ended while no Trainwatch API was polling (Slurm keeps a finished job for its MinJobAge, 300 s by default), so how it ended is unknown`,
    };
  }

  /**
   * Runs whose trainer finished them since the last poll, read against Slurm's state once the job has ended: at a time
   * limit or a preemption the client's SIGTERM goodbye (failed, terminated) arrives before Slurm's state, whose cause
   * (time_limit, preempted, node_fail, out_of_memory) then refines it (lifecycle.ts refinesTermination; any other
   * finish stands). A job still completing is asked again for up to SETTLE_POLLS polls. Kept in memory: a restart in
   * between leaves `terminated`.
   */
  private async settle(jobs: SlurmQueue<SlurmJob>, changed: Record<string, ExecutorState["state"]>): Promise<void> {
    for (const [id, entry] of this.settling) {
      const state = await this.stateIn(entry.jobId, jobs);
      if (state.state === "pending" || state.state === "running") {
        if (++entry.polls >= SETTLE_POLLS) this.settling.delete(id);
        continue;
      }
      this.settling.delete(id);
      if (state.state !== "finished" || state.status !== "failed" || state.failure_code === LOST) continue;
      const op = await this.opts.operations.reader.getOperation(id);
      if (op && refinesTermination(op, state.status, state.failure_code)) {
        if (await applyState(this.opts.operations, op, state)) changed[id] = state.state;
      }
    }
  }

  /** The last `tail` lines of the job's output file; 404 when this server cannot read it (not shared with the nodes). */
  async logs(op: Operation, tail: number): Promise<LogLines> {
    const path = this.logPath(op);
    const { lines, truncated } = await this.readTail(op, path, tail, true);
    return {
      operation_id: op.operation_id,
      lines,
      truncated,
      running: op.status === "pending" || op.status === "running",
    };
  }

  /**
   * The job's output live: its last `tail` lines, then each line as the job writes it (the file polled: no watcher sees
   * another machine's writes), then `end` once the operation is finished and the file read to its end.
   */
  async logStream(op: Operation, tail: number, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    if (!this.opts.stream)
      throw new TrainwatchError("NOT_FOUND", `operation ${op.operation_id}: this server serves no live Slurm log`, {
        operation_id: op.operation_id,
      });
    const path = this.logPath(op);
    const first = await this.readTail(op, path, tail, false);
    const follower = new FileFollower(path, first.size);
    const reader = this.opts.operations.reader;
    const id = op.operation_id;
    const feed: LogFeed = {
      operation_id: id,
      lines: first.lines,
      next: async () => {
        // Read the status first: the lines written before it finished are all in the file by then.
        const current = await reader.getOperation(id);
        const finished = current === null || !(current.status === "pending" || current.status === "running");
        const lines = await follower.read(finished);
        return finished && lines.length === 0 ? null : lines;
      },
    };
    return this.opts.stream(feed, signal);
  }

  /** The file's tail; a job still pending has written nothing yet (no file: no lines), any other unreadable file is a 404. */
  private async readTail(op: Operation, path: string, tail: number, partial: boolean) {
    try {
      return await tailFile(path, tail, partial);
    } catch (err) {
      if (op.status === "pending" && (err as NodeJS.ErrnoException).code === "ENOENT")
        return { lines: [], truncated: false, size: 0 };
      throw noLog(op, path, (err as Error).message);
    }
  }

  /**
   * The job's output file as recorded at submit (metadata.output), so a recipe renamed or moved since changes nothing;
   * an operation submitted before it was recorded: where its recipe puts it now.
   */
  private logPath(op: Operation): string {
    if (typeof op.metadata.output === "string") return op.metadata.output;
    const recipe = typeof op.metadata.recipe === "string" ? op.metadata.recipe : null;
    if (recipe === null) throw noLog(op, "(none)", "it records no recipe");
    return this.outputOf(op, this.opts.recipes.get(recipe, "recipe"));
  }

  /**
   * Cancels the job as `scancel` does (a plain DELETE): SIGTERM to its processes, so the Python client's goodbye is
   * sent, then SIGKILL after Slurm's KillWait. A job Slurm no longer knows has nothing to stop. When Slurm cannot be
   * told (slurmrestd down, or refusing), the note says the stop is owed (`owed`: the job id), and the poller retries it
   * (payCancels) until Slurm takes it: a cancelled operation never leaves its queued job to start later.
   */
  async cancel(op: Operation): Promise<Record<string, unknown> | null> {
    const jobId = jobIdOf(op);
    if (jobId === null) return { slurm: "no Slurm job id recorded: nothing to cancel" };
    try {
      await this.opts.api.cancel(jobId);
      return null;
    } catch (err) {
      if (!(err instanceof TrainwatchError)) throw err;
      if (isUnknownJob(err)) return { slurm: `Slurm no longer knows job ${jobId}: nothing to stop` };
      return {
        slurm: `job ${jobId} is not cancelled yet (${err.message}); Trainwatch retries until Slurm takes the cancel`,
        owed: jobId,
      };
    }
  }

  /**
   * The cancels owed (Store.cancelsOwed), retried once slurmrestd answered this poll's queue read; each one Slurm takes
   * (or a job it no longer knows) replaces the note. Still refused: owed, retried next poll; unreachable: an outage.
   */
  private async payCancels(owed: readonly Operation[]): Promise<void> {
    for (const op of owed) {
      const jobId = jobIdOf(op);
      let note: string;
      if (jobId === null) note = "no Slurm job id recorded: nothing to cancel";
      else {
        try {
          await this.opts.api.cancel(jobId);
          note = `job ${jobId} cancelled (Slurm could not be told at once; Trainwatch retried)`;
        } catch (err) {
          if (!(err instanceof TrainwatchError) || err.code === "SLURM_UNREACHABLE") throw err;
          if (!isUnknownJob(err)) continue;
          note = `Slurm no longer knows job ${jobId}: nothing to stop`;
        }
      }
      await this.opts.operations.mergeMetadata(op.operation_id, { cancel: { slurm: note } });
    }
  }

  /**
   * After an API restart: Slurm's jobs outlived the API, so nothing is ended; one poll brings every unfinished Slurm
   * operation up to date (what ended meanwhile, ended; what runs, running). slurmrestd down: they keep their state.
   */
  async recover(): Promise<string[]> {
    await this.poll();
    return [];
  }

  async recipes() {
    return { recipes: this.opts.recipes.views(null), hosts: [] };
  }

  describe(): Record<string, unknown> {
    return { url: this.opts.url, reachable: this.outage === null, outage: this.outage, polls: this.polls };
  }

  private warn(line: string): void {
    (this.opts.log ?? console.warn)(line);
  }
}

/**
 * An operation's state from the queue Slurm returned (pure): pending with Slurm's reason and the job's place in its
 * partition's queue, running on its node, finished as slurm_states.ts maps it; `unknown` when the job is not in
 * `jobs` or its state is one the table does not know.
 */
function stateOf(jobId: number, jobs: SlurmQueue<SlurmJob>): ExecutorState {
  const job = jobs.job(jobId);
  if (!job) return { state: "unknown", message: `Slurm does not list job ${jobId}` };
  const outcome = slurmOutcome(job);
  if (outcome === null)
    return { state: "unknown", message: `Slurm job ${jobId} is in state ${job.state}, which Trainwatch does not map` };
  switch (outcome.status) {
    case "pending":
      return { state: "pending", reason: outcome.reason, position: jobs.position(jobId) };
    case "running":
      return { state: "running", node: job.nodes };
    case "failed":
      return { state: "finished", status: "failed", failure_code: outcome.failure_code, message: outcome.message };
    case "completed":
      return { state: "finished", status: "completed", failure_code: null, message: null };
    case "cancelled":
      return {
        state: "finished",
        status: "cancelled",
        failure_code: null,
        message: `Slurm job ${jobId} was cancelled${job.reason ? ` (${job.reason})` : ""}`,
      };
  }
}

/**
 * Writes `state` onto `op` through the operations service when it says something new; true when it changed anything.
 * Pending: the reason and position (setPending). Running: started (markStarted) and metadata.node. Finished: the
 * operation finishes as Slurm says, unless its trainer (the Python client) finished it first, which wins (a cancel
 * recorded by the API included). Unknown: nothing (the next poll asks again).
 */
async function applyState(operations: OperationsService, op: Operation, state: ExecutorState): Promise<boolean> {
  const id = op.operation_id;
  try {
    switch (state.state) {
      case "pending":
        if (op.status !== "pending") return false;
        if (op.pending_reason === state.reason && op.queue_position === state.position) return false;
        await operations.setPending(id, { reason: state.reason, position: state.position });
        return true;
      case "running": {
        let changed = false;
        if (state.node !== null && op.metadata.node !== state.node) {
          await operations.mergeMetadata(id, { node: state.node });
          changed = true;
        }
        if (op.status === "pending") {
          await operations.markStarted(id);
          changed = true;
        }
        return changed;
      }
      case "finished":
        await operations.finish(id, state.status, {
          error_message: state.message,
          failure_code: state.status === "failed" ? state.failure_code : null,
        });
        return true;
      case "unknown":
        return false;
    }
  } catch (err) {
    // Finished by its trainer or a cancel since the list was read: that end stands.
    if (err instanceof TrainwatchError && err.code === "OPERATION_FINISHED") return false;
    throw err;
  }
}

const noLog = (op: Operation, path: string, why: string) =>
  new TrainwatchError(
    "NOT_FOUND",
    `operation ${op.operation_id}: this server cannot read its Slurm job's output ${path} (${why}); TRAINWATCH_SLURM_LOG_DIR must be a folder the nodes and the API share`,
    { operation_id: op.operation_id },
  );
