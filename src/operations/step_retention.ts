/**
 * Retention of step rows (TRAINWATCH_STEP_RETENTION_DAYS, off by default): once a round (an hour by default), the step
 * rows of runs that finished more than the configured days ago are removed through Store.pruneSteps, which keeps each
 * run's epochs, trends, step judgement and step chart blocks, so its step chart still draws (from the blocks). A step
 * run stores 10–100 rows a second; its epochs and blocks are 1/100 to 1/128 of that. One process runs it: on
 * PostgreSQL the replica holding the jobs lock (src/operations/replicas.ts), on SQLite the server itself. The clock is
 * a parameter. Nothing is announced to the streams: a finished run's streams have nothing left to show.
 */
import type { Store, StepsPruned } from "../store/store.ts";
import { every } from "./periodic.ts";

export const DAY_MS = 86_400_000;

/** A round's cutoff: runs finished before it lose their step rows. */
export const retentionCutoff = (nowMs: number, days: number): number => nowMs - days * DAY_MS;

export interface StepRetentionOptions {
  /** Days after its finish that a run keeps its step rows. */
  days: number;
  /** Between rounds (default an hour); the first round comes one interval after start, not on the start-up path. */
  intervalMs?: number;
  now?: () => number;
  log?: (line: string) => void;
}

export interface StepRetention {
  /** One round now (a round already running is waited for, not doubled); resolves with what it removed. */
  round(): Promise<StepsPruned>;
  /** No round starts after it; resolves once the round in flight (if any) is over. */
  stop(): Promise<void>;
}

export function startStepRetention(store: Pick<Store, "pruneSteps">, opts: StepRetentionOptions): StepRetention {
  const now = opts.now ?? Date.now;
  const log = opts.log ?? ((line) => console.log(line));
  let running: Promise<StepsPruned> | null = null;

  const round = (): Promise<StepsPruned> => {
    running ??= (async () => {
      const t = now();
      const pruned = await store.pruneSteps(retentionCutoff(t, opts.days), t);
      if (pruned.operations.length > 0)
        log(
          `[retention] removed the step rows of ${pruned.operations.length} run(s) finished over ${opts.days} day(s) ago` +
            (pruned.partitions.length ? ` (${pruned.partitions.length} partition(s) truncated whole)` : ""),
        );
      return pruned;
    })().finally(() => (running = null));
    return running;
  };

  const loop = every(opts.intervalMs ?? 3_600_000, round, "[retention] round");
  return { round, stop: () => loop.stop() };
}
