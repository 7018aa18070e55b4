// The Slurm executor without a cluster (issue 25): a fake slurmrestd (SlurmApi) records what is submitted and returns
// the queue a test sets, so the batch job built from a recipe, the poller's mapping of Slurm's states onto operations
// (one queue read per round for all of them), what an outage does, and the 503 of a submission nobody answers are
// checked exactly. The real cluster runs the same executor in tests/slurm_executor.slurm.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { createApp } from "../src/app.ts";
import { TrainwatchClient } from "../src/client/api.ts";
import { loadConfig } from "../src/config.ts";
import { TrainwatchError } from "../src/errors.ts";
import { SlurmExecutor, type SlurmApi } from "../src/executors/slurm.ts";
import { FileFollower, TAIL_BYTES, tailFile } from "../src/executors/file_tail.ts";
import type { SlurmJob, SlurmJobSpec, SlurmSignal } from "../src/executors/slurm_rest.ts";
import { OperationsService } from "../src/operations/service.ts";
import { RecipeBook } from "../src/recipes/book.ts";
import type { Recipe } from "../src/recipes/recipe.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { Dispatcher } from "../src/trainer/dispatcher.ts";
import { LocalTrainer } from "../src/trainer/local.ts";
import { feedEventStream } from "../src/script_trainings/log_stream.ts";
import { json, req } from "./helpers.ts";
import { SseReader } from "./sse.ts";
import { inProcessFetch, memoryClient } from "./fixtures/mcp.ts";

/** A slurmrestd that answers from `queue`, or throws `down` while set. */
class FakeSlurm implements SlurmApi {
  queue: SlurmJob[] = [];
  submitted: { script: string; job: SlurmJobSpec }[] = [];
  cancelled: number[] = [];
  /** The signal each cancel named (undefined: a plain DELETE, as scancel). */
  signals: (SlurmSignal | undefined)[] = [];
  jobsCalls = 0;
  down: TrainwatchError | null = null;
  private next = 100;

  async submit(script: string, job: SlurmJobSpec): Promise<number> {
    if (this.down) throw this.down;
    this.submitted.push({ script, job });
    return this.next++;
  }
  async jobs(): Promise<SlurmJob[]> {
    this.jobsCalls++;
    if (this.down) throw this.down;
    return this.queue;
  }
  async job(id: number): Promise<SlurmJob | null> {
    if (this.down) throw this.down;
    return this.queue.find((j) => j.id === id) ?? null;
  }
  async cancel(id: number, signal?: SlurmSignal): Promise<void> {
    if (this.down) throw this.down;
    this.cancelled.push(id);
    this.signals.push(signal);
  }
}

const job = (id: number, state: string, more: Partial<SlurmJob> = {}): SlurmJob => ({
  id,
  name: "trainwatch-r",
  user: "u",
  partition: "debug",
  state,
  reason: null,
  exit_code: null,
  signal: null,
  nodes: null,
  priority: 1,
  submit_time: null,
  start_time: null,
  end_time: null,
  time_limit: null,
  working_directory: null,
  stdout: null,
  stderr: null,
  ...more,
});

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(opts: { registered?: boolean; via?: ("args" | "file")[] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "tw-slurm-exec-"));
  const recipe: Recipe = {
    name: "r",
    command: ["python3", "train.py"],
    cwd: dir,
    env: { PATH: "/opt/venv/bin:/usr/bin:/bin" },
    params: { type: "object", properties: { epochs: { type: "integer", default: 3 }, tag: { type: "string" } } },
    params_via: opts.via ?? ["args"],
    epochs_param: "epochs",
    target: "slurm",
    gpus: 1,
    cpus: 2,
    memory_mb: 512,
    time_limit_minutes: 5,
    slurm: { partition: "exclusive", account: "lab", gres: "shard:1" },
  };
  const book = new RecipeBook([recipe], null);
  const store = new SqliteStore(":memory:", loadConfig({}).trends);
  const operations = new OperationsService(store);
  const api = new FakeSlurm();
  const warnings: string[] = [];
  const executor = new SlurmExecutor({
    api,
    url: "http://slurm.test:6820",
    recipes: book,
    operations,
    env: (operation_id) => ({ api_url: "http://api.test:8000", token: "tok", operation_id }),
    logDir: null,
    log: (line) => warnings.push(line),
    stream: (feed, signal) => feedEventStream(feed, signal, 20),
  });
  const config = loadConfig({ TRAINWATCH_GPUS: "none" });
  const local = new LocalTrainer(operations, { maxConcurrent: 1, modelsDir: join(dir, "models"), gpus: [] });
  const trainers = new Dispatcher(operations, local, null, config, null);
  if (opts.registered !== false) trainers.executors.register(executor);
  const app = createApp({ store, operations, config, trainers });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => store.close());
  const start = async (params: Record<string, unknown> = {}) => {
    const res = await json(app.handle(req("POST", "/api/v1/trainings", { recipe: "r", target: "slurm", params })));
    return res;
  };
  const op = async (id: string) => (await store.getOperation(id))!;
  return { dir, api, executor, operations, trainers, app, start, op, warnings };
}

test("a recipe with target slurm becomes one batch job: its argv quoted, resources, slurm settings and the run's environment", async () => {
  const s = setup();
  const res = await s.start({ epochs: 4, tag: "it's; rm -rf /" });
  expect(res.status).toBe(202);
  const op = res.body.data;
  expect(op).toMatchObject({ status: "pending", executor: "slurm", external_id: "100" });
  expect(op.metadata).toMatchObject({ location: "cluster", recipe: "r", command: expect.any(Array) });
  expect(s.api.submitted).toHaveLength(1);
  const { script, job: spec } = s.api.submitted[0]!;
  expect(script).toBe(`#!/bin/bash\nexec 'python3' 'train.py' '--epochs=4' '--tag=it'\\''s; rm -rf /'\n`);
  expect(spec).toMatchObject({
    partition: "exclusive",
    account: "lab",
    cpus_per_task: 2,
    memory_per_node: 512,
    time_limit: 5,
    gres: "gpu:1,shard:1",
    current_working_directory: s.dir,
    standard_output: join(s.dir, `trainwatch-${op.operation_id}.out`),
    standard_error: join(s.dir, `trainwatch-${op.operation_id}.out`),
  });
  expect(spec.environment).toEqual({
    PATH: "/opt/venv/bin:/usr/bin:/bin",
    PYTHONUNBUFFERED: "1",
    TRAINWATCH_URL: "http://api.test:8000",
    TRAINWATCH_TOKEN: "tok",
    TRAINWATCH_OPERATION_ID: op.operation_id,
  });
});

test("a recipe taking a params file: the job's script writes it on the node; the API writes nothing", async () => {
  const s = setup({ via: ["file"] });
  const res = await s.start({ epochs: 2, tag: "x" });
  expect(res.status).toBe(202);
  const { script, job: spec } = s.api.submitted[0]!;
  expect(script).toContain(`printf '%s' '{\n  "epochs": 2,\n  "tag": "x"\n}\n' > "$TRAINWATCH_PARAMS"`);
  expect(script).toEndWith("exec 'python3' 'train.py'\n");
  expect(spec.environment.TRAINWATCH_PARAMS).toBeUndefined();
  expect(readdirSync(s.dir)).toEqual([]);
});

test("a submission slurmrestd does not answer is a 503 naming its URL, and leaves no operation", async () => {
  const s = setup();
  s.api.down = new TrainwatchError(
    "SLURM_UNREACHABLE",
    "slurmrestd at http://slurm.test:6820 is unreachable (x): refused",
    {
      url: "http://slurm.test:6820",
    },
  );
  const res = await s.start();
  expect(res.status).toBe(503);
  expect(res.body.error.code).toBe("SLURM_UNREACHABLE");
  expect(res.body.error.message).toContain("http://slurm.test:6820");
  const list = await json(s.app.handle(req("GET", "/api/v1/operations")));
  expect(list.body.data.items ?? list.body.data).toHaveLength(0);
});

test("a submit failing for an unknown reason is a generic 500 (no path, no message), and leaves no operation", async () => {
  const s = setup();
  s.api.submit = async () => {
    throw new Error("EACCES: permission denied, open '/secret/dir/params.json'");
  };
  const res = await s.start();
  expect(res.status).toBe(500);
  expect(res.body.error.code).toBe("INTERNAL_ERROR");
  expect(JSON.stringify(res.body)).not.toContain("/secret");
  const list = await json(s.app.handle(req("GET", "/api/v1/operations")));
  expect(list.body.data.items ?? list.body.data).toHaveLength(0);
});

test("once Slurm took the job, a failure to record its id keeps the operation: its job is not orphaned", async () => {
  const s = setup();
  s.operations.setExternalId = async () => {
    throw new Error("database went away");
  };
  const res = await s.start();
  expect(res.status).toBe(500);
  expect(s.api.submitted).toHaveLength(1);
  const list = await json(s.app.handle(req("GET", "/api/v1/operations")));
  const items = list.body.data.items ?? list.body.data;
  expect(items).toHaveLength(1);
  expect(items[0]).toMatchObject({ status: "pending", executor: "slurm", metadata: { command: expect.any(Array) } });
});

test("MCP's start_training with slurmrestd down: SLURM_UNREACHABLE with what a model can do next", async () => {
  const s = setup();
  s.api.down = new TrainwatchError("SLURM_UNREACHABLE", "slurmrestd at http://slurm.test:6820 is unreachable (x)", {
    url: "http://slurm.test:6820",
  });
  const mcp = await memoryClient(new TrainwatchClient({ baseUrl: "http://localhost", fetch: inProcessFetch(s.app) }));
  cleanups.push(() => mcp.close());
  const res = (await mcp.callTool({
    name: "start_training",
    arguments: { recipe: "r", target: "slurm" },
  })) as CallToolResult;
  expect(res.isError).toBe(true);
  const text = (res.content[0] as { text: string }).text;
  expect(text).toStartWith("SLURM_UNREACHABLE: slurmrestd at http://slurm.test:6820 is unreachable");
  expect(text).toContain("retry later, or start the recipe with another target list_recipes offers");
});

test("one queue read per round maps every Slurm state onto its operation", async () => {
  const s = setup();
  const ids: string[] = [];
  for (let i = 0; i < 9; i++) ids.push((await s.start()).body.data.operation_id);
  // Job ids 100..108 in submit order.
  s.api.queue = [
    job(100, "PENDING", { reason: "Resources" }),
    job(101, "PENDING", { reason: "Priority" }),
    job(102, "RUNNING", { nodes: "node1" }),
    job(103, "COMPLETED", { exit_code: 0 }),
    job(104, "FAILED", { exit_code: 3 }),
    job(105, "OUT_OF_MEMORY"),
    job(106, "TIMEOUT", { time_limit: 5 }),
    job(107, "NODE_FAIL"),
    job(108, "CANCELLED"),
  ];
  const changed = await s.executor.poll();
  expect(s.api.jobsCalls).toBe(1);
  expect(Object.keys(changed)).toHaveLength(9);
  const got = await Promise.all(ids.map(s.op));
  expect(got.map((o) => [o.status, o.failure_code])).toEqual([
    ["pending", null],
    ["pending", null],
    ["running", null],
    ["completed", null],
    ["failed", "trainer_error"],
    ["failed", "out_of_memory"],
    ["failed", "time_limit"],
    ["failed", "node_fail"],
    ["cancelled", null],
  ]);
  expect([got[0]!.pending_reason, got[0]!.queue_position]).toEqual(["Resources", 1]);
  expect([got[1]!.pending_reason, got[1]!.queue_position]).toEqual(["Priority", 2]);
  expect(got[2]!.metadata.node).toBe("node1");
  expect(got[4]!.error_message).toBe("Slurm job 104 exited with code 3");
  expect(got[6]!.error_message).toBe("Slurm job 106 reached its time limit of 5 min");

  // The next round reads only what is unfinished, and writes nothing that did not change.
  expect(await s.executor.poll()).toEqual({});
  expect(s.api.jobsCalls).toBe(2);
  // The first job starts: running on its node; the second moves up.
  s.api.queue[0] = job(100, "RUNNING", { nodes: "node1" });
  expect(await s.executor.poll()).toEqual({ [ids[0]!]: "running", [ids[1]!]: "pending" });
  expect((await s.op(ids[1]!)).queue_position).toBe(1);
});

test("PREEMPTED fails preempted; a requeued job reads pending again", async () => {
  const s = setup();
  const a = (await s.start()).body.data.operation_id;
  const b = (await s.start()).body.data.operation_id;
  s.api.queue = [job(100, "PREEMPTED"), job(101, "REQUEUED")];
  await s.executor.poll();
  expect(await s.op(a)).toMatchObject({ status: "failed", failure_code: "preempted" });
  expect(await s.op(b)).toMatchObject({ status: "pending", pending_reason: "REQUEUED" });
});

test("what the trainer reported first stands: a run its client completed is not finished again by the poller", async () => {
  const s = setup();
  const id = (await s.start()).body.data.operation_id;
  await s.operations.markStarted(id);
  await s.operations.finish(id, "failed", { error_message: "stopped by SIGTERM", failure_code: "terminated" });
  s.api.queue = [job(100, "CANCELLED")];
  expect(await s.executor.poll()).toEqual({});
  expect(await s.op(id)).toMatchObject({ status: "failed", failure_code: "terminated" });
});

test("Slurm's time limit refines the client's SIGTERM goodbye: failed terminated becomes time_limit, its end time kept", async () => {
  const s = setup();
  const id = (await s.start()).body.data.operation_id;
  s.api.queue = [job(100, "RUNNING", { nodes: "n" })];
  await s.executor.poll();
  // Slurm signals at the time limit: the client's goodbye lands while the job still reads running (KillWait).
  await s.operations.finish(id, "failed", { error_message: "stopped by SIGTERM", failure_code: "terminated" });
  const ended = (await s.op(id)).completed_at;
  expect(await s.executor.poll()).toEqual({});
  expect(await s.op(id)).toMatchObject({ status: "failed", failure_code: "terminated" });
  s.api.queue = [job(100, "TIMEOUT", { time_limit: 1 })];
  expect(await s.executor.poll()).toEqual({ [id]: "finished" });
  expect(await s.op(id)).toMatchObject({
    status: "failed",
    failure_code: "time_limit",
    error_message: "Slurm job 100 reached its time limit of 1 min",
    completed_at: ended,
  });
  // Settled once: later polls read nothing more about it.
  expect(await s.executor.poll()).toEqual({});
});

test("only a scheduler's cause refines a goodbye: a cancelled job or a client's own failure stays as the client said", async () => {
  const s = setup();
  const a = (await s.start()).body.data.operation_id;
  const b = (await s.start()).body.data.operation_id;
  s.api.queue = [job(100, "RUNNING"), job(101, "RUNNING")];
  await s.executor.poll();
  await s.operations.finish(a, "failed", { error_message: "stopped by SIGTERM", failure_code: "terminated" });
  await s.operations.finish(b, "failed", { error_message: "ValueError: bad", failure_code: "trainer_error" });
  s.api.queue = [job(100, "CANCELLED"), job(101, "OUT_OF_MEMORY")];
  expect(await s.executor.poll()).toEqual({});
  expect(await s.op(a)).toMatchObject({ failure_code: "terminated", error_message: "stopped by SIGTERM" });
  expect(await s.op(b)).toMatchObject({ failure_code: "trainer_error", error_message: "ValueError: bad" });
});

test("a job Slurm no longer knows (ended past MinJobAge while no API polled) fails lost, and its trainer can revive it", async () => {
  const s = setup();
  const id = (await s.start()).body.data.operation_id;
  s.api.queue = [job(100, "RUNNING")];
  await s.executor.poll();
  s.api.queue = [];
  expect(await s.executor.poll()).toEqual({ [id]: "finished" });
  const op = await s.op(id);
  expect(op).toMatchObject({ status: "failed", failure_code: "lost" });
  expect(op.error_message).toContain("Slurm no longer knows job 100");
  const res = await json(s.app.handle(req("POST", `/api/v1/operations/${id}/heartbeat`, {})));
  expect(res.status).toBe(200);
  expect((await s.op(id)).status).toBe("running");
});

test("slurmrestd failing while one job is asked for alone keeps every state, as an outage", async () => {
  const s = setup();
  const id = (await s.start()).body.data.operation_id;
  s.api.queue = [job(100, "RUNNING")];
  await s.executor.poll();
  s.api.queue = [];
  const down = new TrainwatchError("SLURM_UNREACHABLE", "slurmrestd at http://slurm.test:6820 is unreachable");
  s.api.job = async () => {
    throw down;
  };
  expect(await s.executor.poll()).toEqual({});
  expect((await s.op(id)).status).toBe("running");
  expect(s.warnings).toHaveLength(1);
});

test("slurmrestd down: operations keep their state, one warning per outage, and the next answer is applied", async () => {
  const s = setup();
  const id = (await s.start()).body.data.operation_id;
  s.api.queue = [job(100, "RUNNING", { nodes: "n" })];
  await s.executor.poll();
  s.api.down = new TrainwatchError("SLURM_UNREACHABLE", "slurmrestd at http://slurm.test:6820 is unreachable");
  expect(await s.executor.poll()).toEqual({});
  expect(await s.executor.poll()).toEqual({});
  expect((await s.op(id)).status).toBe("running");
  expect(s.warnings).toHaveLength(1);
  expect(s.warnings[0]).toContain("http://slurm.test:6820");
  expect(s.executor.describe()).toMatchObject({ reachable: false });
  // The public /health shows the outage, under the executor's name.
  const health = await json(s.app.handle(req("GET", "/api/v1/health")));
  expect(health.body.data.trainers.executors.slurm).toMatchObject({
    url: "http://slurm.test:6820",
    reachable: false,
    outage: expect.stringContaining("unreachable"),
  });
  s.api.down = null;
  s.api.queue = [job(100, "COMPLETED", { exit_code: 0 })];
  expect(await s.executor.poll()).toEqual({ [id]: "finished" });
  expect(s.warnings).toHaveLength(2);
  expect((await s.op(id)).status).toBe("completed");
});

test("a cancel is one plain DELETE of the job (SIGTERM, then SIGKILL after KillWait, as scancel)", async () => {
  const s = setup();
  const id = (await s.start()).body.data.operation_id;
  const res = await json(s.app.handle(req("DELETE", `/api/v1/operations/${id}`)));
  expect(res.status).toBe(200);
  expect(res.body.data.status).toBe("cancelled");
  expect(s.api.cancelled).toEqual([100]);
  // No signal named: Slurm sends SIGTERM, then SIGKILL after KillWait (a named signal would only send that one).
  expect(s.api.signals).toEqual([undefined]);
});

test("a cancel slurmrestd does not take is owed: the poller retries it until Slurm takes it, and the note says so", async () => {
  const s = setup();
  const id = (await s.start()).body.data.operation_id;
  s.api.down = new TrainwatchError("SLURM_UNREACHABLE", "slurmrestd at http://slurm.test:6820 is unreachable");
  const res = await json(s.app.handle(req("DELETE", `/api/v1/operations/${id}`)));
  expect(res.status).toBe(200);
  expect(res.body.data.status).toBe("cancelled");
  expect(res.body.data.metadata.cancel).toMatchObject({
    owed: 100,
    slurm: expect.stringContaining("not cancelled yet"),
  });
  // Still down: still owed.
  await s.executor.poll();
  expect((await s.op(id)).metadata.cancel).toMatchObject({ owed: 100 });
  s.api.down = null;
  await s.executor.poll();
  expect(s.api.cancelled).toEqual([100]);
  expect((await s.op(id)).metadata.cancel).toEqual({
    slurm: "job 100 cancelled (Slurm could not be told at once; Trainwatch retried)",
  });
  // Paid once: the next poll asks nothing more.
  await s.executor.poll();
  expect(s.api.cancelled).toEqual([100]);
});

test("a cancel on a server without the operation's executor says nothing was stopped, and the executor pays it once configured", async () => {
  const s = setup({ registered: false });
  const created = await s.operations.createOperation({
    operation_type: "training",
    status: "pending",
    executor: "slurm",
    metadata: { location: "cluster", kind: "script", recipe: "r", params: {} },
  });
  const id = created.operation_id;
  await s.operations.setExternalId(id, "100");
  const res = await json(s.app.handle(req("DELETE", `/api/v1/operations/${id}`)));
  expect(res.status).toBe(200);
  expect(res.body.data.status).toBe("cancelled");
  expect(res.body.data.metadata.cancel).toMatchObject({ owed: "100" });
  expect(res.body.data.metadata.cancel.slurm).toContain("no slurm executor is configured on this server");
  expect(res.body.data.metadata.cancel.slurm).toContain("TRAINWATCH_SLURM_URL");
  // The API restarts with Slurm configured again: its poller cancels the job.
  s.trainers.executors.register(s.executor);
  await s.executor.poll();
  expect(s.api.cancelled).toEqual([100]);
  expect((await s.op(id)).metadata.cancel).not.toHaveProperty("owed");
});

test("the log is the tail of the job's output file: none while it waits, a 404 saying why once it runs without one", async () => {
  const s = setup();
  const id = (await s.start()).body.data.operation_id;
  const waiting = await json(s.app.handle(req("GET", `/api/v1/operations/${id}/logs`)));
  expect(waiting.status).toBe(200);
  expect(waiting.body.data).toMatchObject({ lines: [], running: true });
  s.api.queue = [job(100, "RUNNING", { nodes: "n" })];
  await s.executor.poll();
  const missing = await json(s.app.handle(req("GET", `/api/v1/operations/${id}/logs`)));
  expect(missing.status).toBe(404);
  expect(missing.body.error.message).toContain("TRAINWATCH_SLURM_LOG_DIR");
  writeFileSync(join(s.dir, `trainwatch-${id}.out`), "a\nb\nc\n");
  const res = await json(s.app.handle(req("GET", `/api/v1/operations/${id}/logs?tail=2`)));
  expect(res.status).toBe(200);
  expect(res.body.data).toMatchObject({ lines: ["b", "c"], truncated: true, running: true });
});

test("the log is read from the output path recorded at submit: a recipe renamed since changes nothing", async () => {
  const s = setup();
  const id = (await s.start()).body.data.operation_id;
  const output = join(s.dir, `trainwatch-${id}.out`);
  expect((await s.op(id)).metadata.output).toBe(output);
  writeFileSync(output, "a\nb\n");
  await s.operations.mergeMetadata(id, { recipe: "renamed-since" });
  const res = await json(s.app.handle(req("GET", `/api/v1/operations/${id}/logs`)));
  expect(res.status).toBe(200);
  expect(res.body.data.lines).toEqual(["a", "b"]);
  // The key is the server's: a client registering a run cannot point the API at another file.
  const registered = await json(
    s.app.handle(
      req("POST", "/api/v1/operations", { operation_type: "training", metadata: { output: "/etc/passwd" } }),
    ),
  );
  expect(registered.status).toBe(400);
  expect(registered.body.error.details.field).toBe("body.metadata.output");
});

test("tailFile reads only the end of a long file: its first partial line dropped", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tw-tail-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "big.out");
  const line = "x".repeat(99);
  writeFileSync(path, `${Array.from({ length: 20_000 }, (_, i) => `${i}${line}`).join("\n")}\n`);
  const { lines, truncated } = await tailFile(path, 3);
  expect(truncated).toBe(true);
  expect(lines).toEqual([`19997${line}`, `19998${line}`, `19999${line}`]);
});

describe("FileFollower", () => {
  const file = () => {
    const dir = mkdtempSync(join(tmpdir(), "tw-follow-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return join(dir, "job.out");
  };

  test("a character split between two reads arrives whole", async () => {
    const path = file();
    const bytes = Buffer.from("█ 50%\n", "utf8");
    writeFileSync(path, bytes.subarray(0, 1));
    const f = new FileFollower(path, 0);
    expect(await f.read()).toEqual([]);
    appendFileSync(path, bytes.subarray(1));
    expect(await f.read()).toEqual(["█ 50%"]);
  });

  test("a flush sends the partial last line only once the file is read to its end", async () => {
    const path = file();
    writeFileSync(path, `${"a".repeat(TAIL_BYTES - 2)}\nbbc\n`);
    const f = new FileFollower(path, 0);
    expect(await f.read(true)).toEqual(["a".repeat(TAIL_BYTES - 2)]);
    expect(await f.read(true)).toEqual(["bbc"]);
  });

  test("a truncated file is followed from its start, without the old content's partial line", async () => {
    const path = file();
    writeFileSync(path, "old partial");
    const f = new FileFollower(path, 0);
    expect(await f.read()).toEqual([]);
    writeFileSync(path, "new\n");
    expect(await f.read()).toEqual(["new"]);
  });
});

test("TRAINWATCH_SLURM_URL needs a user and a token: a ConfigError names the missing variable", () => {
  expect(loadConfig({}).slurm).toBeNull();
  expect(() => loadConfig({ TRAINWATCH_SLURM_URL: "http://127.0.0.1:6820" })).toThrow("TRAINWATCH_SLURM_USER");
  expect(() => loadConfig({ TRAINWATCH_SLURM_URL: "http://127.0.0.1:6820", TRAINWATCH_SLURM_USER: "u" })).toThrow(
    "TRAINWATCH_SLURM_TOKEN",
  );
  expect(() => loadConfig({ TRAINWATCH_SLURM_URL: "not a url", TRAINWATCH_SLURM_USER: "u" })).toThrow(
    "TRAINWATCH_SLURM_URL",
  );
  expect(
    loadConfig({
      TRAINWATCH_SLURM_URL: "http://127.0.0.1:6820",
      TRAINWATCH_SLURM_USER: "u",
      TRAINWATCH_SLURM_TOKEN_FILE: "/etc/tw/jwt",
      TRAINWATCH_SLURM_POLL: "0.5",
    }).slurm,
  ).toEqual({
    url: "http://127.0.0.1:6820",
    user: "u",
    token: null,
    tokenFile: "/etc/tw/jwt",
    pollMs: 500,
    logDir: null,
  });
});

test("the live log follows the job's output file: from before it exists, each line once whole, then end once the operation is finished", async () => {
  const s = setup();
  const id = (await s.start()).body.data.operation_id;
  const file = join(s.dir, `trainwatch-${id}.out`);
  // Opened while the job waits: no file yet.
  const res = await s.app.handle(req("GET", `/api/v1/operations/${id}/logs/stream?tail=1`));
  expect(res.headers.get("content-type")).toStartWith("text/event-stream");
  const sse = new SseReader(res);
  await sse.until(() => sse.events.length > 0, 10_000, "the replay");
  expect(sse.events[0]).toMatchObject({ event: "lines", data: { lines: [] } });
  writeFileSync(file, "a\nb\npart");
  await sse.until(() => sse.events.length > 1, 10_000, "the first lines");
  expect(sse.events[1]).toMatchObject({ event: "lines", data: { lines: ["a", "b"] } });
  appendFileSync(file, "ial\nc\n");
  await sse.until(() => sse.events.length > 2, 10_000, "the new lines");
  expect(sse.events[2]).toMatchObject({ event: "lines", data: { lines: ["partial", "c"] } });
  appendFileSync(file, "last words");
  s.api.queue = [job(100, "COMPLETED", { exit_code: 0 })];
  await s.executor.poll();
  await sse.until(() => sse.events.some((e) => e.event === "end"), 10_000, "end");
  await sse.end();
  expect(sse.events.slice(3)).toMatchObject([
    { event: "lines", data: { lines: ["last words"] } },
    { event: "end", data: { running: false } },
  ]);
});

test("a followed log whose read fails tells the reader with an error event (no path, no cause) and ends", async () => {
  const feed = {
    operation_id: "op_training_20260101_000000_00000000",
    lines: ["first"],
    next: async (): Promise<string[] | null> => {
      throw new Error("EACCES: permission denied, open '/secret/dir/trainwatch.out'");
    },
  };
  const sse = new SseReader(new Response(feedEventStream(feed, undefined, 20)));
  await sse.end(10_000);
  expect(sse.events).toMatchObject([
    { event: "lines", data: { lines: ["first"] } },
    {
      event: "error",
      data: {
        code: "INTERNAL_ERROR",
        message:
          "reading the log of operation op_training_20260101_000000_00000000 failed; the server log has the details",
      },
    },
  ]);
  expect(JSON.stringify(sse.events)).not.toContain("/secret");
});
