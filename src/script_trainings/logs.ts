/**
 * Per-operation logs of script trainings: stdout and stderr, line by line in arrival order, kept on disk in two files
 * (`<id>.log` and the previous half, `<id>.log.1`) so one log never takes more than its bound (default 10 MB) and the
 * newest half of it is always whole. Open logs tell listeners about each new line (the live SSE route), and the
 * last lines of stderr are kept in memory for the operation's error message.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

export const DEFAULT_LOG_BYTES = 10 * 1024 * 1024;
/** A line longer than this is cut (a progress bar without newlines must not grow one line without bound). */
export const MAX_LINE_CHARS = 16 * 1024;
/** Stderr lines kept for the error message of a failed run. */
export const STDERR_TAIL_LINES = 20;

export type LogListener = (lines: string[]) => void;

/** The log of one run. */
export class ScriptLog {
  private size: number;
  private readonly partial = { stdout: "", stderr: "" };
  private readonly listeners = new Set<LogListener>();
  private readonly endListeners = new Set<() => void>();
  readonly stderrTail: string[] = [];
  ended = false;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
  ) {
    this.size = existsSync(path) ? statSync(path).size : 0;
  }

  /** A chunk of output; complete lines are written and announced, a trailing partial line waits for its end. */
  write(stream: "stdout" | "stderr", chunk: string): void {
    const text = this.partial[stream] + chunk;
    const parts = text.split("\n");
    let rest = parts.pop()!;
    if (rest.length > MAX_LINE_CHARS) {
      parts.push(rest);
      rest = "";
    }
    this.partial[stream] = rest;
    if (parts.length) this.lines(stream, parts);
  }

  /** A line from Trainwatch itself (the command it ran, how the process ended). */
  note(line: string): void {
    this.lines("stdout", [`[trainwatch] ${line}`]);
  }

  /** Flushes partial lines and tells listeners the run is over. */
  end(): void {
    for (const stream of ["stdout", "stderr"] as const) {
      if (this.partial[stream]) this.lines(stream, [this.partial[stream]]);
      this.partial[stream] = "";
    }
    this.ended = true;
    for (const fn of this.endListeners) fn();
    this.listeners.clear();
    this.endListeners.clear();
  }

  /** Hears every new line batch until the run ends (then `onEnd`). Returns the unsubscribe function. */
  subscribe(fn: LogListener, onEnd: () => void): () => void {
    this.listeners.add(fn);
    this.endListeners.add(onEnd);
    return () => {
      this.listeners.delete(fn);
      this.endListeners.delete(onEnd);
    };
  }

  private lines(stream: "stdout" | "stderr", raw: string[]): void {
    const lines = raw
      .map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l))
      .map((l) => (l.length > MAX_LINE_CHARS ? `${l.slice(0, MAX_LINE_CHARS)}…` : l));
    if (stream === "stderr") {
      this.stderrTail.push(...lines);
      this.stderrTail.splice(0, Math.max(0, this.stderrTail.length - STDERR_TAIL_LINES));
    }
    const text = `${lines.join("\n")}\n`;
    const bytes = Buffer.byteLength(text);
    // Half the bound per file: when this one is full it becomes the previous half, and the oldest half goes.
    if (this.size > 0 && this.size + bytes > this.maxBytes / 2) {
      renameSync(this.path, `${this.path}.1`);
      this.size = 0;
    }
    appendFileSync(this.path, text);
    this.size += bytes;
    for (const fn of this.listeners) {
      try {
        fn(lines);
      } catch (err) {
        console.error(`[logs] listener of ${this.path} failed:`, err);
      }
    }
  }
}

/** The logs of one machine's script trainings, in one folder; reads work after a restart (the files stay). */
export class LogStore {
  private readonly open = new Map<string, ScriptLog>();

  /** Absolute: a script runs in its own cwd, and TRAINWATCH_PARAMS names a file in here. */
  readonly dir: string;

  constructor(
    dir: string,
    private readonly maxBytes = DEFAULT_LOG_BYTES,
  ) {
    this.dir = resolve(dir);
  }

  pathOf(operationId: string): string {
    // Operation ids are [a-z0-9_]; anything else is refused rather than trusted as a file name.
    if (!/^[A-Za-z0-9_.-]{1,200}$/.test(operationId) || operationId.startsWith("."))
      throw new Error(`not an operation id: ${operationId}`);
    return join(this.dir, `${operationId}.log`);
  }

  /** Opens the log of a run that starts now. */
  create(operationId: string): ScriptLog {
    mkdirSync(this.dir, { recursive: true });
    const log = new ScriptLog(this.pathOf(operationId), this.maxBytes);
    this.open.set(operationId, log);
    return log;
  }

  /** The run ended: its log stays readable from disk. */
  close(operationId: string): void {
    const log = this.open.get(operationId);
    log?.end();
    this.open.delete(operationId);
  }

  /** The log of a running script, or null. */
  live(operationId: string): ScriptLog | null {
    return this.open.get(operationId) ?? null;
  }

  /** True when this machine has (or had) a log for the operation. */
  has(operationId: string): boolean {
    return this.open.has(operationId) || existsSync(this.pathOf(operationId));
  }

  /** The last `n` lines, with whether older ones exist. */
  tail(operationId: string, n: number): { lines: string[]; truncated: boolean; running: boolean } {
    const path = this.pathOf(operationId);
    const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");
    const split = (text: string) => (text === "" ? [] : text.replace(/\n$/, "").split("\n"));
    let lines = split(read(path));
    const older = `${path}.1`;
    const hasOlder = existsSync(older);
    const merged = hasOlder && lines.length < n;
    if (merged) lines = [...split(read(older)), ...lines];
    const truncated = lines.length > n || (hasOlder && !merged);
    if (lines.length > n) lines = lines.slice(-n);
    return { lines, truncated, running: this.open.has(operationId) };
  }
}
