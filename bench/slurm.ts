/**
 * The Slurm executor's costs: `bun run bench/slurm.ts` on a one-node cluster (`export $(.ci/slurm.sh start DIR)`, as
 * root; docs/clusters.md). Starts the real API with the Slurm executor, its slurmrestd calls counted by a loopback proxy.
 * 1. Overhead: the same Python recipe (tests/fixtures/scripts/slurm_train.py, the client and 3 epochs, no torch) run
 *    `--runs` times locally and on Slurm, one at a time: submit → running and submit → first epoch as a poll of the
 *    API sees them, medians, and Slurm's as a ratio of local's.
 * 2. Polling: `--queued` jobs held pending on the whole-node partition (a first one holds the node), for `--window`
 *    seconds at TRAINWATCH_SLURM_POLL=`--poll` (default 5, the default): requests a minute to slurmrestd and the API's
 *    CPU; then the delay from a state change in Slurm (a pending job cancelled with slurmrestd directly) to the
 *    operation's status, `--changes` times.
 * Options: --runs=5 --queued=50 --window=30 --poll=5 --changes=5
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SlurmRestClient } from "../src/executors/slurm_rest.ts";
import { freePort, spawnEntry } from "../tests/fixtures/spawn.ts";
import { testSlurm } from "../tests/fixtures/slurm.ts";
import { int } from "./args.ts";
import { quantile } from "./lag.ts";

const RUNS = int("runs", 5);
const QUEUED = int("queued", 50);
const WINDOW_S = int("window", 30);
const POLL_S = int("poll", 5);
const CHANGES = int("changes", 5);

const slurm = testSlurm();
if ("missing" in slurm) {
  console.error(`bench/slurm.ts needs a cluster: ${slurm.missing}`);
  process.exit(2);
}
const ROOT = resolve(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "trainwatch-slurm-bench-"));
chmodSync(dir, 0o755);
const hold = join(slurm.workdir, `bench-hold-${process.pid}`);
const client = new SlurmRestClient({ url: slurm.url, user: slurm.user, tokenFile: slurm.tokenFile });

// slurmrestd behind a counting proxy: every request the API makes goes through it.
let requests = 0;
const proxy = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    requests++;
    const url = new URL(req.url);
    const body = req.method === "GET" || req.method === "DELETE" ? undefined : await req.arrayBuffer();
    const res = await fetch(`${slurm.url}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
      body,
    });
    return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
  },
});

const recipe = (name: string, target: string[], partition: string) => ({
  name,
  command: ["/usr/bin/python3", join(ROOT, "tests", "fixtures", "scripts", "slurm_train.py")],
  cwd: slurm.workdir,
  env: { PYTHONPATH: join(ROOT, "clients", "python") },
  params: {
    type: "object",
    properties: { epochs: { type: "integer", default: 3 }, wait_for: { type: "string", default: "" } },
  },
  params_via: ["args"],
  epochs_param: "epochs",
  target,
  slurm: { partition },
});
writeFileSync(
  join(dir, "recipes.json"),
  JSON.stringify({
    recipes: [recipe("both", ["local", "slurm"], "debug"), recipe("whole-node", ["slurm"], "exclusive")],
  }),
);
const port = freePort();
const api = `http://127.0.0.1:${port}/api/v1`;
const server = await spawnEntry({
  entry: "src/server.ts",
  drop: ["HOST", "TRAINWATCH_TOKEN"],
  env: {
    PORT: String(port),
    TRAINWATCH_DB: join(dir, "api.db"),
    TRAINWATCH_RECIPES: join(dir, "recipes.json"),
    TRAINWATCH_LOGS_DIR: join(dir, "logs"),
    TRAINWATCH_GPUS: "none",
    TRAINWATCH_SLURM_URL: `http://127.0.0.1:${proxy.port}`,
    TRAINWATCH_SLURM_USER: slurm.user,
    TRAINWATCH_SLURM_TOKEN_FILE: slurm.tokenFile,
    TRAINWATCH_SLURM_LOG_DIR: slurm.workdir,
    TRAINWATCH_SLURM_POLL: String(POLL_S),
  },
  url: () => `http://127.0.0.1:${port}`,
  health: "/api/v1/health",
  timeoutMs: 30_000,
});

const call = async (method: string, path: string, body?: unknown) =>
  (await (
    await fetch(`${api}${path}`, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    })
  ).json()) as { data: any };
const op = async (id: string) => (await call("GET", `/operations/${id}`)).data;
const median = (xs: number[]) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
/** CPU seconds of process `pid` so far (user + system). */
const cpuSeconds = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};

let exitCode = 0;
try {
  // 1. Overhead, one run at a time.
  const timings: Record<string, { running: number[]; epoch: number[] }> = {
    local: { running: [], epoch: [] },
    slurm: { running: [], epoch: [] },
  };
  for (let i = 0; i < RUNS; i++) {
    for (const target of ["local", "slurm"] as const) {
      const t0 = performance.now();
      const id = (await call("POST", "/trainings", { recipe: "both", target })).data.operation_id as string;
      let running: number | null = null;
      let epoch: number | null = null;
      for (;;) {
        const o = await op(id);
        const now = performance.now() - t0;
        if (running === null && o.status !== "pending") running = now;
        if (epoch === null && o.trends.latest_epoch !== null) epoch = now;
        if (o.status === "completed" || o.status === "failed" || o.status === "cancelled") break;
        await Bun.sleep(10);
      }
      if (running === null || epoch === null) throw new Error(`${target} run ${id} ended without running or an epoch`);
      timings[target]!.running.push(running);
      timings[target]!.epoch.push(epoch);
    }
  }
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  for (const t of ["local", "slurm"] as const)
    console.log(
      `${t}: submit → running ${ms(median(timings[t]!.running))}, submit → first epoch ${ms(median(timings[t]!.epoch))} (median of ${RUNS})`,
    );
  console.log(
    `overhead: Slurm / local = ${(median(timings.slurm!.running) / median(timings.local!.running)).toFixed(1)}× to running, ${(median(timings.slurm!.epoch) / median(timings.local!.epoch)).toFixed(1)}× to the first epoch`,
  );

  // 2. Polling with QUEUED pending jobs: the first holds the whole node.
  const ids: string[] = [];
  for (let i = 0; i <= QUEUED; i++)
    ids.push(
      (await call("POST", "/trainings", { recipe: "whole-node", params: { wait_for: hold } })).data.operation_id,
    );
  for (;;) {
    const waiting = await Promise.all(ids.slice(1).map(op));
    if (waiting.every((o) => o.status === "pending" && o.pending_reason)) break;
    await Bun.sleep(100);
  }
  const r0 = requests;
  const c0 = cpuSeconds(server.proc.pid);
  await Bun.sleep(WINDOW_S * 1000);
  const perMinute = ((requests - r0) * 60) / WINDOW_S;
  const cpu = ((cpuSeconds(server.proc.pid) - c0) / WINDOW_S) * 100;
  console.log(
    `${QUEUED} queued jobs, poll every ${POLL_S} s: ${perMinute.toFixed(1)} requests/min to slurmrestd, API CPU ${cpu.toFixed(2)} % of a core (over ${WINDOW_S} s in which the bench itself asks nothing)`,
  );

  // State change in Slurm → operation status: a pending job cancelled behind the API's back.
  const delays: number[] = [];
  for (const id of ids.slice(1, 1 + CHANGES)) {
    const jobId = Number((await op(id)).external_id);
    // At a random point of the poll period: right after the last detection, every change would wait a whole period.
    await Bun.sleep(Math.random() * POLL_S * 1000);
    await client.cancel(jobId);
    const t0 = performance.now();
    while ((await op(id)).status !== "cancelled") await Bun.sleep(10);
    delays.push(performance.now() - t0);
  }
  console.log(
    `Slurm state change → operation status: median ${ms(median(delays))}, max ${ms(Math.max(...delays))} (${CHANGES} cancels; bound: one poll, ${POLL_S} s)`,
  );
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  writeFileSync(hold, "");
  for (const j of await client.jobs().catch(() => []))
    if (j.name.startsWith("trainwatch-") && (j.state === "PENDING" || j.state === "RUNNING"))
      await client.cancel(j.id, "KILL").catch(() => {});
  server.proc.kill("SIGTERM");
  await server.proc.exited;
  proxy.stop(true);
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
