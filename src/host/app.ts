/**
 * The host service's app factory: health and training sessions. Only
 * src/host/index.ts listens. Same envelope and error mapping as the API.
 */
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { EpochNumber } from "../schemas/epoch.ts";
import { HostHealth, Session, SessionInput } from "../schemas/host.ts";
import { memoryProblem } from "../schemas/memory.ts";
import { NormalizedTrainingSpec, type NormalizedSpec } from "../schemas/spec.ts";
import { specError, validateSpec } from "../schemas/spec_rules.ts";
import {
  Envelope,
  ErrorEnvelope,
  bodiesFirst,
  errorHandling,
  gate,
  jsonBody,
  ok,
  tarResponse,
  type RouteTable,
} from "../http/index.ts";
import { documented } from "../http/openapi.ts";
import { resolveSpecPaths } from "../trainer/datasets/data_dir.ts";
import type { Outbox } from "./outbox.ts";
import type { Sessions } from "./sessions.ts";
import type { ScriptSessions } from "./script_trainings.ts";
import { TrainwatchError, invalid } from "../errors.ts";
import { LogLines, LogTail, RecipeView } from "../schemas/recipe.ts";
import { SSE_HEADERS } from "../http/sse.ts";
import { pathInt, queryInt } from "../schemas/query.ts";
import { OperationIdParams } from "../schemas/operation.ts";

/** What GET /health says about the TensorFlow.js backend: the fields of schemas/host.ts BackendReport (backend null while detecting). */
export type HostBackend = Pick<HostHealth, "backend" | "backend_fallback_reason" | "gpu" | "gpu_visible">;

/** The backend fields of a report (a selection, or a session's start report), for /health. */
export const backendOf = (r: HostBackend): HostBackend => ({
  backend: r.backend,
  backend_fallback_reason: r.backend_fallback_reason,
  gpu: r.gpu,
  gpu_visible: r.gpu_visible,
});

export interface HostDeps {
  sessions: Sessions;
  outbox: Outbox;
  token: string | null;
  version: string;
  backend: () => HostBackend;
  /** Replaces each session's api_url when set (TRAINWATCH_URL). */
  apiUrl?: string | null;
  maxBodyBytes?: number;
  /** CSV datasets are read only from inside this directory (TRAINWATCH_DATA_DIR on the host). */
  dataDir: string;
  /** This host's memory budget per training (TRAINWATCH_MAX_MODEL_MB on the host). */
  maxModelMb: number;
  /** Script trainings from this host's recipe file (absent: the host runs only built-in trainings). */
  scripts?: ScriptSessions;
}

const LogsQuery = t.Object({ tail: queryInt("tail", LogTail) });
const CheckpointParams = t.Object({ ...OperationIdParams.properties, epoch: pathInt("epoch", EpochNumber) });

/**
 * A spec as the API sends it (normalised), or as a person would write it; held to this host's memory budget, with a CSV
 * path resolved in this host's data directory.
 */
function sessionSpec(spec: unknown, deps: Pick<HostDeps, "dataDir" | "maxModelMb">): NormalizedSpec {
  let normalized: NormalizedSpec;
  if (Value.Check(NormalizedTrainingSpec, spec)) {
    normalized = spec;
    const memory = memoryProblem(spec, deps.maxModelMb);
    if (memory) throw specError("body.spec", { path: memory.path, message: `${memory.path}: ${memory.message}` });
  } else {
    const v = validateSpec(spec, { maxModelMb: deps.maxModelMb });
    if (!v.ok) throw specError("body.spec", v);
    normalized = v.spec;
  }
  return resolveSpecPaths(normalized, deps.dataDir, "body.spec");
}

function scriptsOf(deps: HostDeps): ScriptSessions {
  if (!deps.scripts) throw new TrainwatchError("NOT_FOUND", "this training host runs no script trainings");
  return deps.scripts;
}

export function createHostApp(deps: HostDeps) {
  const started = Date.now();
  const table: { routes: ReturnType<RouteTable> } = { routes: [] };
  const app = new Elysia({ name: "trainwatch-host" })
    .use(errorHandling())
    // Every host path, /health and unknown ones included, needs TRAINWATCH_HOST_TOKEN when it is set; it is checked
    // first, before routing, validation or reading the body.
    .use(
      gate({
        token: deps.token,
        realm: "trainwatch-host",
        variable: "TRAINWATCH_HOST_TOKEN",
        routes: () => table.routes,
      }),
    )
    .use(bodiesFirst(() => table.routes))
    .use(jsonBody(deps.maxBodyBytes ?? 5 * 1024 * 1024))
    .get(
      "/health",
      () =>
        ok({
          status: "ok" as const,
          version: deps.version,
          uptime_s: Math.round((Date.now() - started) / 1000),
          ...deps.backend(),
          active_sessions: deps.sessions.active() + (deps.scripts?.active() ?? 0),
          relay_pending: deps.outbox.pending(),
          relay_problems: deps.outbox.problems(),
        }),
      {
        response: { 200: Envelope(HostHealth), 401: ErrorEnvelope },
        detail: {
          summary: "Backend, GPU, active sessions and version; the API picks the host with the fewest active sessions.",
        },
      },
    )
    .post(
      "/sessions",
      ({ body, set }) => {
        const api_url = deps.apiUrl ?? body.api_url;
        if (body.recipe !== undefined) {
          if (body.spec !== undefined) throw invalid("body.spec", "not allowed with body.recipe");
          if (!deps.scripts) throw invalid("body.recipe", "this training host runs no script trainings");
          const session = deps.scripts.start({
            operation_id: body.operation_id,
            recipe: body.recipe,
            params: body.params,
            api_url,
          });
          set.status = 201;
          return ok(session);
        }
        if (body.spec === undefined)
          throw invalid("body.spec", "Expected required property (or a recipe in body.recipe)");
        set.status = 201;
        const spec = sessionSpec(body.spec, deps);
        return ok(deps.sessions.start({ operation_id: body.operation_id, spec, api_url }));
      },
      {
        body: SessionInput,
        response: { 201: Envelope(Session), 400: ErrorEnvelope, 401: ErrorEnvelope },
        detail: { summary: "Start training an operation; every epoch is relayed to api_url." },
      },
    )
    .get("/recipes", () => ok({ recipes: deps.scripts ? deps.scripts.views() : [] }), {
      response: { 200: Envelope(Type.Object({ recipes: Type.Array(RecipeView) })), 401: ErrorEnvelope },
      detail: {
        summary:
          "The recipes this host declares (its TRAINWATCH_RECIPES file), with their params schemas; the API lists them under GET /api/v1/recipes.",
      },
    })
    .get("/sessions/:id/logs", ({ params, query }) => ok(scriptsOf(deps).logs(params.id, query.tail ?? 200)), {
      params: OperationIdParams,
      query: LogsQuery,
      response: { 200: Envelope(LogLines), 400: ErrorEnvelope, 401: ErrorEnvelope, 404: ErrorEnvelope },
      detail: { summary: "The last `tail` lines a script session printed (the API proxies it)." },
    })
    .get(
      "/sessions/:id/logs/stream",
      ({ params, query, request, server }) => {
        const body = scriptsOf(deps).logStream(params.id, query.tail ?? 200);
        (server as { timeout?: (r: Request, seconds: number) => void } | null)?.timeout?.(request, 0);
        return new Response(body, { headers: SSE_HEADERS });
      },
      {
        params: OperationIdParams,
        query: LogsQuery,
        detail: { summary: "A script session's log live (SSE: lines, then end); the API relays it." },
      },
    )
    .get(
      "/sessions/:id",
      ({ params }) => ok(deps.scripts?.has(params.id) ? deps.scripts.get(params.id) : deps.sessions.get(params.id)),
      {
        params: OperationIdParams,
        response: { 200: Envelope(Session), 401: ErrorEnvelope, 404: ErrorEnvelope },
        detail: { summary: "A session's state: status, epochs trained, progress, relay backlog." },
      },
    )
    .get(
      "/sessions/:id/checkpoints/:epoch",
      ({ params }) => tarResponse(params.id, params.epoch, deps.sessions.checkpoint(params.id, params.epoch)),
      {
        params: CheckpointParams,
        detail: {
          summary:
            "A checkpoint of a training this host ran, as a tar of model.json, weights.bin and preprocessing.json (the API proxies it).",
          responses: {
            200: documented(
              "ustar archive",
              { type: "string", contentMediaType: "application/x-tar" },
              "application/x-tar",
            ),
            400: documented("Bad epoch", ErrorEnvelope),
            401: documented("Missing or wrong host token", ErrorEnvelope),
            404: documented("No checkpoint of that epoch on this host", ErrorEnvelope),
          },
        },
      },
    )
    .delete(
      "/sessions/:id",
      async ({ params }) =>
        ok(deps.scripts?.has(params.id) ? await deps.scripts.cancel(params.id) : await deps.sessions.cancel(params.id)),
      {
        params: OperationIdParams,
        response: { 200: Envelope(Session), 401: ErrorEnvelope, 404: ErrorEnvelope },
        detail: { summary: "Cancel a session: the training stops within one batch." },
      },
    );
  table.routes = app.routes;
  return app;
}

export type HostApp = ReturnType<typeof createHostApp>;
