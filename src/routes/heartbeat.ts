/**
 * `POST /operations/{id}/heartbeat`: a training host says it is alive. The liveness
 * watchdog (src/host_pool/watchdog.ts) fails host operations that go silent; a heartbeat
 * or an epoch from the host keeps them running, or revives them.
 */
import { Elysia } from "elysia";
import { TrainwatchError, invalid, notFound } from "../errors.ts";
import { FINISHED, OperationIdParams } from "../schemas/operation.ts";
import { HeartbeatInput, HeartbeatReply, startMetadata } from "../schemas/host.ts";
import { canHeartbeat, operationFinished } from "../operations/lifecycle.ts";
import { CONTINUE } from "../operations/stop_policy.ts";
import type { AppDeps } from "./deps.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";

/**
 * Applies one heartbeat; nothing changes unless it is accepted. Accepted only for an operation a training host runs
 * (`metadata.location: "host"`): running, still pending (the host's first word can arrive before its reply to the
 * session start), or failed by the liveness watchdog (revived). 409 NOT_HOST_OPERATION for a local or external operation,
 * 409 OPERATION_FINISHED once it takes no more relays; 400 when `progress.batch` exceeds `progress.batches`.
 */
export async function applyHeartbeat(deps: Pick<AppDeps, "store" | "operations">, id: string, body: HeartbeatInput) {
  const { store, operations } = deps;
  const op = await store.getOperation(id);
  if (!op) throw notFound(id);
  if (op.metadata.location !== "host") {
    throw new TrainwatchError(
      "NOT_HOST_OPERATION",
      `operation ${id} runs ${String(op.metadata.location ?? "elsewhere")}, not on a training host; only host trainings send heartbeats`,
      { operation_id: id, location: op.metadata.location ?? null },
    );
  }
  if (!canHeartbeat(op)) throw operationFinished(id, op.status, op.control);
  const p = body.progress;
  if (p && p.batch > p.batches)
    throw invalid("body.progress.batch", `${p.batch} exceeds progress.batches (${p.batches})`);
  let revived = false;
  if (FINISHED.has(op.status)) {
    // An empty write is the store's revive path: back to running, last_seen_at refreshed, trends unchanged.
    revived = (await operations.writeEpochs(id, [])).revived;
  } else {
    await operations.touch(id);
    if (op.status === "pending") await operations.markStarted(id);
  }
  if (body.started) {
    await operations.mergeMetadata(id, startMetadata(body.started));
  }
  if (p !== undefined) await operations.setBatchProgress(id, p);
  if (body.checkpoints) await operations.mergeMetadata(id, { checkpoints: body.checkpoints });
  const now = (await store.getOperation(id))!;
  // The stop decision rides along, so a host hears one made between its epochs (a policy set on a run that already diverges).
  return { operation_id: id, status: now.status, revived, control: now.control ?? CONTINUE };
}

export const heartbeatRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/heartbeat" }).post(
    "/operations/:id/heartbeat",
    async ({ params, body }) => ok(await applyHeartbeat(deps, params.id, body)),
    {
      params: OperationIdParams,
      body: HeartbeatInput,
      response: { 200: Envelope(HeartbeatReply), 400: ErrorEnvelope, 404: ErrorEnvelope, 409: ErrorEnvelope },
      detail: {
        tags: ["operations"],
        summary: "Heartbeat from a training host",
        description:
          "A GPU host sends this every TRAINWATCH_HEARTBEAT_INTERVAL seconds (default 10) while it trains; batch progress, the backend it picked and the checkpoints it has written so far may ride along. The body is a JSON object (`{}` only says the host is alive). After 1.5 intervals without one the operation reads `stale: true` and the API asks the host for the session: a host without it fails the operation at once (`host_lost_session`), one whose token the API refuses too (`host_token_refused`); a silent host fails it after TRAINWATCH_HOST_TIMEOUT seconds (default 60, `host_unreachable`). The next heartbeat or epoch brings such an operation back to `running`. 409 `NOT_HOST_OPERATION` for an operation that does not run on a host (local or external); 409 `OPERATION_FINISHED` when the operation is finished otherwise (cancelled, say): the host then stops training. The reply's `control` carries the stop decision recorded on the operation (its stop policy fired), on which the host stops the training and finishes it `completed`.",
      },
    },
  );
