/**
 * Liveness of client runs (the ones a trainer heartbeats for: the Python client), acting on the rules of
 * src/operations/liveness.ts. Every period it reads the running watched operations (Store.watchedOperations, an indexed
 * read that never touches a finished run) and, for each on its own:
 * - silent past TRAINWATCH_STALE_AFTER: the run reads `stale` from then on; streams hear it once, when it turns;
 * - silent past TRAINWATCH_LOST_AFTER: failed, failure_code `lost`, with how long it was silent and its last epoch or
 *   step (revivable: its next heartbeat, epoch or step brings it back);
 * - heartbeats arriving but no row for far longer than its cadence: `hung`; streams hear it and
 *   OperationsService.flagRaised is called once per turn.
 * One replica runs it (the "jobs" leadership, src/operations/replicas.ts), beside the host watchdog.
 */
import { TrainwatchError } from "../errors.ts";
import type { WatchedRow } from "../store/store.ts";
import { hungDetail, isLost, livenessOf, lostMessage, silentMs, type ClientLiveness } from "./liveness.ts";
import { every } from "./periodic.ts";
import type { OperationsService } from "./service.ts";
import { describeUtilisation } from "./utilisation.ts";

export interface ClientWatchdogOptions {
  liveness: ClientLiveness;
  /** Check period; default a quarter of the shortest limit (50 ms … 5 s): lost at most one period after its time. */
  intervalMs?: number;
  now?: () => number;
  log?: (line: string) => void;
}

export interface ClientWatchdog {
  /** Looks at the watched running operations now; resolves with the ids it failed as lost. */
  check(): Promise<string[]>;
  stop(): void;
}

/** The default check period for `liveness`: a quarter of its shortest limit, 50 ms … 5 s. */
export const watchdogPeriodMs = (liveness: ClientLiveness): number =>
  Math.min(5000, Math.max(50, Math.min(liveness.staleAfterMs, liveness.lostAfterMs, liveness.hungAfterMs) / 4));

/**
 * Starts the periodic check. Silence only counts toward `lost` while this process is up: right after a restart (or a
 * change of leader) every run gets a full TRAINWATCH_LOST_AFTER for its heartbeats to arrive again.
 */
export function startClientWatchdog(operations: OperationsService, opts: ClientWatchdogOptions): ClientWatchdog {
  const now = opts.now ?? Date.now;
  const log = opts.log ?? ((line) => console.warn(line));
  const cfg = opts.liveness;
  const since = now();
  /** The runs streams have heard turn stale, or hung: each is announced once per turn. */
  const stale = new Set<string>();
  const hung = new Set<string>();

  const lose = async (row: WatchedRow, t: number): Promise<boolean> => {
    const id = row.operation_id;
    // A heartbeat or a row may have arrived since the list was read: then nothing is wrong any more.
    const op = await operations.reader.getOperation(id);
    const seen = op?.last_seen_at == null ? null : Date.parse(op.last_seen_at);
    if (op?.status !== "running" || seen !== row.last_seen_at) return false;
    const message = lostMessage(silentMs(row, t) ?? 0, {
      epoch: op.trends.latest_epoch,
      steps: op.progress.steps_completed ?? 0,
    });
    try {
      await operations.finish(id, "failed", { error_message: message, failure_code: "lost" });
      log(`[watchdog] ${id}: marked failed (lost): ${message}`);
      return true;
    } catch (err) {
      // Finished by its trainer in the meantime: nothing to do.
      if (!(err instanceof TrainwatchError && err.code === "OPERATION_FINISHED")) throw err;
      return false;
    }
  };

  const inspect = async (row: WatchedRow, t: number): Promise<boolean> => {
    const id = row.operation_id;
    // Silence counted from this process's start at the earliest (a restart is no silence of the trainer's).
    if (isLost({ ...row, last_seen_at: Math.max(row.last_seen_at ?? 0, since) }, t, cfg)) {
      stale.delete(id);
      hung.delete(id);
      return lose(row, t);
    }
    const v = livenessOf(row, t, cfg);
    if (v === null) return false;
    if (v.stale !== stale.has(id)) {
      if (v.stale) stale.add(id);
      else stale.delete(id);
      // Turned stale: streams hear it at once (the operation now reads stale: true). Back: the write that revived it told them.
      if (v.stale) await operations.statusChanged(id);
    }
    if (v.hung !== hung.has(id)) {
      if (v.hung) {
        hung.add(id);
        await operations.statusChanged(id);
        // The reason cites the GPU (else CPU) utilisation of the run's latest system sample, when it samples.
        const sample = await operations.reader.latestSystemSample(id);
        const detail = hungDetail(v, describeUtilisation(sample, t));
        await operations.flagRaised(id, detail);
        log(`[watchdog] ${id}: ${detail.reason}`);
      } else hung.delete(id);
    }
    return false;
  };

  const check = async (): Promise<string[]> => {
    const t = now();
    const rows = await operations.reader.watchedOperations();
    const present = new Set(rows.map((r) => r.operation_id));
    for (const set of [stale, hung]) for (const id of set) if (!present.has(id)) set.delete(id);
    // Each operation on its own: one that cannot be read or failed is logged with its id, and the others are checked.
    const outcomes = await Promise.all(
      rows.map(async (row) => {
        try {
          return (await inspect(row, t)) ? row.operation_id : null;
        } catch (err) {
          log(`[watchdog] ${row.operation_id}: check failed: ${err instanceof Error ? err.message : String(err)}`);
          return null;
        }
      }),
    );
    return outcomes.filter((id): id is string => id !== null);
  };

  const loop = every(opts.intervalMs ?? watchdogPeriodMs(cfg), check, "[watchdog] client check");
  return { check, stop: loop.stop };
}
