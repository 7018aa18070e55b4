/**
 * The host service's app factory: health and training sessions. Only
 * src/host/index.ts listens. Same envelope and error mapping as the API.
 */
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { TrainwatchError, errorBody } from "../errors.ts";
import { HostHealth, Session, SessionInput } from "../schemas/host.ts";
import { NormalizedTrainingSpec, validateSpec, type NormalizedSpec } from "../schemas/spec.ts";
import { Envelope, ErrorEnvelope, bearerMatches, errorHandling, ok } from "../routes/http.ts";
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
}

const IdParams = Type.Object({ id: Type.String() });

/** A spec as the API sends it (normalised), or as a person would write it. */
function sessionSpec(spec: unknown): NormalizedSpec {
  if (Value.Check(NormalizedTrainingSpec, spec)) return spec;
  const v = validateSpec(spec);
  if (v.ok) return v.spec;
  const field = `body.spec${v.path === "/" ? "" : v.path.replaceAll("/", ".")}`;
  throw new TrainwatchError("VALIDATION_ERROR", `${field}: ${v.message.slice(v.path.length + 2)}`, { field });
}

/** Requires `Authorization: Bearer <TRAINWATCH_HOST_TOKEN>` on every route when the token is set. */
const hostAuth = (token: string | null) =>
  new Elysia({ name: "trainwatch-host/auth", seed: token ?? "" }).onBeforeHandle({ as: "scoped" }, ({ request, set }) => {
    if (!token || bearerMatches(request.headers.get("authorization"), token)) return;
    set.status = 401;
    set.headers["www-authenticate"] = 'Bearer realm="trainwatch-host"';
    return errorBody("UNAUTHORIZED", "missing or wrong bearer token (Authorization: Bearer <TRAINWATCH_HOST_TOKEN>)");
  });

export function createHostApp(deps: HostDeps) {
  const started = Date.now();
  return new Elysia({ name: "trainwatch-host" })
    .use(errorHandling(deps.maxBodyBytes ?? 5 * 1024 * 1024))
    .use(hostAuth(deps.token))
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
        const spec = sessionSpec(body.spec);
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
    .delete("/sessions/:id", async ({ params }) => ok(await deps.sessions.cancel(params.id)), {
      params: IdParams,
      response: { 200: Envelope(Session), 401: ErrorEnvelope, 404: ErrorEnvelope },
      detail: { summary: "Cancel a session: the training stops within one batch." },
    });
}

export type HostApp = ReturnType<typeof createHostApp>;
