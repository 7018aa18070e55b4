/**
 * `POST /operations/{id}/heartbeat`: a trainer says it is alive, a training host or a client (the Python client's
 * heartbeat thread). The liveness watchdogs (src/host_pool/watchdog.ts for hosts, src/operations/client_watchdog.ts
 * for client runs) fail operations that go silent; a heartbeat, epoch or step keeps them running, or revives them.
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
 * Applies one heartbeat; nothing changes unless it is accepted. Accepted while the operation runs, is still pending (a
 * host's first word can arrive before its reply to the session start; a client heartbeats right after registering), or
 * was failed by a liveness watchdog (revived: host_unreachable …, lost). Who sends it decides what it means:
 * - a training host (`location: "host"`): its session is alive; the host watchdog (src/host_pool/watchdog.ts) reads it;
 * - a client outside Trainwatch (external, import, or no location): the first heartbeat makes the run watched, so its
 *   silence reads `stale`, then `lost` (src/operations/client_watchdog.ts);
 * - a local training (a built-in worker or a script training whose Python client heartbeats): only `last_seen_at` moves.
 *   The server runs that training itself and knows when it ends (the worker's or the script's exit), so it is never
 *   watched and never failed as lost.
 * 409 OPERATION_FINISHED once it takes no more relays; 400 when `progress.batch` exceeds `progress.batches`; 409
 * NOT_HOST_OPERATION when a heartbeat for an operation that does not run on a host carries a host's report (`started`,
 * `checkpoints`): nothing but a host writes those.
 */
export async function applyHeartbeat(
  deps: Pick<AppDeps, "store" | "operations" | "config">,
  id: string,
  body: HeartbeatInput,
) {
  const { store, operations, config } = deps;
  const op = await store.getOperation(id);
  if (!op) throw notFound(id);
  const location = op.metadata.location;
  const host = location === "host";
  const local = location === "local";
  const report = body.started ? "started" : body.checkpoints ? "checkpoints" : null;
  if (!host && report !== null) {
    throw new TrainwatchError(
      "NOT_HOST_OPERATION",
      `body.${report}: operation ${id} runs ${String(location ?? "elsewhere")}, not on a training host; only a training host reports ${report} in a heartbeat`,
      { operation_id: id, location: location ?? null, field: `body.${report}` },
    );
  }
  if (!canHeartbeat(op)) throw operationFinished(id, op.status, op.control);
  const p = body.progress;
  if (p && p.batch > p.batches)
    throw invalid("body.progress.batch", `${p.batch} exceeds progress.batches (${p.batches})`);
  let revived = false;
  if (local) {
    // The server runs it: the heartbeat moves last_seen_at and nothing else (a queued one stays pending).
    await operations.touch(id);
  } else if (FINISHED.has(op.status)) {
    // An empty write is the store's revive path: back to running, last_seen_at refreshed, trends unchanged.
    revived = (await operations.writeEpochs(id, [])).revived;
    if (!host) await operations.touch(id, undefined, true);
  } else {
    await operations.touch(id, undefined, !host);
    if (op.status === "pending") await operations.markStarted(id);
  }
  if (body.started) {
    await operations.mergeMetadata(id, startMetadata(body.started));
  }
  if (p !== undefined) await operations.setBatchProgress(id, p);
  if (body.checkpoints) await operations.mergeMetadata(id, { checkpoints: body.checkpoints });
  const now = (await store.getOperation(id))!;
  // The stop decision rides along, so a host hears one made between its epochs (a policy set on a run that already diverges).
  return {
    operation_id: id,
    status: now.status,
    revived,
    control: now.control ?? CONTINUE,
    heartbeat_interval_s: (host ? config.heartbeatMs : config.clientHeartbeatMs) / 1000,
  };
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
        summary: "Heartbeat from a training host or a client",
        description:
          "A GPU host sends this every TRAINWATCH_HEARTBEAT_INTERVAL seconds (default 10) while it trains; batch progress, the backend it picked and the checkpoints it has written so far may ride along. The body is a JSON object (`{}` only says the host is alive). After 1.5 intervals without one the operation reads `stale: true` and the API asks the host for the session: a host without it fails the operation at once (`host_lost_session`), one whose token the API refuses too (`host_token_refused`); a silent host fails it after TRAINWATCH_HOST_TIMEOUT seconds (default 60, `host_unreachable`). The next heartbeat or epoch brings such an operation back to `running`. 409 `NOT_HOST_OPERATION` when `started` or `checkpoints` come for an operation that does not run on a host (local or external); 409 `OPERATION_FINISHED` when the operation is finished otherwise (cancelled, say): the host then stops training. The reply's `control` carries the stop decision recorded on the operation (its stop policy fired), on which the host stops the training and finishes it `completed`. " +
          "A client (the Python client, or any trainer that registered with POST /operations) sends `{}` every `heartbeat_interval_s` of the reply (TRAINWATCH_CLIENT_HEARTBEAT, default 15): its first heartbeat makes the run watched, so silence (no heartbeat, epoch or step) reads `stale: true` after TRAINWATCH_STALE_AFTER (default 60 s) and fails it `lost` after TRAINWATCH_LOST_AFTER (default 300 s); the next heartbeat, epoch or step revives a lost run. A run whose heartbeats arrive but that logs nothing for far longer than its usual interval reads `hung`. Operations that never heartbeat keep their behaviour (never stale, never lost). A heartbeat to a local training (a built-in or script training the server runs) only refreshes `last_seen_at`: the server knows when its own trainings end.",
      },
    },
  );
