/**
 * The one typed client of the Trainwatch REST API, shared by the MCP server, the
 * agent CLIs and the host relay. Web-standard fetch with an AbortSignal timeout on
 * every call; failures become ApiError with the server's code and message.
 */
import type { Static } from "@sinclair/typebox";
import type { WireEpoch } from "../schemas/epoch.ts";
import type { Operation, OperationStatus, TrendSummarySchema } from "../schemas/operation.ts";
import type { TrainingSpecInput } from "../schemas/spec.ts";

export type TrendSummary = Static<typeof TrendSummarySchema>;

export interface MetricsReply {
  operation_id: string;
  operation_type: string;
  status: OperationStatus;
  metrics: Omit<TrendSummary, "latest_epoch"> & { epochs: WireEpoch[]; total_epochs_planned: number | null };
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
  /** True when retrying later can help (network, timeout, 5xx). */
  get transient(): boolean {
    return this.status === null || this.status >= 500;
  }
}

export interface ClientOptions {
  baseUrl: string;
  token?: string | null;
  /** Per-call timeout in ms (default 5000). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class TrainwatchClient {
  readonly baseUrl: string;
  private readonly token: string | null;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.token = opts.token ?? null;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  /** From TRAINWATCH_URL (default http://127.0.0.1:8000) and TRAINWATCH_TOKEN. */
  static fromEnv(env: Record<string, string | undefined> = process.env, timeoutMs?: number): TrainwatchClient {
    return new TrainwatchClient({ baseUrl: env.TRAINWATCH_URL || "http://127.0.0.1:8000", token: env.TRAINWATCH_TOKEN || null, timeoutMs });
  }

  /** Sends a request to `/api/v1${path}` and unwraps the envelope. */
  async request<T>(method: string, path: string, body?: unknown, query?: Record<string, string | number | undefined>): Promise<{ data: T; raw: Record<string, unknown> }> {
    const url = new URL(`${this.baseUrl}/api/v1${path}`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const e = err as Error;
      const timedOut = e.name === "TimeoutError" || e.name === "AbortError";
      throw new ApiError(
        timedOut ? "TIMEOUT" : "UNREACHABLE",
        timedOut
          ? `Trainwatch API at ${this.baseUrl} did not answer within ${this.timeoutMs} ms`
          : `cannot reach the Trainwatch API at ${this.baseUrl} (${e.message}); is the server running?`,
        null,
      );
    }
    const text = await res.text();
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new ApiError("BAD_RESPONSE", `${method} ${url.pathname} answered ${res.status} with non-JSON: ${text.slice(0, 200)}`, res.status);
    }
    if (!res.ok || json.success !== true) {
      const err = (json.error ?? {}) as { code?: string; message?: string; details?: Record<string, unknown> | null };
      throw new ApiError(err.code ?? `HTTP_${res.status}`, err.message ?? `${method} ${url.pathname} failed with ${res.status}`, res.status, err.details ?? null);
    }
    return { data: json.data as T, raw: json };
  }

  async health() {
    return (await this.request<{ status: string; version: string; trainers: Record<string, unknown> | null }>("GET", "/health")).data;
  }

  async listOperations(q: { status?: OperationStatus; operation_type?: string; limit?: number; offset?: number } = {}) {
    const { data, raw } = await this.request<Operation[]>("GET", "/operations", undefined, q);
    return { operations: data, total_count: raw.total_count as number };
  }

  async getOperation(id: string): Promise<Operation> {
    return (await this.request<Operation>("GET", `/operations/${encodeURIComponent(id)}`)).data;
  }

  async createOperation(body: { operation_type: string; name?: string; total_epochs_planned?: number; metadata?: Record<string, unknown> }): Promise<Operation> {
    return (await this.request<Operation>("POST", "/operations", body)).data;
  }

  async completeOperation(id: string, body: { status: "completed" | "failed"; error_message?: string; result?: Record<string, unknown> }): Promise<Operation> {
    return (await this.request<Operation>("POST", `/operations/${encodeURIComponent(id)}/complete`, body)).data;
  }

  async cancelOperation(id: string): Promise<Operation> {
    return (await this.request<Operation>("DELETE", `/operations/${encodeURIComponent(id)}`)).data;
  }

  async postMetrics(id: string, epochs: WireEpoch[]): Promise<{ stored: number; trends: TrendSummary }> {
    return (await this.request<{ stored: number; trends: TrendSummary }>("POST", `/operations/${encodeURIComponent(id)}/metrics`, { epochs })).data;
  }

  async getMetrics(id: string, q: { since_epoch?: number; max_points?: number } = {}): Promise<MetricsReply> {
    return (await this.request<MetricsReply>("GET", `/operations/${encodeURIComponent(id)}/metrics`, undefined, q)).data;
  }

  async startTraining(spec: TrainingSpecInput & { target?: "local" | "host" }): Promise<Operation> {
    return (await this.request<Operation>("POST", "/trainings", spec)).data;
  }
}
