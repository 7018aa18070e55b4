/**
 * `POST /operations/{id}/heartbeat`: a training host says it is alive. The liveness
 * watchdog (src/host/watchdog.ts) fails host operations that go silent; a heartbeat
 * or an epoch from the host keeps them running, or revives them.
 */
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import { TrainwatchError, notFound } from "../errors.ts";
import { FINISHED } from "../schemas/operation.ts";
import { HeartbeatInput, HeartbeatReply } from "../schemas/host.ts";
import { isRevivable } from "../store/store.ts";
import type { AppDeps } from "../app.ts";
import { Envelope, ErrorEnvelope, ok } from "./http.ts";

const IdParams = Type.Object({ id: Type.String() });

/** Applies one heartbeat; throws OPERATION_FINISHED when the operation takes no more relays. */
export function applyHeartbeat(deps: Pick<AppDeps, "store" | "hub">, id: string, body: HeartbeatInput | null | undefined) {
  const { store, hub } = deps;
  const op = store.getOperation(id);
  if (!op) throw notFound(id);
  let revived = false;
  if (FINISHED.has(op.status)) {
    if (!isRevivable(op)) {
      throw new TrainwatchError("OPERATION_FINISHED", `operation ${id} is ${op.status}; stop training`, { operation_id: id, status: op.status });
    }
    // An empty write is the store's revive path: back to running, last_seen_at refreshed, trends unchanged.
    revived = hub.writeEpochs(id, []).revived;
  } else {
    store.touch(id);
    if (op.status === "pending") hub.markStarted(id);
  }
  if (body?.started) {
    const { backend_fallback_reason = null, gpu = null, classes = null, ...rest } = body.started;
    store.mergeMetadata(id, { ...rest, backend_fallback_reason, gpu, classes });
  }
  if (body?.progress !== undefined) store.setBatchProgress(id, body.progress);
  if (body?.checkpoints) store.mergeMetadata(id, { checkpoints: body.checkpoints });
  return { operation_id: id, status: store.getOperation(id)!.status, revived };
}

export const heartbeatRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/heartbeat" }).post("/operations/:id/heartbeat", ({ params, body }) => ok(applyHeartbeat(deps, params.id, body)), {
    params: IdParams,
    body: Type.Optional(HeartbeatInput),
    response: { 200: Envelope(HeartbeatReply), 400: ErrorEnvelope, 404: ErrorEnvelope, 409: ErrorEnvelope },
    detail: {
      tags: ["operations"],
      summary: "Heartbeat from a training host",
      description:
        "A GPU host sends this every TRAINWATCH_HEARTBEAT_INTERVAL seconds (default 10) while it trains; batch progress, the backend it picked and the checkpoints it has written so far may ride along. After 1.5 intervals without one the operation reads `stale: true` and the API asks the host for the session: a host without it fails the operation at once (`host_lost_session`), one whose token the API refuses too (`host_token_refused`); a silent host fails it after TRAINWATCH_HOST_TIMEOUT seconds (default 60, `host_unreachable`). The next heartbeat or epoch brings such an operation back to `running`. 409 when the operation is finished otherwise (cancelled, say): the host then stops training.",
    },
  });
