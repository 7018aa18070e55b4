/**
 * Script trainings (recipes): the recipe file an operator writes, the request that starts one, what the API lists and
 * what the logs routes answer. One source for the file check, route validation, OpenAPI and the MCP tool.
 *
 * A recipe's params are declared with a small, flat subset of JSON Schema (string, integer, number, boolean; enum,
 * bounds, length, pattern, default), because each param becomes one `--key=value` argument: nesting has no argv form.
 */
import { Type, type Static } from "@sinclair/typebox";
import { StopPolicy, type StopPolicyInput } from "./control.ts";
import { LabelFields } from "./labels.ts";
import { literals } from "./spec.ts";

export const RECIPE_NAME = "^[a-z0-9][a-z0-9_.-]{0,63}$";
export const PARAM_NAME = "^[A-Za-z][A-Za-z0-9_-]{0,63}$";

/** Longest string param, in characters: one argv entry (Linux caps one at 128 KiB). */
export const MAX_PARAM_STRING = 4096;

const Bound = Type.Number({ description: "Inclusive or exclusive bound of a number param." });

/** One declared param: a flat JSON Schema of a primitive. */
export const ParamSchema = Type.Object(
  {
    type: Type.Union(
      [Type.Literal("string"), Type.Literal("integer"), Type.Literal("number"), Type.Literal("boolean")],
      {
        description: "The param's JSON type.",
      },
    ),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    title: Type.Optional(Type.String({ maxLength: 200 })),
    default: Type.Optional(Type.Union([Type.String({ maxLength: MAX_PARAM_STRING }), Type.Number(), Type.Boolean()])),
    enum: Type.Optional(
      Type.Array(Type.Union([Type.String({ maxLength: MAX_PARAM_STRING }), Type.Number()]), {
        minItems: 1,
        maxItems: 1000,
      }),
    ),
    minimum: Type.Optional(Bound),
    maximum: Type.Optional(Bound),
    exclusiveMinimum: Type.Optional(Bound),
    exclusiveMaximum: Type.Optional(Bound),
    minLength: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_PARAM_STRING })),
    maxLength: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_PARAM_STRING })),
    pattern: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);
export type ParamSchema = Static<typeof ParamSchema>;

/** The params of a recipe: an object schema whose properties are ParamSchemas. */
export const ParamsSchema = Type.Object(
  {
    type: Type.Literal("object"),
    properties: Type.Record(Type.String({ pattern: PARAM_NAME }), ParamSchema, {
      description: "Each param; the order is the argv order.",
    }),
    required: Type.Optional(Type.Array(Type.String(), { uniqueItems: true })),
    additionalProperties: Type.Optional(Type.Literal(false)),
  },
  {
    additionalProperties: false,
    description: "A JSON Schema of the params: an object of flat string, integer, number and boolean properties.",
  },
);
export type ParamsSchema = Static<typeof ParamsSchema>;

/**
 * Where a recipe may run: this server (`local`), a GPU host (`host`, src/host_pool), a Slurm cluster (`slurm`). Each
 * names an executor (src/executors/executor.ts); one that is not configured refuses the request (400 naming the field).
 */
export const TARGETS = ["local", "host", "slurm"] as const;
export type Target = (typeof TARGETS)[number];
/** Unsafe over the union of TARGETS: the same schema, its static type kept as Target (see alert.ts AlertEventSchema). */
const targetUnion = (description: string) => Type.Unsafe<Target>(literals(TARGETS, description));
export const TargetSchema = targetUnion(
  "local: this server; host: a GPU host; slurm: a Slurm cluster (an executor, docs/clusters.md).",
);

/** A recipe's `slurm` object: where its batch job goes on the cluster (only with target slurm). */
export const SlurmOptions = Type.Object(
  {
    partition: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_.-]{1,64}$", description: "sbatch --partition." })),
    account: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_.-]{1,64}$", description: "sbatch --account." })),
    qos: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_.-]{1,64}$", description: "sbatch --qos." })),
    gres: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z0-9_.:,=-]{1,256}$",
        description:
          'Extra generic resources, beside the GPUs `gpus` asks for (sbatch --gres syntax, e.g. "shard:2" or "nvme:1").',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: "Slurm's own settings of the recipe's batch job; only with target slurm.",
  },
);
export type SlurmOptions = Static<typeof SlurmOptions>;

export const ParamsVia = Type.Union([Type.Literal("args"), Type.Literal("file")], {
  description:
    "args: each param as `--key=value` after the command (booleans: `--key` / `--no-key`); file: a JSON file whose path is in TRAINWATCH_PARAMS.",
});

/** One recipe as the operator declares it in the recipe file. */
export const RecipeDeclaration = Type.Object(
  {
    name: Type.String({
      pattern: RECIPE_NAME,
      description: "How requests name the recipe: lowercase letters, digits, _ . -",
    }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    command: Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), {
      minItems: 1,
      maxItems: 256,
      description:
        "The program and its fixed arguments (argv: no shell). A relative program path with a slash is resolved from cwd.",
    }),
    cwd: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description: "Working directory, relative to the recipe file's folder (default: that folder).",
      }),
    ),
    env: Type.Optional(
      Type.Record(Type.String({ pattern: "^[A-Za-z_][A-Za-z0-9_]*$" }), Type.String({ maxLength: 32_768 }), {
        description: "Extra environment variables.",
      }),
    ),
    params: Type.Optional(ParamsSchema),
    params_via: Type.Optional(
      Type.Array(ParamsVia, {
        minItems: 1,
        maxItems: 2,
        uniqueItems: true,
        description: 'How params reach the script (default ["args", "file"]).',
      }),
    ),
    gpus: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 64,
        description: "GPUs the script needs (default 0); CUDA_VISIBLE_DEVICES names the ones it gets.",
      }),
    ),
    epochs_param: Type.Optional(
      Type.String({
        pattern: PARAM_NAME,
        description: "The integer param that holds the epoch count (the operation's planned epochs).",
      }),
    ),
    target: Type.Optional(
      Type.Union([TargetSchema, Type.Array(TargetSchema, { minItems: 1, maxItems: 3, uniqueItems: true })], {
        description:
          'Where it may run: one target, or several (a request picks one with `target`; the first is the default). Default "local". A GPU host\'s recipes are declared in that host\'s own file, so "host" is not one of an API\'s.',
      }),
    ),
    cpus: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 4096, description: "CPU cores the script needs (a cluster's allocation)." }),
    ),
    memory_mb: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 16_777_216,
        description: "Memory the script needs, in MiB (a cluster's allocation).",
      }),
    ),
    time_limit_minutes: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 525_600,
        description: "Wall-clock limit in minutes (a cluster ends the job past it: failure_code time_limit).",
      }),
    ),
    slurm: Type.Optional(SlurmOptions),
  },
  { additionalProperties: false },
);
export type RecipeDeclaration = Static<typeof RecipeDeclaration>;

export const RecipeFile = Type.Object(
  { recipes: Type.Array(RecipeDeclaration, { maxItems: 1000 }) },
  { additionalProperties: false, description: "The recipe file (TRAINWATCH_RECIPES)." },
);
export type RecipeFile = Static<typeof RecipeFile>;

/** A recipe as GET /recipes lists it: what a caller needs to start it, not where its files are. */
export const RecipeView = Type.Object({
  name: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  params: ParamsSchema,
  params_via: Type.Array(ParamsVia),
  gpus: Type.Integer(),
  epochs_param: Type.Union([Type.String(), Type.Null()]),
  target: targetUnion("Where it runs when a request names no target: this server, a GPU host, a Slurm cluster."),
  targets: Type.Array(TargetSchema, {
    description: "Every target a request may name for it (`target` first); the dashboard offers a choice when several.",
  }),
  resources: Type.Object(
    {
      cpus: Type.Union([Type.Integer(), Type.Null()]),
      memory_mb: Type.Union([Type.Integer(), Type.Null()]),
      time_limit_minutes: Type.Union([Type.Integer(), Type.Null()]),
    },
    { description: "What it asks of a cluster beside `gpus` (null: the cluster's default)." },
  ),
  host: Type.Union([Type.String(), Type.Null()], {
    description: "The GPU host that declares it (target host), else null.",
  }),
});
export type RecipeView = Static<typeof RecipeView>;

export const RecipeList = Type.Object({
  recipes: Type.Array(RecipeView),
  hosts: Type.Array(
    Type.Object({ host: Type.String(), error: Type.Union([Type.String(), Type.Null()]), recipes: Type.Integer() }),
    { description: "Each GPU host asked for its recipes, with the error when it did not answer." },
  ),
});
export type RecipeList = Static<typeof RecipeList>;

/** The lines a script printed (stdout and stderr, in arrival order). */
export const LogLines = Type.Object({
  operation_id: Type.String(),
  lines: Type.Array(Type.String()),
  truncated: Type.Boolean({
    description:
      "True when older lines are kept than the ones returned (ask for a larger tail). The log keeps the last ~10 MB; older output is gone.",
  }),
  running: Type.Boolean({ description: "True while the script may still print." }),
});
export type LogLines = Static<typeof LogLines>;

export const LogTail = Type.Integer({ minimum: 1, maximum: 100_000, description: "Last N lines (default 200)." });

/** How POST /trainings names a recipe (the other fields of that body are the built-in spec's). */
export const RecipeRequestFields = {
  recipe: Type.String({
    minLength: 1,
    maxLength: 64,
    description:
      "A recipe declared in the recipe file (GET /recipes lists them). Instead of a spec's dataset/model/training.",
  }),
  params: Type.Record(Type.String(), Type.Unknown(), {
    description: "The recipe's params, checked against its schema (defaults filled in).",
  }),
};

export interface RecipeRequest {
  recipe: string;
  params?: Record<string, unknown>;
  name?: string;
  target?: Target;
  stop_policy?: StopPolicyInput;
}

/** What a GPU host is asked to run (POST /sessions with a recipe), and what its session then reports. */
export const ScriptSessionFields = {
  recipe: Type.String({ minLength: 1, maxLength: 64, description: "A recipe this host declares." }),
  params: Type.Record(Type.String(), Type.Unknown(), { description: "Checked by the host against its recipe." }),
};

import { TrainingRequest } from "./spec.ts";

/**
 * The body of POST /trainings: a built-in spec (dataset, model, training) or a recipe (recipe, params). One object
 * rather than a union, so a mistake is named by its field and MCP can advertise it as a tool's input (an object).
 */
export const StartTrainingRequest = Type.Object(
  {
    ...TrainingRequest.properties,
    dataset: Type.Optional(TrainingRequest.properties.dataset),
    ...RecipeRequestFields,
    recipe: Type.Optional(RecipeRequestFields.recipe),
    params: Type.Optional(RecipeRequestFields.params),
    stop_policy: Type.Optional(StopPolicy),
    ...LabelFields,
    target: Type.Optional(
      targetUnion(
        "Where to run it. A built-in spec: local or host (default host when USE_TRAINING_HOST_SERVICE=true, else local). A recipe: one of the targets GET /recipes lists for it (default its first); 400 naming body.target for one it does not allow or that is not configured here.",
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      "Either a built-in training spec (`dataset` required; `model`, `training`) or a script training: `recipe` (a name GET /recipes lists) and its `params`. `name`, `target`, `stop_policy` (the server stops the run when its judgement raises one of the flags), `tags` and `group` apply to both.",
  },
);

/** The built-in spec's own fields: they mean nothing to a recipe, so a body with both is refused rather than half read. */
export const SPEC_ONLY_FIELDS = ["dataset", "model", "training"] as const;
