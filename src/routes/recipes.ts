/** Script trainings: the declared recipes, and a script's output (the tail, and live over SSE). */
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import { TrainwatchError, invalid } from "../errors.ts";
import { canCancel, operationFinished } from "../operations/lifecycle.ts";
import { refuseOwnKeys } from "../operations/ownership.ts";
import { Operation, OperationIdParams } from "../schemas/operation.ts";
import { queryInt } from "../schemas/query.ts";
import { loadOperation } from "../store/load.ts";
import { LogLines, LogTail, RecipeList } from "../schemas/recipe.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";
import { SSE_HEADERS } from "../http/sse.ts";
import { documented, sseResponse } from "../http/openapi.ts";
import { LOG_STREAM_DOC } from "../script_trainings/log_stream.ts";
import type { AppDeps } from "./deps.ts";

const LogsQuery = t.Object({ tail: queryInt("tail", LogTail) });
const DEFAULT_TAIL = 200;

const MetadataPatch = Type.Record(Type.String({ minLength: 1, maxLength: 64 }), Type.Unknown(), { maxProperties: 64 });

function logsOf(deps: AppDeps) {
  if (!deps.trainers?.logs || !deps.trainers.logStream)
    throw new TrainwatchError("NOT_FOUND", "this server runs no script trainings");
  return { logs: deps.trainers.logs.bind(deps.trainers), logStream: deps.trainers.logStream.bind(deps.trainers) };
}

export const recipesRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/recipes" })
    .get(
      "/recipes",
      async () => ok(deps.trainers?.recipes ? await deps.trainers.recipes() : { recipes: [], hosts: [] }),
      {
        response: { 200: Envelope(RecipeList) },
        detail: {
          tags: ["trainings"],
          summary: "List the declared recipes",
          description:
            'The script trainings this server (its TRAINWATCH_RECIPES file) and its GPU hosts (theirs) declare, each with the JSON Schema of its params. Start one with `POST /trainings` and `{"recipe": name, "params": {…}}`; nothing else can be run.',
        },
      },
    )
    .patch(
      "/operations/:id/metadata",
      async ({ params, body }) => {
        const op = await loadOperation(deps.store, params.id);
        if (!canCancel(op)) throw operationFinished(params.id, op.status);
        refuseOwnKeys(body, "body");
        if (JSON.stringify(body).length > 64 * 1024) throw invalid("body", "metadata patch over 64 KB");
        return ok(await deps.operations.mergeMetadata(params.id, body));
      },
      {
        params: OperationIdParams,
        body: MetadataPatch,
        response: { 200: Envelope(Operation), 400: ErrorEnvelope, 404: ErrorEnvelope, 409: ErrorEnvelope },
        detail: {
          tags: ["operations"],
          summary: "Add to a running operation's metadata",
          description:
            'Merges the body\'s keys into `metadata` (a training that attached to an operation Trainwatch started reports its GPU this way: `{"gpu": "NVIDIA H100 80GB HBM3"}`). Keys Trainwatch writes itself (location, host, recipe, params, pid, command, exit, …) are refused (400 naming the key); 409 once the operation is finished.',
        },
      },
    )
    .get(
      "/operations/:id/logs",
      async ({ params, query }) => {
        const op = await loadOperation(deps.store, params.id);
        return ok(await logsOf(deps).logs(op, query.tail ?? DEFAULT_TAIL));
      },
      {
        params: OperationIdParams,
        query: LogsQuery,
        response: { 200: Envelope(LogLines), 400: ErrorEnvelope, 404: ErrorEnvelope, 503: ErrorEnvelope },
        detail: {
          tags: ["trainings"],
          summary: "A script training's output",
          description:
            "The last `tail` lines (default 200) of what the script printed, stdout and stderr in arrival order, plus Trainwatch's own `[trainwatch]` lines (the command, how it ended). Kept on the machine that ran it (the last ~10 MB; a host training's log is fetched from its host: 503 when the host cannot be reached). 404 for an operation that is not a script training.",
        },
      },
    )
    .get(
      "/operations/:id/logs/stream",
      async ({ params, query, request, server }) => {
        const op = await loadOperation(deps.store, params.id);
        const body = await logsOf(deps).logStream(op, query.tail ?? DEFAULT_TAIL, request.signal);
        // Bun closes a connection idle for 10 s; a quiet script's stream is idle between heartbeats by design.
        (server as { timeout?: (r: Request, seconds: number) => void } | null)?.timeout?.(request, 0);
        return new Response(body, { headers: SSE_HEADERS });
      },
      {
        params: OperationIdParams,
        query: LogsQuery,
        detail: {
          tags: ["trainings"],
          summary: "Stream a script training's output live (SSE)",
          description: LOG_STREAM_DOC,
          responses: {
            200: sseResponse("An event stream of log lines, then end", {
              lines: {
                description: "Lines the script printed, oldest first.",
                data: Type.Object({ lines: Type.Array(Type.String()) }),
              },
              end: {
                description: "The script's processes are gone; the stream closes.",
                data: Type.Object({ running: Type.Boolean() }),
              },
            }),
            400: documented("Bad tail", ErrorEnvelope),
            404: documented("Unknown operation, or not a script training", ErrorEnvelope),
            503: documented("The training's host cannot be reached", ErrorEnvelope),
          },
        },
      },
    );
