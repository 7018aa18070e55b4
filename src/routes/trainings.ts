/** Start a training from a spec, locally or on a GPU host. */
import { Elysia } from "elysia";
import { TrainwatchError } from "../errors.ts";
import { TrainingRequest } from "../schemas/spec.ts";
import { Operation } from "../schemas/operation.ts";
import type { AppDeps } from "./deps.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";

/** Re-exported: the body schema lives with the spec (src/schemas/spec.ts), so MCP reads it without the route. */
export { TrainingRequest };

export const trainingsRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/trainings" }).post(
    "/trainings",
    async ({ body, set }) => {
      if (!deps.trainers) throw new TrainwatchError("HOST_UNAVAILABLE", "this server runs no trainers");
      const { target, ...spec } = body;
      const op = await deps.trainers.start(spec, target);
      set.status = 202;
      return ok(op);
    },
    {
      body: TrainingRequest,
      response: { 202: Envelope(Operation), 400: ErrorEnvelope, 503: ErrorEnvelope },
      detail: {
        tags: ["trainings"],
        summary: "Start a training",
        description:
          "Validates the training spec, creates a `training` operation and returns 202 with it (`operation_id`). Local trainings run in a worker thread, at most TRAINWATCH_MAX_LOCAL_TRAININGS at once (others wait as `pending`, in order); `target: \"host\"` sends it to a GPU host (503 when none is reachable). Every epoch appears in `GET /operations/{id}/metrics` as it finishes; cancel with `DELETE /operations/{id}`.",
      },
    },
  );
