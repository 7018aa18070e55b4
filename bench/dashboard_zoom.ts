/**
 * (e) of bench/dashboard.ts: long runs and drag-to-zoom. Stores a `big`-epoch run and `overlay` runs × `overlayEpochs`
 * epochs, each with a custom metric (grad_norm) hiding one spike and one NaN (in the first overlay run), in batches of
 * 10,000 epochs, completed (so no page polls while it is measured), and prints: the ingest time; for the long run's page and the overlay's comparison page in Chromium,
 * the time to first draw, each reply the page asked for (replayed from here: server time and bytes), whether the spike
 * and the NaN are in the chart's data at every zoom level (whole run, 10 %, 1 %, 0.1 % of the run around them), how long
 * each zoom takes from the request to its draw, and whether a zoom holding fewer epochs than points came back whole.
 * Each goal is printed beside its figure with met / missed. Page times come from the page (performance.now around the
 * same hooks a drag uses, window.__trainwatch.zoom); the first draw is sampled once a frame, so ±16 ms.
 */
import type { Page } from "playwright-core";
import { chromiumPresent, launchChromium } from "../tests/fixtures/browser.ts";

export interface ZoomOptions {
  big: number;
  overlay: number;
  overlayEpochs: number;
  samples: number;
  /** Only the overlay: no long run stored, no long-run page (`--overlay-only`). */
  overlayOnly?: boolean;
}

const BATCH = 10_000;
const SPIKE_VALUE = 80;
const FIRST_DRAW_GOAL = 500;
const ZOOM_GOAL = 500;
const FULL_RESOLUTION_GOAL = 200;

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const ms = (n: number) => `${n.toFixed(0)} ms`;
const size = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${(n / 1024).toFixed(0)} KB`);
const count = (n: number) => n.toLocaleString("en");

/** The figures table, printed as it fills and again whole at the end (markdown, for docs/dashboard.md). */
const table: string[] = [];
function figure(name: string, measured: string, goal?: string, met?: boolean): void {
  const verdict = goal === undefined ? "" : met ? "met" : "MISSED";
  table.push(`| ${name} | ${measured} | ${goal ?? "—"} | ${verdict || "—"} |`);
  console.log(`(e) ${name}: ${measured}${goal ? `   [goal ${goal}: ${verdict}]` : ""}`);
}

interface Snapshot {
  range: [number, number] | null;
  x: number[];
  series: Record<string, (number | string | null)[]>;
  marks: { series: string; from: number; to: number; kind: string }[];
}

/** The spike and the NaN of `series` in a chart's data: the spike's value among the points, the NaN marked. */
function sees(s: Snapshot, series: string, spike: number, nan: number, spikeAbove: number) {
  const v = s.series[series]?.[s.x.indexOf(spike)];
  return {
    spike: typeof v === "number" && v >= spikeAbove,
    nan: s.marks.some((m) => m.series === series && m.kind === "NaN" && m.from <= nan && nan <= m.to),
  };
}

const snapshot = (page: Page, chart: string) =>
  page.evaluate((c) => (window as any).__trainwatch.chart(c), chart) as Promise<Snapshot>;
const yes = (b: boolean) => (b ? "yes" : "no");

const wholeRange = (s: Snapshot, from: number, to: number) =>
  s.x.length === to - from + 1 && s.x[0] === from && s.x.at(-1) === to;

export async function zoomFigures(url: string, o: ZoomOptions): Promise<void> {
  const api = (path: string, init: RequestInit = {}) => fetch(`${url}/api/v1${path}`, init);
  const post = async (path: string, body: unknown) => {
    const res = await api(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as any;
  };
  const register = async (name: string, total: number) =>
    (await post("/operations", { operation_type: "training", name, total_epochs_planned: total })).data
      .operation_id as string;

  // The long run: a slow decay with noise; grad_norm hides one spike and, 0.04 % of the run later (400 epochs of a
  // million), one NaN, so the 0.1 % zoom around them holds both.
  const spike = Math.floor(o.big * 0.654321);
  const nan = Math.min(o.big - 1, spike + Math.max(1, Math.floor(o.big * 0.0004)));
  const longEpoch = (e: number) => ({
    epoch: e,
    train_loss: 2 * Math.exp(-e / (o.big / 5)) + 0.05 + 0.01 * Math.sin(e * 1.3),
    val_loss: 2.1 * Math.exp(-e / (o.big / 5)) + 0.08 + 0.012 * Math.cos(e * 0.7),
    learning_rate: 0.001,
    grad_norm: e === spike ? SPIKE_VALUE : e === nan ? "NaN" : 1 + 0.1 * Math.cos(e / 3),
  });
  let long: string | null = null;
  let t0 = performance.now();
  if (!o.overlayOnly) {
    long = await register(`long-${o.big}`, o.big);
    for (let from = 0; from < o.big; from += BATCH)
      await post(`/operations/${long}/metrics`, {
        epochs: Array.from({ length: Math.min(BATCH, o.big - from) }, (_, i) => longEpoch(from + i)),
      });
    const ingestLong = performance.now() - t0;
    await post(`/operations/${long}/complete`, { status: "completed" });
    figure(
      `ingest ${count(o.big)} epochs (${BATCH / 1000}k per POST)`,
      `${(ingestLong / 1000).toFixed(1)} s (${count(Math.round(o.big / (ingestLong / 1000)))} epochs/s)`,
    );
  }

  // The overlay: runs × epochs with the usual six fields and grad_norm; the first run hides a spike and a NaN.
  const oSpike = Math.floor(o.overlayEpochs * 0.6543);
  const oNan = oSpike + 246;
  const overlayEpoch = (run: number, e: number) => {
    const noise = Math.sin(e * 12.9898 + run) * 0.01;
    return {
      epoch: e,
      train_loss: 2.3 * Math.exp(-e / (1500 + run * 10)) + 0.05 + noise,
      val_loss: 2.4 * Math.exp(-e / (1700 + run * 10)) + 0.08 + noise * 1.3,
      train_accuracy: 1 - Math.exp(-e / 1500) * 0.9 + noise,
      val_accuracy: 1 - Math.exp(-e / 1700) * 0.92 + noise,
      learning_rate: 0.001 * 0.5 ** Math.floor(e / 3000),
      duration: 1.2 + noise,
      grad_norm: run === 0 && e === oSpike ? SPIKE_VALUE : run === 0 && e === oNan ? "NaN" : 1 + noise * 5,
    };
  };
  const overlay: string[] = [];
  t0 = performance.now();
  for (let r = 0; r < o.overlay; r++) {
    const id = await register(`overlay-${r}`, o.overlayEpochs);
    overlay.push(id);
    for (let from = 0; from < o.overlayEpochs; from += BATCH)
      await post(`/operations/${id}/metrics`, {
        epochs: Array.from({ length: Math.min(BATCH, o.overlayEpochs - from) }, (_, i) => overlayEpoch(r, from + i)),
      });
    await post(`/operations/${id}/complete`, { status: "completed" });
  }
  figure(
    `ingest ${o.overlay} runs × ${count(o.overlayEpochs)} epochs`,
    `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  /** Replays requests the page made (in parallel, as the page sends them): median wall time and the bytes of one round. */
  async function replay(urls: string[]): Promise<{ time: number; bytes: number }> {
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < o.samples + 1; i++) {
      const start = performance.now();
      const sizes = await Promise.all(urls.map(async (u) => (await (await fetch(u)).arrayBuffer()).byteLength));
      if (i > 0) times.push(performance.now() - start); // one warm-up
      bytes = sizes.reduce((a, b) => a + b, 0);
    }
    return { time: median(times), bytes };
  }

  /** The metrics and comparison requests the page made since the last navigation or zoom. */
  const requests: string[] = [];
  if (!chromiumPresent) {
    console.log("(e) page figures skipped: Chromium is missing");
    return;
  }
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("request", (r) => {
      if (/\/api\/v1\/operations\/([^/]+\/metrics|compare|curves)\?/.test(r.url())) requests.push(r.url());
    });
    await page.addInitScript(() => localStorage.setItem("trainwatch.smoothing", "0.6"));
    await page.goto(`${url}/#/`);
    await page.waitForSelector("tr[data-op]", { timeout: 60_000 });

    if (long !== null) await longRunPage(page, long, { spike, nan });
    await overlayPage(page, overlay, { spike: oSpike, nan: oNan });
  } finally {
    await browser.close();
  }
  console.log("\n(e) | Figure | Measured | Goal | Result |\n(e) | --- | --- | --- | --- |");
  for (const line of table) console.log(`(e) ${line}`);

  /** Navigates the warm page to `hash`; resolves with the page's time until `chart` holds data and nothing loads. */
  async function navigate(page: Page, hash: string, chart: string): Promise<{ drawn: number; fetched: number }> {
    requests.length = 0;
    await page.evaluate((h) => {
      (window as any).__t0 = performance.now();
      location.hash = h;
    }, hash);
    const handle = await page.waitForFunction(
      (c) => {
        const tw = (window as any).__trainwatch;
        const s = tw?.view() !== "list" && tw.chart(c);
        return s && s.x.length > 0 && tw.loading() === 0 ? performance.now() - (window as any).__t0 : false;
      },
      chart,
      { timeout: 120_000 },
    );
    return { drawn: (await handle.jsonValue()) as number, fetched: await repliesIn(page) };
  }

  /**
   * When the chart's last reply since window.__t0 was in, as the page saw it (Resource Timing): what a draw time spent
   * waiting for the server and the network, the rest being the page's own work.
   */
  function repliesIn(page: Page): Promise<number> {
    return page.evaluate(() => {
      const t0 = (window as any).__t0 as number;
      const mine = performance
        .getEntriesByType("resource")
        .filter((r) => r.startTime >= t0 && /\/(metrics|compare|curves)\?/.test(r.name)) as PerformanceResourceTiming[];
      performance.clearResourceTimings();
      return mine.length ? Math.max(...mine.map((r) => r.responseEnd)) - t0 : 0;
    });
  }

  /**
   * Zooms `samples` times into from … to (resetting between), as a drag does: the median time from the request to the
   * draw and until the replies were in, the chart's data after the last, and the requests it made.
   */
  async function zoomSamples(page: Page, chart: string, from: number, to: number) {
    const times: number[] = [];
    const replies: number[] = [];
    let zoomed: Snapshot | null = null;
    let zoomReq: string[] = [];
    for (let i = 0; i < o.samples; i++) {
      requests.length = 0;
      times.push(
        (await page.evaluate(
          ([f, t]) => {
            (window as any).__t0 = performance.now();
            return (window as any).__trainwatch.zoom(f, t);
          },
          [from, to],
        )) as number,
      );
      replies.push(await repliesIn(page));
      zoomed = await snapshot(page, chart);
      zoomReq = [...requests];
      if (i < o.samples - 1) await page.evaluate(() => (window as any).__trainwatch.resetZoom());
    }
    return { time: median(times), replies: median(replies), zoomed: zoomed!, zoomReq };
  }

  async function longRunPage(page: Page, id: string, at: { spike: number; nan: number }) {
    const { drawn: first, fetched } = await navigate(page, `#/op/${id}`, "custom:grad_norm");
    const full = await snapshot(page, "custom:grad_norm");
    const fullReq = requests.filter((u) => u.includes(`/operations/${id}/metrics?`));
    const centre = Math.round((at.spike + at.nan) / 2);
    const around = (share: number) => {
      const width = Math.max(3, Math.round(o.big * share));
      const from = Math.max(0, Math.min(o.big - width, centre - Math.floor(width / 2)));
      return { width, from, to: from + width - 1 };
    };
    // Right after the first draw the page asks for its analysis, which judges every epoch on the server's one thread:
    // a zoom asked then waits behind it.
    const early = around(0.1);
    const behind = (await page.evaluate(
      ([f, t]) => (window as any).__trainwatch.zoom(f, t),
      [early.from, early.to],
    )) as number;
    const recommended = (await (
      await page.waitForFunction(
        () => document.querySelector("[data-action]") && performance.now() - (window as any).__t0,
        null,
        { timeout: 120_000 },
      )
    ).jsonValue()) as number;
    await page.evaluate(() => (window as any).__trainwatch.resetZoom());
    const server = await replay(fullReq);
    figure(
      `${count(o.big)}-epoch run: GET /metrics, whole run (${new URL(fullReq[0]!).search.slice(1)})`,
      `${ms(server.time)}, ${size(server.bytes)}, ${count(full.x.length)} points`,
    );
    figure(
      `${count(o.big)}-epoch run: page drawn after navigation`,
      `${ms(first)} (its reply in after ${ms(fetched)})`,
      `≤ ${FIRST_DRAW_GOAL} ms`,
      first <= FIRST_DRAW_GOAL,
    );
    const seen = sees(full, "grad_norm:raw", at.spike, at.nan, SPIKE_VALUE);
    figure(
      `${count(o.big)}-epoch run, whole run: spike / NaN in the chart`,
      `${yes(seen.spike)} / ${yes(seen.nan)}`,
      "yes / yes",
      seen.spike && seen.nan,
    );
    const analysis = await replay([`${url}/api/v1/operations/${id}/analysis`]);
    figure(
      `${count(o.big)}-epoch run: GET /analysis (the recommendation; judges every epoch), asked after the first draw`,
      `${ms(analysis.time)}, ${size(analysis.bytes)}; shown ${ms(recommended)} after navigation`,
    );
    figure(
      `${count(o.big)}-epoch run: 10 % zoom asked right after the first draw (behind the analysis), request → drawn`,
      ms(behind),
      `≤ ${ZOOM_GOAL} ms`,
      behind <= ZOOM_GOAL,
    );

    // The zoom levels, with the analysis done.
    for (const share of [0.1, 0.01, 0.001]) {
      const { width, from, to } = around(share);
      const { time: t, replies, zoomed, zoomReq } = await zoomSamples(page, "custom:grad_norm", from, to);
      const label = `${count(o.big)}-epoch run, ${share * 100} % zoom (${count(width)} epochs)`;
      const server = await replay(zoomReq);
      const whole = wholeRange(zoomed, from, to);
      const maxPoints = Number(new URL(zoomReq[0]!).searchParams.get("max_points"));
      figure(
        `${label}: GET /metrics with from_epoch/to_epoch`,
        `${ms(server.time)}, ${size(server.bytes)}, ${count(zoomed.x.length)} points${whole ? " (every epoch)" : ""}`,
      );
      if (width <= maxPoints)
        figure(
          `${label}: at full resolution, request → drawn`,
          `${ms(t)} (replies in after ${ms(replies)})${whole ? "" : " (NOT every epoch)"}`,
          `≤ ${FULL_RESOLUTION_GOAL} ms, every epoch`,
          whole && t <= FULL_RESOLUTION_GOAL,
        );
      else
        figure(
          `${label}: request → drawn`,
          `${ms(t)} (replies in after ${ms(replies)})`,
          `≤ ${ZOOM_GOAL} ms`,
          t <= ZOOM_GOAL,
        );
      const s = sees(zoomed, "grad_norm:raw", at.spike, at.nan, SPIKE_VALUE);
      figure(`${label}: spike / NaN in the chart`, `${yes(s.spike)} / ${yes(s.nan)}`, "yes / yes", s.spike && s.nan);
    }
    const reset = (await page.evaluate(() => (window as any).__trainwatch.resetZoom())) as number;
    figure(
      `${count(o.big)}-epoch run: reset zoom → whole run drawn`,
      ms(reset),
      `≤ ${ZOOM_GOAL} ms`,
      reset <= ZOOM_GOAL,
    );
  }

  async function overlayPage(page: Page, ids: string[], at: { spike: number; nan: number }) {
    const label = `${ids.length} runs × ${count(o.overlayEpochs)} epochs overlaid`;
    // The chart first (GET /operations/curves), then the table (GET /operations/compare, every run judged).
    const { drawn: first, fetched } = await navigate(page, `#/compare/${ids.join(",")}`, "compare");
    const curvesReq = requests.filter((u) => u.includes("/operations/curves?"));
    const points = (await snapshot(page, "compare")).x.length;
    await page.waitForFunction((n) => document.querySelectorAll("tr[data-run]").length === n, ids.length, {
      timeout: 120_000,
    });
    const table = (await page.evaluate(() => performance.now() - (window as any).__t0)) as number;
    const curves = await replay(curvesReq);
    const q = new URL(curvesReq[0]!).searchParams;
    figure(
      `${label}: GET /operations/curves, whole runs (max_points=${q.get("max_points")} per run, fields=${q.get("fields")}, smoothing=${q.get("smoothing")})`,
      `${ms(curves.time)}, ${size(curves.bytes)}`,
    );
    figure(
      `${label}: chart drawn after navigation`,
      `${ms(first)} (its reply in after ${ms(fetched)}; ${count(points)} x values)`,
      `≤ ${FIRST_DRAW_GOAL} ms`,
      first <= FIRST_DRAW_GOAL,
    );
    const compare = await replay(requests.filter((u) => u.includes("/operations/compare?")));
    figure(
      `${label}: GET /operations/compare, the table (judges every run)`,
      `${ms(compare.time)}, ${size(compare.bytes)}`,
    );
    figure(`${label}: table shown after navigation`, ms(table));
    // The same whole runs unsmoothed: what the smoothing costs (the EMA needs every epoch of every run).
    const unsmoothed = new URL(curvesReq[0]!);
    unsmoothed.searchParams.delete("smoothing");
    const raw = await replay([unsmoothed.href]);
    figure(`${label}: the same GET /operations/curves without smoothing`, `${ms(raw.time)}, ${size(raw.bytes)}`);

    // The hidden spike and NaN are in grad_norm: picking it fetches every run's grad_norm (GET /operations/curves).
    requests.length = 0;
    await page.evaluate(() => ((window as any).__t0 = performance.now()));
    await page.selectOption("#metric", "grad_norm");
    const switched = (await (
      await page.waitForFunction(
        () => (window as any).__trainwatch.loading() === 0 && performance.now() - (window as any).__t0,
        null,
        { timeout: 60_000 },
      )
    ).jsonValue()) as number;
    const switchServer = await replay([...requests]);
    figure(
      `${label}: another metric, GET /operations/curves (whole runs, fields=grad_norm)`,
      `${ms(switchServer.time)}, ${size(switchServer.bytes)}`,
    );
    figure(
      `${label}: another metric, picked → drawn`,
      ms(switched),
      `≤ ${FIRST_DRAW_GOAL} ms`,
      switched <= FIRST_DRAW_GOAL,
    );
    const series = Object.keys((await snapshot(page, "compare")).series)[0]!;
    // Smoothed (w = 0.6), the one-epoch spike keeps 40 % of its height: far above the curve's ~1.
    const seen = sees(await snapshot(page, "compare"), series, at.spike, at.nan, 0.4 * SPIKE_VALUE);
    figure(
      `${label}, whole runs: spike / NaN in the chart`,
      `${yes(seen.spike)} / ${yes(seen.nan)}`,
      "yes / yes",
      seen.spike && seen.nan,
    );

    const from = at.spike - 150;
    const to = from + 499;
    const { time: t, replies, zoomed, zoomReq } = await zoomSamples(page, "compare", from, to);
    const zoomServer = await replay(zoomReq);
    const whole = wholeRange(zoomed, from, to);
    figure(
      `${label}, 500-epoch zoom: GET /operations/curves with from_epoch/to_epoch (fields=grad_norm)`,
      `${ms(zoomServer.time)}, ${size(zoomServer.bytes)}`,
    );
    figure(
      `${label}, 500-epoch zoom at full resolution, request → drawn`,
      `${ms(t)} (replies in after ${ms(replies)})${whole ? "" : " (NOT every epoch)"}`,
      `≤ ${FULL_RESOLUTION_GOAL} ms, every epoch`,
      whole && t <= FULL_RESOLUTION_GOAL,
    );
    const s = sees(zoomed, series, at.spike, at.nan, 0.4 * SPIKE_VALUE);
    figure(
      `${label}, 500-epoch zoom: spike / NaN in the chart`,
      `${yes(s.spike)} / ${yes(s.nan)}`,
      "yes / yes",
      s.spike && s.nan,
    );
  }
}
