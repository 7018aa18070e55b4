/**
 * The host's API for its own script trainings: the few routes of the Trainwatch API a training client uses
 * (read the operation, post epochs or steps, report its start, finish), served on loopback only, each call authorised
 * by the token of that operation's session (TRAINWATCH_TOKEN in the child's environment), so a script can report on
 * its own run and nothing else. Epochs and steps go into the relay outbox; the reply carries the contract's `control`.
 */
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import { MetricsInput, type WireEpoch } from "../schemas/epoch.ts";
import { StepsInput, type WireStep } from "../schemas/step.ts";
import { CompleteOperationInput, OperationIdParams } from "../schemas/operation.ts";
import { errorHandling, jsonBody, ok } from "../http/index.ts";
import type { ScriptSessions } from "./script_trainings.ts";

const MetadataInput = Type.Record(Type.String(), Type.Unknown());

export function createChildApi(scripts: ScriptSessions, maxBodyBytes = 5 * 1024 * 1024) {
  const session = (id: string, request: Request) => scripts.authorize(id, request.headers.get("authorization"));
  return new Elysia({ name: "trainwatch-host-child", prefix: "/api/v1" })
    .use(errorHandling())
    .use(jsonBody(maxBodyBytes))
    .get("/health", () => ok({ status: "ok" as const, service: "trainwatch host (script trainings)" }))
    .get(
      "/operations/:id",
      ({ params, request }) => {
        const s = session(params.id, request);
        const view = scripts.get(params.id);
        return ok({
          operation_id: params.id,
          status: view.status,
          name: s.recipe.name,
          metadata: { location: "host", kind: "script", recipe: s.recipe.name, params: s.params },
          control: scripts.control(s),
        });
      },
      { params: OperationIdParams },
    )
    .post(
      "/operations/:id/metrics",
      ({ params, body, request }) => {
        const s = session(params.id, request);
        const epochs = ("epochs" in body ? body.epochs : [body]) as WireEpoch[];
        const stored = scripts.epochs(s, epochs);
        return ok({ operation_id: params.id, stored, control: scripts.control(s) });
      },
      { params: OperationIdParams, body: MetricsInput },
    )
    .post(
      "/operations/:id/steps",
      ({ params, body, request }) => {
        const s = session(params.id, request);
        const steps = ("steps" in body ? body.steps : [body]) as WireStep[];
        const stored = scripts.steps(s, steps);
        return ok({ operation_id: params.id, stored, control: scripts.control(s) });
      },
      { params: OperationIdParams, body: StepsInput },
    )
    .patch(
      "/operations/:id/metadata",
      ({ params, body, request }) => {
        const s = session(params.id, request);
        // The relay carries the start report's fields; the GPU is the one that matters on a host.
        const gpu = typeof body.gpu === "string" ? body.gpu.slice(0, 256) : null;
        const backend = typeof body.backend === "string" ? body.backend.slice(0, 256) : undefined;
        scripts.reportStart(s, { gpu, backend });
        return ok({ operation_id: params.id, relayed: { gpu, ...(backend ? { backend } : {}) } });
      },
      { params: OperationIdParams, body: MetadataInput },
    )
    .post(
      "/operations/:id/complete",
      ({ params, body, request }) => {
        const s = session(params.id, request);
        const final =
          body.status === "failed"
            ? { status: "failed" as const, error_message: body.error_message ?? "failed", result: body.result ?? null }
            : { status: body.status, result: body.result ?? null };
        scripts.finishedByScript(s, final);
        return ok({
          operation_id: params.id,
          status: body.status,
          note: "delivered to the API once the script's processes are gone",
        });
      },
      { params: OperationIdParams, body: CompleteOperationInput },
    );
}
