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
import { NormalizedTrainingSpec, specError, validateSpec, type NormalizedSpec } from "../schemas/spec.ts";
import { Envelope, ErrorEnvelope, bearerAuth, errorHandling, jsonBody, ok, pathInt, tarResponse, type RouteTable } from "../http/index.ts";
import { documented } from "../http/openapi.ts";
import { resolveSpecPaths } from "../trainer/datasets/data_dir.ts";
import type { Outbox } from "./outbox.ts";
import type { Sessions } from "./sessions.ts";

/** What GET /health says about the TensorFlow.js backend. */
export interface BackendReport {
  backend: string | null;
  backend_fallback_reason: string | null;
  gpu: string | null;
  gpu_visible: string | null;
}

export interface HostDeps {
  sessions: Sessions;
  outbox: Outbox;
  token: string | null;
  version: string;
  backend: () => BackendReport;
  /** Replaces each session's api_url when set (TRAINWATCH_URL). */
  apiUrl?: string | null;
  maxBodyBytes?: number;
  /** CSV datasets are read only from inside this directory (TRAINWATCH_DATA_DIR on the host). */
  dataDir: string;
  /** This host's memory budget per training (TRAINWATCH_MAX_MODEL_MB on the host). */
  maxModelMb: number;
}

const IdParams = Type.Object({ id: Type.String() });
const CheckpointParams = t.Object({ id: t.String(), epoch: pathInt("epoch", EpochNumber) });

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

export function createHostApp(deps: HostDeps) {
  const started = Date.now();
  const table: { routes: ReturnType<RouteTable> } = { routes: [] };
  const app = new Elysia({ name: "trainwatch-host" })
    .use(errorHandling(() => table.routes))
    // Every host route, /health included, needs TRAINWATCH_HOST_TOKEN when it is set; it is checked before any body is read.
    .use(bearerAuth(deps.token, { realm: "trainwatch-host", variable: "TRAINWATCH_HOST_TOKEN" }))
    .use(jsonBody(deps.maxBodyBytes ?? 5 * 1024 * 1024))
    .get(
      "/health",
      () =>
        ok({
          status: "ok" as const,
          version: deps.version,
          uptime_s: Math.round((Date.now() - started) / 1000),
          ...deps.backend(),
          active_sessions: deps.sessions.active(),
          relay_pending: deps.outbox.pending(),
          relay_problems: deps.outbox.problems(),
        }),
      {
        response: { 200: Envelope(HostHealth), 401: ErrorEnvelope },
        detail: { summary: "Backend, GPU, active sessions and version; the API picks the host with the fewest active sessions." },
      },
    )
    .post(
      "/sessions",
      ({ body, set }) => {
        set.status = 201;
        const spec = sessionSpec(body.spec, deps);
        return ok(deps.sessions.start({ operation_id: body.operation_id, spec, api_url: deps.apiUrl ?? body.api_url }));
      },
      {
        body: SessionInput,
        response: { 201: Envelope(Session), 400: ErrorEnvelope, 401: ErrorEnvelope },
        detail: { summary: "Start training an operation; every epoch is relayed to api_url." },
      },
    )
    .get("/sessions/:id", ({ params }) => ok(deps.sessions.get(params.id)), {
      params: IdParams,
      response: { 200: Envelope(Session), 401: ErrorEnvelope, 404: ErrorEnvelope },
      detail: { summary: "A session's state: status, epochs trained, progress, relay backlog." },
    })
    .get("/sessions/:id/checkpoints/:epoch", ({ params }) => tarResponse(params.id, params.epoch, deps.sessions.checkpoint(params.id, params.epoch)), {
      params: CheckpointParams,
      detail: {
        summary: "A checkpoint of a training this host ran, as a tar of model.json, weights.bin and preprocessing.json (the API proxies it).",
        responses: {
          200: documented("ustar archive", { type: "string", contentMediaType: "application/x-tar" }, "application/x-tar"),
          400: documented("Bad epoch", ErrorEnvelope),
          401: documented("Missing or wrong host token", ErrorEnvelope),
          404: documented("No checkpoint of that epoch on this host", ErrorEnvelope),
        },
      },
    })
    .delete("/sessions/:id", async ({ params }) => ok(await deps.sessions.cancel(params.id)), {
      params: IdParams,
      response: { 200: Envelope(Session), 401: ErrorEnvelope, 404: ErrorEnvelope },
      detail: { summary: "Cancel a session: the training stops within one batch." },
    });
  table.routes = app.routes;
  return app;
}

export type HostApp = ReturnType<typeof createHostApp>;
