/**
 * Liveness of a real Python-client trainer against a real server process, as figures beside their goals:
 *   bun run bench/liveness.ts [--python=/path/to/python] [--repeats=3] [--lost=3] [--seconds=30]
 * (a) kill -9 of a trainer → its operation `failed` with failure_code `lost`, and → its `lost` alert received by a
 *     webhook receiver (a Bun.serve on 127.0.0.1 named by TRAINWATCH_ALERT_WEBHOOK): goal TRAINWATCH_LOST_AFTER plus
 *     one watchdog period (a quarter of the shortest limit) for both, measured from the kill to the first GET that reads
 *     it failed (polled every 20 ms, so that figure is at most 20 ms late) and to the alert's arrival;
 * (b) the heartbeat's cost: the CPU seconds of an idle client (registered, no rows logged) over `--seconds` with the
 *     heartbeat at 0.2 s, minus the same interpreter idle without trainwatch, scaled to the default 15 s interval and
 *     to an hour of training.
 * Prints figures and PASS/MISS; exits non-zero only when a run does not end as it must.
 */
import { spawn } from "node:child_process";
import { watchdogPeriodMs } from "../src/operations/client_watchdog.ts";
import { startServerProcess } from "../tests/helpers.ts";
import { args, int } from "./args.ts";
import { median } from "./lag.ts";

const PYTHON = args.get("python") ?? process.env.TRAINWATCH_PYTHON ?? "python3";
const REPEATS = int("repeats", 3);
const LOST_S = Number(args.get("lost") ?? 3);
const SECONDS = int("seconds", 30);
const HEARTBEAT_S = 0.2;
const CLIENT = new URL("../clients/python", import.meta.url).pathname;

const limits = { staleAfterMs: 1000, lostAfterMs: LOST_S * 1000, hungAfterMs: 1000 };
const PERIOD_MS = watchdogPeriodMs(limits);
let broken = false;

/** When each run's `lost` alert reached the receiver (performance.now()). */
const lostAlerts = new Map<string, number>();
const receiver = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(r) {
    const body = (await r.json()) as { event: string; operation: { id: string } };
    if (body.event === "lost" && !lostAlerts.has(body.operation.id))
      lostAlerts.set(body.operation.id, performance.now());
    return new Response(null, { status: 204 });
  },
});

const server = await startServerProcess({
  TRAINWATCH_ALERT_WEBHOOK: `http://127.0.0.1:${receiver.port}/hook`,
  TRAINWATCH_CLIENT_HEARTBEAT: String(HEARTBEAT_S),
  TRAINWATCH_STALE_AFTER: String(limits.staleAfterMs / 1000),
  TRAINWATCH_LOST_AFTER: String(LOST_S),
  TRAINWATCH_HUNG_AFTER: String(limits.hungAfterMs / 1000),
});
const api = (path: string) =>
  fetch(`${server.url}/api/v1${path}`).then((r) => r.json() as Promise<{ data: Record<string, any> }>);

/** Starts a Python script with the client on its path; resolves with the process and its first stdout line. */
function python(code: string): Promise<{ proc: ReturnType<typeof spawn>; line: string }> {
  const proc = spawn(PYTHON, ["-c", code], {
    env: { ...process.env, TRAINWATCH_URL: server.url, PYTHONPATH: CLIENT, PYTHONUNBUFFERED: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    proc.stdout!.on("data", (d) => {
      out += String(d);
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve({ proc, line: out.slice(0, nl).trim() });
    });
    proc.on("exit", (code) => reject(new Error(`the trainer exited (${code}) before printing its operation id`)));
  });
}

async function until<T>(what: string, read: () => Promise<T | null>, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const v = await read();
    if (v !== null) return v;
    await Bun.sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

try {
  // (a) kill -9 → lost.
  const figures: number[] = [];
  const alerted: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const { proc, line: id } = await python(
      "import time, trainwatch\n" +
        "run = trainwatch.init(name='bench kill -9')\n" +
        "for e in range(3): run.log(epoch=e, train_loss=1.0 / (e + 1))\n" +
        "while run.pending: time.sleep(0.01)\n" +
        "while run._heartbeat.beats < 1: time.sleep(0.01)\n" +
        "print(run.operation_id, flush=True)\n" +
        "while True: time.sleep(1)\n",
    );
    proc.kill("SIGKILL");
    const killed = performance.now();
    const op = await until(
      `${id} lost`,
      async () => {
        const o = (await api(`/operations/${id}`)).data;
        return o.status === "failed" ? o : null;
      },
      LOST_S * 1000 + 30_000,
    );
    const tookMs = performance.now() - killed;
    if (op.failure_code !== "lost") {
      broken = true;
      console.error(`${id}: failed with ${op.failure_code}, not lost`);
    }
    figures.push(tookMs);
    const at = await until(`${id}'s lost alert`, async () => lostAlerts.get(id) ?? null, 30_000);
    alerted.push(at - killed);
  }
  const goalMs = LOST_S * 1000 + PERIOD_MS;
  const p50 = median(figures);
  const worst = Math.max(...figures);
  console.log(
    `(a) kill -9 → lost: median ${(p50 / 1000).toFixed(2)} s, worst ${(worst / 1000).toFixed(2)} s over ${REPEATS} ` +
      `(goal ≤ ${(goalMs / 1000).toFixed(2)} s: TRAINWATCH_LOST_AFTER ${LOST_S} s + one watchdog period ${PERIOD_MS} ms; ` +
      `the trainer's last heartbeat was up to ${HEARTBEAT_S} s before the kill) ${worst <= goalMs ? "PASS" : "MISS"}`,
  );
  const alertWorst = Math.max(...alerted);
  console.log(
    `(a) kill -9 → its lost alert received: median ${(median(alerted) / 1000).toFixed(2)} s, worst ${(alertWorst / 1000).toFixed(2)} s ` +
      `over ${REPEATS} (goal ≤ ${(goalMs / 1000).toFixed(2)} s, as above) ${alertWorst <= goalMs ? "PASS" : "MISS"}`,
  );

  // (b) the heartbeat's CPU: an idle registered client, against the same interpreter idle without it.
  const idle = (withClient: boolean) =>
    python(
      "import os, time\n" +
        (withClient ? "import trainwatch\nrun = trainwatch.init(name='bench heartbeat')\n" : "") +
        `t0 = os.times(); time.sleep(${SECONDS})\nt1 = os.times()\n` +
        (withClient ? "beats = run._heartbeat.beats\nrun.finish()\n" : "beats = 0\n") +
        "print(f'{(t1.user - t0.user) + (t1.system - t0.system)} {beats}', flush=True)\n",
    ).then(({ line }) => line.split(" ").map(Number) as [number, number]);
  const [[cpu, beats], [base]] = await Promise.all([idle(true), idle(false)]);
  const perBeat = Math.max(0, cpu - base) / Math.max(1, beats);
  const perHourDefault = perBeat * (3600 / 15);
  console.log(
    `(b) heartbeat CPU: ${beats} heartbeats in ${SECONDS} s at ${HEARTBEAT_S} s cost ${(cpu - base).toFixed(3)} CPU s ` +
      `(${(perBeat * 1000).toFixed(2)} ms each) → ${perHourDefault.toFixed(3)} CPU s per hour of training at the default 15 s ` +
      `(${((perBeat * 3600) / HEARTBEAT_S).toFixed(1)} CPU s per hour at ${HEARTBEAT_S} s)`,
  );
} catch (err) {
  broken = true;
  console.error(err);
} finally {
  await server.stop();
  receiver.stop(true);
}
process.exit(broken ? 1 : 0);
