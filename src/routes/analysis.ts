/**
 * `GET /operations/{id}/analysis`: the judgement of one run (src/trends/analysis.ts) with the server's configured thresholds:
 * flags, trajectory, gap, the checkpoints that exist, and the recommendation with its reason. The dashboard, the compare
 * route, the MCP tools and the agents all read this; nothing else judges a run.
 */
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import type { AppDeps } from "./deps.ts";
import { Analysis } from "../schemas/analysis.ts";
import type { WireEpoch } from "../schemas/epoch.ts";
import type { Operation } from "../schemas/operation.ts";
import type { StoreReader } from "../store/store.ts";
import { judgeOperation } from "../operations/judgement.ts";
import type { TrendConfig } from "../trends/types.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";
import { documented } from "../http/openapi.ts";
import { loadOperation } from "./operations.ts";

/** Judges a loaded operation over its full history; also returns the wire epochs read, for callers that chart them. */
export async function analyzeOperation(
  store: StoreReader,
  op: Operation,
  cfg: TrendConfig,
): Promise<{ analysis: Analysis; epochs: WireEpoch[] }> {
  const epochs = await store.readEpochs(op.operation_id);
  const j = judgeOperation(op, epochs, cfg);
  const analysis: Analysis = {
    operation_id: op.operation_id,
    operation_type: op.operation_type,
    status: op.status,
    epochs_completed: op.trends.total_epochs_completed,
    total_epochs_planned: op.progress.total_epochs,
    ...j,
    final: epochs[epochs.length - 1] ?? null,
  };
  return { analysis, epochs };
}

export const analysisRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/analysis" }).get(
    "/operations/:id/analysis",
    async ({ params }) =>
      ok((await analyzeOperation(deps.store, await loadOperation(deps.store, params.id), deps.config.trends)).analysis),
    {
      params: Type.Object({ id: Type.String() }),
      detail: {
        tags: ["metrics"],
        summary: "Analyse a run: recommendation and reason",
        description:
          "The whole history judged with the server's thresholds (`thresholds`): flags (overfitting, plateau, diverging, stalled), " +
          "trajectory (worsening since the best epoch when the loss sits well above its best), generalization gap, which checkpoints " +
          "exist, and `recommendation` { action: continue | stop | use_checkpoint | insufficient_data, reason citing numbers and " +
          "thresholds, checkpoint_epoch (for local and host trainings always one with a checkpoint), trajectory }.",
        responses: {
          200: documented("Analysis", Envelope(Analysis)),
          404: documented("Unknown operation", ErrorEnvelope),
        },
      },
    },
  );
