/**
 * `GET /operations/{id}/analysis`: the recommendation with its reason, trajectory and
 * generalization gap — the same judgement the MCP `analyze_training` tool gives agents.
 */
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import type { AppDeps } from "../app.ts";
import { analyzeHistory } from "../mcp/analysis.ts";
import { Envelope, ErrorEnvelope, ok } from "./http.ts";
import { documented } from "./openapi.ts";
import { loadOperation, metricsView } from "./operations.ts";

export const analysisRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/analysis" }).get(
    "/operations/:id/analysis",
    ({ params }) => ok(analyzeHistory(metricsView(deps.store, loadOperation(deps.store, params.id)))),
    {
      params: Type.Object({ id: Type.String() }),
      detail: {
        tags: ["metrics"],
        summary: "Analyse a run: recommendation and reason",
        description:
          "The whole history judged by the trend core: `recommendation` { action: continue | stop | use_checkpoint | insufficient_data, reason (one sentence citing numbers), checkpoint_epoch, trajectory }, best epoch and value, epochs to best, flags, trajectory fit, generalization gap and the final epoch.",
        responses: {
          200: documented("Analysis", Envelope(Type.Object({}, { additionalProperties: true }))),
          404: documented("Unknown operation", ErrorEnvelope),
        },
      },
    },
  );
