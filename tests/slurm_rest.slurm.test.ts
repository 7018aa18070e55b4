// The slurmrestd client against a real one-node Slurm cluster (.ci/slurm.sh; tests/fixtures/slurm.ts): jobs submitted
// through the REST API run, fail, wait for room, get cancelled with SIGTERM first, and an outage of slurmrestd is a
// quick SLURM_UNREACHABLE that ends when it is back. Time limits (Slurm's least is 1 minute, checked every 30 s) are
// tested on a recorded TIMEOUT reply instead (tests/slurm_states.test.ts).
import { afterAll, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TrainwatchError } from "../src/errors.ts";
import { type SlurmJobSpec, SlurmRestClient } from "../src/executors/slurm_rest.ts";
import { SlurmQueue, slurmOutcome } from "../src/executors/slurm_states.ts";
import { batchScript, jobEnvironment } from "../src/executors/slurm_script.ts";
import { jobProcesses, type TestSlurm, withSlurm } from "./fixtures/slurm.ts";
import { until } from "./fixtures/poll.ts";

const SCRIPT = join(import.meta.dir, "..", ".ci", "slurm.sh");
const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"]);

withSlurm("the slurmrestd client", (slurm: TestSlurm) => {
  const token = readFileSync(slurm.tokenFile, "utf8").trim();
  const client = new SlurmRestClient({ url: slurm.url, user: slurm.user, tokenFile: slurm.tokenFile, timeoutMs: 5000 });
  const submitted: number[] = [];
  let n = 0;

  /** A job spec writing NAME.out/.err in the cluster's work folder (the job user writes, this process reads). */
  const spec = (name: string, more: Partial<SlurmJobSpec> = {}): SlurmJobSpec => {
    const base = join(slurm.workdir, `${name}-${process.pid}-${++n}`);
    return {
      name,
      current_working_directory: slurm.workdir,
      standard_output: `${base}.out`,
      standard_error: `${base}.err`,
      environment: jobEnvironment({ url: "http://127.0.0.1:1", token: null, operationId: `op_${name}` }),
      ...more,
    };
  };
  const submit = async (argv: string[], job: SlurmJobSpec) => {
    const id = await client.submit(batchScript(argv), job);
    submitted.push(id);
    return id;
  };
  const settled = (id: number) =>
    until(`Slurm job ${id} to end`, async () => {
      const job = await client.job(id);
      return job && FINAL.has(job.state) ? job : undefined;
    });
  const alive = (marker: string) => jobProcesses(slurm, marker);

  afterAll(async () => {
    // Nothing a failed test left behind keeps the node (the whole-node partition would hold up later suites).
    for (const id of submitted) await client.cancel(id, "KILL").catch(() => {});
  });

  test("slurmctld answers ping through slurmrestd", async () => {
    expect(await client.ping()).toBe(true);
  });

  test("a Python job runs to COMPLETED with its stdout in the file Trainwatch asked for", async () => {
    const job = spec("print");
    const id = await submit(
      ["python3", "-c", "import os; print(1); print(os.environ['TRAINWATCH_OPERATION_ID'])"],
      job,
    );
    const done = await settled(id);
    expect(done).toMatchObject({ state: "COMPLETED", exit_code: 0, signal: null, nodes: expect.any(String) });
    expect(done.start_time).not.toBeNull();
    expect(done.end_time).not.toBeNull();
    expect(done.stdout).toBe(job.standard_output);
    expect(readFileSync(job.standard_output, "utf8")).toBe("1\nop_print\n");
    expect(slurmOutcome(done)).toEqual({ status: "completed" });
    expect((await client.jobs()).some((j) => j.id === id)).toBe(true);
  });

  test("a job that exits 3 is FAILED with exit code 3, its stderr kept apart", async () => {
    const job = spec("exit3");
    const id = await submit(["bash", "-c", "echo bad >&2; exit 3"], job);
    const done = await settled(id);
    expect(done).toMatchObject({ state: "FAILED", exit_code: 3, signal: null });
    expect(readFileSync(job.standard_error, "utf8")).toBe("bad\n");
    expect(slurmOutcome(done)).toMatchObject({ status: "failed", failure_code: "trainer_error" });
  });

  test("a job over its memory limit is killed by SIGKILL (OverMemoryKill: no cgroups here, so not OUT_OF_MEMORY)", async () => {
    const job = spec("memory", { memory_per_node: 64 });
    const id = await submit(["python3", "-c", "import time; a = bytearray(400 * 2**20); time.sleep(60)"], job);
    const done = await settled(id);
    expect(done).toMatchObject({ state: "FAILED", signal: 9 });
    expect(readFileSync(job.standard_error, "utf8")).toContain("exceeded memory limit");
  });

  test("cancel sends SIGTERM first (the job's trap runs), ends CANCELLED and leaves no process", async () => {
    const job = spec("cancel");
    const trapped = `${job.standard_output}.trap`;
    const marker = `${31_000 + (process.pid % 1000)}`;
    const id = await submit(
      ["bash", "-c", `trap 'echo TERM > ${trapped}; exit 143' TERM; echo ready; sleep ${marker} & wait`],
      job,
    );
    await until(
      "the job's trap to be set",
      () => existsSync(job.standard_output) && readFileSync(job.standard_output, "utf8") === "ready\n",
    );
    expect(alive(marker).some((l) => l.startsWith(`sleep ${marker}`))).toBe(true);
    await client.cancel(id);
    const done = await settled(id);
    expect(done.state).toBe("CANCELLED");
    expect(slurmOutcome(done)).toEqual({ status: "cancelled" });
    expect(readFileSync(trapped, "utf8")).toBe("TERM\n");
    await until("the job's processes to be gone", () => alive(marker).length === 0);
  });

  test("on a node with room for one, a second job waits PENDING (Resources), first in the queue, then runs", async () => {
    // The job user looks for the file: a folder it may read (mkdtemp makes 0700 ones).
    const folder = mkdtempSync(join(slurm.workdir, "..", "release-"));
    chmodSync(folder, 0o755);
    const release = join(folder, "go");
    const hold = ["bash", "-c", `while [ ! -e ${release} ]; do sleep 0.1; done`];
    const first = await submit(hold, spec("first", { partition: "exclusive" }));
    await until("the first job to run", async () => (await client.job(first))?.state === "RUNNING");
    const second = await submit(["true"], spec("second", { partition: "exclusive" }));
    const waiting = await until("Slurm to give the second job its reason", async () => {
      const job = await client.job(second);
      return job?.reason ? job : undefined;
    });
    expect(waiting).toMatchObject({ state: "PENDING", reason: "Resources", start_time: null, nodes: null });
    expect(slurmOutcome(waiting)).toEqual({ status: "pending", reason: "Resources" });
    expect(new SlurmQueue(await client.jobs()).position(second)).toBe(1);
    writeFileSync(release, "");
    expect((await settled(first)).state).toBe("COMPLETED");
    expect((await settled(second)).state).toBe("COMPLETED");
  });

  test("Slurm's refusal comes back as SLURM_REFUSED with Slurm's words, and never the token", async () => {
    const err = await client
      .submit(batchScript(["true"]), spec("refused", { partition: "no-such-partition" }))
      .catch((e) => e);
    expect(err).toBeInstanceOf(TrainwatchError);
    expect(err.code).toBe("SLURM_REFUSED");
    expect(err.message).toContain("Invalid partition name specified");
    expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain(token);
  });

  test("a job Slurm does not know reads as null", async () => {
    expect(await client.job(999_999)).toBeNull();
  });

  test("the token file is re-read when it changes", async () => {
    const file = join(mkdtempSync(join(slurm.workdir, "..", "token-")), "token");
    writeFileSync(file, "not-a-token\n");
    utimesSync(file, 1_000, 1_000);
    const own = new SlurmRestClient({ url: slurm.url, user: slurm.user, tokenFile: file });
    const refused = await own.ping().catch((e) => e);
    expect(refused).toMatchObject({ code: "SLURM_REFUSED" });
    expect(refused.message).not.toContain("not-a-token");
    // `scontrol token`'s own output, SLURM_JWT=..., works as is.
    writeFileSync(file, `SLURM_JWT=${token}\n`);
    utimesSync(file, 2_000, 2_000);
    expect(await own.ping()).toBe(true);
  });

  test("slurmrestd stopped: SLURM_UNREACHABLE at once; started again: answers", async () => {
    const dir = join(slurm.conf, "..");
    expect(Bun.spawnSync(["bash", SCRIPT, "stop-rest", dir]).exitCode).toBe(0);
    try {
      const quick = new SlurmRestClient({ url: slurm.url, user: slurm.user, token, timeoutMs: 1000 });
      const err = await quick.ping().catch((e) => e);
      expect(err).toBeInstanceOf(TrainwatchError);
      expect(err.code).toBe("SLURM_UNREACHABLE");
      expect(err.status).toBe(503);
      expect(JSON.stringify({ m: err.message, d: err.details })).not.toContain(token);
    } finally {
      const start = Bun.spawnSync(["bash", SCRIPT, "start-rest", dir], { stderr: "pipe" });
      expect(start.stderr.toString()).toBe("");
      expect(start.exitCode).toBe(0);
    }
    expect(await client.ping()).toBe(true);
  });
});
