/**
 * Slurm's job states as Trainwatch's operation statuses, one table (pure: no I/O, no clock). A queued job is `pending`
 * with Slurm's reason; the ways a job can fail each get a failure_code, so the dashboard and agents read why as data.
 */

/**
 * Why a Slurm job failed, as data: the operation's failure codes TRAINER_ERROR and SCHEDULER_FAILURES
 * (src/schemas/operation.ts), written out here because this table imports nothing; slurm.ts hands each one on as an
 * ExecutorState's FailureCode, so the compiler checks it against that list.
 */
export type SlurmFailureCode = "trainer_error" | "node_fail" | "out_of_memory" | "time_limit" | "preempted";

/** What a Slurm job's state means for its operation. */
export type SlurmOutcome =
  | { status: "pending"; reason: string | null }
  | { status: "running" }
  | { status: "completed" }
  | { status: "cancelled" }
  | { status: "failed"; failure_code: SlurmFailureCode; message: string };

/** The parts of a job the mapping reads (a SlurmJob from slurm_rest.ts fits). */
export interface SlurmJobState {
  id: number;
  state: string;
  reason: string | null;
  exit_code: number | null;
  signal: number | null;
  time_limit: number | null;
}

/** Waiting states: not started yet, or put back in the queue. */
const PENDING = new Set([
  "PENDING",
  "REQUEUED",
  "REQUEUE_HOLD",
  "REQUEUE_FED",
  "RESV_DEL_HOLD",
  "CONFIGURING",
  "POWER_UP_NODE",
]);
/**
 * Started and not final. COMPLETING is a flag that hides the base state (slurmd is still reaping the job's processes),
 * so the outcome waits for the next read; SUSPENDED and STOPPED jobs still hold their processes.
 */
const RUNNING = new Set([
  "RUNNING",
  "COMPLETING",
  "SIGNALING",
  "STAGE_OUT",
  "SUSPENDED",
  "STOPPED",
  "RESIZING",
  "UPDATE_DB",
]);

/**
 * The operation status for a Slurm job's state, or null for a state this table does not know (leave the operation as
 * it is and say so; never guess an end). FAILED is `trainer_error` as for a local script that exits non-zero or is
 * killed: the training failed, not the cluster. NODE_FAIL and BOOT_FAIL are `node_fail`, TIMEOUT and DEADLINE
 * `time_limit`, OUT_OF_MEMORY `out_of_memory` (reported only where Slurm's cgroup plugins watch memory; a limit
 * enforced by jobacct_gather's OverMemoryKill instead ends the job FAILED with signal 9), PREEMPTED `preempted`;
 * CANCELLED and REVOKED are `cancelled`.
 */
export function slurmOutcome(job: SlurmJobState): SlurmOutcome | null {
  const state = job.state;
  if (PENDING.has(state)) return { status: "pending", reason: job.reason ?? (state === "PENDING" ? null : state) };
  if (RUNNING.has(state)) return { status: "running" };
  const failed = (failure_code: SlurmFailureCode, what: string): SlurmOutcome => ({
    status: "failed",
    failure_code,
    message: `Slurm job ${job.id} ${what}`,
  });
  switch (state) {
    case "COMPLETED":
      return { status: "completed" };
    case "CANCELLED":
    case "REVOKED":
      return { status: "cancelled" };
    case "FAILED":
      if (job.signal !== null) return failed("trainer_error", `was killed by signal ${job.signal}`);
      if (job.exit_code !== null) return failed("trainer_error", `exited with code ${job.exit_code}`);
      return failed("trainer_error", `failed (${job.reason ?? "no reason given"})`);
    case "NODE_FAIL":
    case "BOOT_FAIL":
      return failed("node_fail", `ended because its node failed (${state})`);
    case "OUT_OF_MEMORY":
      return failed("out_of_memory", "ran out of memory");
    case "TIMEOUT":
    case "DEADLINE":
      return failed(
        "time_limit",
        job.time_limit === null
          ? `reached its time limit (${state})`
          : `reached its time limit of ${job.time_limit} min`,
      );
    case "PREEMPTED":
      return failed("preempted", "was preempted by another job");
    default:
      return null;
  }
}

/** The parts of a queued job that order the queue. */
export interface SlurmQueueEntry {
  id: number;
  state: string;
  partition: string;
  priority: number;
}

/**
 * The queue as one read returned it, indexed once per poll: each job by id, and each pending job's place in its
 * partition's queue, 1 for next: the pending jobs of the same partition ahead of it by Slurm's order (higher priority
 * first, then the lower job id, i.e. the earlier submit). Built in O(n log n); each lookup is O(1), so a poll's cost
 * grows with the cluster's queue once, not once per tracked job. Backfill may start a later job first; this is the
 * order Slurm's main scheduler tries.
 */
export class SlurmQueue<J extends SlurmQueueEntry> {
  private readonly byId = new Map<number, J>();
  private readonly places = new Map<number, number>();

  constructor(jobs: readonly J[]) {
    const pending = new Map<string, J[]>();
    for (const j of jobs) {
      this.byId.set(j.id, j);
      if (j.state !== "PENDING") continue;
      const list = pending.get(j.partition);
      if (list) list.push(j);
      else pending.set(j.partition, [j]);
    }
    for (const list of pending.values()) {
      list.sort((a, b) => b.priority - a.priority || a.id - b.id);
      list.forEach((j, i) => this.places.set(j.id, i + 1));
    }
  }

  /** The job `id`, when the read listed it. */
  job(id: number): J | undefined {
    return this.byId.get(id);
  }

  /** Its place in its partition's queue (1: next); null when it is not listed or not pending. */
  position(id: number): number | null {
    return this.places.get(id) ?? null;
  }
}
