/**
 * The TensorBoard bridge's wire shapes: the import request (POST /imports/tensorboard) and its report, which is the
 * route's reply and the import operation's `result`. One source for validation, OpenAPI and the typed client.
 */
import { Type, type Static } from "@sinclair/typebox";
import { CUSTOM_METRIC_NAME } from "./epoch.ts";

const Count = Type.Integer({ minimum: 0 });

export const TensorboardImportInput = Type.Object(
  {
    logdir: Type.String({
      minLength: 1,
      maxLength: 4096,
      description:
        "A directory on the server, inside TRAINWATCH_DATA_DIR (relative to it, or absolute inside it; `..` and symlinks out of it are refused). Every directory under it holding events.out.tfevents.* files is a run; a Keras `<run>/train` + `<run>/validation` pair is one.",
    }),
    tag_map: Type.Optional(
      Type.Record(
        Type.String({ minLength: 1, maxLength: 256 }),
        Type.Union([Type.String({ pattern: CUSTOM_METRIC_NAME.source }), Type.Null()]),
        {
          maxProperties: 10_000,
          description:
            'Tag → field: a standard field (train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration), a custom metric name, or null to skip the tag. Overrides the default table; a Keras run\'s tags may be named `train/<tag>` or `validation/<tag>`. Example: {"Loss/valid": "val_loss", "gpu_mem": null}.',
        },
      ),
    ),
    as: Type.Optional(
      Type.Union([Type.Literal("steps"), Type.Literal("epochs")], {
        description:
          'What each run\'s points become. "epochs": step = epoch (one epoch per distinct step). "steps": step = the global step, each run a step run whose epochs are derived from its steps; an `epoch`/`train/epoch` tag labels the steps with their epoch. Default: per run, "steps" when it has a `train/…` or `eval/…` tag (the Hugging Face Trainer\'s callback) or an `epoch` tag holding one value at several steps (Lightning), else "epochs".',
      }),
    ),
    wait: Type.Optional(
      Type.Boolean({
        default: true,
        description:
          "true (default): reply when the import is done, with its report. false: reply 202 at once with the import operation, whose progress counts records and whose `result` is the report once it completes.",
      }),
    ),
  },
  { additionalProperties: false },
);
export type TensorboardImportInput = Static<typeof TensorboardImportInput>;

export const ImportedRun = Type.Object({
  name: Type.String({
    description: "The run's path relative to the logdir (the logdir's own name for files directly in it).",
  }),
  operation_id: Type.Union([Type.String(), Type.Null()], {
    description: "The operation created for it; null when the run held no scalar (nothing is created).",
  }),
  as: Type.Union([Type.Literal("steps"), Type.Literal("epochs")], {
    description: "What its points became: epochs (step = epoch) or steps (step = the global step).",
  }),
  epochs: Type.Integer({
    minimum: 0,
    description:
      "Epochs stored: one per distinct step (as epochs), or the epochs its steps were labelled with (as steps).",
  }),
  steps: Type.Integer({
    minimum: 0,
    description: "Steps stored (one per distinct step); 0 for a run imported as epochs.",
  }),
  files: Type.Array(Type.String(), { description: "Its event files, relative to the logdir." }),
  records: Type.Integer({ minimum: 0, description: "Complete records read from them." }),
  tags: Type.Record(Type.String(), Type.Union([Type.String(), Type.Null()]), {
    description: "Every scalar tag seen and the field it was stored as; null: skipped.",
  }),
  skipped: Type.Object({
    events: Type.Integer({
      minimum: 0,
      description: "Events without a scalar: graphs, images, histograms, audio, text, session logs …",
    }),
    values: Type.Integer({
      minimum: 0,
      description: "Values skipped: non-scalar values beside scalars, skipped tags' points, impossible durations.",
    }),
    steps: Type.Integer({
      minimum: 0,
      description: "Points at a step that is no epoch or step number (negative or past 2³¹ − 1).",
    }),
  }),
  truncated: Type.Array(
    Type.Object({ file: Type.String(), offset: Type.Integer({ minimum: 0 }), bytes: Type.Integer({ minimum: 0 }) }),
    {
      description:
        "Files whose last record was cut short (still being written): what came before it was imported; `offset` is where the cut record starts, `bytes` how much of it there was.",
    },
  ),
});

export const TensorboardImportReport = Type.Object({
  import_operation_id: Type.String({ description: "The import's own operation (operation_type `import`)." }),
  logdir: Type.String({ description: "The logdir as given." }),
  runs: Type.Array(ImportedRun),
  epochs: Count,
  steps: Count,
  skipped_events: Count,
  cancelled: Type.Boolean({
    description: "The import was cancelled: the runs listed were imported, the rest were not.",
  }),
});
export type TensorboardImportReport = Static<typeof TensorboardImportReport>;
export type ImportedRun = Static<typeof ImportedRun>;
