/**
 * Alerts (issue 24), against a real server process (SQLite) whose TRAINWATCH_ALERT_WEBHOOK is a receiver in this process:
 *   bun run bench/alerts.ts [--part=latency|burst] [--runs=100] [--burst=1000] [--concurrency=64]
 * (a) latency: from sending the POST whose epoch raises `diverging` to the webhook received, p50 / p99 over `runs`
 *     runs one after the other (goal p99 ≤ 1 s);
 * (b) burst: `burst` runs diverging at once (their diverging epoch posted `concurrency` at a time) beside as many that
 *     turn the alert off, interleaved: every alert delivered exactly once, and the POST's p50 / p99 with alerts on vs
 *     off in the same run (goal: unchanged within noise).
 * Prints figures beside goals (PASS/MISS); exits non-zero only when an alert is lost or sent twice.
 */
import { startServerProcess } from "../tests/helpers.ts";
import { args, int } from "./args.ts";
import { median, quantile } from "./lag.ts";

const PART = args.get("part") ?? "all";
const RUNS = int("runs", 100);
const BURST = int("burst", 1000);
const CONCURRENCY = int("concurrency", 64);
const GOAL_P99_MS = 1000;

/** Falls, then explodes: the judgement calls it diverging at epoch 8 (tests/alerts.test.ts). */
const LOSSES = [1.0, 0.8, 0.6, 0.5, 0.45, 0.42, 0.6, 0.9, 1.4];
const epoch = (e: number) => ({ epoch: e, train_loss: LOSSES[e], val_loss: LOSSES[e]! * 1.1 });

const arrivals = new Map<string, number[]>();
const waiters = new Map<string, () => void>();
const receiver = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(r) {
    const body = (await r.json()) as { operation: { id: string } };
    const at = performance.now();
    const id = body.operation.id;
    arrivals.set(id, [...(arrivals.get(id) ?? []), at]);
    waiters.get(id)?.();
    return new Response("ok");
  },
});
const server = await startServerProcess({ TRAINWATCH_ALERT_WEBHOOK: `http://127.0.0.1:${receiver.port}/` }, 60_000);
const api = (path: string, body?: unknown) =>
  fetch(`${server.url}/api/v1${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then(async (r) => {
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
    return r.json() as Promise<{ data: any }>;
  });

/** A run with epochs 0 … 7 stored: its next epoch (8) raises `diverging`. */
async function primed(alerts?: unknown): Promise<string> {
  const id = (await api("/operations", { operation_type: "training", ...(alerts ? { alerts } : {}) })).data
    .operation_id;
  await api(`/operations/${id}/metrics`, { epochs: [0, 1, 2, 3, 4, 5, 6, 7].map(epoch) });
  return id;
}

/** Runs `fn` over `items`, `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: median(xs), p99: quantile(s, 0.99), max: s.at(-1) ?? 0 };
};
const ms = (n: number) => `${n.toFixed(1)} ms`;
let broken = false;

try {
  if (PART === "all" || PART === "latency") {
    const lat: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const id = await primed();
      const got = new Promise<void>((resolve) => waiters.set(id, resolve));
      const t0 = performance.now();
      await api(`/operations/${id}/metrics`, epoch(8));
      await got;
      lat.push(arrivals.get(id)![0]! - t0);
    }
    const s = stats(lat);
    console.log(
      `(a) POST raising diverging → webhook received, ${RUNS} runs: p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)} ` +
        `(goal p99 ≤ ${GOAL_P99_MS} ms) ${s.p99 <= GOAL_P99_MS ? "PASS" : "MISS"}`,
    );
  }
  if (PART === "all" || PART === "burst") {
    const on: string[] = [];
    const off: string[] = [];
    await pool(
      Array.from({ length: BURST }, (_, i) => i),
      CONCURRENCY,
      async () => {
        on.push(await primed());
        off.push(await primed({ off: ["diverging"] }));
      },
    );
    const before = arrivals.size;
    // Interleaved, so both groups see the same load.
    const order = on.flatMap((id, i) => [
      { id, on: true },
      { id: off[i]!, on: false },
    ]);
    const post = { on: [] as number[], off: [] as number[] };
    const t0 = performance.now();
    await pool(order, CONCURRENCY, async ({ id, on }) => {
      const t = performance.now();
      await api(`/operations/${id}/metrics`, epoch(8));
      (on ? post.on : post.off).push(performance.now() - t);
    });
    const posted = performance.now() - t0;
    const deadline = performance.now() + 120_000;
    while (on.some((id) => !arrivals.has(id)) && performance.now() < deadline) await Bun.sleep(20);
    const drained = performance.now() - t0;
    const missing = on.filter((id) => !arrivals.has(id)).length;
    const twice = on.filter((id) => (arrivals.get(id)?.length ?? 0) > 1).length;
    const strays = off.filter((id) => arrivals.has(id)).length;
    if (missing || twice || strays) broken = true;
    const a = stats(post.on);
    const b = stats(post.off);
    console.log(
      `(b) ${BURST} runs diverging at once (${CONCURRENCY} POSTs in flight, beside ${BURST} with the alert off): ` +
        `${arrivals.size - before - strays} delivered, ${missing} missing, ${twice} twice, ${strays} for runs that turned it off ` +
        `(goal: all once) ${missing || twice || strays ? "MISS" : "PASS"}; all posted in ${ms(posted)}, all delivered ${ms(drained)} after the first POST`,
    );
    console.log(
      `    the diverging epoch's POST: alerts on p50 ${ms(a.p50)} p99 ${ms(a.p99)}; off p50 ${ms(b.p50)} p99 ${ms(b.p99)} ` +
        `(goal: unchanged within noise; p99 on/off ${(a.p99 / b.p99).toFixed(2)})`,
    );
  }
} finally {
  await server.stop();
  receiver.stop(true);
}
if (broken) process.exit(1);
