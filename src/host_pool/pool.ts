/**
 * The API's side of GPU hosts: picks the least busy reachable host for a training,
 * starts the session there and forwards cancels. Implements the Dispatcher's
 * RemoteHosts seam; all calls go through the typed HostClient.
 */
import { ApiError, HostClient } from "../client/api.ts";
import type { Config } from "../config.ts";
import { TrainwatchError, invalid } from "../errors.ts";
import type { Operation } from "../schemas/operation.ts";
import type { NormalizedSpec } from "../schemas/spec.ts";
import type { RemoteHosts } from "../trainer/dispatcher.ts";
import type { LogLines, RecipeList, RecipeRequest, RecipeView } from "../schemas/recipe.ts";
import { checkParams, plannedEpochs, type Params } from "../recipes/recipe.ts";
import type { SessionProbe } from "./watchdog.ts";

/** Where `bun run src/host` listens by default. */
export const DEFAULT_HOST_URL = "http://127.0.0.1:8100";

export interface HostPoolOptions {
  urls: string[];
  token: string | null;
  /** The API's URL as the hosts reach it; read when a session starts. */
  apiUrl: () => string;
  /** Health probe per host (default 2 s). */
  probeTimeoutMs?: number;
  /** POST /sessions (default 10 s). */
  startTimeoutMs?: number;
  /** DELETE /sessions/{id} (default 5 s). */
  cancelTimeoutMs?: number;
  /** GET /sessions/{id}/checkpoints/{epoch} (default 60 s: weights can be large). */
  checkpointTimeoutMs?: number;
  fetch?: typeof fetch;
}

const reason = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class HostPool implements RemoteHosts {
  private readonly clients: Map<string, HostClient>;
  private lastProbe: { at: string; hosts: Record<string, number | string> } | null = null;

  constructor(private readonly opts: HostPoolOptions) {
    // The only clients there are: an operation's host is looked up here, never built from the URL it names.
    this.clients = new Map(
      opts.urls.map((u) => [u, new HostClient({ baseUrl: u, token: opts.token, fetch: opts.fetch })]),
    );
  }

  /**
   * Probes every host's /health in parallel and starts the session on the one with the fewest
   * active sessions. The operation is opened only when some host answered the probe.
   */
  async start(spec: NormalizedSpec, open: () => Promise<string>): Promise<{ host: string }> {
    const { candidates, failures } = await this.probe();
    const operationId = candidates.length > 0 ? await open() : null;
    let refused: TrainwatchError | null = null;
    for (const c of candidates) {
      try {
        await c.client.startSession(
          { operation_id: operationId!, spec, api_url: this.opts.apiUrl() },
          { timeoutMs: this.opts.startTimeoutMs ?? 10_000 },
        );
        return { host: c.url };
      } catch (err) {
        failures.push(`${c.url}: ${reason(err)}`);
        refused ??= specRefusal(c.url, err);
      }
    }
    // Every reachable host refused the spec itself (say its CSV is not in the host's data directory): a 400, not a 503.
    if (refused && candidates.length > 0) throw refused;
    throw new TrainwatchError(
      "HOST_UNAVAILABLE",
      `no training host reachable (${failures.join("; ")}); start one with \`bun run src/host\` or check TRAINING_HOST_URL`,
      { hosts: this.opts.urls },
    );
  }

  /**
   * The first half of a script training on a host (the `host` executor's prepare, src/executors/host.ts): the
   * reachable hosts that declare the recipe, least busy first, and its params checked here against the first one's
   * schema (a 400 naming body.params.x before anything is created). Creates nothing.
   */
  async prepareScript(req: RecipeRequest): Promise<{ hosts: string[]; params: Params; planned: number | null }> {
    const { candidates, failures } = await this.probe();
    const declaring: { url: string; recipe: RecipeView }[] = [];
    for (const c of candidates) {
      try {
        const recipe = (await c.client.recipes({ timeoutMs: this.opts.probeTimeoutMs ?? 2000 })).find(
          (r) => r.name === req.recipe,
        );
        if (recipe) declaring.push({ url: c.url, recipe });
      } catch (err) {
        failures.push(`${c.url}: ${reason(err)}`);
      }
    }
    if (declaring.length === 0) {
      if (candidates.length > 0) {
        throw invalid(
          "body.recipe",
          `unknown recipe ${JSON.stringify(req.recipe)}: no reachable training host declares it (asked ${candidates.map((c) => c.url).join(", ")})`,
          { recipe: req.recipe },
        );
      }
      throw new TrainwatchError(
        "HOST_UNAVAILABLE",
        `no training host reachable (${failures.join("; ")}); start one with \`bun run src/host\` or check TRAINING_HOST_URL`,
        { hosts: this.opts.urls },
      );
    }
    const first = declaring[0]!;
    const params = checkParams(first.recipe, req.params);
    const planned = plannedEpochs({ epochs_param: first.recipe.epochs_param ?? undefined }, params);
    return { hosts: declaring.map((d) => d.url), params, planned };
  }

  /**
   * The second half: the session of `operationId` on the first of `hosts` that takes it (the host checks the recipe
   * and params again: its 400 passes through naming the field). HOST_UNAVAILABLE when none does.
   */
  async submitScript(
    operationId: string,
    recipe: string,
    params: Params,
    hosts: readonly string[],
  ): Promise<{ host: string }> {
    const failures: string[] = [];
    for (const url of hosts) {
      const client = this.clients.get(url);
      if (!client) continue;
      try {
        await client.startSession(
          { operation_id: operationId, recipe, params, api_url: this.opts.apiUrl() },
          { timeoutMs: this.opts.startTimeoutMs ?? 10_000 },
        );
        return { host: url };
      } catch (err) {
        if (err instanceof ApiError && err.status === 400)
          throw invalid(String(err.details?.field ?? "body.recipe"), `${err.message} (on training host ${url})`);
        failures.push(`${url}: ${reason(err)}`);
      }
    }
    throw new TrainwatchError("HOST_UNAVAILABLE", `no training host took the script (${failures.join("; ")})`, {
      hosts: this.opts.urls,
    });
  }

  /** Every reachable host's recipes, with the error of each host that did not answer. */
  async recipes(): Promise<RecipeList> {
    const asked = await Promise.all(
      [...this.clients].map(async ([url, client]) => {
        try {
          const recipes = await client.recipes({ timeoutMs: this.opts.probeTimeoutMs ?? 2000 });
          return {
            url,
            recipes: recipes.map((r) => ({ ...r, target: "host" as const, targets: ["host" as const], host: url })),
            error: null,
          };
        } catch (err) {
          return { url, recipes: [] as RecipeView[], error: reason(err) };
        }
      }),
    );
    return {
      recipes: asked.flatMap((a) => a.recipes),
      hosts: asked.map((a) => ({ host: a.url, error: a.error, recipes: a.recipes.length })),
    };
  }

  /** A host script's log tail, from its host; 503 naming the host when it cannot be reached. */
  async logs(op: Operation, tail: number): Promise<LogLines> {
    const { host, client } = this.hostOf(op);
    try {
      return await client.logs(op.operation_id, tail, { timeoutMs: this.opts.probeTimeoutMs ?? 5000 });
    } catch (err) {
      throw this.logError(op, host, err);
    }
  }

  /** A host script's live log, relayed from its host's stream. */
  async logStream(op: Operation, tail: number, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const { host, client } = this.hostOf(op);
    try {
      return await client.logStream(op.operation_id, tail, signal);
    } catch (err) {
      throw this.logError(op, host, err);
    }
  }

  private hostOf(op: Operation): { host: string; client: HostClient } {
    const host = typeof op.metadata.host === "string" ? op.metadata.host : null;
    if (!host)
      throw new TrainwatchError(
        "NOT_FOUND",
        `operation ${op.operation_id} records no training host to fetch its logs from`,
        { operation_id: op.operation_id },
      );
    const client = this.clients.get(host);
    if (!client)
      throw new TrainwatchError("NOT_FOUND", this.unknown(op.operation_id, host), {
        operation_id: op.operation_id,
        host,
      });
    return { host, client };
  }

  /**
   * Why `host` is not contacted: the API talks only to the hosts it was configured with (TRAINING_HOST_URL), never to
   * a URL an operation names, so that no request can steer it, with its host token, somewhere else.
   */
  private unknown(operationId: string, host: string): string {
    return `operation ${operationId} names the training host ${host}, which is not one of this server's (TRAINING_HOST_URL: ${this.opts.urls.join(", ")}); it is not contacted`;
  }

  private logError(op: Operation, host: string, err: unknown): TrainwatchError {
    const id = op.operation_id;
    if (err instanceof ApiError && err.status === 404)
      return new TrainwatchError("NOT_FOUND", `the training host ${host} has no log of ${id}: ${err.message}`, {
        operation_id: id,
        host,
      });
    return new TrainwatchError(
      "HOST_UNAVAILABLE",
      `cannot fetch the log of ${id} from the training host ${host}: ${reason(err)}`,
      { operation_id: id, host },
    );
  }

  /** Probes every host's /health in parallel: the reachable ones, least busy first (ties keep TRAINING_HOST_URL's order). */
  private async probe() {
    const probes = await Promise.all(
      [...this.clients].map(async ([url, client]) => {
        try {
          const h = await client.health({ timeoutMs: this.opts.probeTimeoutMs ?? 2000 });
          return { url, client, active: h.active_sessions };
        } catch (err) {
          return { url, client, error: reason(err) };
        }
      }),
    );
    this.lastProbe = {
      at: new Date().toISOString(),
      hosts: Object.fromEntries(probes.map((p) => [p.url, p.error ?? p.active!])),
    };
    const failures = probes.filter((p) => p.error !== undefined).map((p) => `${p.url}: ${p.error}`);
    const candidates = probes.filter((p) => p.error === undefined).sort((a, b) => a.active! - b.active!);
    return { candidates, failures };
  }

  /** DELETE /sessions/{id} on the operation's host; a note when the host could not be told. */
  async cancel(op: Operation): Promise<Record<string, unknown> | null> {
    const host = typeof op.metadata.host === "string" ? op.metadata.host : null;
    if (!host) return null;
    const client = this.clients.get(host);
    if (!client)
      return { host_unknown: true, host, note: `cancelled here only: ${this.unknown(op.operation_id, host)}` };
    try {
      await client.cancelSession(op.operation_id, {
        timeoutMs: this.opts.cancelTimeoutMs ?? 5000,
      });
      return null;
    } catch (err) {
      // The host no longer knows the session (it restarted): nothing is training there.
      if (err instanceof ApiError && err.status === 404) return null;
      return {
        host_unreachable: true,
        host,
        error: reason(err),
        note: "cancelled here anyway; the host stops when its next relay call gets 409",
      };
    }
  }

  /**
   * A checkpoint's tar from the operation's host. CHECKPOINT_NOT_FOUND passes through (the host no longer has it);
   * a host that cannot be reached or fails is HOST_UNAVAILABLE, naming the host.
   */
  async checkpoint(op: Operation, epoch: number): Promise<Uint8Array> {
    const host = typeof op.metadata.host === "string" ? op.metadata.host : null;
    const id = op.operation_id;
    if (!host)
      throw new TrainwatchError(
        "CHECKPOINT_NOT_FOUND",
        `operation ${id} records no training host to fetch its checkpoints from`,
        { operation_id: id, epoch },
      );
    const client = this.clients.get(host);
    if (!client)
      throw new TrainwatchError("CHECKPOINT_NOT_FOUND", this.unknown(id, host), { operation_id: id, epoch, host });
    try {
      return await client.checkpoint(id, epoch, {
        timeoutMs: this.opts.checkpointTimeoutMs ?? 60_000,
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        throw new TrainwatchError(
          "CHECKPOINT_NOT_FOUND",
          `the training host ${host} no longer has epoch ${epoch} of ${id}: ${err.message}`,
          { operation_id: id, epoch, host },
        );
      }
      throw new TrainwatchError(
        "HOST_UNAVAILABLE",
        `cannot fetch the checkpoint of epoch ${epoch} from the training host ${host}: ${reason(err)}`,
        { operation_id: id, epoch, host },
      );
    }
  }

  /**
   * GET /sessions/{id} on `host`, for the watchdog when its heartbeats are late (see SessionProbe). A host this server
   * was not configured with is never asked: it reads unreachable, so its operation fails after the timeout.
   */
  async probeSession(host: string, operationId: string): Promise<SessionProbe> {
    const client = this.clients.get(host);
    if (!client) return { kind: "unreachable", error: this.unknown(operationId, host) };
    try {
      const session = await client.getSession(operationId, {
        timeoutMs: this.opts.probeTimeoutMs ?? 2000,
      });
      return { kind: "session", session };
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return { kind: "gone" };
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        return {
          kind: "unreachable",
          error: `the host refused the API's token (${err.status}); set the same TRAINWATCH_HOST_TOKEN on the API and on the host`,
        };
      }
      return { kind: "unreachable", error: reason(err) };
    }
  }

  describe(): Record<string, unknown> {
    return { urls: this.opts.urls, last_probe: this.lastProbe };
  }
}

/** A host's 400 on a field of the spec, as the same 400 on the API's request body ("body.spec.x" → "body.x"). */
function specRefusal(url: string, err: unknown): TrainwatchError | null {
  if (!(err instanceof ApiError) || err.status !== 400) return null;
  const field = err.details?.field;
  if (typeof field !== "string" || !field.startsWith("body.spec")) return null;
  const problem = err.message.startsWith(`${field}: `) ? err.message.slice(field.length + 2) : err.message;
  return invalid(`body${field.slice("body.spec".length)}`, `${problem} (on training host ${url})`);
}

/**
 * The pool the server wires into its Dispatcher: TRAINING_HOST_URL's hosts, or the
 * default local host when only USE_TRAINING_HOST_SERVICE=true is set; null when neither.
 */
export function hostPoolFromConfig(
  config: Pick<Config, "hostUrls" | "hostToken" | "useHostService">,
  apiUrl: () => string,
): HostPool | null {
  const urls = config.hostUrls.length ? config.hostUrls : config.useHostService ? [DEFAULT_HOST_URL] : [];
  return urls.length ? new HostPool({ urls, token: config.hostToken, apiUrl }) : null;
}
