/**
 * Script trainings on the API's machine (the `local` executor's runner, src/executors/local.ts): a declared recipe
 * run as a child process in the local trainings' queue
 * (same limit as built-in ones; GPU recipes also wait for a free GPU). The script reports its epochs itself, with
 * the Python client attached to the operation (TRAINWATCH_OPERATION_ID); this only decides what its exit means:
 * 0 → completed, anything else → failed with the last lines of stderr, unless the script finished the operation
 * itself or it was cancelled meanwhile.
 */
import type { OperationsService } from "../operations/service.ts";
import { TrainwatchError } from "../errors.ts";
import { TRAINER_ERROR } from "../operations/lifecycle.ts";
import type { Operation } from "../schemas/operation.ts";
import type { LogLines, RecipeRequest, RecipeView } from "../schemas/recipe.ts";
import { checkParams, type Params, type Recipe } from "../recipes/recipe.ts";
import type { LocalTrainer } from "../trainer/local.ts";
import type { JobEnv } from "../executors/executor.ts";
import type { LocalScripts } from "../executors/local.ts";
import type { LogStore } from "./logs.ts";
import type { RecipeBook } from "../recipes/book.ts";
import { logEventStream } from "./log_stream.ts";
import { failureMessage, startScript, type ScriptExit } from "./runner.ts";

export interface ScriptTrainerOptions {
  book: RecipeBook;
  logs: LogStore;
  killGraceMs: number;
  /** The API's URL as a child on this machine reaches it (read when a script starts): its runs' TRAINWATCH_URL. */
  apiUrl: () => string;
  /** TRAINWATCH_TOKEN of its runs. */
  token: string | null;
  /** GPU names by id, for metadata.gpu_visible. */
  gpuNames?: Record<string, string | null>;
}

const active = (op: Operation | null) => op !== null && (op.status === "pending" || op.status === "running");

export class ScriptTrainer implements LocalScripts {
  constructor(
    private readonly operations: OperationsService,
    private readonly local: LocalTrainer,
    private readonly opts: ScriptTrainerOptions,
  ) {}

  views(): RecipeView[] {
    return this.opts.book.views(null);
  }

  /** The recipe `name` as this server's file declares it; null when it does not. */
  declared(name: string): Recipe | null {
    return this.opts.book.has(name) ? this.opts.book.get(name) : null;
  }

  /** The declared recipe `name` (400 naming body.recipe when undeclared). */
  recipe(name: string): Recipe {
    return this.opts.book.get(name);
  }

  /** The environment of its runs: the API on loopback, the API's token. */
  env(operationId: string): JobEnv {
    return { api_url: this.opts.apiUrl(), token: this.opts.token, operation_id: operationId };
  }

  /** The recipe and checked params of a local request; 400 naming the field otherwise. Creates nothing. */
  resolve(req: RecipeRequest): { recipe: Recipe; params: Params } {
    const recipe = this.opts.book.get(req.recipe);
    const params = checkParams(recipe, req.params);
    const gpus = recipe.gpus ?? 0;
    if (gpus > this.local.gpus.length) {
      throw new TrainwatchError(
        "VALIDATION_ERROR",
        `body.recipe: recipe ${JSON.stringify(recipe.name)} needs ${gpus} GPU(s); this server has ${this.local.gpus.length} (TRAINWATCH_GPUS)`,
        { field: "body.recipe", recipe: recipe.name, gpus_needed: gpus, gpus: this.local.gpus.length },
      );
    }
    return { recipe, params };
  }

  /**
   * Queues the script of operation `id` (created pending by the Dispatcher) with the run's environment. Resolves with
   * its process group id when a free slot launched it at once (the operation then reads running), else null: it waits
   * in the local queue, the operation saying why (pending_reason), and starts when a slot (and its GPUs) frees up.
   */
  async launch(id: string, recipe: Recipe, params: Params, env: JobEnv): Promise<number | null> {
    // Set when a free slot launches the script at once: the reply then says running, with its pid.
    let launched: Promise<void> | null = null;
    let pid: number | null = null;
    const gpus = recipe.gpus ?? 0;
    const reason = `waiting for a free local slot (TRAINWATCH_MAX_LOCAL_TRAININGS)${gpus ? ` and ${gpus} free GPU(s)` : ""}`;
    // While it waits: why, and its place in line as the queue moves (in order, one write after another).
    let told: Promise<unknown> = Promise.resolve();
    this.local.submitTask(id, {
      gpus,
      queued: (position) => {
        told = told
          .then(() => this.operations.setPending(id, { reason, position }))
          .catch((err) => {
            // Started, cancelled or gone meanwhile: its place in line no longer matters.
            if (!(err instanceof TrainwatchError))
              console.error(`[scripts] operation ${id}: recording its place in line failed:`, err);
          });
      },
      launch: (devices) => {
        const run = startScript(
          { operationId: id, recipe, params, apiUrl: env.api_url, token: env.token, devices },
          { logs: this.opts.logs, killGraceMs: this.opts.killGraceMs },
        );
        pid = run.pid;
        // The exit is recorded after the start, however quickly the script ends.
        const recorded = this.recordStart(id, run.pid, run.argv, devices);
        launched = recorded;
        return {
          cancel: run.cancel,
          done: run.done.then(async (exit) => (await recorded, await this.settle(id, exit))),
        };
      },
    });
    if (launched) {
      await launched;
      return pid;
    }
    await told;
    return null;
  }

  logs(op: Operation, tail: number): LogLines {
    if (!this.opts.logs.has(op.operation_id)) throw noLogs(op);
    return { operation_id: op.operation_id, ...this.opts.logs.tail(op.operation_id, tail) };
  }

  logStream(op: Operation, tail: number): ReadableStream<Uint8Array> {
    if (!this.opts.logs.has(op.operation_id)) throw noLogs(op);
    return logEventStream(this.opts.logs, op.operation_id, tail);
  }

  private async recordStart(id: string, pid: number | null, argv: string[], devices: string[]): Promise<void> {
    try {
      const names = devices.map((d) => this.opts.gpuNames?.[d] ?? null).filter((n): n is string => n !== null);
      await this.operations.mergeMetadata(id, {
        pid,
        command: argv,
        cuda_visible_devices: devices.join(","),
        gpu_visible: names.length ? names.join(", ") : null,
      });
      // The run's id at its executor (src/executors/local.ts): its process group.
      if (pid !== null) await this.operations.setExternalId(id, String(pid));
      if (active(await this.operations.reader.getOperation(id))) await this.operations.markStarted(id);
    } catch (err) {
      console.error(`[scripts] ${id}: recording the start failed:`, err);
    }
  }

  /** The exit decides the status only while the operation is still open (the script did not finish it, nobody cancelled it). */
  private async settle(id: string, exit: ScriptExit): Promise<void> {
    try {
      const exitInfo = { exit_code: exit.exit_code, signal: exit.signal, duration_s: exit.duration_s };
      await this.operations.mergeMetadata(id, { exit: exitInfo });
      if (!active(await this.operations.reader.getOperation(id))) return;
      if (exit.exit_code === 0 && !exit.stopped) await this.operations.finish(id, "completed", { result: exitInfo });
      else
        await this.operations.finish(id, "failed", {
          error_message: failureMessage(exit),
          failure_code: TRAINER_ERROR,
          result: exitInfo,
        });
    } catch (err) {
      console.error(`[scripts] ${id}: recording the exit failed:`, err);
    }
  }
}

/** 404 for an operation that has no log on this side (not a script training, or its log is gone). */
export function noLogs(op: Pick<Operation, "operation_id" | "metadata">): TrainwatchError {
  const why =
    op.metadata.kind === "script"
      ? "its log is no longer on this machine"
      : "only script trainings (recipes) keep logs";
  return new TrainwatchError("NOT_FOUND", `operation ${op.operation_id} has no logs: ${why}`, {
    operation_id: op.operation_id,
  });
}
