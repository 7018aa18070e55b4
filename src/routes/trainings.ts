/** Start a training from a spec or a declared recipe, locally or on a GPU host. */
import { Elysia } from "elysia";
import { TrainwatchError, invalid } from "../errors.ts";
import { TrainingRequest } from "../schemas/spec.ts";
import { SPEC_ONLY_FIELDS, StartTrainingRequest } from "../schemas/recipe.ts";
import { Operation } from "../schemas/operation.ts";
import { normalizeStopPolicy } from "../operations/stop_policy.ts";
import type { AppDeps } from "./deps.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";

/** Re-exported: the body schema lives with the spec (src/schemas/spec.ts), so MCP reads it without the route. */
export { TrainingRequest };

/**
 * The body as validated, stating for the document and generated clients the rule the handler enforces: exactly one
 * of `dataset` (a built-in spec) and `recipe` (a script training). TypeBox does not check `oneOf` on an object, so
 * validation and its messages are StartTrainingRequest's and the handler's.
 */
const StartTrainingBody = {
  ...StartTrainingRequest,
  oneOf: [has("dataset", "A built-in training spec."), has("recipe", "A declared recipe and its params.")],
};

/** A subschema that holds when `key` is present (it names the property, as strict JSON Schema wants). */
function has(key: string, description: string) {
  return { type: "object", properties: { [key]: {} }, required: [key], description };
}

export const trainingsRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/trainings" }).post(
    "/trainings",
    async ({ body, set }) => {
      const trainers = deps.trainers;
      if (!trainers) throw new TrainwatchError("HOST_UNAVAILABLE", "this server runs no trainers");
      let op: Operation;
      // Created labelled: a search by group or tag finds the run from its first moment.
      const labels = { tags: body.tags, group: body.group };
      if (body.recipe !== undefined) {
        const extra = SPEC_ONLY_FIELDS.find((k) => body[k] !== undefined);
        if (extra) throw invalid(`body.${extra}`, "not allowed with body.recipe (a recipe's settings are its params)");
        if (!trainers.startRecipe)
          throw new TrainwatchError("HOST_UNAVAILABLE", "this server runs no script trainings");
        op = await trainers.startRecipe(
          {
            recipe: body.recipe,
            params: body.params,
            name: body.name,
            target: body.target,
            stop_policy: body.stop_policy,
          },
          labels,
        );
      } else {
        if (body.params !== undefined)
          throw invalid("body.params", "only with body.recipe (params belong to a recipe)");
        const {
          target,
          dataset,
          recipe: _recipe,
          params: _params,
          stop_policy,
          tags: _tags,
          group: _group,
          ...rest
        } = body;
        if (dataset === undefined)
          throw invalid("body.dataset", "Expected required property (or name a recipe in body.recipe)");
        op = await trainers.start({ ...rest, dataset }, target, labels);
        // Before its first epoch can be judged: the training reports none before this reply goes out.
        if (stop_policy) op = await deps.operations.setStopPolicy(op.operation_id, normalizeStopPolicy(stop_policy));
      }
      set.status = 202;
      return ok(op);
    },
    {
      body: StartTrainingBody,
      response: { 202: Envelope(Operation), 400: ErrorEnvelope, 503: ErrorEnvelope },
      detail: {
        tags: ["trainings"],
        summary: "Start a training",
        description:
          "Validates the request, creates a `training` operation and returns 202 with it (`operation_id`). The body has exactly one of `dataset` and `recipe` (400 naming the field otherwise). A built-in spec (`dataset`, `model`, `training`) trains in a worker thread; a `recipe` runs that declared script (never a command from the request) with its `params` checked against the recipe's schema (400 naming the field), as a child process whose output `GET /operations/{id}/logs` serves. Local trainings of both kinds share one queue: at most TRAINWATCH_MAX_LOCAL_TRAININGS at once (others wait as `pending`, in order). `target: \"host\"` sends it to a GPU host (503 when none is reachable). Every epoch appears in `GET /operations/{id}/metrics` as it finishes; cancel with `DELETE /operations/{id}` (a script's process group gets SIGTERM, then SIGKILL after TRAINWATCH_KILL_GRACE).",
      },
    },
  );
