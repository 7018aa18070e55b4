/**
 * The MCP server: the tools over the one typed API client, with TypeBox input schemas. It holds no rules of its own:
 * the judgement comes from the server (GET /operations/{id}/analysis, with its configured thresholds); every tool is a client call. Transports: ./index.ts (stdio)
 * and ./http.ts (Streamable HTTP on the API server).
 *
 * Built on the SDK's low-level `Server` rather than `McpServer.registerTool`, because registerTool only takes Zod schemas;
 * the tools advertise and check the project's TypeBox schemas as they are, so the API and MCP share one schema source.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  ErrorCode,
  ListToolsRequestSchema,
  McpError,
  type CallToolResult,
  type Tool,
  type ToolAnnotations,
} from "@modelcontextprotocol/sdk/types.js";
import { Type, type Static, type TObject } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { ApiError, type TrainwatchClient } from "../client/api.ts";
import { LogTail, StartTrainingRequest } from "../schemas/recipe.ts";
import { SinceEpoch } from "../schemas/epoch.ts";
import { SinceStep, StepNumber } from "../schemas/step.ts";
import { describeProblem } from "../schemas/explain.ts";
import { SYSTEM_MAX_POINTS } from "../schemas/system.ts";
import type { Operation } from "../schemas/operation.ts";
import { ALERT_LIMIT, AlertRules } from "../schemas/alert.ts";
import { LabelsInput } from "../schemas/labels.ts";
import { SearchParams } from "../schemas/search.ts";
import {
  LIST_LIMIT,
  MAX_POINTS,
  operationId,
  OperationStatus,
  OperationType,
  StopPolicy,
} from "../schemas/operation.ts";
import pkg from "../../package.json" with { type: "json" };

const OperationId = operationId({
  minLength: 1,
  description:
    "Operation id as returned by list_operations or start_training, e.g. op_training_20261126_153000_ab12cd34.",
});

/** Default downsampling for get_operation_metrics, so a long run does not flood the model's context. */
export const DEFAULT_MAX_POINTS = 200;

/** Default number of system samples get_system_metrics returns: an hour at 15 s, a budget that fits a context. */
export const DEFAULT_SYSTEM_POINTS = 240;

interface ToolDef<S extends TObject> {
  name: string;
  description: string;
  inputSchema: S;
  annotations: ToolAnnotations;
  run(args: Static<S>, client: TrainwatchClient): Promise<object>;
}

/** Keeps each tool's argument type tied to its schema while the table holds them all. */
const tool = <S extends TObject>(def: ToolDef<S>) => def as unknown as ToolDef<TObject>;

const READ_ONLY: ToolAnnotations = { readOnlyHint: true, openWorldHint: false };

/** A listing row: what a model needs to pick an operation, without the full spec and metadata. */
function brief(op: Operation) {
  return {
    operation_id: op.operation_id,
    name: op.name,
    operation_type: op.operation_type,
    status: op.status,
    tags: op.tags,
    group: op.group,
    location: op.metadata.location ?? null,
    created_at: op.created_at,
    epochs_completed: op.progress.epochs_completed,
    total_epochs: op.progress.total_epochs,
    // A step run's progress is in steps.
    ...(op.progress.steps_completed !== undefined
      ? { steps_completed: op.progress.steps_completed, total_steps: op.progress.total_steps ?? null }
      : {}),
    best_epoch: op.trends.best_epoch,
    best_loss: op.trends.best_val_loss,
    flags: {
      overfitting: op.trends.is_overfitting,
      plateau: op.trends.is_plateaued,
      diverging: op.trends.is_diverging,
      stalled: op.trends.is_stalled,
    },
  };
}

const TOOLS: readonly ToolDef<TObject>[] = [
  tool({
    name: "list_operations",
    description:
      "List Trainwatch operations (training runs), newest first, with status, progress, best loss and overfitting/plateau/divergence flags. " +
      "Use it to find an operation_id. Filter by status (e.g. 'running') or operation_type (e.g. 'training'), or search with q: " +
      'e.g. q = \'tags has "bert" and group = "sweep-7" and config.lr < 1e-3 and not flags.diverging\', sort = "best_val_loss", order = "asc" ' +
      "for the best runs of a sweep. A query error names its position (QUERY_SYNTAX, QUERY_FIELD).",
    inputSchema: Type.Object(
      {
        status: Type.Optional(OperationStatus),
        operation_type: Type.Optional(OperationType),
        ...SearchParams,
        limit: Type.Optional(Type.Integer({ ...LIST_LIMIT, description: "How many to return (default 20)." })),
      },
      { additionalProperties: false },
    ),
    annotations: { ...READ_ONLY, title: "List operations" },
    async run(args, client) {
      const { operations, total_count } = await client.listOperations({ ...args, limit: args.limit ?? 20 });
      return { total_count, operations: operations.map(brief) };
    },
  }),
  tool({
    name: "label_operation",
    description:
      "Change an operation's tags and group (a sweep, an experiment), in any status: tags replaces every tag, then add_tags adds and remove_tags removes; " +
      'group sets the group (null removes it). Tags: 1–64 characters of [A-Za-z0-9_.:/+=@-], at most 32. Find runs by them with list_operations q (tags has "x", group = "y").',
    inputSchema: Type.Object({ operation_id: OperationId, ...LabelsInput.properties }, { additionalProperties: false }),
    annotations: {
      title: "Label an operation",
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: false,
    },
    async run({ operation_id, ...labels }, client) {
      return brief(await client.setLabels(operation_id, labels));
    },
  }),
  tool({
    name: "get_operation_status",
    description:
      "Full state of one operation: status (pending, running, completed, failed, cancelled), progress in epochs (and batches of the running epoch; a step run's in steps: steps_completed of total_steps), " +
      "timestamps, error message, where it runs, its training spec, result and trend summary (best epoch, epochs since improvement, flags).",
    inputSchema: Type.Object({ operation_id: OperationId }, { additionalProperties: false }),
    annotations: { ...READ_ONLY, title: "Get operation status" },
    run: (args, client) => client.getOperation(args.operation_id),
  }),
  tool({
    name: "get_operation_metrics",
    description:
      "Metrics of one operation, per step or per epoch (resolution). A run that reports optimisation steps (a fine-tuning, a pretraining: progress.steps_completed > 0) answers " +
      "per step by default: {resolution: 'step', steps: [{step, epoch, train_loss, learning_rate, grad_norm, duration, samples, tokens, val_loss/val_accuracy/eval/* at the steps " +
      "an evaluation was taken, custom metrics}], steps_completed, total_steps_planned, epoch_ends (the last step of each epoch), trends (over the epochs derived from the steps)}; " +
      "narrow with from_step/to_step (inclusive), follow a running training with since_step = the last step you saw. Any other run answers per epoch: {resolution: 'epoch', " +
      "metrics: {epochs: [{epoch, train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration in seconds, custom metrics}], trend summary}}; follow it with " +
      "since_epoch. resolution 'epoch' on a step run gives the per-epoch records derived from its steps. " +
      `Either way the rows are reduced to max_points (default ${DEFAULT_MAX_POINTS}, a budget that fits a context) with a min/max per bucket, so no spike or NaN is hidden, keeping the first and last rows. ` +
      'Losses of a diverged run may be "NaN" or "Infinity".',
    inputSchema: Type.Object(
      {
        operation_id: OperationId,
        resolution: Type.Optional(
          Type.Union([Type.Literal("step"), Type.Literal("epoch")], {
            description:
              "'step' or 'epoch'. Default: 'step' when the run has steps (or a step argument is given), else 'epoch'.",
          }),
        ),
        since_epoch: Type.Optional(SinceEpoch),
        since_step: Type.Optional(SinceStep),
        from_step: Type.Optional(
          Type.Integer({ ...StepNumber, description: "Only steps with step ≥ from_step (resolution 'step')." }),
        ),
        to_step: Type.Optional(
          Type.Integer({
            ...StepNumber,
            description: "Only steps with step ≤ to_step (resolution 'step'); at least from_step.",
          }),
        ),
        max_points: Type.Optional(
          Type.Integer({
            ...MAX_POINTS,
            description: `Reduce to at most this many steps or epochs (default ${DEFAULT_MAX_POINTS}).`,
          }),
        ),
      },
      { additionalProperties: false },
    ),
    annotations: { ...READ_ONLY, title: "Get operation metrics" },
    async run(args, client) {
      const id = args.operation_id;
      const max_points = args.max_points ?? DEFAULT_MAX_POINTS;
      const stepArg = (["since_step", "from_step", "to_step"] as const).find((k) => args[k] !== undefined);
      if (args.resolution === "epoch" && stepArg) throw misplaced(stepArg, "resolution 'step'");
      if (args.since_epoch !== undefined && (args.resolution === "step" || stepArg))
        throw misplaced("since_epoch", "resolution 'epoch'");
      const asked = args.resolution ?? (stepArg ? "step" : args.since_epoch !== undefined ? "epoch" : null);
      const op = asked === "epoch" ? null : await client.getOperation(id);
      const steps_completed = op?.progress.steps_completed ?? 0;
      if ((asked ?? (steps_completed > 0 ? "step" : "epoch")) === "epoch")
        return { resolution: "epoch", ...(await client.getMetrics(id, { since_epoch: args.since_epoch, max_points })) };
      const reply = await client.steps(id, {
        since_step: args.since_step,
        from_step: args.from_step,
        to_step: args.to_step,
        max_points,
      });
      return {
        resolution: "step",
        operation_id: reply.operation_id,
        status: reply.status,
        steps_completed,
        total_steps_planned: reply.total_steps_planned,
        epoch_ends: reply.epoch_ends,
        trends: op!.trends,
        steps: reply.steps,
      };
    },
  }),
  tool({
    name: "get_system_metrics",
    description:
      "System metrics of one operation, as its Python client sampled them (every 15 s by default): {operation_id, samples: [{timestamp, " +
      "process: {cpu_percent (% of one core), rss_mb}, machine: {cpu_percent, memory_used_mb, memory_total_mb, load_1m}, gpus: [{index, name, " +
      "utilization_percent, memory_used_mb, memory_total_mb, temperature_c, power_w}]}]}, ascending; a reading is null where its source lacked it, a group " +
      "absent where the client could not read it. Empty for a run without samples (not sent by its client, or sampling off). Use it to tell a hung " +
      "training (GPU utilisation near 0, CPU idle) from a slow one, or to spot memory growing towards the total. " +
      `At most max_points samples (default ${DEFAULT_SYSTEM_POINTS}) spread evenly over the range; since/until (ISO-8601) narrow it.`,
    inputSchema: Type.Object(
      {
        operation_id: OperationId,
        since: Type.Optional(
          Type.String({ format: "date-time", description: "Only samples taken after this instant." }),
        ),
        until: Type.Optional(
          Type.String({ format: "date-time", description: "Only samples taken at or before this instant." }),
        ),
        max_points: Type.Optional(
          Type.Integer({
            minimum: SYSTEM_MAX_POINTS.minimum,
            maximum: SYSTEM_MAX_POINTS.maximum,
            description: `At most this many samples (default ${DEFAULT_SYSTEM_POINTS}).`,
          }),
        ),
      },
      { additionalProperties: false },
    ),
    annotations: { ...READ_ONLY, title: "Get system metrics" },
    run: (args, client) =>
      client.systemMetrics(args.operation_id, {
        since: args.since,
        until: args.until,
        max_points: args.max_points ?? DEFAULT_SYSTEM_POINTS,
      }),
  }),
  tool({
    name: "analyze_training",
    description:
      "Ask the Trainwatch server to judge a training from its full history, with the server's configured thresholds (returned in `thresholds`), and say what to do. " +
      "Returns the monitored loss (val_loss, else train_loss), its trajectory (improving / worsening / flat; 'since_best' when it sits well above its best), " +
      "the best epoch and value, epochs since improvement, the overfitting, plateau, diverging and stalled flags, the generalization gap, which checkpoints exist, " +
      "the final epoch's metrics, and a recommendation {action, reason, checkpoint_epoch, trajectory}. action is 'continue', 'stop' (running but diverging, " +
      "overfitting, stalled or on a plateau), 'use_checkpoint' (finished; restore checkpoint_epoch, which for local and host trainings always has a checkpoint " +
      "you can download), 'insufficient_data', or 'check_trainer' (flags.stale: the trainer sent nothing for a while; flags.hung: it " +
      "heartbeats but logs nothing; liveness says for how long and how busy its machine is: tell the user to check the process). Quote the reason to the user; it names the numbers and thresholds behind the advice. " +
      "A run that reports steps is judged on its steps (judged_on 'steps'): the flags are the step rules' (plus spike, grad_explosion, slowdown), " +
      "best_step is the best evaluation's step, spikes lists each loss spike {step, size, recovered} (a recovered spike is not a problem: say so), " +
      "divergence says where it began, slowdowns when steps got slower, and recommendation.checkpoint_step names the step whose checkpoint to restore " +
      "(the last one the trainer took at or before it).",
    inputSchema: Type.Object({ operation_id: OperationId }, { additionalProperties: false }),
    annotations: { ...READ_ONLY, title: "Analyze a training" },
    run: (args, client) => client.getAnalysis(args.operation_id),
  }),
  tool({
    name: "start_training",
    description:
      "Start a new training. Either a built-in spec (dataset, model, training settings: a small MLP trained by Trainwatch) or a declared script: " +
      "recipe = a name list_recipes returns, params = its params (checked against the recipe's schema; an undeclared recipe or a bad param is refused naming the field). " +
      "No command can be given: only what the operator declared runs. Returns the new operation (status pending or running) with its operation_id; " +
      "follow it with get_operation_metrics, get_operation_logs (a script's output) or analyze_training and stop it with cancel_operation. " +
      "target 'local' trains on this server, 'host' on a GPU host, 'slurm' on a Slurm cluster (a recipe only: one of the targets list_recipes gives it); leave it out for the recipe's (or the server's) default.",
    inputSchema: StartTrainingRequest,
    annotations: {
      title: "Start a training",
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: false,
      openWorldHint: false,
    },
    run: (args, client) => client.startTraining(args as never),
  }),
  tool({
    name: "list_recipes",
    description:
      "The script trainings (recipes) the operator declared on this server and its GPU hosts, each with the JSON Schema of its params, how many GPUs it needs and where it may run (targets: local, host, slurm; the first is its default). " +
      "Start one with start_training {recipe, params}.",
    inputSchema: Type.Object({}, { additionalProperties: false }),
    annotations: { ...READ_ONLY, title: "List recipes" },
    run: (_args, client) => client.listRecipes(),
  }),
  tool({
    name: "get_operation_logs",
    description:
      "The last lines a script training (a recipe) printed, stdout and stderr in order, plus Trainwatch's own [trainwatch] lines (the command it ran, how it ended). " +
      "Read it to see why a script failed (its traceback) or what it is doing; running says whether it may still print. Only script trainings have logs.",
    inputSchema: Type.Object(
      { operation_id: OperationId, tail: Type.Optional(LogTail) },
      { additionalProperties: false },
    ),
    annotations: { ...READ_ONLY, title: "Get a script's logs" },
    run: (args, client) => client.getLogs(args.operation_id, { tail: args.tail ?? 200 }),
  }),
  tool({
    name: "cancel_operation",
    description:
      "Stop a pending or running operation. The trainer is told: a local or host training stops within one batch, and a script using the " +
      "Python client (or its Keras, Lightning, Hugging Face callbacks) sees should_stop on its next metrics call and stops. Fails if it has already finished. " +
      "Give a short reason (e.g. 'overfitting since epoch 12'); it is recorded on the operation (control.reason) and echoed in the result.",
    inputSchema: Type.Object(
      {
        operation_id: OperationId,
        reason: Type.Optional(Type.String({ maxLength: 500, description: "Why the operation is being stopped." })),
        by: Type.Optional(
          Type.String({
            minLength: 1,
            maxLength: 64,
            pattern: "^[A-Za-z0-9_.:-]+$",
            description:
              "Who decides, recorded as control.decided_by (default 'mcp'; an automated watcher says 'monitor').",
          }),
        ),
      },
      { additionalProperties: false },
    ),
    annotations: {
      title: "Cancel an operation",
      readOnlyHint: false,
      destructiveHint: true,
      idempotentHint: false,
      openWorldHint: false,
    },
    async run(args, client) {
      const op = await client.cancelOperation(args.operation_id, {
        by: args.by ?? "mcp",
        ...(args.reason ? { reason: args.reason } : {}),
      });
      return {
        operation_id: op.operation_id,
        status: op.status,
        reason: args.reason ?? null,
        control: op.control,
        epochs_completed: op.progress.epochs_completed,
        best_epoch: op.trends.best_epoch,
        best_loss: op.trends.best_val_loss,
      };
    },
  }),
  tool({
    name: "set_stop_policy",
    description:
      "Set or clear a running operation's stop policy: when the server's judgement (as analyze_training reports it) raises one of the flags in `on` " +
      "(diverging, overfitting, stalled, plateau) at an epoch >= min_epochs, the server records one stop decision on the operation (control: reason, " +
      "checkpoint_epoch) and the trainer is told: local and host trainings stop within one batch and finish completed, keeping their checkpoints; the Python " +
      "client sees should_stop. A flag already raised decides at once. Pass clear: true (and no `on`) to remove the policy; a decision already made stays.",
    inputSchema: Type.Object(
      {
        operation_id: OperationId,
        on: Type.Optional(StopPolicy.properties.on),
        min_epochs: Type.Optional(StopPolicy.properties.min_epochs),
        clear: Type.Optional(Type.Boolean({ description: "Remove the stop policy instead of setting one." })),
      },
      { additionalProperties: false },
    ),
    annotations: {
      title: "Set or clear a stop policy",
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: false,
    },
    async run(args, client) {
      if (args.clear && args.on)
        throw new ApiError("VALIDATION_ERROR", "arguments.clear: pass either clear: true or on, not both", 400, {
          field: "arguments.clear",
        });
      if (!args.clear && !args.on)
        throw new ApiError("VALIDATION_ERROR", "arguments.on: give the flags to stop on, or clear: true", 400, {
          field: "arguments.on",
        });
      const op = args.clear
        ? await client.clearStopPolicy(args.operation_id)
        : await client.setStopPolicy(args.operation_id, {
            on: args.on!,
            ...(args.min_epochs !== undefined ? { min_epochs: args.min_epochs } : {}),
          });
      return { operation_id: op.operation_id, status: op.status, stop_policy: op.stop_policy, control: op.control };
    },
  }),
  tool({
    name: "list_alerts",
    description:
      "Recent alerts, most recent first: a flag raised (diverging, overfitting, stalled, plateau, hung, …), a status reached (failed, lost, completed, cancelled, stopped) or a threshold crossed, " +
      "each with its title, the judgement's reason and advice (where it happened, the checkpoint to restore), the run and its page, and its delivery per channel (webhook, slack: delivered, pending, failed). " +
      "Filter by operation_id, or since (ISO time: only newer ones).",
    inputSchema: Type.Object(
      {
        operation_id: Type.Optional(OperationId),
        since: Type.Optional(
          Type.String({ format: "date-time", description: "Only alerts recorded after this ISO time." }),
        ),
        limit: Type.Optional(Type.Integer({ ...ALERT_LIMIT, description: "How many to return (default 20)." })),
      },
      { additionalProperties: false },
    ),
    annotations: { ...READ_ONLY, title: "List alerts" },
    async run(args, client) {
      const alerts = await client.listAlerts({ ...args, limit: args.limit ?? 20 });
      return {
        alerts: alerts.map((a) => ({
          ...a.alert,
          deliveries: a.deliveries.map((d) => ({
            channel: d.channel,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
          })),
        })),
      };
    },
  }),
  tool({
    name: "set_alert_rules",
    description:
      "Set which events alert for a run, on top of the server's defaults (TRAINWATCH_ALERT_ON): `on` adds events, `off` removes them, `thresholds` alert once when a metric crosses a value " +
      "(e.g. { metric: 'val_loss', when: 'above', value: 2.5 }). Where alerts go is the server's configuration, not this tool's. Replaces the run's rules; returns the events that now alert.",
    inputSchema: Type.Object(
      {
        operation_id: OperationId,
        on: Type.Optional(AlertRules.properties.on),
        off: Type.Optional(AlertRules.properties.off),
        thresholds: Type.Optional(AlertRules.properties.thresholds),
      },
      { additionalProperties: false },
    ),
    annotations: {
      title: "Set a run's alert rules",
      readOnlyHint: false,
      destructiveHint: false,
      idempotentHint: true,
      openWorldHint: false,
    },
    async run({ operation_id, ...rules }, client) {
      return client.setAlertRules(operation_id, rules);
    },
  }),
  tool({
    name: "compare_runs",
    description:
      "Compare several runs: for each its status, best epoch and best loss, the epochs it took to reach the best (best_epoch - first epoch), the final epoch's metrics, " +
      "its flags and recommendation; plus best_run (lowest best val_loss, or train_loss when no run has validation data) and the reason.",
    inputSchema: Type.Object(
      {
        operation_ids: Type.Array(OperationId, {
          minItems: 1,
          maxItems: 20,
          uniqueItems: true,
          description: "The runs to compare (1 to 20).",
        }),
      },
      { additionalProperties: false },
    ),
    annotations: { ...READ_ONLY, title: "Compare runs" },
    async run(args, client) {
      // The dashboard's comparison, minus the chart curves a model does not need (3 is the smallest max_points allowed).
      const { runs, best_run, basis } = await client.compareRuns(args.operation_ids, { max_points: 3 });
      return { best_run, basis, runs: runs.map(({ curves: _curves, ...run }) => run) };
    },
  }),
];

/** A VALIDATION_ERROR for an argument that belongs to the other resolution. */
const misplaced = (arg: string, belongs: string) =>
  new ApiError("VALIDATION_ERROR", `arguments.${arg}: only with ${belongs}`, 400, { field: `arguments.${arg}` });

/** What to do next for each failure, so a model can recover on its own. */
const HINTS: Record<string, string> = {
  OPERATION_NOT_FOUND: "Call list_operations to find a valid operation_id.",
  OPERATION_FINISHED: "It has already finished; use analyze_training to read its outcome.",
  UNREACHABLE: "Start the API with `bun run src/server.ts` or point TRAINWATCH_URL at a running server, then retry.",
  TIMEOUT: "The server may be overloaded; retry in a few seconds.",
  UNAUTHORIZED: "Set TRAINWATCH_TOKEN to the server's token in the MCP server's environment.",
  HOST_UNAVAILABLE: "Retry with target 'local', or check TRAINING_HOST_URL on the server.",
  SLURM_UNREACHABLE:
    "Slurm's slurmrestd cannot be reached now (trainings keep their state): retry later, or start the recipe with another target list_recipes offers.",
  SLURM_REFUSED:
    "Slurm answered with the error quoted: fix what it names (partition, account, QOS, resources) and retry; a token or URL problem is the server operator's to fix.",
  VALIDATION_ERROR: "Fix that argument and call the tool again.",
  QUERY_SYNTAX:
    'Fix the query at that position (docs/api.md "Searching runs"), e.g. tags has "bert" and config.lr < 1e-3.',
  QUERY_FIELD:
    "Use a known field: name, status, operation_type, group, tags, created_at, best_val_loss, epochs_completed, final_loss, config.<key>, flags.<name>.",
};

/** A tool failure as the model sees it: `CODE: message. hint`, with the same fields in structuredContent. */
function toolError(code: string, message: string, details: Record<string, unknown> | null = null): CallToolResult {
  const hint = HINTS[code] ?? null;
  return {
    isError: true,
    content: [
      { type: "text", text: `${code}: ${message}${hint ? `${/[.?!]$/.test(message) ? "" : "."} ${hint}` : ""}` },
    ],
    structuredContent: { error: { code, message, hint, details } },
  };
}

/** Runs one tool call; every failure, expected or not, becomes an isError result. */
async function callTool(client: TrainwatchClient, name: string, args: unknown): Promise<CallToolResult> {
  const def = TOOLS.find((t) => t.name === name);
  if (!def)
    throw new McpError(
      ErrorCode.InvalidParams,
      `unknown tool ${name}; available: ${TOOLS.map((t) => t.name).join(", ")}`,
    );
  const input = args ?? {};
  if (!Value.Check(def.inputSchema, input)) {
    const p = describeProblem(def.inputSchema, input, "arguments") ?? {
      field: "arguments",
      message: "arguments: invalid value",
    };
    return toolError("VALIDATION_ERROR", p.message, { field: p.field });
  }
  try {
    const data = (await def.run(input as never, client)) as Record<string, unknown>;
    return { content: [{ type: "text", text: JSON.stringify(data, null, 2) }], structuredContent: data };
  } catch (err) {
    if (err instanceof ApiError) return toolError(err.code, err.message, err.details);
    // A bug, not a user error: still an answer the model can read, and logged (stderr never carries the stdio protocol).
    console.error(`[mcp] ${name} failed:`, err);
    return toolError("INTERNAL_ERROR", `${name} failed unexpectedly: ${(err as Error)?.message ?? String(err)}`);
  }
}

/** The tools as MCP lists them: the TypeBox schemas are JSON Schema already (the clone drops TypeBox's symbol keys). */
const TOOL_LIST: Tool[] = TOOLS.map((t) => ({
  name: t.name,
  description: t.description,
  inputSchema: JSON.parse(JSON.stringify(t.inputSchema)) as Tool["inputSchema"],
  annotations: t.annotations,
}));

/** An MCP server exposing the Trainwatch tools through `client`; connect it to any transport. */
export function createMcpServer(client: TrainwatchClient): Server {
  const server = new Server(
    { name: "trainwatch", version: pkg.version },
    {
      capabilities: { tools: {} },
      instructions:
        "Trainwatch runs and watches neural-network trainings. Find runs with list_operations, follow one with get_operation_metrics (per step for a run that reports steps, since_step for new ones; else per epoch, since_epoch), " +
        "ask analyze_training what to do (continue, stop, use a checkpoint), stop a run with cancel_operation (or let the server stop it: set_stop_policy), " +
        "start one with start_training (a spec, or a declared script from list_recipes), read a script's output with get_operation_logs, rank runs with compare_runs, " +
        "see what alerted (a run diverging, hung, lost, failed) with list_alerts and choose a run's alerts with set_alert_rules, " +
        'tag runs and set their group (a sweep) with label_operation, and search runs with list_operations q (e.g. group = "sweep-7" and not flags.diverging, sort best_val_loss).',
    },
  );
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOL_LIST }));
  server.setRequestHandler(CallToolRequestSchema, (req) => callTool(client, req.params.name, req.params.arguments));
  return server;
}
