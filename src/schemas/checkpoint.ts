/** The checkpoints a local or host training keeps: one source for the result, the metadata, the routes and OpenAPI. */
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { EpochNumber } from "./epoch.ts";

export const CheckpointKind = Type.Union([Type.Literal("best"), Type.Literal("last")], {
  description:
    "best: the epoch with the best monitored value (the early-stopping monitor, else val_loss, else train_loss); last: the last completed epoch.",
});

export const Checkpoint = Type.Object(
  {
    epoch: EpochNumber,
    kind: CheckpointKind,
    path: Type.String({
      maxLength: 4096,
      description:
        "Folder holding model.json, weights.bin and preprocessing.json, on the machine that trained (the host, for a host training).",
    }),
  },
  { additionalProperties: false },
);
export type Checkpoint = Static<typeof Checkpoint>;

export const CheckpointList = Type.Array(Checkpoint, {
  description: "Best and last checkpoints, best first; when they are the same epoch both entries name one folder.",
});

/** The files of a checkpoint folder, in the order the tar holds them. */
export const CHECKPOINT_FILES = ["model.json", "weights.bin", "preprocessing.json"] as const;

/**
 * The checkpoints an operation names: its result's once it has a result listing them (the training ended), else the
 * ones recorded in its metadata while it runs, else none. A malformed list (an external trainer's result, say) counts as none.
 */
export function checkpointsOf(op: {
  result: Record<string, unknown> | null;
  metadata: Record<string, unknown>;
}): Checkpoint[] {
  for (const list of [op.result?.checkpoints, op.metadata.checkpoints]) {
    if (list !== undefined && Value.Check(CheckpointList, list)) return list;
  }
  return [];
}
