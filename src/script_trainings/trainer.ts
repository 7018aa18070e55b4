/**
 * Script trainings on the API's machine: a declared recipe run as a child process in the local trainings' queue
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
import { checkParams, plannedEpochs, type Params, type Recipe } from "../recipes/recipe.ts";
import type { LocalTrainer } from "../trainer/local.ts";
import type { LocalScripts } from "../trainer/dispatcher.ts";
import type { LogStore } from "./logs.ts";
import type { RecipeBook } from "../recipes/book.ts";
import { normalizeStopPolicy } from "../operations/stop_policy.ts";
import { logEventStream } from "./log_stream.ts";
import { failureMessage, startScript, type ScriptExit } from "./runner.ts";

export interface ScriptTrainerOptions {
  book: RecipeBook;
  logs: LogStore;
  killGraceMs: number;
  /** The API's URL as a child on this machine reaches it (read when a script starts). */
  apiUrl: () => string;
  token: string | null;
  /** GPU names by id, for metadata.gpu_visible. */
  gpuNames?: Record<string, string | null>;
}

const active = (op: Operation | null) => op !== null && (op.status === "pending" || op.status === "running");

/** The metadata every script training records, wherever it runs. */
export function scriptMetadata(recipe: string, params: Params, location: "local" | "host"): Record<string, unknown> {
  return { location, kind: "script", recipe, params };
}

export class ScriptTrainer implements LocalScripts {
  constructor(
    private readonly operations: OperationsService,
    private readonly local: LocalTrainer,
    private readonly opts: ScriptTrainerOptions,
  ) {}

  views(): RecipeView[] {
    return this.opts.book.views("local", null);
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

  /** Creates the operation and queues the script. */
  async start(req: RecipeRequest): Promise<Operation> {
    const { recipe, params } = this.resolve(req);
    const op = await this.operations.createOperation({
      operation_type: "training",
      name: req.name ?? recipe.name,
      total_epochs_planned: plannedEpochs(recipe, params),
      status: "pending",
      metadata: scriptMetadata(recipe.name, params, "local"),
      stop_policy: req.stop_policy ? normalizeStopPolicy(req.stop_policy) : null,
      // Run by this process: on a shared database it is leased to this replica.
      owned: true,
    });
    const id = op.operation_id;
    // Set when a free slot launches the script at once: the reply then says running, with its pid.
    let launched: Promise<void> | null = null;
    this.local.submitTask(id, {
      gpus: recipe.gpus ?? 0,
      launch: (devices) => {
        const run = startScript(
          { operationId: id, recipe, params, apiUrl: this.opts.apiUrl(), token: this.opts.token, devices },
          { logs: this.opts.logs, killGraceMs: this.opts.killGraceMs },
        );
        // The exit is recorded after the start, however quickly the script ends.
        const recorded = this.recordStart(id, run.pid, run.argv, devices);
        launched = recorded;
        return {
          cancel: run.cancel,
          done: run.done.then(async (exit) => (await recorded, await this.settle(id, exit))),
        };
      },
    });
    await launched;
    return (await this.operations.reader.getOperation(id))!;
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
