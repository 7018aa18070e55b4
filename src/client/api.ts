/**
 * The one typed client of the Trainwatch REST API, shared by the MCP server, the
 * agent CLIs and the host relay. Web-standard fetch with an AbortSignal timeout on
 * every call; failures become ApiError with the server's code and message.
 */
import type { LabelsInput } from "../schemas/labels.ts";
import type { Static } from "@sinclair/typebox";
import type { WireEpoch } from "../schemas/epoch.ts";
import type { WireStep } from "../schemas/step.ts";
import type { SystemData } from "../schemas/system.ts";
import type {
  CancelInput,
  Control,
  Operation,
  OperationStatus,
  StopPolicyInput,
  TrendSummarySchema,
} from "../schemas/operation.ts";
import type { TrainingSpecInput } from "../schemas/spec.ts";
import type { HeartbeatInput, HeartbeatReply, HostHealth, Session, SessionInput } from "../schemas/host.ts";
import type { Analysis, CompareData } from "../schemas/analysis.ts";
import type { LogLines, RecipeList, RecipeView } from "../schemas/recipe.ts";
import type { TensorboardImportInput, TensorboardImportReport } from "../schemas/tensorboard.ts";

export type TrendSummary = Static<typeof TrendSummarySchema>;

export type { MetricsReply, StepsReply } from "../schemas/operation.ts";
import type { MetricsReply, StepsReply } from "../schemas/operation.ts";
type SystemReply = Static<typeof SystemData>;
import type { Alert, AlertRules, AlertRulesView } from "../schemas/alert.ts";

/** The reply of a metrics or steps write: what was stored, the trends after it, and the server's word on the run. */
export interface WriteReply {
  stored: number;
  trends: TrendSummary;
  control: Control;
}

/** GET …/steps's reads: a cursor, an inclusive step range, a point budget, EMA smoothing, and the fields to read. */
export interface StepsQuery {
  since_step?: number;
  from_step?: number;
  to_step?: number;
  max_points?: number;
  smoothing?: number;
  /** Metric names (sent comma-separated): each step then carries `step` and only these. */
  fields?: readonly string[];
}

/** The ApiError for an error reply: the envelope's code, message and details, or the bare status. */
function failure(method: string, url: URL, status: number, json: Record<string, unknown>): ApiError {
  const err = (json.error ?? {}) as { code?: string; message?: string; details?: Record<string, unknown> | null };
  return new ApiError(
    err.code ?? `HTTP_${status}`,
    err.message ?? `${method} ${url.pathname} failed with ${status}`,
    status,
    err.details ?? null,
  );
}

/** Codes from the server's error envelope, plus the client's own. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number | null,
    readonly details: Record<string, unknown> | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface ClientOptions {
  baseUrl: string;
  token?: string | null;
  /** Per-call timeout in ms (default 5000). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Path prefix of every call (default "/api/v1"; "" for a training host's routes). */
  prefix?: string;
  /** Names the service in error messages (default "Trainwatch API"). */
  service?: string;
}

export class TrainwatchClient {
  readonly baseUrl: string;
  private readonly token: string | null;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly prefix: string;
  private readonly service: string;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.token = opts.token ?? null;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.fetchImpl = opts.fetch ?? fetch;
    this.prefix = opts.prefix ?? "/api/v1";
    this.service = opts.service ?? "Trainwatch API";
  }

  /** From TRAINWATCH_URL (default http://127.0.0.1:8000) and TRAINWATCH_TOKEN. */
  static fromEnv(env: Record<string, string | undefined> = process.env, timeoutMs?: number): TrainwatchClient {
    return new TrainwatchClient({
      baseUrl: env.TRAINWATCH_URL || "http://127.0.0.1:8000",
      token: env.TRAINWATCH_TOKEN || null,
      timeoutMs,
    });
  }

  /** Sends a request to `/api/v1${path}` (or the configured prefix) and unwraps the envelope. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    query?: Record<string, string | number | undefined>,
    opts: { timeoutMs?: number } = {},
  ): Promise<{ data: T; raw: Record<string, unknown> }> {
    const { res, url } = await this.send(method, path, body, query, opts.timeoutMs, "application/json");
    const text = await res.text();
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new ApiError(
        "BAD_RESPONSE",
        `${method} ${url.pathname} answered ${res.status} with non-JSON: ${text.slice(0, 200)}`,
        res.status,
      );
    }
    if (!res.ok || json.success !== true) throw failure(method, url, res.status, json);
    return { data: json.data as T, raw: json };
  }

  /** GETs a file (no envelope) as bytes; an error reply becomes ApiError with the server's code, as in request(). */
  async download(path: string, opts: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    const { res, url } = await this.send("GET", path, undefined, undefined, opts.timeoutMs, "*/*");
    if (!res.ok) {
      const text = await res.text();
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // not an envelope: the status alone says what went wrong
      }
      throw failure("GET", url, res.status, json);
    }
    return new Uint8Array(await res.arrayBuffer());
  }

  /**
   * Opens an event stream: the body of a 2xx reply, read as it arrives (no timeout once it has answered; `signal`
   * ends it). An error reply becomes ApiError, as in request().
   */
  async stream(
    path: string,
    query: Record<string, string | number | undefined>,
    signal?: AbortSignal,
  ): Promise<ReadableStream<Uint8Array>> {
    const url = new URL(`${this.baseUrl}${this.prefix}${path}`);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    // The timeout covers the answer, not the stream: a signal that fired later would cut the body.
    const connect = new AbortController();
    const timer = setTimeout(() => connect.abort(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        headers,
        signal: signal ? AbortSignal.any([signal, connect.signal]) : connect.signal,
      });
    } catch (err) {
      throw new ApiError(
        "UNREACHABLE",
        `cannot reach the ${this.service} at ${this.baseUrl} (${(err as Error).message})`,
        null,
      );
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok || !res.body) {
      const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      throw failure("GET", url, res.status, json);
    }
    return res.body;
  }

  private async send(
    method: string,
    path: string,
    body: unknown,
    query: Record<string, string | number | undefined> | undefined,
    timeout: number | undefined,
    accept: string,
  ): Promise<{ res: Response; url: URL }> {
    const url = new URL(`${this.baseUrl}${this.prefix}${path}`);
    const timeoutMs = timeout ?? this.timeoutMs;
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    try {
      const res = await this.fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { res, url };
    } catch (err) {
      const e = err as Error;
      const timedOut = e.name === "TimeoutError" || e.name === "AbortError";
      throw new ApiError(
        timedOut ? "TIMEOUT" : "UNREACHABLE",
        timedOut
          ? `${this.service} at ${this.baseUrl} did not answer within ${timeoutMs} ms`
          : `cannot reach the ${this.service} at ${this.baseUrl} (${e.message}); is it running?`,
        null,
      );
    }
  }

  async health() {
    return (
      await this.request<{ status: string; version: string; trainers: Record<string, unknown> | null }>(
        "GET",
        "/health",
      )
    ).data;
  }

  /** GET /operations: the filters, a search query `q` (docs/api.md), its sort and the page. */
  async listOperations(
    q: {
      status?: OperationStatus;
      operation_type?: string;
      q?: string;
      sort?: string;
      order?: "asc" | "desc";
      limit?: number;
      offset?: number;
    } = {},
  ) {
    const { data, raw } = await this.request<Operation[]>("GET", "/operations", undefined, q);
    return { operations: data, total_count: raw.total_count as number };
  }

  async getOperation(id: string): Promise<Operation> {
    return (await this.request<Operation>("GET", `/operations/${encodeURIComponent(id)}`)).data;
  }

  async createOperation(body: {
    operation_type: string;
    name?: string;
    total_epochs_planned?: number;
    total_steps_planned?: number;
    metadata?: Record<string, unknown>;
    config?: Record<string, unknown>;
    stop_policy?: StopPolicyInput;
    alerts?: AlertRules;
  }): Promise<Operation> {
    return (await this.request<Operation>("POST", "/operations", body)).data;
  }

  async completeOperation(
    id: string,
    body: {
      status: "completed" | "failed" | "cancelled";
      error_message?: string;
      failure_code?: "trainer_error";
      result?: Record<string, unknown>;
    },
  ): Promise<Operation> {
    return (await this.request<Operation>("POST", `/operations/${encodeURIComponent(id)}/complete`, body)).data;
  }

  /** Cancels; `who.by` ("dashboard", "mcp", "monitor", … default "api") and `who.reason` are recorded as the operation's control. */
  async cancelOperation(id: string, who?: CancelInput): Promise<Operation> {
    return (await this.request<Operation>("DELETE", `/operations/${encodeURIComponent(id)}`, who)).data;
  }

  /** Sets the stop policy of a running operation (a flag already raised decides at once). */
  /** PATCH /operations/{id}/labels: changes its tags and group. */
  async setLabels(id: string, labels: LabelsInput): Promise<Operation> {
    return (await this.request<Operation>("PATCH", `/operations/${encodeURIComponent(id)}/labels`, labels)).data;
  }

  async setStopPolicy(id: string, policy: StopPolicyInput): Promise<Operation> {
    return (await this.request<Operation>("PUT", `/operations/${encodeURIComponent(id)}/stop_policy`, policy)).data;
  }

  /** Clears the stop policy; a decision it recorded stays. */
  async clearStopPolicy(id: string): Promise<Operation> {
    return (await this.request<Operation>("DELETE", `/operations/${encodeURIComponent(id)}/stop_policy`)).data;
  }

  /** Recent alerts, most recent first (each with its delivery per channel); filters as GET /alerts. */
  async listAlerts(q: { operation_id?: string; since?: string; limit?: number } = {}): Promise<Alert[]> {
    return (await this.request<Alert[]>("GET", "/alerts", undefined, q)).data;
  }

  /** Sets a run's alert rules (events and thresholds; never a URL); returns them with the events they come to. */
  async setAlertRules(id: string, rules: AlertRules): Promise<AlertRulesView> {
    return (await this.request<AlertRulesView>("PUT", `/operations/${encodeURIComponent(id)}/alerts`, rules)).data;
  }

  /** Stores epochs; `control` is the server's word on the run ({action: "continue"} or the stop decision). */
  async postMetrics(id: string, epochs: WireEpoch[]): Promise<WriteReply> {
    return (await this.request<WriteReply>("POST", `/operations/${encodeURIComponent(id)}/metrics`, { epochs })).data;
  }

  /**
   * Stores steps (1 … 10,000, one transaction; a re-posted step replaces itself); `control` is the server's word on the
   * run, as for postMetrics.
   */
  async writeSteps(id: string, steps: WireStep[]): Promise<WriteReply> {
    return (await this.request<WriteReply>("POST", `/operations/${encodeURIComponent(id)}/steps`, { steps })).data;
  }

  /**
   * A step run's steps, with GET …/metrics's chart reads in step names: `since_step` (steps after it), `from_step` …
   * `to_step` (inclusive), `max_points` (min/max per bucket: no spike or NaN hidden), `smoothing`, `fields`; plus the
   * planned steps and where each epoch ended.
   */
  async steps(id: string, q: StepsQuery = {}): Promise<StepsReply> {
    const { fields, ...rest } = q;
    const query = { ...rest, fields: fields?.length ? fields.join(",") : undefined };
    return (await this.request<StepsReply>("GET", `/operations/${encodeURIComponent(id)}/steps`, undefined, query))
      .data;
  }

  /** System samples (GET …/system): after `since`, up to `until` (ISO-8601), at most `max_points` spread over the range. */
  async systemMetrics(
    id: string,
    q: { since?: string; until?: string; max_points?: number } = {},
  ): Promise<SystemReply> {
    return (await this.request<SystemReply>("GET", `/operations/${encodeURIComponent(id)}/system`, undefined, q)).data;
  }

  /** Epochs and trends; `from_epoch`/`to_epoch` narrow to a range, `max_points` reduces (min/max per bucket), `smoothing` adds EMA curves. */
  async getMetrics(
    id: string,
    q: { since_epoch?: number; max_points?: number; from_epoch?: number; to_epoch?: number; smoothing?: number } = {},
  ): Promise<MetricsReply> {
    return (await this.request<MetricsReply>("GET", `/operations/${encodeURIComponent(id)}/metrics`, undefined, q))
      .data;
  }

  /** The server's judgement of a run: flags, trajectory, gap, checkpoints and the recommendation, with its thresholds. */
  async getAnalysis(id: string): Promise<Analysis> {
    return (await this.request<Analysis>("GET", `/operations/${encodeURIComponent(id)}/analysis`)).data;
  }

  async startTraining(spec: TrainingSpecInput & { target?: "local" | "host" }): Promise<Operation> {
    return (await this.request<Operation>("POST", "/trainings", spec)).data;
  }

  /** Several runs side by side: per-run summary and curves (downsampled to max_points), plus best_run and why. */
  async compareRuns(
    ids: readonly string[],
    q: { max_points?: number; from_epoch?: number; to_epoch?: number; smoothing?: number } = {},
  ): Promise<CompareData> {
    return (await this.request<CompareData>("GET", "/operations/compare", undefined, { ids: ids.join(","), ...q }))
      .data;
  }

  /** The recipes this server and its GPU hosts declare, with their params schemas. */
  async listRecipes(): Promise<RecipeList> {
    return (await this.request<RecipeList>("GET", "/recipes")).data;
  }

  /** Starts a declared recipe (a script training) with its params. */
  async startRecipe(body: {
    recipe: string;
    params?: Record<string, unknown>;
    name?: string;
    target?: "local" | "host";
  }): Promise<Operation> {
    return (await this.request<Operation>("POST", "/trainings", body)).data;
  }

  /** The last `tail` lines a script training printed. */
  async getLogs(id: string, q: { tail?: number } = {}): Promise<LogLines> {
    return (await this.request<LogLines>("GET", `/operations/${encodeURIComponent(id)}/logs`, undefined, q)).data;
  }

  /**
   * Imports a TensorBoard logdir on the server (inside its TRAINWATCH_DATA_DIR). `wait: false` returns the import
   * operation at once (its progress counts records, its result is the report); otherwise the report, when done.
   */
  async importTensorboard(body: TensorboardImportInput & { wait: false }): Promise<Operation>;
  async importTensorboard(body: TensorboardImportInput & { wait?: true }): Promise<TensorboardImportReport>;
  async importTensorboard(body: TensorboardImportInput): Promise<Operation | TensorboardImportReport> {
    // Waiting for the report may take as long as the import: no per-call timeout then.
    const timeoutMs = body.wait === false ? undefined : 2 ** 31 - 1;
    return (
      await this.request<Operation | TensorboardImportReport>("POST", "/imports/tensorboard", body, undefined, {
        timeoutMs,
      })
    ).data;
  }

  /** A training host says it is alive; progress and start info may ride along. 409 once the operation is finished. */
  async heartbeat(id: string, body: HeartbeatInput = {}): Promise<HeartbeatReply> {
    return (await this.request<HeartbeatReply>("POST", `/operations/${encodeURIComponent(id)}/heartbeat`, body)).data;
  }
}

/** Client of a training host's routes (src/host/app.ts), used by the API's host pool. */
export class HostClient {
  private readonly http: TrainwatchClient;

  constructor(opts: Omit<ClientOptions, "prefix" | "service">) {
    this.http = new TrainwatchClient({ ...opts, prefix: "", service: "training host" });
  }

  get baseUrl(): string {
    return this.http.baseUrl;
  }

  async health(opts: { timeoutMs?: number } = {}): Promise<HostHealth> {
    return (await this.http.request<HostHealth>("GET", "/health", undefined, undefined, opts)).data;
  }

  async startSession(body: SessionInput, opts: { timeoutMs?: number } = {}): Promise<Session> {
    return (await this.http.request<Session>("POST", "/sessions", body, undefined, opts)).data;
  }

  async getSession(id: string, opts: { timeoutMs?: number } = {}): Promise<Session> {
    return (await this.http.request<Session>("GET", `/sessions/${encodeURIComponent(id)}`, undefined, undefined, opts))
      .data;
  }

  async cancelSession(id: string, opts: { timeoutMs?: number } = {}): Promise<Session> {
    return (
      await this.http.request<Session>("DELETE", `/sessions/${encodeURIComponent(id)}`, undefined, undefined, opts)
    ).data;
  }

  /** The recipes this host declares (its own TRAINWATCH_RECIPES file). */
  async recipes(opts: { timeoutMs?: number } = {}): Promise<RecipeView[]> {
    return (await this.http.request<{ recipes: RecipeView[] }>("GET", "/recipes", undefined, undefined, opts)).data
      .recipes;
  }

  /** The last `tail` lines a script session printed. */
  async logs(id: string, tail: number, opts: { timeoutMs?: number } = {}): Promise<LogLines> {
    return (
      await this.http.request<LogLines>("GET", `/sessions/${encodeURIComponent(id)}/logs`, undefined, { tail }, opts)
    ).data;
  }

  /** A script session's log as the host streams it (SSE bytes); the stream ends when the session's processes are gone. */
  async logStream(id: string, tail: number, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    return this.http.stream(`/sessions/${encodeURIComponent(id)}/logs/stream`, { tail }, signal);
  }

  /** A checkpoint the host kept, as the tar its route sends. */
  async checkpoint(id: string, epoch: number, opts: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    return this.http.download(`/sessions/${encodeURIComponent(id)}/checkpoints/${epoch}`, opts);
  }
}
