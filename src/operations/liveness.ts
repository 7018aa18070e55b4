/**
 * The liveness rule of a host training: when its heartbeats count as late (the operation reads `stale`), and the
 * message a silent host leaves when the watchdog fails it. Pure: the clock and the last sign of life are parameters.
 */

/** Start of the message a silent host leaves (the full one names the host and the timeout). */
export const HOST_UNREACHABLE = "training host unreachable";

/** Heartbeats count as late after 1.5 intervals without one: one missed beat plus slack for a slow relay call. */
export const lateAfterMs = (heartbeatMs: number) => 1.5 * heartbeatMs;

/**
 * True while a running host training's heartbeats are late: nothing (epoch or heartbeat) heard from its host for
 * longer than `lateAfterMs`. Local trainings and operations posted by clients are never stale.
 */
export function isStale(
  op: { status: string; location: string | null },
  lastSeenMs: number | null,
  nowMs: number,
  lateAfterMs: number,
): boolean {
  return op.status === "running" && op.location === "host" && nowMs - (lastSeenMs ?? 0) > lateAfterMs;
}
