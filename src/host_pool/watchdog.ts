/**
 * Liveness of host trainings, in the API. A running host operation whose heartbeats are late (nothing heard for
 * 1.5 × TRAINWATCH_HEARTBEAT_INTERVAL) reads `stale` at once, and the watchdog asks its host for the session:
 * - the host answers but has no such session (it restarted, or lost it): failed now, host_lost_session;
 * - the host has it but the API refuses the host's token, so nothing arrives: failed now, host_token_refused;
 * - otherwise (the host is silent, or trains but cannot deliver): failed after TRAINWATCH_HOST_TIMEOUT (default 60 s)
 *   of silence, host_unreachable, with what the host said if it said anything.
 * Each message names the host's URL. All three are revivable: the store brings the operation back to running when the
 * host relays again.
 */
import { TrainwatchError } from "../errors.ts";
import type { OperationsService } from "../operations/service.ts";
import type { Session } from "../schemas/host.ts";
import type { FailureCode } from "../operations/lifecycle.ts";
import { HOST_UNREACHABLE, lateAfterMs } from "../operations/liveness.ts";
import { every } from "../operations/periodic.ts";

/** What a host says about one session (HostPool.probeSession). */
export type SessionProbe =
  | { kind: "session"; session: Session }
  | { kind: "gone" }
  | { kind: "unreachable"; error: string };

export interface WatchdogOptions {
  /** TRAINWATCH_HOST_TIMEOUT: silence after which a host that gives no reason is failed as unreachable. */
  timeoutMs: number;
  /** TRAINWATCH_HEARTBEAT_INTERVAL (default 10 s): heartbeats are late after 1.5 of them; a host is asked at most once per interval. */
  heartbeatMs?: number;
  /** Asks `host` about the session; without it only the timeout applies. */
  probe?: (host: string, operationId: string) => Promise<SessionProbe>;
  /** Check period; default a quarter of the heartbeat interval or of the timeout, whichever is shorter (50 ms … 5 s). */
  intervalMs?: number;
  now?: () => number;
  log?: (line: string) => void;
}

export interface Watchdog {
  /** Looks at the late operations now (asking their hosts); resolves with the ids it failed. */
  check(): Promise<string[]>;
  stop(): void;
}

const secs = (ms: number) => `${Math.round(ms / 100) / 10} s`;

/**
 * Starts the periodic check. Silence only counts toward the timeout while this process is up: right after an API
 * restart every host gets a full timeout to reach it again (a host that answers "no such session" is failed anyway).
 */
export function startHostWatchdog(operations: OperationsService, opts: WatchdogOptions): Watchdog {
  const now = opts.now ?? Date.now;
  const log = opts.log ?? ((line) => console.warn(line));
  const heartbeatMs = opts.heartbeatMs ?? 10_000;
  const lateMs = Math.min(lateAfterMs(heartbeatMs), opts.timeoutMs);
  const since = now();
  /** Per late operation: when its host was last asked, and what it said. */
  const asked = new Map<string, { at: number; answer: SessionProbe | null }>();
  const inFlight = new Set<string>();

  const fail = async (id: string, seenAt: string | null, code: FailureCode, message: string): Promise<boolean> => {
    // The host may have been heard from while it was being asked: then nothing is wrong any more.
    const current = await operations.reader.getOperation(id);
    if (current?.status !== "running" || current.last_seen_at !== seenAt) return false;
    try {
      await operations.finish(id, "failed", { error_message: message, failure_code: code });
      log(`[watchdog] ${id}: marked failed (${code}): ${message}`);
      return true;
    } catch (err) {
      // Finished by a relay in the meantime: nothing to do.
      if (!(err instanceof TrainwatchError && err.code === "OPERATION_FINISHED"))
        console.error(`[watchdog] ${id}:`, err);
      return false;
    }
  };

  const inspect = async (id: string, t: number): Promise<boolean> => {
    const op = await operations.reader.getOperation(id);
    if (op?.status !== "running") return false;
    const host = typeof op.metadata.host === "string" ? op.metadata.host : null;
    const seenAt = op.last_seen_at;
    // Never heard from: silent since it started (or was created), not since 1970.
    const silentMs = t - Date.parse(seenAt ?? op.started_at ?? op.created_at);
    let entry = asked.get(id);
    if (!entry) {
      // Newly late: streams hear it at once (the operation now reads stale: true).
      await operations.statusChanged(id);
      asked.set(id, (entry = { at: -Infinity, answer: null }));
    }
    if (opts.probe && host && !inFlight.has(id) && t - entry.at >= heartbeatMs) {
      inFlight.add(id);
      entry.at = t;
      try {
        entry.answer = await opts.probe(host, id);
      } finally {
        inFlight.delete(id);
      }
    }
    const answer = entry.answer;
    const where = host ?? "its host";
    if (answer?.kind === "gone") {
      return fail(
        id,
        seenAt,
        "host_lost_session",
        `training host ${where} no longer has this training (it answered 404 after ${secs(silentMs)} without a heartbeat): it was restarted or lost the session`,
      );
    }
    const problem = answer?.kind === "session" ? answer.session.relay.problem : null;
    if (problem?.refused) {
      return fail(
        id,
        seenAt,
        "host_token_refused",
        `training host ${where} cannot deliver: the API refused its token (${problem.status}); set the same TRAINWATCH_TOKEN on the API and on the host`,
      );
    }
    if (t - since < opts.timeoutMs || silentMs < opts.timeoutMs) return false;
    let detail = "";
    if (answer?.kind === "unreachable") detail = `; it does not answer either (${answer.error})`;
    else if (answer?.kind === "session") {
      const s = answer.session;
      detail = `; the host reports the session ${s.status} with ${s.epochs_trained} epoch(s) but ${problem ? `cannot deliver: ${problem.message}` : "its relay does not arrive"}`;
    }
    return fail(
      id,
      seenAt,
      "host_unreachable",
      `${HOST_UNREACHABLE}: no epoch or heartbeat from ${where} for ${secs(opts.timeoutMs)}${detail}`,
    );
  };

  const check = async (): Promise<string[]> => {
    const t = now();
    const late = await operations.reader.staleHostOperations(t - lateMs);
    for (const id of asked.keys()) if (!late.includes(id)) asked.delete(id);
    // Each operation on its own: one that cannot be read or failed is logged with its id, and the others are checked.
    const outcomes = await Promise.all(
      late.map(async (id) => {
        try {
          return (await inspect(id, t)) ? id : null;
        } catch (err) {
          log(`[watchdog] ${id}: check failed: ${err instanceof Error ? err.message : String(err)}`);
          return null;
        }
      }),
    );
    return outcomes.filter((id): id is string => id !== null);
  };

  const loop = every(
    opts.intervalMs ?? Math.min(5000, Math.max(50, Math.min(heartbeatMs, opts.timeoutMs) / 4)),
    check,
    "[watchdog] check",
  );
  return { check, stop: loop.stop };
}
