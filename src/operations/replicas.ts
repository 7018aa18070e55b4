/**
 * What a replica on a shared database does besides serving requests. Every replica renews, a few times per lease, its
 * lease on the local trainings it runs (the ones it created with `owned`). One replica at a time, the holder of the
 * database's advisory lock, runs the jobs that must run once: the host and client watchdogs (so a silent training is
 * failed once, not once per replica), and the sweep that marks the trainings of a replica whose lease ran out (it was killed,
 * or cut off) as interrupted. Not at once: only after the lease, counted from the owner's last renewal; and a replica
 * that restarts never fails another's trainings (Dispatcher.recoverInterrupted fails only its own id's).
 */
import { TrainwatchError } from "../errors.ts";
import type { Leader, SharedStore } from "../store/store.ts";
import type { OperationsService } from "./service.ts";

/** What a replica's training ends with when its lease ran out: it names the replica and the lease. */
export const leaseLost = (owner: string, leaseMs: number) =>
  `interrupted: replica ${owner} stopped renewing its lease (${leaseMs / 1000} s): it was stopped, killed or cut off from the database`;

/** The lock that elects the replica running the once-only jobs: SharedStore.leadership hands it out. */
export type { Leader };

/** A job that runs only on the leading replica: started when this one takes the lock, stopped when it loses it. */
export interface LeaderJob {
  start(): void;
  stop(): void;
}

export interface ReplicaOptions {
  leaseMs: number;
  leader: Leader;
  /** Jobs for the leader only (the host and client watchdogs). */
  jobs?: LeaderJob[];
  /** Period of renewals, lock checks and sweeps; default a third of the lease (so two renewals may fail in a row). */
  intervalMs?: number;
  log?: (line: string) => void;
}

export interface Replica {
  /** One round now: renew the leases, check the lock, and (leading) sweep. Resolves with the operations it failed. */
  tick(): Promise<string[]>;
  readonly leading: boolean;
  /** Stops the timer and the leader's jobs, and lets the lock go. */
  stop(): Promise<void>;
}

export function startReplica(operations: OperationsService, shared: SharedStore, opts: ReplicaOptions): Replica {
  const log = opts.log ?? ((line) => console.warn(line));
  const jobs = opts.jobs ?? [];
  let leading = false;
  let stopped = false;

  const sweep = async (): Promise<string[]> => {
    const failed: string[] = [];
    for (const { operation_id: id, owner } of await shared.expiredLeases()) {
      if (owner === shared.replicaId) continue; // this replica is alive: its own renewal is late, not lost
      try {
        await operations.finish(id, "failed", { error_message: leaseLost(owner, opts.leaseMs) });
        failed.push(id);
        log(`[replica ${shared.replicaId}] ${id}: marked interrupted: replica ${owner} let its lease run out`);
      } catch (err) {
        // Finished meanwhile (its owner completed it after all): nothing to do.
        if (!(err instanceof TrainwatchError && err.code === "OPERATION_FINISHED")) throw err;
      }
    }
    return failed;
  };

  const tick = async (): Promise<string[]> => {
    if (stopped) return [];
    await shared.renewLeases();
    const lead = await opts.leader.check();
    if (lead !== leading) {
      leading = lead;
      log(
        `[replica ${shared.replicaId}] ${lead ? "leads: runs the host watchdog and the lease sweep" : "no longer leads"}`,
      );
      for (const job of jobs) lead ? job.start() : job.stop();
    }
    return leading ? sweep() : [];
  };

  let running: Promise<unknown> | null = null;
  const timer = setInterval(
    () => {
      if (running) return; // a slow database: the next tick comes soon enough
      running = tick()
        .catch((err) => console.error(`[replica ${shared.replicaId}] round failed:`, err))
        .finally(() => (running = null));
    },
    opts.intervalMs ?? Math.max(100, opts.leaseMs / 3),
  );
  (timer as { unref?: () => void }).unref?.();

  return {
    tick,
    get leading() {
      return leading;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      if (leading) for (const job of jobs) job.stop();
      leading = false;
      await opts.leader.close();
    },
  };
}
