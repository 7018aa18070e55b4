/**
 * Live metrics over Server-Sent Events: one operation's epochs, trend summary and status
 * (`/operations/{id}/metrics/stream`), and every operation's status (`/stream`) for lists.
 */
import { Elysia, t } from "elysia";
import { Type } from "@sinclair/typebox";
import type { AppDeps } from "./deps.ts";
import { invalid, notFound } from "../errors.ts";
import { EpochInput, MAX_EPOCH, SinceEpoch } from "../schemas/epoch.ts";
import { FINISHED, Operation, OperationIdParams, OperationStatus, TrendSummarySchema } from "../schemas/operation.ts";
import { queryInt } from "../schemas/query.ts";
import { SystemSample } from "../schemas/system.ts";
import { Alert } from "../schemas/alert.ts";
import { ErrorEnvelope } from "../http/index.ts";
import { documented, sseResponse } from "../http/openapi.ts";
import { ALL, Fanout, RETRY_MS, SSE_HEADERS, epochEvents, sseEvent, type FanoutOptions } from "../operations/fanout.ts";

const StreamQuery = t.Object({
  since_epoch: queryInt("since_epoch", {
    ...SinceEpoch,
    description: "Replay only epochs with epoch > since_epoch. A Last-Event-ID header (a reconnect) takes precedence.",
  }),
});

type Controller = ReadableStreamDefaultController<Uint8Array>;

/** Last-Event-ID as an epoch number; null when absent. */
function lastEventId(header: string | null): number | null {
  if (header === null || header.trim() === "") return null;
  const v = Number(header.trim());
  if (!Number.isInteger(v) || v < -1 || v > MAX_EPOCH)
    throw invalid("Last-Event-ID", `expected an epoch number from -1 to ${MAX_EPOCH}, got "${header}"`);
  return v;
}

/** Bun closes a connection idle for 10 s; a stream is idle between heartbeats by design. */
function keepOpen(server: unknown, request: Request): void {
  (server as { timeout?: (r: Request, seconds: number) => void } | null)?.timeout?.(request, 0);
}

/** An event-stream Response whose lifetime is tied to the fan-out: it leaves on cancel and on client abort. */
function eventStream(fanout: Fanout, key: string, request: Request, open: (c: Controller) => Promise<void>): Response {
  let controller: Controller | null = null;
  const leave = () => {
    if (controller) fanout.leave(key, controller);
  };
  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c;
        // The reply's status is sent: a replay that fails now (the database gone) ends the stream in error.
        open(c).catch((err) => {
          console.error(`[stream] ${key}: replay failed:`, err);
          c.error(err);
        });
      },
      cancel: leave,
    },
    // Counted in bytes so the fan-out can see how far a slow reader lags (desiredSize).
    new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
  );
  request.signal?.addEventListener("abort", leave, { once: true });
  return new Response(body, { headers: SSE_HEADERS });
}

const STREAM_DOC =
  "Server-Sent Events. First `status` (the operation), then the stored epochs after `since_epoch` or after the `Last-Event-ID` header as `epoch` events (id = epoch number, data = the epoch as in `GET /metrics`), then a `trends` event (the trend summary). " +
  "Then, live and within milliseconds of each write: `epoch` events followed by `trends`, `system` with the samples of each POST …/system (the history comes from GET …/system), and `status` on every status change, and at most once a second while heartbeats or batch progress arrive (`last_seen_at`, `stale`, `progress` move; the API also sends one when a host training turns stale). A re-posted epoch arrives again with its new values (replace it). " +
  "`: heartbeat` comments every 15 s. When the operation finishes: `status`, then `end` with `{ status }`, and the stream closes (a finished operation replays, ends and closes at once). " +
  "Same bearer token as the rest of the API; browsers that cannot set headers on EventSource can stream with fetch().";

/** The events of `/operations/{id}/metrics/stream`, for the document. */
const OPERATION_EVENTS = {
  status: {
    description:
      "The operation: first, on every status change, and at most once a second while its liveness or batch progress changes.",
    data: Operation,
  },
  epoch: {
    description: "A stored epoch, as in `GET /metrics`; re-sent with new values when re-posted.",
    data: EpochInput,
    id: "The epoch number.",
  },
  trends: { description: "The trend summary, after each batch of epochs.", data: TrendSummarySchema },
  system: {
    description: "System samples a client just posted (POST …/system), as GET …/system returns them; not replayed.",
    data: Type.Object({ samples: Type.Array(SystemSample) }),
  },
  end: { description: "The operation finished; the stream closes.", data: Type.Object({ status: OperationStatus }) },
  alert: {
    description:
      "An alert about the operation was recorded (docs/alerts.md): the alert and its deliveries, as in `GET /alerts/{id}`.",
    data: Alert,
  },
};

/** The SSE routes. `opts.heartbeatMs` sets the heartbeat interval (default 15 s). */
export const streamRoutes = (deps: AppDeps, opts: FanoutOptions = {}) => {
  const fanout = new Fanout(deps.operations, opts);
  return new Elysia({ name: "trainwatch/stream" })
    .decorate("sseFanout", fanout)
    .get(
      "/operations/:id/metrics/stream",
      async ({ params, query, request, server }) => {
        const id = params.id;
        if (!(await deps.store.getOperation(id))) throw notFound(id);
        const since = lastEventId(request.headers.get("last-event-id")) ?? query.since_epoch ?? -1;
        keepOpen(server, request);
        return eventStream(fanout, id, request, (c) =>
          // The stream listens first, then reads its replay as one snapshot (see Fanout.join).
          fanout.join(id, c, async () => {
            const { operation: op, epochs, version, stepVersion } = await deps.store.readReplay(id, since);
            const finished = FINISHED.has(op.status);
            const end = finished ? sseEvent("end", { status: op.status }) : "";
            return {
              initial: `retry: ${RETRY_MS}\n\n${sseEvent("status", op)}${epochEvents(epochs, op.trends)}${end}`,
              versions: { epochs: version, steps: stepVersion },
              finished,
            };
          }),
        );
      },
      {
        params: OperationIdParams,
        query: StreamQuery,
        detail: {
          tags: ["metrics"],
          summary: "Stream an operation's epochs live (SSE)",
          description: STREAM_DOC,
          responses: {
            200: sseResponse(
              "An event stream: status, epochs, trends, then end when the operation finishes",
              OPERATION_EVENTS,
            ),
            400: documented("Bad since_epoch or Last-Event-ID", ErrorEnvelope),
            404: documented("Unknown operation", ErrorEnvelope),
          },
        },
      },
    )
    .get(
      "/stream",
      ({ request, server }) => {
        keepOpen(server, request);
        return eventStream(fanout, ALL, request, (c) =>
          fanout.join(ALL, c, () => ({
            initial: `retry: ${RETRY_MS}\n\n: connected\n\n`,
            versions: null,
            finished: false,
          })),
        );
      },
      {
        detail: {
          tags: ["operations"],
          summary: "Stream every operation's changes (SSE)",
          description:
            "Server-Sent Events for lists and dashboards: an `operation` event (the whole operation, as in `GET /operations/{id}`) when one is registered, on every status or metadata change (a host training's start report: backend, GPU) and stop decision, and at most every 250 ms per operation while its epochs, heartbeats or batch progress arrive (progress, best loss, flags, last_seen_at). `removed` when an operation is discarded (a start no host took). Heartbeat comments every 15 s. Never ends on its own: a list needs no poll.",
          responses: {
            200: sseResponse("An event stream of operation changes; never ends on its own", {
              operation: {
                description: "The operation after a change, as in `GET /operations/{id}`.",
                data: Operation,
              },
              removed: {
                description: "The operation is gone (a start refused after it was created).",
                data: Type.Object({ operation_id: Type.String() }),
              },
              alert: {
                description: "An alert about any operation was recorded (docs/alerts.md), as in `GET /alerts/{id}`.",
                data: Alert,
              },
            }),
          },
        },
      },
    );
};
