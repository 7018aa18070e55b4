/**
 * What every session on this host keeps, built-in (sessions.ts) or script (scripts.ts), and the one way a
 * session is looked up, shown on GET /sessions and forgotten once finished.
 */
import { TrainwatchError } from "../errors.ts";
import type { BatchProgress, Session, SessionStatus } from "../schemas/host.ts";
import type { Outbox } from "./outbox.ts";

export interface SessionCore {
  operationId: string;
  apiUrl: string;
  status: SessionStatus;
  startedAt: string;
  finishedAt: string | null;
  epochs: number;
  error: string | null;
}

/** The session for `operationId`, or 404 NOT_FOUND. */
export function sessionOf<S>(sessions: Map<string, S>, operationId: string): S {
  const s = sessions.get(operationId);
  if (!s) {
    throw new TrainwatchError("NOT_FOUND", `no session for operation ${operationId} on this host`, {
      operation_id: operationId,
    });
  }
  return s;
}

/** Forgets the oldest finished sessions beyond `keep` (running ones always stay). */
export function pruneFinished(sessions: Map<string, { status: SessionStatus }>, keep = 200): void {
  for (const [id, s] of sessions) {
    if (sessions.size <= keep) break;
    if (s.status !== "running") sessions.delete(id);
  }
}

/** The session as GET /sessions shows it, with its relay state from the outbox. */
export function sessionView(
  s: SessionCore,
  outbox: Outbox,
  live: { progress: BatchProgress | null; backend: string | null },
): Session {
  return {
    operation_id: s.operationId,
    status: s.status,
    api_url: s.apiUrl,
    started_at: s.startedAt,
    finished_at: s.finishedAt,
    epochs_trained: s.epochs,
    progress: live.progress,
    backend: live.backend,
    error_message: s.error,
    relay: {
      pending: outbox.pending(s.operationId),
      delivered: outbox.delivered(s.operationId),
      problem: outbox.problem(s.apiUrl),
    },
  };
}
