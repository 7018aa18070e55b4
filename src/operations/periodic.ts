/**
 * A job run every period, one round at a time: what the leader's watchdogs and the Slurm poller share. A round still
 * running when the next period comes is skipped (the next comes soon enough); a failed round is logged and the next
 * one runs; `stop` clears the timer and waits for the round in flight, so nothing it writes lands after the stores
 * close.
 */

export interface Periodic {
  /** No round starts after it; resolves once the round in flight (if any) is over. */
  stop(): Promise<void>;
}

/** Runs `round` every `periodMs`, one at a time; a failure is logged under `label` ("[slurm] poll"). */
export function every(periodMs: number, round: () => Promise<unknown>, label: string): Periodic {
  let running: Promise<unknown> | null = null;
  const timer = setInterval(() => {
    if (running) return;
    running = round()
      .catch((err) => console.error(`${label} failed:`, err))
      .finally(() => (running = null));
  }, periodMs);
  // The loop alone keeps no process alive: a server has its listener, and `stop` ends it.
  (timer as { unref?: () => void }).unref?.();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * A job the leader starts and stops (src/operations/replicas.ts LeaderJob): `begin` starts what it runs, once while
 * started (null: nothing to run, say a setting is off); `stop` ends it and waits for its round in flight.
 */
export function leaderJob(begin: () => { stop(): Promise<void> | void } | null): {
  start(): void;
  stop(): Promise<void>;
} {
  let running: { stop(): Promise<void> | void } | null = null;
  return {
    start() {
      running ??= begin();
    },
    async stop() {
      const r = running;
      running = null;
      await r?.stop();
    },
  };
}
