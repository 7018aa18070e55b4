/**
 * Checkpoints of local and host trainings: the list (`result.checkpoints` once the training ended, `metadata.checkpoints`
 * while it runs) and one checkpoint as a tar download. A host training's files stay on its host; the API fetches them.
 */
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import type { AppDeps } from "./deps.ts";
import { TrainwatchError } from "../errors.ts";
import { CHECKPOINT_FILES, CheckpointList, checkpointsOf } from "../schemas/checkpoint.ts";
import { EpochNumber } from "../schemas/epoch.ts";
import { OperationIdParams, type Operation } from "../schemas/operation.ts";
import { pathInt } from "../schemas/query.ts";
import { loadOperation } from "../store/load.ts";
import { CHECKPOINT_INTERVAL_MS } from "../trainer/checkpoints.ts";
import { Envelope, ErrorEnvelope, ok, tarResponse } from "../http/index.ts";
import { documented } from "../http/openapi.ts";

const CheckpointParams = t.Object({
  ...OperationIdParams.properties,
  epoch: pathInt("epoch", { ...EpochNumber, description: "Epoch number of the checkpoint." }),
});

export const CheckpointsReply = Type.Object({
  operation_id: Type.String(),
  location: Type.Union([Type.Literal("local"), Type.Literal("host"), Type.Literal("external")], {
    description: "Where the training ran; Trainwatch holds checkpoints of local and host trainings only.",
  }),
  checkpoints: CheckpointList,
  note: Type.Union([Type.String(), Type.Null()], { description: "Why the list is empty, when it is." }),
});

type Location = "local" | "host" | "external";
const locationOf = (op: Operation): Location =>
  op.metadata.location === "local" || op.metadata.location === "host" ? op.metadata.location : "external";

const externalNote = (id: string) =>
  `operation ${id} was trained outside Trainwatch (an external trainer): Trainwatch holds no checkpoints for it; use the ones your trainer kept`;

function emptyNote(op: Operation): string | null {
  if (locationOf(op) === "external") return externalNote(op.operation_id);
  if (op.status === "pending" || op.status === "running") {
    return `none written yet: a running training writes its best and last epochs at most every ${CHECKPOINT_INTERVAL_MS / 1000} s, and when it ends`;
  }
  return "the training kept no checkpoint (it ended before completing an epoch)";
}

export const checkpointRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/checkpoints" })
    .get(
      "/operations/:id/checkpoints",
      async ({ params }) => {
        const op = await loadOperation(deps.store, params.id);
        const checkpoints = locationOf(op) === "external" ? [] : checkpointsOf(op);
        return ok({
          operation_id: op.operation_id,
          location: locationOf(op),
          checkpoints,
          note: checkpoints.length ? null : emptyNote(op),
        });
      },
      {
        params: OperationIdParams,
        response: { 200: Envelope(CheckpointsReply), 404: ErrorEnvelope },
        detail: {
          tags: ["checkpoints"],
          summary: "List an operation's checkpoints",
          description: `A local or host training keeps the checkpoint of its best epoch (by the early-stopping monitor, else val_loss, else train_loss) and of its last completed epoch, also when it is cancelled, early-stopped or fails after some epochs. While it runs the list is the one written so far (at most every ${CHECKPOINT_INTERVAL_MS / 1000} s). Paths are on the machine that trained. An external operation has none: \`note\` says why.`,
        },
      },
    )
    .get(
      "/operations/:id/checkpoints/:epoch",
      async ({ params }) => {
        const op = await loadOperation(deps.store, params.id);
        const id = op.operation_id;
        if (locationOf(op) === "external")
          throw new TrainwatchError("CHECKPOINT_NOT_FOUND", externalNote(id), {
            operation_id: id,
            epoch: params.epoch,
          });
        const kept = [...new Set(checkpointsOf(op).map((c) => c.epoch))];
        if (!kept.includes(params.epoch)) {
          const which = kept.length
            ? `it has checkpoints of epoch ${kept.join(" and ")}`
            : (emptyNote(op) ?? "it has none");
          throw new TrainwatchError(
            "CHECKPOINT_NOT_FOUND",
            `operation ${id} has no checkpoint of epoch ${params.epoch}; ${which}`,
            {
              operation_id: id,
              epoch: params.epoch,
              epochs: kept,
            },
          );
        }
        if (!deps.trainers)
          throw new TrainwatchError("HOST_UNAVAILABLE", "this server runs no trainers, so it reads no checkpoints");
        return tarResponse(id, params.epoch, await deps.trainers.checkpoint(op, params.epoch));
      },
      {
        params: CheckpointParams,
        detail: {
          tags: ["checkpoints"],
          summary: "Download a checkpoint",
          description: `A tar (ustar) of ${CHECKPOINT_FILES.join(", ")}: a TF.js layers model (\`tf.loadLayersModel\`) and what inference must do to raw features. A host training's checkpoint is fetched from its host. 404 \`CHECKPOINT_NOT_FOUND\` for an epoch without a checkpoint (the message lists those with one) and for an external operation; 503 when the host cannot be reached.`,
          responses: {
            200: documented(
              "Tar attachment",
              { type: "string", contentMediaType: "application/x-tar" },
              "application/x-tar",
            ),
            400: documented("Bad epoch", ErrorEnvelope),
            404: documented("Unknown operation, or no checkpoint of that epoch", ErrorEnvelope),
            503: documented("The training host cannot be reached", ErrorEnvelope),
          },
        },
      },
    );
