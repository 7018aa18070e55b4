// Slurm's replies read as Trainwatch reads them: the recorded v0.0.38 replies of the real one-node cluster
// (tests/fixtures/slurm/*.json, from .ci/slurm.sh) through toJob, and every state through the one mapping table.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type RawJob, toJob } from "../src/executors/slurm_rest.ts";
import { SlurmQueue, slurmOutcome } from "../src/executors/slurm_states.ts";

const fixture = (name: string) =>
  JSON.parse(readFileSync(join(import.meta.dir, "fixtures", "slurm", `${name}.json`), "utf8")) as {
    jobs: RawJob[];
  };
const recorded = (name: string) => toJob(fixture(name).jobs[0] as RawJob);

describe("a recorded Slurm job as Trainwatch reads it", () => {
  test("a queued job behind one holding the whole node is pending with reason Resources", () => {
    const job = recorded("job_pending_resources");
    expect(job).toMatchObject({ state: "PENDING", reason: "Resources", start_time: null, end_time: null, nodes: null });
    expect(slurmOutcome(job)).toEqual({ status: "pending", reason: "Resources" });
  });

  test("a running job has its node and start, and no end yet (Slurm's end_time is only its limit)", () => {
    const job = recorded("job_running");
    expect(job).toMatchObject({ state: "RUNNING", reason: null, nodes: "vm", end_time: null, exit_code: null });
    expect(job.start_time).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(job.stdout).toEndWith("/first.out");
    expect(job.stderr).toEndWith("/first.err");
    expect(slurmOutcome(job)).toEqual({ status: "running" });
  });

  test("a completed job exited 0 and is completed", () => {
    const job = recorded("job_completed");
    expect(job).toMatchObject({ state: "COMPLETED", exit_code: 0, signal: null });
    expect(job.end_time).not.toBeNull();
    expect(slurmOutcome(job)).toEqual({ status: "completed" });
  });

  test("exit 3 reads as exit code 3 (v0.0.38's exit_code is the raw wait status, 768) and a trainer_error", () => {
    const job = recorded("job_failed_exit3");
    expect(fixture("job_failed_exit3").jobs[0]?.exit_code).toBe(768);
    expect(job).toMatchObject({ state: "FAILED", reason: "NonZeroExitCode", exit_code: 3, signal: null });
    expect(slurmOutcome(job)).toEqual({
      status: "failed",
      failure_code: "trainer_error",
      message: `Slurm job ${job.id} exited with code 3`,
    });
  });

  test("a job over its memory limit without cgroups (OverMemoryKill) is FAILED by signal 9, not OUT_OF_MEMORY", () => {
    const job = recorded("job_memory_limit");
    expect(job).toMatchObject({ state: "FAILED", exit_code: null, signal: 9 });
    expect(slurmOutcome(job)).toMatchObject({ status: "failed", failure_code: "trainer_error" });
  });

  test("a job past its time limit is TIMEOUT (SIGTERM) and fails with time_limit", () => {
    const job = recorded("job_timeout");
    expect(job).toMatchObject({ state: "TIMEOUT", reason: "TimeLimit", signal: 15, time_limit: 1 });
    expect(slurmOutcome(job)).toEqual({
      status: "failed",
      failure_code: "time_limit",
      message: `Slurm job ${job.id} reached its time limit of 1 min`,
    });
  });

  test("a cancelled job is cancelled, whatever its trap exited with", () => {
    const job = recorded("job_cancelled");
    expect(job).toMatchObject({ state: "CANCELLED", exit_code: 143 });
    expect(slurmOutcome(job)).toEqual({ status: "cancelled" });
  });

  test("the queue's recorded jobs all map, and the pending one is first in its partition", () => {
    const jobs = fixture("jobs").jobs.map(toJob);
    expect(jobs.length).toBeGreaterThan(5);
    for (const j of jobs) expect(slurmOutcome(j)).not.toBeNull();
    const pending = jobs.filter((j) => j.state === "PENDING");
    expect(pending.map((j) => new SlurmQueue(jobs).position(j.id))).toEqual(pending.map((_, i) => i + 1));
  });
});

describe("Slurm states without a recording here (no cgroups, no preemption, one node)", () => {
  const base = { id: 7, reason: null, exit_code: null, signal: null, time_limit: 60 };
  test.each([
    ["OUT_OF_MEMORY", "out_of_memory"],
    ["NODE_FAIL", "node_fail"],
    ["BOOT_FAIL", "node_fail"],
    ["DEADLINE", "time_limit"],
    ["PREEMPTED", "preempted"],
  ] as const)("%s fails with %s", (state, code) => {
    expect(slurmOutcome({ ...base, state })).toMatchObject({ status: "failed", failure_code: code });
  });

  test("states that still hold processes are running: COMPLETING hides the outcome until slurmd has reaped them", () => {
    for (const state of ["COMPLETING", "SUSPENDED", "SIGNALING", "STAGE_OUT"])
      expect(slurmOutcome({ ...base, state })).toEqual({ status: "running" });
  });

  test("a requeued or configuring job waits, with Slurm's reason or else the state itself", () => {
    expect(slurmOutcome({ ...base, state: "REQUEUED" })).toEqual({ status: "pending", reason: "REQUEUED" });
    expect(slurmOutcome({ ...base, state: "PENDING", reason: "QOSMaxGpuPerUser" })).toEqual({
      status: "pending",
      reason: "QOSMaxGpuPerUser",
    });
  });

  test("a state the table does not know changes nothing", () => {
    expect(slurmOutcome({ ...base, state: "SOMETHING_NEW" })).toBeNull();
  });
});

describe("a pending job's queue position", () => {
  const job = (id: number, priority: number, state = "PENDING", partition = "debug") => ({
    id,
    priority,
    state,
    partition,
  });
  test("counts the pending jobs of its partition ahead of it by priority, then by id", () => {
    const jobs = [job(1, 10, "RUNNING"), job(2, 5), job(3, 9), job(4, 5), job(5, 100, "PENDING", "gpu")];
    expect(new SlurmQueue(jobs).position(3)).toBe(1);
    expect(new SlurmQueue(jobs).position(2)).toBe(2);
    expect(new SlurmQueue(jobs).position(4)).toBe(3);
    expect(new SlurmQueue(jobs).position(5)).toBe(1);
  });
  test("one index serves every job of a large queue, each partition ordered on its own", () => {
    const jobs = Array.from({ length: 3000 }, (_, i) =>
      job(i + 1, i % 7, i % 2 === 0 ? "PENDING" : "RUNNING", i % 3 === 0 ? "gpu" : "debug"),
    );
    const queue = new SlurmQueue(jobs);
    for (const j of jobs.filter((_, i) => i % 97 === 0)) {
      const ahead = jobs.filter(
        (o) =>
          o.state === "PENDING" &&
          o.partition === j.partition &&
          (o.priority > j.priority || (o.priority === j.priority && o.id < j.id)),
      ).length;
      expect(queue.position(j.id)).toBe(j.state === "PENDING" ? ahead + 1 : null);
      expect(queue.job(j.id)).toBe(j);
    }
  });

  test("is null for a running or unknown job", () => {
    expect(new SlurmQueue([job(1, 1, "RUNNING")]).position(1)).toBeNull();
    expect(new SlurmQueue([]).position(9)).toBeNull();
  });
});
