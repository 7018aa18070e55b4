/**
 * Dashboard figures for the acceptance note: `bun run bench/dashboard.ts [--runs=10] [--epochs=10000] [--streams=300]
 * [--big=1000000] [--overlay=100] [--overlay-epochs=10000] [--zoom-only] [--overlay-only] [--sweep=1000]
 * [--sweep-epochs=20] [--sweep-only]`.
 * Starts a real server process on a temp database, stores runs × epochs (custom metric included), then prints how long
 * (a) GET /operations/compare takes for all runs, (b) the SSE replay of a full history takes, one stream and one per run
 * at once, (c) what hundreds of open streams do to ingestion and delivery, and (d) when Chromium exists, how long the
 * dashboard takes to draw the comparison of all runs and one full run, with the page's long tasks (> 50 ms).
 * (e) Long runs and zoom (bench/dashboard_zoom.ts): a `--big`-epoch run and `--overlay` runs × `--overlay-epochs`, a
 * spike and a NaN hidden in a custom metric; ingest time, the page's replies (time, bytes), first draw, every zoom level.
 * `--zoom-only` runs (e) alone; `--overlay-only` runs only (e)'s overlay (no long run stored).
 * (f) A sweep (bench/dashboard_sweep.ts): `--sweep` runs in one group; the group's list read, the sweep view drawn
 * (table and parallel coordinates), a re-sort, the list searched. `--sweep-only` runs (f) alone, `--sweep=0` skips it.
 * It prints figures, each goal beside its figure; it asserts nothing.
 */
import { CHROMIUM, chromiumPresent, launchChromium, recordLongTasks } from "../tests/fixtures/browser.ts";
import { SseReader } from "../tests/sse.ts";
import { startServerProcess } from "../tests/helpers.ts";
import { zoomFigures } from "./dashboard_zoom.ts";
import { sweepFigures } from "./dashboard_sweep.ts";
import { args, int } from "./args.ts";

// Bun's fetch caps concurrent requests per process at 256 unless told otherwise at startup; hundreds of open streams need more.
if (!process.env.BUN_CONFIG_MAX_HTTP_REQUESTS) {
  const child = Bun.spawnSync([process.execPath, ...process.argv.slice(1)], {
    env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: "1024" },
    stdio: ["inherit", "inherit", "inherit"],
  });
  process.exit(child.exitCode ?? 1);
}

const RUNS = int("runs", 10);
const EPOCHS = int("epochs", 10_000);
const STREAMS = int("streams", 300);
const SAMPLES = int("samples", 10);
const OVERLAY_ONLY = args.has("overlay-only");
const ZOOM_ONLY = args.has("zoom-only") || OVERLAY_ONLY;
const SWEEP_ONLY = args.has("sweep-only");
const SWEEP = int("sweep", 1000);

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const ms = (n: number) => `${n.toFixed(1)} ms`;
const kb = (n: number) => `${(n / 1024).toFixed(0)} KB`;

function epoch(run: number, e: number) {
  const noise = Math.sin(e * 12.9898 + run) * 0.01;
  return {
    epoch: e,
    train_loss: 2.3 * Math.exp(-e / (1500 + run * 100)) + 0.05 + noise,
    val_loss: 2.4 * Math.exp(-e / (1700 + run * 100)) + 0.08 + noise * 1.3 + (e > 6000 ? (e - 6000) / 40_000 : 0),
    train_accuracy: 1 - Math.exp(-e / 1500) * 0.9 + noise,
    val_accuracy: 1 - Math.exp(-e / 1700) * 0.92 + noise,
    learning_rate: 0.001 * 0.5 ** Math.floor(e / 3000),
    duration: 1.2 + noise,
    grad_norm: 3 * Math.exp(-e / 4000) + noise,
  };
}

// 10,000-epoch batches of the long runs: above the default 5 MiB body limit with every field, so the limit is raised.
const server = await startServerProcess({ TRAINWATCH_MAX_BODY_BYTES: String(32 * 1024 * 1024) }, 30_000);
const api = (path: string, init: RequestInit = {}) => fetch(`${server.url}/api/v1${path}`, init);
const postJson = (path: string, body: unknown) =>
  api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

try {
  if (!ZOOM_ONLY && !SWEEP_ONLY) await figures();
  if (!SWEEP_ONLY)
    await zoomFigures(server.url, {
      big: int("big", 1_000_000),
      overlay: int("overlay", 100),
      overlayEpochs: int("overlay-epochs", 10_000),
      samples: SAMPLES,
      overlayOnly: OVERLAY_ONLY,
    });
  if (SWEEP > 0 && !ZOOM_ONLY)
    await sweepFigures(server.url, { runs: SWEEP, epochs: int("sweep-epochs", 20), samples: SAMPLES });
} finally {
  await server.stop();
}

async function figures() {
  // Setup: runs × epochs, in batches of at most 5,000 (the body limit is 5 MiB).
  const t0 = performance.now();
  const ids: string[] = [];
  for (let r = 0; r < RUNS; r++) {
    const op = (await (
      await postJson("/operations", { operation_type: "training", name: `bench-${r}`, total_epochs_planned: EPOCHS })
    ).json()) as any;
    ids.push(op.data.operation_id);
    for (let from = 0; from < EPOCHS; from += 5000) {
      const res = await postJson(`/operations/${op.data.operation_id}/metrics`, {
        epochs: Array.from({ length: Math.min(5000, EPOCHS - from) }, (_, i) => epoch(r, from + i)),
      });
      if (!res.ok) throw new Error(`storing epochs failed: ${res.status} ${await res.text()}`);
    }
  }
  console.log(`setup: ${RUNS} runs × ${EPOCHS} epochs stored in ${ms(performance.now() - t0)} (server ${server.url})`);

  // (a) comparison ---------------------------------------------------------------------------
  for (const maxPoints of [1000, 2000, EPOCHS]) {
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < SAMPLES + 2; i++) {
      const start = performance.now();
      const res = await api(`/operations/compare?ids=${ids.join(",")}&max_points=${maxPoints}`);
      const body = await res.arrayBuffer();
      if (!res.ok) throw new Error(`compare failed: ${res.status}`);
      if (i >= 2) times.push(performance.now() - start); // two warm-ups
      bytes = body.byteLength;
    }
    console.log(
      `(a) GET /operations/compare, ${RUNS} runs × ${EPOCHS} epochs, max_points=${maxPoints}: median ${ms(median(times))}, min ${ms(sorted(times)[0]!)}, max ${ms(sorted(times).at(-1)!)} (${kb(bytes)})`,
    );
  }

  // (b) SSE replay ----------------------------------------------------------------------------
  const replay = async (id: string) => {
    const start = performance.now();
    const sse = new SseReader(await api(`/operations/${id}/metrics/stream`));
    await sse.until(() => sse.events.some((e) => e.event === "trends"), 60_000, "the replay");
    const took = performance.now() - start;
    const n = sse.epochs().length;
    await sse.cancel();
    if (n !== EPOCHS) throw new Error(`replay gave ${n} epochs, expected ${EPOCHS}`);
    return took;
  };
  const single: number[] = [];
  for (let i = 0; i < 5; i++) single.push(await replay(ids[i % ids.length]!));
  console.log(
    `(b) SSE replay of one ${EPOCHS}-epoch history (request → last epoch parsed): median ${ms(median(single))}, max ${ms(sorted(single).at(-1)!)}`,
  );
  const allStart = performance.now();
  await Promise.all(ids.map(replay));
  console.log(
    `(b) SSE replay of all ${RUNS} histories at once (${RUNS * EPOCHS} epochs): ${ms(performance.now() - allStart)} wall`,
  );

  // (c) fan-out ---------------------------------------------------------------------------------
  const live = (await (await postJson("/operations", { operation_type: "training", name: "fanout" })).json()) as any;
  const liveId = live.data.operation_id as string;
  let next = 0;
  const writes = async (n: number) => {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      const res = await postJson(`/operations/${liveId}/metrics`, epoch(0, next++));
      await res.arrayBuffer();
      times.push(performance.now() - start);
    }
    return times;
  };
  await writes(20);
  const quiet = await writes(100);
  const streams: SseReader[] = [];
  for (let i = 0; i < STREAMS; i++)
    streams.push(new SseReader(await api(`/operations/${liveId}/metrics/stream?since_epoch=${next - 1}`)));
  await Promise.all(
    streams.map((s) => s.until(() => s.events.some((e) => e.event === "trends"), 30_000, "the replay")),
  );
  const loaded = await writes(100);
  console.log(
    `(c) POST one epoch: median ${ms(median(quiet))} with no stream open, ${ms(median(loaded))} with ${STREAMS} streams open (p95 ${ms(sorted(loaded)[94]!)})`,
  );
  const probe = next;
  const sent = performance.now();
  await (await postJson(`/operations/${liveId}/metrics`, epoch(0, next++))).arrayBuffer();
  const returned = performance.now();
  await Promise.all(streams.map((s) => s.until(() => s.epochs().includes(probe), 10_000, `epoch ${probe}`)));
  const arrivals = streams.map((s) => s.events.find((e) => e.event === "epoch" && e.data.epoch === probe)!.at);
  console.log(
    `(c) one epoch to all ${STREAMS} streams: last arrival ${ms(Math.max(...arrivals) - sent)} after the POST was sent (${ms(Math.max(0, Math.max(...arrivals) - returned))} after it returned; parsing in this one bench process included)`,
  );
  await Promise.all(streams.map((s) => s.cancel()));

  // (d) the dashboard in Chromium -------------------------------------------------------------
  if (!chromiumPresent) {
    console.log(`(d) skipped: ${CHROMIUM} is missing`);
  } else {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const { longTasks, clear } = await recordLongTasks(page);
      const drawn = (chart: string) =>
        page.waitForFunction((c) => (window as any).__trainwatch?.chartPoints(c) > 0, chart, { timeout: 60_000 });
      let start = performance.now();
      await page.goto(`${server.url}/#/compare/${ids.join(",")}`);
      await drawn("compare");
      console.log(
        `(d) dashboard: comparison of ${RUNS} runs × ${EPOCHS} epochs drawn ${ms(performance.now() - start)} after navigation; page long tasks: [${(await longTasks()).join(", ")}] ms`,
      );
      await clear(); // a hash change keeps the document
      start = performance.now();
      await page.goto(`${server.url}/#/op/${ids[0]}`);
      await drawn("loss");
      const points = await page.evaluate(() => (window as any).__trainwatch.chartPoints("loss"));
      console.log(
        `(d) dashboard: one ${EPOCHS}-epoch run drawn ${ms(performance.now() - start)} after navigation (${points} points per curve); page long tasks: [${(await longTasks()).join(", ")}] ms`,
      );
    } finally {
      await browser.close();
    }
  }
}
