/**
 * A small typed client of slurmrestd's openapi/v0.0.38 (Slurm 22.05): submit a batch job, read one job or the queue,
 * cancel or signal a job, ping. Web-standard fetch with an AbortSignal timeout on every call; JWT auth by the
 * X-SLURM-USER-NAME / X-SLURM-USER-TOKEN headers, the token given or read from a file that is re-read when its mtime
 * changes (`scontrol token` tokens expire). Failures are TrainwatchError SLURM_UNREACHABLE (no answer in time) or
 * SLURM_REFUSED (an answer with Slurm's own error text); no message or detail ever carries the token.
 *
 * Field names checked against the real daemon (tests/fixtures/slurm/*.json are its replies): errors come as
 * `{error, error_number | error_code, description?, source?}` with HTTP 500 whatever the cause; `exit_code` is the raw
 * wait status (768 = exit 3, 9 = SIGKILL); times are Unix seconds, 0 when unset; a running job's `end_time` is the
 * time its limit runs out; `job_state` is the base state unless a flag names it (COMPLETING, CONFIGURING, ...).
 */
import { stat, readFile } from "node:fs/promises";
import { TrainwatchError } from "../errors.ts";

/** The API version this client speaks: Debian bookworm's Slurm 22.05 serves v0.0.36 to v0.0.38. */
const SLURM_API = "v0.0.38";

export interface SlurmRestOptions {
  /** slurmrestd's base URL, e.g. http://127.0.0.1:6820 (TRAINWATCH_SLURM_URL). */
  url: string;
  /** The Slurm user the token is for; jobs run as this user (TRAINWATCH_SLURM_USER). */
  user: string;
  /** The JWT itself (TRAINWATCH_SLURM_TOKEN) ... */
  token?: string;
  /** ... or a file holding it (TRAINWATCH_SLURM_TOKEN_FILE), re-read whenever its mtime changes. */
  tokenFile?: string;
  /** Per-call timeout in ms (default 5000). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Where what an API client must not see goes (a token file's path, a reply that is not JSON); default console.warn. */
  log?: (line: string) => void;
}

/** What a batch job asks for: the subset of v0.0.38's job properties Trainwatch sets. */
export interface SlurmJobSpec {
  name: string;
  partition?: string;
  account?: string;
  qos?: string;
  cpus_per_task?: number;
  /** Memory per node in MB. */
  memory_per_node?: number;
  /** Minutes; Slurm's smallest is 1. */
  time_limit?: number;
  /** Generic resources, e.g. "gpu:1" (v0.0.38 has no tres_per_job: GPUs go here). */
  gres?: string;
  current_working_directory: string;
  standard_output: string;
  standard_error: string;
  /** The job's whole environment: slurmrestd passes none of its own (PATH included). */
  environment: Record<string, string>;
}

/** One job as Trainwatch reads it. Times are ISO strings; null when Slurm has none. */
export interface SlurmJob {
  id: number;
  name: string;
  user: string;
  partition: string;
  /** Slurm's state: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, PREEMPTED, or a flag (COMPLETING, CONFIGURING, ...). */
  state: string;
  /** Slurm's reason (Resources, Priority, NonZeroExitCode, ...); null for "None". */
  reason: string | null;
  /** The exit status when the job exited; null when it has not ended or a signal ended it. */
  exit_code: number | null;
  /** The signal that ended it, when one did. */
  signal: number | null;
  /** The node list ("vm", "gpu[01-02]"); null before it runs. */
  nodes: string | null;
  priority: number;
  submit_time: string | null;
  start_time: string | null;
  /** When it ended; null until it has (Slurm's end_time of a live job is only its limit). */
  end_time: string | null;
  /** Minutes; null for no limit. */
  time_limit: number | null;
  working_directory: string | null;
  stdout: string | null;
  stderr: string | null;
}

/** Slurm's error numbers this client reads. */
const INVALID_JOB_ID = 2017;
/** States after which a job's end_time is its real end. */
const LIVE_STATES = new Set(["PENDING", "RUNNING", "SUSPENDED", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING"]);

export class SlurmRestClient {
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly doFetch: typeof fetch;
  private cached: { mtimeMs: number; token: string } | null = null;
  /** The last line logged, so that a failure repeated at every poll is logged once. */
  private lastLogged: string | null = null;

  constructor(private readonly opts: SlurmRestOptions) {
    if (!opts.token && !opts.tokenFile)
      throw new TrainwatchError("VALIDATION_ERROR", "slurm: a token or a token file is required");
    this.base = opts.url.replace(/\/+$/, "");
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.doFetch = opts.fetch ?? fetch;
  }

  /** True when slurmctld answers slurmrestd's ping as UP. */
  async ping(): Promise<boolean> {
    const reply = await this.call("GET", "/ping");
    const pings = Array.isArray(reply.pings) ? (reply.pings as { ping?: string }[]) : [];
    return pings.some((p) => p.ping === "UP");
  }

  /** Submits a batch script; the job id. */
  async submit(script: string, job: SlurmJobSpec): Promise<number> {
    const reply = await this.call("POST", "/job/submit", { script, job });
    if (typeof reply.job_id !== "number") throw badReply("POST /job/submit", "no job_id");
    return reply.job_id;
  }

  /** One job, or null when Slurm no longer knows it (past MinJobAge, or never submitted). */
  async job(id: number): Promise<SlurmJob | null> {
    try {
      const reply = await this.call("GET", `/job/${jobId(id)}`);
      const jobs = Array.isArray(reply.jobs) ? reply.jobs : [];
      return jobs.length === 0 ? null : toJob(jobs[0] as RawJob);
    } catch (err) {
      if (isUnknownJob(err)) return null;
      throw err;
    }
  }

  /** Every job slurmctld holds (the queue, and finished jobs until MinJobAge). */
  async jobs(): Promise<SlurmJob[]> {
    const reply = await this.call("GET", "/jobs");
    return (Array.isArray(reply.jobs) ? reply.jobs : []).map((j) => toJob(j as RawJob));
  }

  /**
   * Cancels a job as `scancel` does: SIGTERM to its processes, SIGKILL KillWait seconds later, state CANCELLED.
   * With a signal, only sends that signal (the job ends as its processes decide: FAILED for a non-zero exit).
   */
  async cancel(id: number, signal?: SlurmSignal): Promise<void> {
    await this.call("DELETE", `/job/${jobId(id)}${signal ? `?signal=${signal}` : ""}`);
  }

  private async token(): Promise<string> {
    if (this.opts.token) return this.opts.token;
    const file = this.opts.tokenFile as string;
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(file)).mtimeMs;
      if (this.cached?.mtimeMs === mtimeMs) return this.cached.token;
      // `scontrol token` prints SLURM_JWT=<token>: a file holding its output works as is.
      const token = (await readFile(file, "utf8")).trim().replace(/^SLURM_JWT=/, "");
      this.cached = { mtimeMs, token };
      return token;
    } catch (err) {
      // The path and the reason stay in the server's log: an API client learns only which setting to check.
      this.log(`[slurm] cannot read the token file ${file}: ${(err as Error).message}`);
      throw new TrainwatchError(
        "SLURM_REFUSED",
        "slurm: cannot read the token file (TRAINWATCH_SLURM_TOKEN_FILE; the server log names the file and why)",
      );
    }
  }

  private log(line: string): void {
    if (line === this.lastLogged) return;
    this.lastLogged = line;
    (this.opts.log ?? console.warn)(line);
  }

  private async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const url = `${this.base}/slurm/${SLURM_API}${path}`;
    const what = `${method} /slurm/${SLURM_API}${path}`;
    const headers: Record<string, string> = {
      "X-SLURM-USER-NAME": this.opts.user,
      "X-SLURM-USER-TOKEN": await this.token(),
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res: Response;
    let text: string;
    try {
      res = await this.doFetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      const e = err as Error;
      const why =
        e.name === "TimeoutError" || e.name === "AbortError" ? `no answer within ${this.timeoutMs} ms` : e.message;
      throw new TrainwatchError("SLURM_UNREACHABLE", `slurmrestd at ${this.base} is unreachable (${what}): ${why}`, {
        url: this.base,
      });
    }
    let reply: Record<string, unknown>;
    try {
      reply = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Whatever answered (a proxy's HTML page, say) is logged, not sent on to API clients.
      this.log(`[slurm] ${what} at ${this.base}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
      throw badReply(
        what,
        `HTTP ${res.status}, not JSON (is TRAINWATCH_SLURM_URL slurmrestd's address? the server log has the reply's start)`,
      );
    }
    const errors = Array.isArray(reply.errors) ? (reply.errors as RawError[]) : [];
    if (errors.length > 0 || !res.ok) {
      // Every entry: a parse failure comes as {description: 'Unknown key "x"'} before {error: "Failure during parsing"}.
      const text =
        errors
          .map((e) => [e.error, e.description].filter((s) => s && s.length > 0).join(": "))
          .filter((s) => s.length > 0)
          .join("; ") || `HTTP ${res.status}`;
      const first = errors.find((e) => e.error_number !== undefined || e.error_code !== undefined) ?? errors[0] ?? {};
      throw new TrainwatchError("SLURM_REFUSED", `Slurm refused ${what}: ${text}`, {
        http_status: res.status,
        slurm_error_number: first.error_number ?? first.error_code ?? null,
        slurm_error: first.error ?? null,
      });
    }
    return reply;
  }
}

/** The signals slurmrestd v0.0.38 takes by name. */
export type SlurmSignal =
  | "HUP"
  | "INT"
  | "QUIT"
  | "ABRT"
  | "KILL"
  | "ALRM"
  | "TERM"
  | "USR1"
  | "USR2"
  | "CONT"
  | "STOP";

interface RawError {
  error?: string;
  error_number?: number;
  error_code?: number;
  description?: string;
}

/** The fields of v0.0.38's job object that toJob reads. */
export interface RawJob {
  job_id: number;
  name: string;
  user_name: string;
  partition: string;
  job_state: string;
  state_reason: string;
  exit_code: number | null;
  nodes: string;
  priority: number;
  submit_time: number;
  start_time: number;
  end_time: number;
  time_limit: number | null;
  current_working_directory: string;
  standard_output: string;
  standard_error: string;
}

/** A v0.0.38 job object as a SlurmJob (pure: the fixtures test it). */
export function toJob(raw: RawJob): SlurmJob {
  if (typeof raw?.job_id !== "number" || typeof raw.job_state !== "string")
    throw badReply("job", "no job_id or job_state");
  const status = raw.exit_code;
  // A wait status: the low 7 bits are the signal, the next byte the exit code (WIFEXITED when the signal is 0).
  const signal = typeof status === "number" && (status & 0x7f) !== 0 ? status & 0x7f : null;
  const ended = !LIVE_STATES.has(raw.job_state);
  return {
    id: raw.job_id,
    name: raw.name,
    user: raw.user_name,
    partition: raw.partition,
    state: raw.job_state,
    reason: !raw.state_reason || raw.state_reason === "None" ? null : raw.state_reason,
    exit_code: ended && typeof status === "number" && signal === null ? (status >> 8) & 0xff : null,
    signal: ended ? signal : null,
    nodes: raw.nodes || null,
    priority: raw.priority,
    submit_time: isoTime(raw.submit_time),
    start_time: raw.job_state === "PENDING" ? null : isoTime(raw.start_time),
    end_time: ended ? isoTime(raw.end_time) : null,
    time_limit: typeof raw.time_limit === "number" ? raw.time_limit : null,
    working_directory: raw.current_working_directory || null,
    stdout: raw.standard_output || null,
    stderr: raw.standard_error || raw.standard_output || null,
  };
}

const isoTime = (seconds: number): string | null => (seconds > 0 ? new Date(seconds * 1000).toISOString() : null);

function jobId(id: number): number {
  if (!Number.isSafeInteger(id) || id <= 0)
    throw new TrainwatchError("VALIDATION_ERROR", `slurm: job id ${id} is not a job id`);
  return id;
}

/** Slurm's answer that it does not know the job (never submitted, or finished longer than MinJobAge ago). */
export function isUnknownJob(err: unknown): boolean {
  return err instanceof TrainwatchError && err.details?.slurm_error_number === INVALID_JOB_ID;
}

const badReply = (what: string, why: string) =>
  new TrainwatchError("SLURM_REFUSED", `slurmrestd's reply to ${what} is not v0.0.38's: ${why}`);
