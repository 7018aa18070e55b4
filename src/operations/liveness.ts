/**
 * The liveness rules, for every run: when a host training's heartbeats count as late, when a watched client run (one
 * whose trainer sent a heartbeat) reads `stale`, is failed `lost`, or is `hung` (heartbeats arrive, rows do not), and
 * the bounded summary of a run's row intervals (its cadence) the hung rule reads. Pure: the clock and the last signs of
 * life are parameters; the stores keep the columns, the watchdogs act on the verdicts.
 */

/** Start of the message a silent host leaves (the full one names the host and the timeout). */
export const HOST_UNREACHABLE = "training host unreachable";

/** Heartbeats count as late after 1.5 intervals without one: one missed beat plus slack for a slow relay call. */
export const lateAfterMs = (heartbeatMs: number) => 1.5 * heartbeatMs;

/** The client liveness settings (TRAINWATCH_STALE_AFTER, TRAINWATCH_LOST_AFTER, TRAINWATCH_HUNG_AFTER), in ms. */
export interface ClientLiveness {
  /** Silence (no heartbeat, epoch or step) after which a watched running run reads `stale`; default 60 s. */
  staleAfterMs: number;
  /** Silence after which the watchdog fails a watched running run `lost`; default 300 s. */
  lostAfterMs: number;
  /** The floor of row silence (heartbeats arriving) before a watched running run is `hung`; default 300 s. */
  hungAfterMs: number;
}

/**
 * The defaults: a client heartbeats every 15 s (TRAINWATCH_CLIENT_HEARTBEAT), so `stale` needs four missed beats and
 * `lost` twenty. The heartbeat thread runs beside the loop, so a 10-minute evaluation never reads stale or lost: only a
 * dead process (or a cut network) stops heartbeats.
 */
export const DEFAULT_CLIENT_LIVENESS: ClientLiveness = {
  staleAfterMs: 60_000,
  lostAfterMs: 300_000,
  hungAfterMs: 300_000,
};

/** What the rules read of an operation row. `watched_at`: its first client heartbeat (ms), null when it never sent one. */
export interface LivenessRow {
  status: string;
  location: string | null;
  last_seen_at: number | null;
  watched_at: number | null;
  /** The row intervals kept on write (Cadence as JSON), null before any row. */
  cadence: string | null;
}

/**
 * True while a running host training's heartbeats are late: nothing (epoch or heartbeat) heard from its host for
 * longer than `lateAfterMs`. Local trainings and operations posted by clients are judged by isSilent instead.
 */
export function isStale(
  op: { status: string; location: string | null },
  lastSeenMs: number | null,
  nowMs: number,
  lateAfterMs: number,
): boolean {
  return op.status === "running" && op.location === "host" && nowMs - (lastSeenMs ?? 0) > lateAfterMs;
}

/** A watched run is one a client heartbeats for (never a host training: it has its own watchdog). */
export const isWatched = (op: Pick<LivenessRow, "location" | "watched_at">): boolean =>
  op.watched_at !== null && op.location !== "host" && op.location !== "local";

/**
 * How long a watched run has been silent (no heartbeat, epoch or step), in ms: from its last sign of life, or its first
 * heartbeat when none came since. null for a run that is not watched or not running.
 */
export function silentMs(op: LivenessRow, nowMs: number): number | null {
  if (op.status !== "running" || !isWatched(op)) return null;
  return Math.max(0, nowMs - Math.max(op.last_seen_at ?? 0, op.watched_at ?? 0));
}

/** The bounded summary of a run's row intervals, kept on every epoch or step write (column `cadence`). */
export interface Cadence {
  /** When the last row arrived (server clock, ms). */
  last_ms: number;
  /** The most recent CADENCE_INTERVALS intervals between writes (ms), oldest first. */
  intervals: number[];
  /** The longest interval between writes seen over the whole run (ms). */
  longest_ms: number;
}

/** How many recent intervals a cadence keeps: enough for a steady median, bounded so a read costs O(1). */
export const CADENCE_INTERVALS = 32;

/** A stored cadence, or null (none yet, or unreadable: a fresh one starts at the next write). */
export function parseCadence(json: string | null): Cadence | null {
  if (json === null) return null;
  try {
    const c = JSON.parse(json) as Cadence;
    return typeof c.last_ms === "number" && Array.isArray(c.intervals) ? c : null;
  } catch {
    return null;
  }
}

/**
 * The cadence after a write of rows at `atMs`. The interval since the previous write joins the recent ones (the oldest
 * dropped past CADENCE_INTERVALS) and the longest gap; a write in the same millisecond as the last adds no interval.
 * Intervals are between writes as the server receives them: a client that batches steps every 0.5 s has a 0.5 s cadence.
 */
export function noteRows(prev: Cadence | null, atMs: number): Cadence {
  if (prev === null) return { last_ms: atMs, intervals: [], longest_ms: 0 };
  const gap = atMs - prev.last_ms;
  if (gap <= 0) return prev;
  const intervals = prev.intervals.length >= CADENCE_INTERVALS ? prev.intervals.slice(1) : prev.intervals.slice();
  intervals.push(gap);
  return { last_ms: atMs, intervals, longest_ms: Math.max(prev.longest_ms, gap) };
}

/** The median of the recent intervals (ms), null before two writes. */
export function medianInterval(c: Cadence | null): number | null {
  if (c === null || c.intervals.length === 0) return null;
  const s = [...c.intervals].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The row silence past which a run is hung (ms): max(10 × its median interval, 1.5 × the longest gap it had before,
 * `hungAfterMs`). Ten median intervals is far outside a steady loop's jitter; 1.5 × the longest gap lets a run whose
 * evaluation always takes 20 minutes take them; the floor (TRAINWATCH_HUNG_AFTER, default 300 s) keeps a fast loop's
 * pause for a checkpoint from reading hung.
 */
export function hungThresholdMs(c: Cadence | null, hungAfterMs: number): number {
  const median = medianInterval(c) ?? 0;
  return Math.max(10 * median, 1.5 * (c?.longest_ms ?? 0), hungAfterMs);
}

/** A watched run's liveness, as the operation and the analysis report it. */
export interface LivenessVerdict {
  stale: boolean;
  hung: boolean;
  /** Seconds since the last heartbeat, epoch or step. */
  silent_s: number;
  /** Seconds since the last epoch or step (since the first heartbeat before any). */
  rows_silent_s: number;
  /** The median interval between writes of rows (s), null before two. */
  median_interval_s: number | null;
  /** The longest interval between writes seen (s), null before two. */
  longest_gap_s: number | null;
  /** The row silence past which it reads hung (s): hungThresholdMs. */
  hung_after_s: number;
}

const s = (ms: number) => Math.round(ms) / 1000;

/**
 * The liveness of a watched running run at `nowMs` (null when it is not watched or not running):
 * - stale: silent (no heartbeat, epoch or step) for longer than `staleAfterMs`;
 * - hung: not stale (its heartbeats arrive) but no epoch or step for longer than hungThresholdMs. A stale run is not
 *   called hung: silence of everything is the stale/lost rule's, whatever the rows did.
 */
export function livenessOf(op: LivenessRow, nowMs: number, cfg: ClientLiveness): LivenessVerdict | null {
  const silent = silentMs(op, nowMs);
  if (silent === null) return null;
  const cadence = parseCadence(op.cadence);
  const rowsSilent = Math.max(0, nowMs - (cadence?.last_ms ?? op.watched_at ?? nowMs));
  const stale = silent > cfg.staleAfterMs;
  const threshold = hungThresholdMs(cadence, cfg.hungAfterMs);
  const median = medianInterval(cadence);
  return {
    stale,
    hung: !stale && rowsSilent > threshold,
    silent_s: s(silent),
    rows_silent_s: s(rowsSilent),
    median_interval_s: median === null ? null : s(median),
    longest_gap_s: cadence && cadence.intervals.length > 0 ? s(cadence.longest_ms) : null,
    hung_after_s: s(threshold),
  };
}

/** True when the watchdog fails a watched running run as lost: silent for longer than `lostAfterMs`. */
export const isLost = (op: LivenessRow, nowMs: number, cfg: Pick<ClientLiveness, "lostAfterMs">): boolean =>
  (silentMs(op, nowMs) ?? 0) > cfg.lostAfterMs;

/** The message a lost run is failed with: how long it was silent, and the last epoch or step it logged. */
export function lostMessage(silent: number, last: { epoch: number | null; steps: number }): string {
  const where =
    last.steps > 0
      ? `its last step was ${last.steps - 1}${last.epoch === null ? "" : ` (epoch ${last.epoch})`}`
      : last.epoch === null
        ? "it logged no epoch or step"
        : `its last epoch was ${last.epoch}`;
  return `lost: no heartbeat, epoch or step for ${Math.round(silent / 1000)} s (the trainer was killed, crashed without a goodbye, or lost its network); ${where}`;
}

/** What the watchdog says when a run turns hung (OperationsService.flagRaised's detail). */
export interface HungDetail {
  flag: "hung";
  silent_s: number;
  median_interval_s: number | null;
  longest_gap_s: number | null;
  /** GPU / CPU utilisation at the time, when the run samples it (the system metrics part fills it in). */
  utilisation?: string;
  /** One sentence a person can act on. */
  reason: string;
}

/** The hung detail of a verdict: the reason names the silence against the run's own usual interval. */
export function hungDetail(v: LivenessVerdict, utilisation?: string): HungDetail {
  const usual =
    v.median_interval_s === null
      ? "it has logged fewer than two writes"
      : `its median interval is ${v.median_interval_s} s and its longest gap ${v.longest_gap_s} s`;
  return {
    flag: "hung",
    silent_s: v.rows_silent_s,
    median_interval_s: v.median_interval_s,
    longest_gap_s: v.longest_gap_s,
    ...(utilisation !== undefined && { utilisation }),
    reason: `hung: heartbeats arrive but no epoch or step for ${Math.round(v.rows_silent_s)} s (${usual}; hung past ${Math.round(v.hung_after_s)} s)${utilisation ? `; ${utilisation}` : ""}`,
  };
}

/** What adviceOnLiveness reads of a recommendation (src/schemas/analysis.ts Recommendation): its action and reason. */
interface Advice {
  action: string;
  reason: string;
}

/**
 * The recommendation of a run whose trainer went quiet: its curves cannot tell a dead or stuck trainer from a healthy
 * one, so "continue" (or "not enough data") becomes `check_trainer`, saying what is silent and for how long, with the
 * curves' reason after it; a stop or a checkpoint to use stays (the curves already say the run should end), the
 * silence added to its reason. Unchanged while the run is neither stale nor hung.
 * - stale: nothing (heartbeat, epoch or step) for longer than the server's limit: killed, out of memory, preempted or
 *   cut off; a watched client run is failed `lost` if the silence goes on (a host training: `host_unreachable`);
 * - hung: heartbeats arrive but no epoch or step for far longer than its usual interval: a deadlocked collective, a
 *   data loader that stopped; with the utilisation its latest system sample shows, when there is one.
 */
export function adviceOnLiveness<A extends Advice>(
  rec: A,
  op: { stale: boolean; hung: boolean; liveness: LivenessVerdict | null },
  utilisation?: string,
): A | (Omit<A, "action"> & { action: "check_trainer" }) {
  if (!op.stale && !op.hung) return rec;
  const l = op.liveness;
  const quiet = op.stale
    ? `The trainer has sent nothing (no heartbeat, epoch or step)${l ? ` for ${Math.round(l.silent_s)} s` : ""}: it may have been killed, run out of memory, been preempted or lost its network; check that it is alive (if the silence goes on, the run is failed as lost).`
    : `The trainer heartbeats but has logged no epoch or step for ${Math.round(l?.rows_silent_s ?? 0)} s${l?.median_interval_s != null ? ` (usually every ${l.median_interval_s} s)` : ""}${utilisation ? `; ${utilisation}` : ""}: it looks hung (a deadlocked collective, a data loader that stopped); check the process.`;
  if (rec.action === "stop" || rec.action === "use_checkpoint") return { ...rec, reason: `${rec.reason} ${quiet}` };
  return { ...rec, action: "check_trainer", reason: `${quiet} The curves so far: ${rec.reason}` };
}
