// The Slurm executor against a real one-node cluster (.ci/slurm.sh; tests/fixtures/slurm.ts), through the real server
// (`bun run src/server.ts` with TRAINWATCH_SLURM_*): a recipe with target slurm started over REST becomes a batch job
// whose epochs arrive through the Python client (tests/fixtures/scripts/slurm_train.py, no torch: CI runs the JS
// suite before its Python venv exists); its status goes pending → running → completed, its log is readable; a job that
// dies with exit 3 is failed trainer_error; a cancel leaves the job CANCELLED and no process; two jobs on the
// whole-node partition: the second pending (Resources) until the first ends; an API restart while a job runs loses
// nothing; slurmrestd stopped while a job runs: the API serves on, a new start is a 503, and the run ends as Slurm says
// once it is back.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SlurmRestClient } from "../src/executors/slurm_rest.ts";
import { freePort, type ServerProcess, startServerProcess, until } from "./helpers.ts";
import { jobProcesses, slurmServerEnv, type TestSlurm, withSlurm } from "./fixtures/slurm.ts";

const ROOT = resolve(import.meta.dir, "..");
const SCRIPT = join(ROOT, "tests", "fixtures", "scripts", "slurm_train.py");
const SLURM_SH = join(ROOT, ".ci", "slurm.sh");
/** The system Python (readable by the job user; a pyenv shim under /root is not). */
const PYTHON = "/usr/bin/python3";
const MARK = `twslurm${process.pid}`;

withSlurm("the Slurm executor on a real cluster", (slurm: TestSlurm) => {
  const client = new SlurmRestClient({ url: slurm.url, user: slurm.user, tokenFile: slurm.tokenFile });
  const dir = mkdtempSync(join(tmpdir(), "tw-slurm-exec-"));
  const db = join(dir, "trainwatch.db");
  const port = freePort();
  let server: ServerProcess;

  const recipe = (name: string, partition: string, minutes = 5) => ({
    name,
    command: [PYTHON, SCRIPT],
    cwd: slurm.workdir,
    env: { PYTHONPATH: join(ROOT, "clients", "python") },
    params: {
      type: "object",
      properties: {
        epochs: { type: "integer", default: 3 },
        delay: { type: "number", default: 0 },
        exit_code: { type: "integer", default: 0 },
        tag: { type: "string", default: MARK },
        wait_for: { type: "string", default: "" },
      },
    },
    params_via: ["args"],
    epochs_param: "epochs",
    target: "slurm",
    cpus: 1,
    time_limit_minutes: minutes,
    slurm: { partition },
  });
  writeFileSync(
    join(dir, "recipes.json"),
    JSON.stringify({
      recipes: [recipe("train", "debug"), recipe("whole-node", "exclusive"), recipe("one-minute", "debug", 1)],
    }),
  );
  chmodSync(dir, 0o755);

  const env = {
    PORT: String(port),
    TRAINWATCH_DB: db,
    TRAINWATCH_RECIPES: join(dir, "recipes.json"),
    TRAINWATCH_LOGS_DIR: join(dir, "logs"),
    TRAINWATCH_MODELS_DIR: join(dir, "models"),
    TRAINWATCH_GPUS: "none",
    ...slurmServerEnv(slurm),
  };
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}/api/v1${path}`, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const start = async (name: string, params: Record<string, unknown>) => {
    const res = await api("POST", "/trainings", { recipe: name, params });
    expect(res.status).toBe(202);
    return res.body.data;
  };
  const epochsOf = async (id: string) =>
    (await api("GET", `/operations/${id}/metrics`)).body.data.metrics.epochs.map((e: { epoch: number }) => e.epoch);
  const op = async (id: string) => (await api("GET", `/operations/${id}`)).body.data;
  const reaches = (id: string, status: string, ms = 60_000) =>
    until(`${id} to be ${status}`, async () => ((await op(id)).status === status ? op(id) : undefined), ms, 100);
  const alive = (marker: string) => jobProcesses(slurm, marker);

  beforeAll(async () => {
    server = await startServerProcess(env, 30_000);
  });
  afterAll(async () => {
    for (const j of await client.jobs().catch(() => []))
      if (j.name.startsWith("trainwatch-") && !["COMPLETED", "FAILED", "CANCELLED"].includes(j.state))
        await client.cancel(j.id, "KILL").catch(() => {});
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a recipe with target slurm runs as a batch job: pending, then running on the node, its epochs through the Python client, then completed, its log readable", async () => {
    const started = await start("train", { epochs: 3, delay: 0.3 });
    // Read before any toMatchObject: bun's writes its asymmetric matchers into the object it is given.
    const jobId = Number(started.external_id);
    expect(started.external_id).toMatch(/^\d+$/);
    expect([started.status, started.executor, started.metadata.location]).toEqual(["pending", "slurm", "cluster"]);
    const job = await client.job(jobId);
    expect(job?.partition).toBe("debug");
    // Running from the client's first word or the poller's read, whichever comes first; the node from Slurm's.
    await reaches(started.operation_id, "running");
    const node = await until(
      "the node it runs on",
      async () => (await op(started.operation_id)).metadata.node,
      30_000,
      100,
    );
    expect(node).toBe(job!.nodes ?? (await client.job(jobId))!.nodes);
    const done = await reaches(started.operation_id, "completed");
    expect(done.failure_code).toBeNull();
    expect(await epochsOf(started.operation_id)).toEqual([0, 1, 2]);
    const logs = await api("GET", `/operations/${started.operation_id}/logs`);
    expect(logs.status).toBe(200);
    expect(logs.body.data.lines).toEqual([`started ${started.operation_id}`, "epoch 0", "epoch 1", "epoch 2"]);
  });

  test("a job that dies with exit code 3 fails trainer_error, with Slurm's word for it", async () => {
    const started = await start("train", { epochs: 1, exit_code: 3 });
    const failed = await reaches(started.operation_id, "failed");
    expect(failed.failure_code).toBe("trainer_error");
    expect(failed.error_message).toBe(`Slurm job ${started.external_id} exited with code 3`);
    const logs = await api("GET", `/operations/${started.operation_id}/logs`);
    expect(logs.body.data.lines).toContain("exiting with 3");
  });

  test("a cancel leaves the job CANCELLED and no process of it", async () => {
    const tag = `${MARK}cancel`;
    const started = await start("train", { epochs: 1000, delay: 0.2, tag });
    await reaches(started.operation_id, "running");
    await until("its process to run", () => alive(tag).length > 0, 30_000, 100);
    const res = await api("DELETE", `/operations/${started.operation_id}`);
    expect(res.status).toBe(200);
    expect(res.body.data.status).toBe("cancelled");
    const job = await until(
      "the job to be CANCELLED",
      async () => {
        const j = await client.job(Number(started.external_id));
        return j?.state === "CANCELLED" ? j : undefined;
      },
      30_000,
      100,
    );
    expect(job.state).toBe("CANCELLED");
    await until("no process of it left", () => alive(tag).length === 0, 30_000, 100);
    expect((await op(started.operation_id)).status).toBe("cancelled");
  });

  // Slurm's shortest limit is a minute, enforced on its next check (up to 30 s later): this test takes 60–100 s.
  test("a job past its time limit fails time_limit: Slurm's word refines the client's SIGTERM goodbye", async () => {
    const tag = `${MARK}timeout`;
    const started = await start("one-minute", { epochs: 100_000, delay: 0.5, tag });
    await reaches(started.operation_id, "running");
    const failed = await reaches(started.operation_id, "failed", 150_000);
    // The client's goodbye (SIGTERM at the limit) may land first; the poller then refines it from Slurm's TIMEOUT.
    const ended = await until(
      "Slurm's cause",
      async () => {
        const o = await op(started.operation_id);
        return o.failure_code === "time_limit" ? o : undefined;
      },
      60_000,
      100,
    );
    expect(ended.error_message).toBe(`Slurm job ${started.external_id} reached its time limit of 1 min`);
    expect(["terminated", "time_limit"]).toContain(failed.failure_code);
    expect((await client.job(Number(started.external_id)))?.state).toBe("TIMEOUT");
    expect((await epochsOf(started.operation_id)).length).toBeGreaterThan(10);
    await until("no process of it left", () => alive(tag).length === 0, 30_000, 100);
  }, 240_000);

  test("two jobs on the whole-node partition: the second waits pending (Resources), then runs when the first ends", async () => {
    const hold = join(slurm.workdir, `hold-${MARK}`);
    const first = await start("whole-node", { epochs: 1, wait_for: hold });
    const second = await start("whole-node", { epochs: 1 });
    await reaches(first.operation_id, "running");
    const waiting = await until(
      "the second to show why it waits",
      async () => {
        const o = await op(second.operation_id);
        return o.status === "pending" && o.pending_reason === "Resources" ? o : undefined;
      },
      30_000,
      100,
    );
    expect(waiting.queue_position).toBe(1);
    writeFileSync(hold, "");
    await reaches(first.operation_id, "completed");
    await reaches(second.operation_id, "completed");
  });

  test("an API restart while jobs run: the new server finds them again; one still running, one that ended meanwhile with Slurm's word; nothing lost", async () => {
    const holdA = join(slurm.workdir, `holdA-${MARK}`);
    const holdB = join(slurm.workdir, `holdB-${MARK}`);
    const a = await start("train", { epochs: 3, wait_for: holdA });
    const b = await start("train", { epochs: 2, wait_for: holdB, exit_code: 3 });
    await until("their epochs", async () => (await epochsOf(a.operation_id)).length === 3, 30_000, 100);
    await until("their epochs", async () => (await epochsOf(b.operation_id)).length === 2, 30_000, 100);
    await server.stop();
    // B dies (exit 3, no goodbye) while no API runs: only Slurm knows.
    writeFileSync(holdB, "");
    await until("B's job to end", () => jobProcesses(slurm, holdB).length === 0, 30_000, 100);
    server = await startServerProcess(env, 30_000);
    expect(server.output()).not.toContain("interrupted");
    // The recovery read the queue before the server listened.
    expect(await op(b.operation_id)).toMatchObject({
      status: "failed",
      failure_code: "trainer_error",
      error_message: `Slurm job ${b.external_id} exited with code 3`,
    });
    expect((await op(a.operation_id)).status).toBe("running");
    writeFileSync(holdA, "");
    await reaches(a.operation_id, "completed");
    expect(await epochsOf(a.operation_id)).toEqual([0, 1, 2]);
    expect(await epochsOf(b.operation_id)).toEqual([0, 1]);
  });

  test("slurmrestd stopped while a job runs: the API serves, the run keeps its state and its epochs, a new start is a 503 naming the URL; back: the job's end is read", async () => {
    const cluster = join(slurm.conf, "..");
    const release = join(slurm.workdir, `release-${MARK}`);
    // Two epochs, then it waits for `release` and dies with exit 3 without a goodbye: only Slurm can tell that end.
    const started = await start("train", { epochs: 2, wait_for: release, exit_code: 3 });
    await until("its epochs", async () => (await epochsOf(started.operation_id)).length === 2, 30_000, 100);
    expect(Bun.spawnSync(["bash", SLURM_SH, "stop-rest", cluster]).exitCode).toBe(0);
    try {
      const refused = await api("POST", "/trainings", { recipe: "train", params: { epochs: 1 } });
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe("SLURM_UNREACHABLE");
      expect(refused.body.error.message).toContain(slurm.url);
      await until("the outage's warning", () => server.output().includes("[slurm] cannot read the queue"), 30_000, 100);
      expect((await api("GET", "/health")).status).toBe(200);
      writeFileSync(release, "");
      await until("the job to end", () => jobProcesses(slurm, release).length === 0, 30_000, 100);
      expect((await op(started.operation_id)).status).toBe("running");
    } finally {
      expect(Bun.spawnSync(["bash", SLURM_SH, "start-rest", cluster]).exitCode).toBe(0);
    }
    const failed = await reaches(started.operation_id, "failed");
    expect([failed.failure_code, failed.error_message]).toEqual([
      "trainer_error",
      `Slurm job ${started.external_id} exited with code 3`,
    ]);
    expect(server.output().split("[slurm] cannot read the queue").length - 1).toBe(1);
    expect(server.output()).toContain("answers again");
  });
});
