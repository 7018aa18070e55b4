/**
 * The step charts' figures for issue 22: `bun run bench/dashboard_steps.ts [--steps=1000000] [--samples=5]
 * [--smoothing=0.6]` (the page's smoothing slider: 0 reads the steps unsmoothed).
 * Stores a `--steps`-step run straight through a SQLite store (10,000 steps a transaction, 10 epochs, an evaluation every
 * 50 steps, one loss spike and, 0.04 % of the run later, one NaN), finishes it (so no page follows it live while it is
 * measured), starts a real server process on that database and, in headless Chromium, prints: the time from navigation
 * to the step chart drawn (goal ≤ 500 ms), each zoom from the request to its draw (10 %, 1 %, 0.1 % of the run around
 * the spike and the NaN; goal ≤ 200 ms), the GET …/steps replies behind them (replayed from here: server time, bytes,
 * points), whether the spike and the NaN are in the chart at every level, and the reset. Each goal is printed beside its
 * figure; it asserts nothing. Page times come from the page (performance.now around window.__trainwatch.zoom, the hook
 * a drag uses); the first draw is sampled once a frame, so ±16 ms.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { loadConfig } from "../src/config.ts";
import type { StepRecord } from "../src/schemas/step.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { chromiumPresent, launchChromium, nanMarked, valueAt, type ChartSnapshot } from "../tests/fixtures/browser.ts";
import { startServerProcess } from "../tests/helpers.ts";
import { int } from "./args.ts";

const STEPS = int("steps", 1_000_000);
const SAMPLES = int("samples", 5);
const SMOOTHING = int("smoothing", 0.6);
const BATCH = 10_000;
const EPOCHS = 10;
const EVERY = 50;
const SPIKE = Math.floor(STEPS * 0.654321);
const NAN = Math.min(STEPS - 1, SPIKE + Math.max(1, Math.floor(STEPS * 0.0004)));
const SPIKE_VALUE = 80;
const FIRST_DRAW_GOAL = 500;
const ZOOM_GOAL = 200;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (n: number) => `${n.toFixed(0)} ms`;
const size = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${(n / 1024).toFixed(0)} KB`);
const count = (n: number) => n.toLocaleString("en");
const yes = (b: boolean) => (b ? "yes" : "no");

/** The figures, printed as they come and again as a markdown table at the end (for docs/dashboard.md). */
const table: string[] = [];
function figure(name: string, measured: string, goal?: string, met?: boolean): void {
  const verdict = goal === undefined ? "—" : met ? "met" : "MISSED";
  table.push(`| ${name} | ${measured} | ${goal ?? "—"} | ${verdict} |`);
  console.log(`${name}: ${measured}${goal ? `   [goal ${goal}: ${verdict}]` : ""}`);
}

/** Step s of the run: a slow decay with noise, the spike and the NaN in train_loss, an evaluation every 50 steps. */
function step(s: number, timestamp: string): StepRecord {
  return {
    step: s,
    epoch: Math.floor((s * EPOCHS) / STEPS),
    timestamp,
    train_loss:
      s === SPIKE ? SPIKE_VALUE : s === NAN ? Number.NaN : 2 * Math.exp(-s / (STEPS / 5)) + 0.05 + 0.01 * Math.sin(s),
    learning_rate: 0.001 * (1 - s / STEPS),
    grad_norm: 1 + 0.1 * Math.cos(s / 7),
    duration: 0.1,
    ...(s % EVERY === 0 && { val_loss: 2.1 * Math.exp(-s / (STEPS / 5)) + 0.08 }),
  };
}

const dir = mkdtempSync(join(tmpdir(), "trainwatch-steps-bench-"));
const db = join(dir, "trainwatch.db");
try {
  const t0 = performance.now();
  const store = new SqliteStore(db, loadConfig({}).trends);
  const { operation_id: id } = await store.createOperation({
    operation_type: "training",
    name: `steps-${STEPS}`,
    total_steps_planned: STEPS,
  });
  const timestamp = new Date().toISOString();
  for (let from = 0; from < STEPS; from += BATCH)
    await store.writeSteps(
      id,
      Array.from({ length: Math.min(BATCH, STEPS - from) }, (_, i) => step(from + i, timestamp)),
    );
  await store.closeSteps(id);
  await store.finish(id, "completed");
  store.close();
  figure(
    `store ${count(STEPS)} steps through SqliteStore.writeSteps (${count(BATCH)} a transaction)`,
    `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  const server = await startServerProcess({ TRAINWATCH_DB: db }, 60_000);
  try {
    if (!chromiumPresent) console.log("Chromium is missing (apt-get install -y chromium): no page figures.");
    else await pageFigures(server.url, id);
  } finally {
    await server.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log("\n| Figure | Measured | Goal | Result |\n| --- | --- | --- | --- |");
for (const line of table) console.log(line);

async function pageFigures(url: string, id: string) {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const reads: string[] = [];
    page.on("request", (r) => {
      if (r.url().includes(`/operations/${id}/steps?`)) reads.push(r.url());
    });
    await page.addInitScript((w) => localStorage.setItem("trainwatch.smoothing", String(w)), SMOOTHING);
    // A warm page, as a person arrives from the list: the modules are loaded, the navigation is the page's own.
    await page.goto(`${url}/#/`);
    await page.waitForSelector("tr[data-op]", { timeout: 60_000 });

    const first = await navigate(page, `#/op/${id}`);
    const full = await snapshot(page);
    const whole = await replay(reads.at(-1)!);
    figure(
      `${count(STEPS)}-step run: GET …/steps, whole run (${new URL(reads.at(-1)!).search.slice(1)})`,
      `${ms(whole.time)}, ${size(whole.bytes)}, ${count(full.x.length)} points`,
    );
    figure(
      `${count(STEPS)}-step run: step chart drawn after navigation`,
      ms(first),
      `≤ ${FIRST_DRAW_GOAL} ms`,
      first <= FIRST_DRAW_GOAL,
    );
    seen("whole run", full);
    figure(`${count(STEPS)}-step run: epoch ends marked`, `${full.lines.length} of ${EPOCHS - 1}`);

    const centre = Math.round((SPIKE + NAN) / 2);
    for (const share of [0.1, 0.01, 0.001]) {
      const width = Math.max(3, Math.round(STEPS * share));
      const from = Math.max(0, Math.min(STEPS - width, centre - Math.floor(width / 2)));
      const to = from + width - 1;
      const times: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        times.push((await page.evaluate(([f, t]) => (window as any).__trainwatch.zoom(f, t), [from, to])) as number);
        if (i < SAMPLES - 1) await page.evaluate(() => (window as any).__trainwatch.resetZoom());
      }
      const zoomed = await snapshot(page);
      const reply = await replay(reads.at(-1)!);
      const label = `${count(STEPS)}-step run, ${share * 100} % zoom (${count(width)} steps)`;
      const all = zoomed.x.length === width && zoomed.x[0] === from && zoomed.x.at(-1) === to;
      figure(
        `${label}: GET …/steps with from_step/to_step`,
        `${ms(reply.time)}, ${size(reply.bytes)}, ${count(zoomed.x.length)} points${all ? " (every step)" : ""}`,
      );
      const t = median(times);
      figure(`${label}: request → drawn (median of ${SAMPLES})`, ms(t), `≤ ${ZOOM_GOAL} ms`, t <= ZOOM_GOAL);
      seen(label, zoomed);
    }
    const reset = (await page.evaluate(() => (window as any).__trainwatch.resetZoom())) as number;
    figure(
      `${count(STEPS)}-step run: reset zoom → whole run drawn`,
      ms(reset),
      `≤ ${ZOOM_GOAL} ms`,
      reset <= ZOOM_GOAL,
    );
  } finally {
    await browser.close();
  }
}

/** Whether the spike and the NaN are in a loss chart snapshot: the spike's raw value among the points, the NaN marked. */
function seen(label: string, s: ChartSnapshot): void {
  const spike = valueAt(s, "train_loss:raw", SPIKE) === SPIKE_VALUE;
  const nan = nanMarked(s, "train_loss:raw", NAN);
  figure(`${label}: spike / NaN in the chart`, `${yes(spike)} / ${yes(nan)}`, "yes / yes", spike && nan);
}

/** What the loss chart holds. */
function snapshot(page: Page): Promise<ChartSnapshot> {
  return page.evaluate(() => (window as any).__trainwatch.chart("loss"));
}

/** Navigates the warm page to `hash`; resolves with the page's time until the loss chart holds data and nothing loads. */
async function navigate(page: Page, hash: string): Promise<number> {
  await page.evaluate((h) => {
    (window as any).__t0 = performance.now();
    location.hash = h;
  }, hash);
  const handle = await page.waitForFunction(
    () => {
      const tw = (window as any).__trainwatch;
      const s = tw?.view() === "operation" && tw.views().full?.key === "step" && tw.chart("loss");
      return s && s.x.length > 0 && tw.loading() === 0 ? performance.now() - (window as any).__t0 : false;
    },
    null,
    { timeout: 120_000, polling: "raf" },
  );
  return (await handle.jsonValue()) as number;
}

/** A read the page made, asked again from here (one warm-up, then the median of 3): server time and bytes. */
async function replay(u: string): Promise<{ time: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 4; i++) {
    const start = performance.now();
    bytes = (await (await fetch(u)).arrayBuffer()).byteLength;
    if (i > 0) times.push(performance.now() - start);
  }
  return { time: median(times), bytes };
}
