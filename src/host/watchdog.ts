/**
 * Liveness of host trainings, in the API: an operation running on a GPU host that
 * sends neither epochs nor heartbeats for TRAINWATCH_HOST_TIMEOUT (default 60 s)
 * becomes failed with "training host unreachable". The store revives it to running
 * when the host relays again.
 */
import { TrainwatchError } from "../errors.ts";
import type { Hub } from "../hub.ts";
import { HOST_UNREACHABLE } from "../store/store.ts";

export interface Watchdog {
  /** Fails the silent operations now; returns their ids. */
  check(): string[];
  stop(): void;
}

/**
 * Checks every timeout/4 (50 ms … 5 s). Silence is only counted while this process
 * is up: right after an API restart every host gets a full timeout to reach it again.
 */
export function startHostWatchdog(
  hub: Hub,
  opts: { timeoutMs: number; intervalMs?: number; now?: () => number; log?: (line: string) => void },
): Watchdog {
  const now = opts.now ?? Date.now;
  const log = opts.log ?? ((line) => console.warn(line));
  const since = now();
  const check = (): string[] => {
    const t = now();
    if (t - since < opts.timeoutMs) return [];
    const failed: string[] = [];
    for (const id of hub.store.staleHostOperations(t - opts.timeoutMs)) {
      try {
        hub.finish(id, "failed", { error_message: HOST_UNREACHABLE });
        failed.push(id);
        const host = hub.store.getOperation(id)?.metadata.host ?? "its host";
        log(`[watchdog] ${id}: no epoch or heartbeat from ${host} for ${opts.timeoutMs / 1000} s; marked failed (${HOST_UNREACHABLE})`);
      } catch (err) {
        // Finished by a relay in the meantime: nothing to do.
        if (!(err instanceof TrainwatchError && err.code === "OPERATION_FINISHED")) console.error(`[watchdog] ${id}:`, err);
      }
    }
    return failed;
  };
  const timer = setInterval(check, opts.intervalMs ?? Math.min(5000, Math.max(50, opts.timeoutMs / 4)));
  return { check, stop: () => clearInterval(timer) };
}
