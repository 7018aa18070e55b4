// Drag-to-zoom on the dashboard's charts, in a real headless Chromium (Debian's package) against a real server process:
// a 20,000-epoch run hides one spike and one NaN in a custom metric. Both show in the whole-run view and in every zoom;
// a drag asks the server for the range (from_epoch/to_epoch) and a 500-epoch range comes back whole, every epoch of it;
// the smoothed curve is the server's EMA over every stored epoch, not one over the sample; live epochs past the range
// leave a zoomed view where it is; a double-click or Reset zoom returns to the whole run.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { emaSmooth } from "../src/trends/smoothing.ts";
import {
  apiCaller,
  chartHooks,
  describeInBrowser,
  launchChromium,
  nanMarked,
  pageWithErrors,
  valueAt,
} from "./fixtures/browser.ts";
import { startServerProcess, until, type ServerProcess } from "./helpers.ts";

const N = 20_000;
const SPIKE = 12_345;
const NAN = 12_456;
const SMOOTHING = 0.6;
const trainLoss = (e: number) => 2 * Math.exp(-e / 6000) + 0.05 * Math.sin(e * 1.7);
/** grad_norm hovers around 1; one epoch spikes to 50, one is NaN. */
const gradNorm = (e: number): number | string => (e === SPIKE ? 50 : e === NAN ? "NaN" : 1 + 0.1 * Math.cos(e / 3));
const epoch = (e: number, run = 0) => ({
  epoch: e,
  train_loss: trainLoss(e) + run * 0.1,
  val_loss: 2.2 * Math.exp(-e / 6000) + run * 0.1,
  grad_norm: gradNorm(e),
});

describeInBrowser("chart zoom in headless Chromium", () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  /** Every metrics and comparison request the page made. */
  const requests: URL[] = [];
  let id = "";
  let other = "";

  const call = apiCaller(() => server.url);
  const post = (op: string, from: number, to: number, run = 0) =>
    call("POST", `/operations/${op}/metrics`, {
      epochs: Array.from({ length: to - from }, (_, i) => epoch(from + i, run)),
    });
  const register = async (name: string) =>
    (await call("POST", "/operations", { operation_type: "training", name })).operation_id as string;

  /** Drags across `over` (a chart's plot) from epoch a to epoch b, with the chart's current x scale. */
  async function drag(overSelector: string, chart: string, a: number, b: number) {
    const box = (await page.locator(overSelector).boundingBox())!;
    const { scale } = await snapshot(chart);
    const px = (e: number) => box.x + ((e - scale.min) / (scale.max - scale.min)) * box.width;
    const y = box.y + box.height / 2;
    await page.mouse.move(px(a), y);
    await page.mouse.down();
    await page.mouse.move((px(a) + px(b)) / 2, y, { steps: 4 });
    await page.mouse.move(px(b), y, { steps: 4 });
    await page.mouse.up();
  }
  // The page is opened in beforeAll.
  const snapshot = (chart: string) => chartHooks(page).snapshot(chart);
  const settled = (chart: string, ok: string) => chartHooks(page).settled(chart, ok);
  const lastRequest = (path: string) => requests.filter((u) => u.pathname.endsWith(path)).at(-1)!;

  beforeAll(async () => {
    server = await startServerProcess();
    id = await register("long-with-spike");
    other = await register("long-other");
    await post(id, 0, 10_000);
    await post(id, 10_000, N);
    await post(other, 0, 10_000, 1);
    await post(other, 10_000, N, 1);
    browser = await launchChromium();
    page = await pageWithErrors(browser, pageErrors, { width: 1400, height: 1200 });
    page.on("request", (r) => {
      const u = new URL(r.url());
      if (/\/(metrics|compare|curves)$/.test(u.pathname)) requests.push(u);
    });
    await page.addInitScript((w) => localStorage.setItem("trainwatch.smoothing", String(w)), SMOOTHING);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const customOver = '#charts .chart-card:has(h2:text-is("grad_norm")) .u-over';

  test("the operation page: spike and NaN in the whole run and in every zoom, a 500-epoch drag at full resolution, server-side smoothing, live epochs past the range keep the view, reset returns", async () => {
    await page.goto(`${server.url}/#/op/${id}`);
    await settled("custom:grad_norm", "s.x.at(-1) === 19999");

    // The whole run: reduced to the page's budget, with the spike and the NaN among its points.
    const full = await snapshot("custom:grad_norm");
    expect(full.range).toBeNull();
    expect(full.x.length).toBeLessThan(N / 4);
    expect(full.x[0]).toBe(0);
    expect(valueAt(full, "grad_norm:raw", SPIKE)).toBe(50);
    expect(valueAt(full, "grad_norm:raw", NAN)).toBe("NaN");
    expect(nanMarked(full, "grad_norm:raw", NAN) && nanMarked(full, "grad_norm", NAN)).toBe(true);
    const first = lastRequest(`/operations/${id}/metrics`);
    expect(first.searchParams.get("smoothing")).toBe(String(SMOOTHING));
    expect(first.searchParams.has("from_epoch")).toBe(false);
    const budget = Number(first.searchParams.get("max_points"));
    expect(budget).toBeGreaterThanOrEqual(500);
    expect(full.x.length).toBeLessThanOrEqual(budget);

    // Smoothing is the EMA of every stored epoch (an EMA over the reduced points would differ at every point).
    const ema = emaSmooth(
      Array.from({ length: N }, (_, e) => trainLoss(e)),
      SMOOTHING,
    );
    const loss = await snapshot("loss");
    for (const e of [loss.x[1]!, loss.x[Math.floor(loss.x.length / 2)]!, N - 1])
      expect(valueAt(loss, "train_loss", e) as number).toBeCloseTo(ema[e]!, 9);

    // A first drag over ~2,000 epochs around them: still more epochs than points, reduced again by the server.
    await drag(customOver, "custom:grad_norm", 11_300, 13_300);
    await settled("custom:grad_norm", "s.range !== null && s.x[0] >= s.range[0]");
    const wide = await snapshot("custom:grad_norm");
    const [wFrom, wTo] = wide.range!;
    expect(wTo - wFrom).toBeGreaterThan(1500);
    expect(wTo - wFrom).toBeLessThan(2500);
    const wideReq = lastRequest(`/operations/${id}/metrics`);
    expect(wideReq.searchParams.get("from_epoch")).toBe(String(wFrom));
    expect(wideReq.searchParams.get("to_epoch")).toBe(String(wTo));
    expect(wide.x[0]).toBe(wFrom);
    expect(wide.x.at(-1)).toBe(wTo);
    expect(valueAt(wide, "grad_norm:raw", SPIKE)).toBe(50);
    expect(nanMarked(wide, "grad_norm:raw", NAN)).toBe(true);
    // Every chart on the page shows the same range.
    expect((await snapshot("loss")).range).toEqual([wFrom, wTo]);

    // A second drag, inside the zoom, over ~500 epochs: fewer than the budget, so every epoch of the range is there.
    await drag(customOver, "custom:grad_norm", 12_200, 12_700);
    await settled("custom:grad_norm", `s.range !== null && s.range[0] !== ${wFrom} && s.x[0] === s.range[0]`);
    const close = await snapshot("custom:grad_norm");
    const [from, to] = close.range!;
    expect(to - from).toBeGreaterThan(450);
    expect(to - from).toBeLessThan(550);
    expect(close.x).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i));
    const closeReq = lastRequest(`/operations/${id}/metrics`);
    expect(closeReq.searchParams.get("from_epoch")).toBe(String(from));
    expect(closeReq.searchParams.get("to_epoch")).toBe(String(to));
    expect(closeReq.searchParams.get("smoothing")).toBe(String(SMOOTHING));
    expect(valueAt(close, "grad_norm:raw", SPIKE)).toBe(50);
    expect(valueAt(close, "grad_norm:raw", NAN)).toBe("NaN");
    expect(nanMarked(close, "grad_norm:raw", NAN) && nanMarked(close, "grad_norm", NAN)).toBe(true);
    // The zoom's smoothed curve starts from the epochs before it, as the whole run's does.
    const zoomedLoss = await snapshot("loss");
    expect(valueAt(zoomedLoss, "train_loss", from) as number).toBeCloseTo(ema[from]!, 9);
    expect(await page.textContent("[data-testid=zoom-range]")).toContain(from.toLocaleString("en"));

    // Live epochs past the range reach the whole run's view but leave the zoomed view as it was.
    await post(id, N, N + 100);
    await page.waitForFunction(() => (window as any).__trainwatch.views().full.last === 20_099, null, {
      timeout: 10_000,
    });
    const after = await snapshot("custom:grad_norm");
    expect(after.range).toEqual([from, to]);
    expect(after.scale).toEqual(close.scale);
    expect(after.x).toEqual(close.x);

    // A double-click returns to the whole run, live epochs included, the spike and NaN still there.
    await page.dblclick(customOver);
    await settled("custom:grad_norm", "s.range === null && s.x.at(-1) === 20099");
    const reset = await snapshot("custom:grad_norm");
    expect(reset.x[0]).toBe(0);
    expect(reset.scale.min).toBe(0);
    expect(reset.scale.max).toBe(20_099);
    expect(valueAt(reset, "grad_norm:raw", SPIKE)).toBe(50);
    expect(nanMarked(reset, "grad_norm:raw", NAN)).toBe(true);
    expect(await page.isVisible("#reset-zoom")).toBe(false);

    // A new weight on the slider is a new request: the server smooths again, over every epoch.
    const before = requests.length;
    await page.evaluate(() => {
      const input = document.querySelector("[data-testid=smoothing]") as HTMLInputElement;
      input.value = "0.9";
      input.dispatchEvent(new Event("input"));
    });
    // The slider asks once it rests: wait for that request, then for its draw.
    await until("the page to ask for smoothing=0.9", () =>
      requests
        .slice(before)
        .some((u) => u.pathname.endsWith(`/operations/${id}/metrics`) && u.searchParams.get("smoothing") === "0.9"),
    );
    await settled("loss", "true");
    const ema9 = emaSmooth(
      Array.from({ length: N }, (_, e) => trainLoss(e)),
      0.9,
    );
    const loss9 = await snapshot("loss");
    const mid = loss9.x[Math.floor(loss9.x.length / 3)]!;
    expect(valueAt(loss9, "train_loss", mid) as number).toBeCloseTo(ema9[mid]!, 9);
    expect(pageErrors).toEqual([]);
  });

  test("the comparison page: a drag asks for every run's curves of the range, a 500-epoch zoom holds every epoch with the spike and the NaN, and Reset zoom returns", async () => {
    // The slider's weight is remembered across pages: back to the one this test expects.
    await page.evaluate((w) => localStorage.setItem("trainwatch.smoothing", String(w)), SMOOTHING);
    await page.goto(`${server.url}/#/compare/${id},${other}`);
    await page.waitForSelector(`#metric option:text-is("grad_norm")`, { state: "attached", timeout: 10_000 });
    await page.selectOption("#metric", "grad_norm");
    await settled("compare", "s.x.length > 2");
    const full = await snapshot("compare");
    const [a, b] = Object.keys(full.series);
    // The chart's curves come apart from the table: every run's, of the metric shown, smoothed by the server.
    const curvesReq = lastRequest("/operations/curves");
    expect(curvesReq.searchParams.get("smoothing")).toBe(String(SMOOTHING));
    expect(curvesReq.searchParams.get("fields")).toBe("grad_norm");
    expect(curvesReq.searchParams.has("from_epoch")).toBe(false);
    // The smoothed spike (the server's EMA) stands far above the curve's ~1, and the NaN is marked on both runs.
    expect(valueAt(full, a!, SPIKE) as number).toBeGreaterThan(10);
    expect(nanMarked(full, a!, NAN)).toBe(true);
    expect(nanMarked(full, b!, NAN)).toBe(true);

    const over = "#compare-chart .u-over";
    await drag(over, "compare", 12_150, 12_650);
    await settled("compare", "s.range !== null && s.x[0] >= s.range[0]");
    const zoom = await snapshot("compare");
    const [from, to] = zoom.range!;
    expect(to - from).toBeGreaterThan(400);
    expect(to - from).toBeLessThan(600);
    expect(zoom.x).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i));
    // One request for every run's curves, narrowed to the metric shown.
    const req = lastRequest("/operations/curves");
    expect(req.searchParams.get("ids")).toBe(`${id},${other}`);
    expect(req.searchParams.get("from_epoch")).toBe(String(from));
    expect(req.searchParams.get("to_epoch")).toBe(String(to));
    expect(req.searchParams.get("fields")).toBe("grad_norm");
    expect(valueAt(zoom, a!, SPIKE) as number).toBeGreaterThan(10);
    expect(valueAt(zoom, b!, NAN)).toBe("NaN");
    expect(nanMarked(zoom, a!, NAN)).toBe(true);

    await page.click("#reset-zoom");
    const last = (await call("GET", `/operations/${id}/metrics?max_points=3`)).metrics.epochs.at(-1).epoch as number;
    await settled("compare", `s.range === null && s.x.at(-1) === ${last}`);
    const reset = await snapshot("compare");
    expect(reset.x[0]).toBe(0);
    expect(nanMarked(reset, a!, NAN)).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});
