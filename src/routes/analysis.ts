/**
 * `GET /operations/{id}/analysis`: the judgement of one run (src/trends/analysis.ts, kept on write and read by
 * analyzeOperation in src/operations/reads.ts at the same cost at any length) with the server's configured thresholds:
 * flags, trajectory, gap, the checkpoints that exist, and the recommendation with its reason. The dashboard, the compare
 * route, the MCP tools and the agents all read this; nothing else judges a run.
 */
import { Elysia } from "elysia";
import type { AppDeps } from "./deps.ts";
import { Analysis } from "../schemas/analysis.ts";
import { OperationIdParams } from "../schemas/operation.ts";
import { loadOperation } from "../store/load.ts";
import { analyzeOperation } from "../operations/reads.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";
import { documented } from "../http/openapi.ts";

export const analysisRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/analysis" }).get(
    "/operations/:id/analysis",
    async ({ params }) =>
      ok((await analyzeOperation(deps.store, await loadOperation(deps.store, params.id), deps.config.trends)).analysis),
    {
      params: OperationIdParams,
      detail: {
        tags: ["metrics"],
        summary: "Analyse a run: recommendation and reason",
        description:
          "The whole history judged with the server's thresholds (`thresholds`): flags (overfitting, plateau, diverging, stalled), " +
          "trajectory (worsening since the best epoch when the loss sits well above its best), generalization gap, which checkpoints " +
          "exist, and `recommendation` { action: continue | stop | use_checkpoint | insufficient_data | check_trainer, reason citing " +
          "numbers and thresholds, checkpoint_epoch (for local and host trainings always one with a checkpoint), trajectory }. " +
          "A trainer that went quiet (flags.stale, flags.hung, `liveness`) turns continue into check_trainer.",
        responses: {
          200: documented("Analysis", Envelope(Analysis)),
          404: documented("Unknown operation", ErrorEnvelope),
        },
      },
    },
  );
