/**
 * Script trainings on this GPU host: a recipe this host declares, run by the same runner as on the API (its own
 * process group, SIGTERM then SIGKILL, a bounded log), at most as many GPU recipes at once as the host has GPUs.
 * The child reports to this host on loopback (src/host/child_api.ts, with a token of its own session only), and its
 * epochs and steps go through the relay outbox like a built-in host training's: durable, in order, nothing lost while the
 * API is away. Its exit decides the final status the outbox delivers, unless the script finished the run itself.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { TrainwatchError } from "../errors.ts";
import { TRAINER_ERROR } from "../operations/lifecycle.ts";
import { checkParams, plannedEpochs, type Params, type Recipe } from "../recipes/recipe.ts";
import type { WireEpoch } from "../schemas/epoch.ts";
import type { WireStep } from "../schemas/step.ts";
import type { LogLines } from "../schemas/recipe.ts";
import type { Session } from "../schemas/host.ts";
import type { StopControl } from "../schemas/control.ts";
import type { Gpu } from "../script_trainings/gpus.ts";
import { logEventStream } from "../script_trainings/log_stream.ts";
import type { LogStore } from "../script_trainings/logs.ts";
import type { RecipeBook } from "../recipes/book.ts";
import { failureMessage, startScript, type ScriptExit } from "../script_trainings/runner.ts";
import { TaskQueue } from "../trainer/queue.ts";
import type { FinalStatus, Outbox } from "./outbox.ts";
import { HOST_STOPPED } from "./sessions.ts";
import { pruneFinished, sessionOf, sessionView, type SessionCore } from "./session_table.ts";

interface ScriptState extends SessionCore {
  recipe: Recipe;
  params: Params;
  token: string;
  /** What the script itself said when it finished the run (POST /complete), delivered when its processes are gone. */
  ownFinal: FinalStatus | null;
  /** Stopped by a host shutdown rather than a cancel. */
  interrupted: boolean;
  cancelled: boolean;
  /** The API's stop decision (the stop policy fired): told to the script in its next reply; it finishes the run itself. */
  stop: StopControl | null;
}

export interface ScriptSessionsOptions {
  outbox: Outbox;
  book: RecipeBook;
  logs: LogStore;
  killGraceMs: number;
  gpus: Gpu[];
  /** Where the child reaches this host's child API (loopback), read when a script starts. */
  childUrl: () => string;
  keep?: number;
  log?: (line: string) => void;
}

export class ScriptSessions {
  private readonly sessions = new Map<string, ScriptState>();
  private readonly queue: TaskQueue;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: ScriptSessionsOptions) {
    // No limit of its own beyond the GPUs: a host runs every session it is sent, as for built-in ones.
    this.queue = new TaskQueue(
      Number.MAX_SAFE_INTEGER,
      opts.gpus.map((g) => g.id),
    );
    this.log = opts.log ?? ((line) => console.log(line));
  }

  views() {
    return this.opts.book.views(null);
  }

  has(id: string): boolean {
    return this.sessions.has(id);
  }

  /** Checks the recipe and params (400 naming body.recipe / body.params.x) and starts or queues the script. Idempotent while running. */
  start(input: { operation_id: string; recipe: string; params?: Record<string, unknown>; api_url: string }): Session {
    const id = input.operation_id;
    const existing = this.sessions.get(id);
    if (existing?.status === "running") return this.view(existing);
    const recipe = this.opts.book.get(input.recipe, "body.recipe", "this training host");
    const params = checkParams(recipe, input.params);
    const gpus = recipe.gpus ?? 0;
    if (gpus > this.opts.gpus.length) {
      throw new TrainwatchError(
        "VALIDATION_ERROR",
        `body.recipe: recipe ${JSON.stringify(recipe.name)} needs ${gpus} GPU(s); this host has ${this.opts.gpus.length}`,
        {
          field: "body.recipe",
          gpus_needed: gpus,
          gpus: this.opts.gpus.length,
        },
      );
    }
    const { outbox } = this.opts;
    const s: ScriptState = {
      operationId: id,
      apiUrl: input.api_url,
      recipe,
      params,
      token: randomBytes(24).toString("base64url"),
      status: "running",
      startedAt: new Date().toISOString(),
      finishedAt: null,
      epochs: 0,
      error: null,
      ownFinal: null,
      interrupted: false,
      cancelled: false,
      stop: null,
    };
    outbox.open(id, input.api_url);
    this.sessions.delete(id);
    this.sessions.set(id, s);
    this.prune();
    this.queue.submit(id, {
      gpus,
      launch: (devices) => {
        const run = startScript(
          { operationId: id, recipe, params, apiUrl: this.opts.childUrl(), token: s.token, devices },
          { logs: this.opts.logs, killGraceMs: this.opts.killGraceMs },
        );
        const names = devices.map((d) => this.opts.gpus.find((g) => g.id === d)?.name).filter((n): n is string => !!n);
        this.log(
          `[host] ${id}: script ${recipe.name} started (pid ${run.pid}${devices.length ? `, CUDA_VISIBLE_DEVICES=${devices.join(",")}` : ""}), relaying to ${input.api_url}`,
        );
        outbox.started(id, { backend: "script", gpu: null, gpu_visible: names.length ? names.join(", ") : null });
        return { cancel: run.cancel, done: run.done.then((exit) => this.settle(s, exit)) };
      },
      dropped: () => this.settle(s, null),
    });
    return this.view(s);
  }

  /** The planned epochs of a recipe run, for the API's operation (null when the recipe declares no epochs param). */
  planned(recipe: string, params: Record<string, unknown> | undefined): number | null {
    const r = this.opts.book.get(recipe, "body.recipe", "this training host");
    return plannedEpochs(r, checkParams(r, params));
  }

  get(id: string): Session {
    return this.view(this.state(id));
  }

  /** Stops a session (SIGTERM to its group, SIGKILL after the grace) and waits up to `waitMs` for it. */
  async cancel(id: string, waitMs = 2000): Promise<Session> {
    const s = this.state(id);
    if (s.status === "running") {
      s.cancelled = true;
      this.queue.cancel(id);
      await Promise.race([this.queue.settled(id), Bun.sleep(waitMs)]);
    }
    return this.view(s);
  }

  /** The API takes no more relays for it (cancelled there): stop the script. */
  stopFromApi(id: string, reason: string): void {
    const s = this.sessions.get(id);
    if (s?.status !== "running") return;
    this.log(`[host] ${id}: stopping script, the API answered: ${reason}`);
    s.cancelled = true;
    this.queue.cancel(id);
  }

  /**
   * The operation's stop policy fired (the relay heard it in the API's reply): the script hears it in its next reply
   * and stops itself, so it finishes `completed` with what it has. Its process is left alone: no signal.
   */
  stopFromControl(id: string, control: StopControl): void {
    const s = this.sessions.get(id);
    if (s?.status !== "running") return;
    this.log(`[host] ${id}: telling the script to stop, ${control.decided_by} decided: ${control.reason}`);
    s.stop = control;
  }

  /** Host shutdown: every script stops and ends failed (interrupted). Resolves when their processes are gone. */
  async shutdown(): Promise<void> {
    for (const s of this.sessions.values()) if (s.status === "running") s.interrupted = true;
    await this.queue.stopAll();
  }

  active(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.status === "running") n++;
    return n;
  }

  describe() {
    return this.queue.describe();
  }

  /** A session's log; also after a host restart, from the file it left. */
  logs(id: string, tail: number): LogLines {
    if (!this.opts.logs.has(id)) this.state(id);
    return { operation_id: id, ...this.opts.logs.tail(id, tail) };
  }

  logStream(id: string, tail: number): ReadableStream<Uint8Array> {
    if (!this.opts.logs.has(id)) this.state(id);
    return logEventStream(this.opts.logs, id, tail);
  }

  // ── what the child says (src/host/child_api.ts) ──

  /** The session whose child presents this token for this operation; 401 otherwise. */
  authorize(id: string, authorization: string | null): ScriptState {
    const s = this.sessions.get(id);
    const given = /^Bearer\s+(.+)$/i.exec(authorization ?? "")?.[1]?.trim() ?? "";
    const ok =
      s !== undefined && given.length === s.token.length && timingSafeEqual(Buffer.from(given), Buffer.from(s.token));
    if (!ok)
      throw new TrainwatchError(
        "UNAUTHORIZED",
        `this token does not belong to a script session of operation ${id} on this host`,
      );
    return s!;
  }

  /** Epochs from the child, into the outbox. 409 once the session is over (the contract's OPERATION_FINISHED). */
  epochs(s: ScriptState, epochs: WireEpoch[]): number {
    this.open(s);
    for (const e of epochs) this.opts.outbox.epoch(s.operationId, e);
    s.epochs += epochs.length;
    return epochs.length;
  }

  /** A batch of steps from the child, into the outbox as one item. 409 once the session is over, as epochs. */
  steps(s: ScriptState, steps: WireStep[]): number {
    this.open(s);
    this.opts.outbox.steps(s.operationId, steps);
    return steps.length;
  }

  /** The child's start report (its GPU, its framework), into the operation's metadata through the relay. */
  reportStart(s: ScriptState, info: { backend?: string; gpu?: string | null }): void {
    this.open(s);
    this.opts.outbox.started(s.operationId, { backend: info.backend ?? "script", gpu: info.gpu ?? null });
  }

  /** The script finished the run itself; delivered once its processes are gone. */
  finishedByScript(s: ScriptState, final: FinalStatus): void {
    this.open(s);
    s.ownFinal = final;
  }

  /** The control word for the child: stop once the session is cancelled or over. */
  control(s: ScriptState): { action: "continue" } | { action: "stop"; reason: string } | StopControl {
    if (s.stop) return s.stop;
    if (s.cancelled || s.status !== "running")
      return { action: "stop", reason: s.cancelled ? "cancelled" : `session is ${s.status}` };
    return { action: "continue" };
  }

  private open(s: ScriptState): void {
    if (s.status === "running" && !s.ownFinal && !s.cancelled) return;
    const status = s.ownFinal?.status ?? (s.cancelled ? "cancelled" : s.status);
    throw new TrainwatchError("OPERATION_FINISHED", `operation ${s.operationId} is already ${status}`, {
      operation_id: s.operationId,
      status,
      control: { action: "stop", reason: `operation is ${status}` },
    });
  }

  private settle(s: ScriptState, exit: ScriptExit | null): void {
    const { outbox } = this.opts;
    const id = s.operationId;
    const exitInfo = exit ? { exit_code: exit.exit_code, signal: exit.signal, duration_s: exit.duration_s } : null;
    let final: FinalStatus;
    if (s.interrupted) final = { status: "failed", error_message: HOST_STOPPED, result: exitInfo };
    else if (s.cancelled) final = { status: "cancelled", result: exitInfo };
    else if (s.ownFinal) final = { ...s.ownFinal, result: { ...(exitInfo ?? {}), ...(s.ownFinal.result ?? {}) } };
    else if (exit && exit.exit_code === 0) final = { status: "completed", result: exitInfo };
    else
      final = {
        status: "failed",
        error_message: exit ? failureMessage(exit) : "never started",
        failure_code: TRAINER_ERROR,
        result: exitInfo,
      };
    s.status = final.status;
    s.error = final.status === "failed" ? final.error_message : null;
    s.finishedAt = new Date().toISOString();
    outbox.close(id, final);
    this.log(
      `[host] ${id}: script ${final.status} after ${s.epochs} epoch(s)${exit ? ` (${exit.signal ?? `exit ${exit.exit_code}`})` : ""}; ${outbox.pending(id)} relay item(s) still to deliver`,
    );
  }

  private state(id: string): ScriptState {
    return sessionOf(this.sessions, id);
  }

  private prune(): void {
    pruneFinished(this.sessions, this.opts.keep);
  }

  private view(s: ScriptState): Session {
    return sessionView(s, this.opts.outbox, { progress: null, backend: "script" });
  }
}

export type { ScriptState };
