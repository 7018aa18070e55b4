// Step runs on the dashboard, in a real headless Chromium (Debian's package) against a real server process: a
// 5,000-step run (3 epochs of 2,000 steps, an evaluation every 50 steps, one loss spike and one NaN) is charted by step.
// The whole run comes reduced to the page's max_points with the spike and the NaN among its points, the evaluations as
// points of their own, the ends of the closed epochs marked and the progress in steps; a live `steps` event appends
// (and marks the epoch it closes); a zoom re-reads GET …/steps by step, at full resolution; the comparison overlays
// two step runs by step. A run first seen without steps turns to step charts when its first steps arrive.
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
import { startServerProcess, type ServerProcess } from "./helpers.ts";

const N = 5_000;
const PER_EPOCH = 2_000;
const EVERY = 50;
const SPIKE = 3_210;
const NAN = 1_234;
const SMOOTHING = 0.6;
const trainLoss = (s: number) => 2 * Math.exp(-s / 1500) + 0.02 * Math.sin(s * 1.3);
/** A step row: the loss with one spike and one NaN, an evaluation every 50 steps, lr, grad_norm and the step time. */
const step = (s: number, run = 0) => ({
  step: s,
  epoch: Math.floor(s / PER_EPOCH),
  train_loss: s === SPIKE ? 40 : s === NAN ? "NaN" : trainLoss(s) + run * 0.1,
  learning_rate: 0.001 * (1 - s / 10_000),
  grad_norm: 1 + 0.1 * Math.cos(s / 7),
  duration: 0.05,
  ...(s % EVERY === 0 ? { val_loss: 2.1 * Math.exp(-s / 1500) + run * 0.1 } : {}),
});

describeInBrowser("step runs on the dashboard, in headless Chromium", () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  /** Every chart read the page made. */
  const requests: URL[] = [];
  let id = "";
  let other = "";

  const call = apiCaller(() => server.url);
  const post = (op: string, from: number, to: number, run = 0) =>
    call("POST", `/operations/${op}/steps`, {
      steps: Array.from({ length: to - from }, (_, i) => step(from + i, run)),
    });
  const register = async (name: string, extra: Record<string, unknown> = {}) =>
    (await call("POST", "/operations", { operation_type: "training", name, ...extra })).operation_id as string;

  // The page is opened in beforeAll.
  const snapshot = (chart: string) => chartHooks(page).snapshot(chart);
  const settled = (chart: string, ok: string) => chartHooks(page).settled(chart, ok);
  const lastRequest = (path: string) => requests.filter((u) => u.pathname.endsWith(path)).at(-1)!;

  beforeAll(async () => {
    server = await startServerProcess();
    id = await register("steps-with-spike", { total_steps_planned: 10_000 });
    other = await register("steps-other");
    await post(id, 0, N);
    await post(other, 0, N, 1);
    browser = await launchChromium();
    page = await pageWithErrors(browser, pageErrors, { width: 1400, height: 1400 });
    page.on("request", (r) => {
      const u = new URL(r.url());
      if (/\/(metrics|steps|compare|curves)$/.test(u.pathname)) requests.push(u);
    });
    await page.addInitScript((w) => localStorage.setItem("trainwatch.smoothing", String(w)), SMOOTHING);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("the operation page charts a step run by step: spike and NaN at max_points, evaluations as points, epoch ends marked, progress in steps, a live step appends, a zoom re-reads by step", async () => {
    await page.goto(`${server.url}/#/op/${id}`);
    await settled("loss", `s.x.at(-1) === ${N - 1}`);
    // The step judgement's marks come with the analysis: the spike at its step on the loss chart.
    await settled("loss", `s.lines.some((l) => l.x === ${SPIKE})`);

    // The whole run, reduced to the page's budget, read from GET …/steps.
    const full = await snapshot("loss");
    const first = lastRequest(`/operations/${id}/steps`);
    const budget = Number(first.searchParams.get("max_points"));
    expect(budget).toBeGreaterThanOrEqual(500);
    expect(budget).toBeLessThan(N);
    expect(first.searchParams.get("smoothing")).toBe(String(SMOOTHING));
    expect(first.searchParams.has("from_step")).toBe(false);
    expect(full.range).toBeNull();
    expect(full.x.length).toBeLessThanOrEqual(budget);
    expect(full.x[0]).toBe(0);
    // The spike and the NaN survive the reduction, on the raw curve and the smoothed one; the NaN is marked.
    expect(valueAt(full, "train_loss:raw", SPIKE)).toBe(40);
    expect(valueAt(full, "train_loss:raw", NAN)).toBe("NaN");
    expect(valueAt(full, "train_loss", SPIKE) as number).toBeGreaterThan(5);
    expect(nanMarked(full, "train_loss:raw", NAN) && nanMarked(full, "train_loss", NAN)).toBe(true);
    // The smoothed curve is the server's EMA over every stored step.
    const ema = emaSmooth(
      Array.from({ length: N }, (_, s) => (s === SPIKE ? 40 : s === NAN ? Number.NaN : trainLoss(s))),
      SMOOTHING,
    );
    const mid = full.x[Math.floor(full.x.length / 2)]!;
    expect(valueAt(full, "train_loss", mid) as number).toBeCloseTo(ema[mid]!, 9);
    // Evaluations are a series of their own, only at the steps they were taken at, never smoothed.
    const evals = full.x.filter((_, i) => full.series.val_loss![i] !== null);
    expect(evals.length).toBeGreaterThan(10);
    expect(evals.every((s) => s % EVERY === 0)).toBe(true);
    for (const s of evals) expect(valueAt(full, "val_loss", s) as number).toBeCloseTo(2.1 * Math.exp(-s / 1500), 9);
    // The closed epochs' ends are marked on every step chart; the open epoch (2) has none yet. The loss chart marks the
    // spike too (the step judgement's: 40 ÷ a level near 0.26, back in its band at once).
    const ends = [
      { x: 1999, label: "epoch 0" },
      { x: 3999, label: "epoch 1" },
    ];
    expect(full.lines).toEqual([
      ends[0]!,
      { x: SPIKE, label: expect.stringMatching(/^spike ×\d+ recovered$/) },
      ends[1]!,
    ]);
    expect((await snapshot("grad_norm")).lines).toEqual(ends);
    // The learning rate, the gradient norm and the step time have charts of their own, by step.
    for (const chart of ["lr", "grad_norm", "duration"]) expect((await snapshot(chart)).x).toEqual(full.x);
    expect(await page.isVisible("#card-grad_norm")).toBe(true);
    expect(await page.isVisible("#card-accuracy")).toBe(false);
    // Progress in steps, of the steps planned.
    expect(await page.textContent("#head-progress")).toContain("5,000 / 10,000 steps");

    // A live `steps` event appends: steps of epoch 3 close epoch 2, whose end is then marked.
    await post(id, N, N + 10);
    await call("POST", `/operations/${id}/steps`, { steps: [{ ...step(6_000), epoch: 3 }] });
    await settled("loss", "s.x.at(-1) === 6000");
    const live = await snapshot("loss");
    expect(live.x.slice(-11)).toEqual([...Array.from({ length: 10 }, (_, i) => N + i), 6000]);
    expect(live.lines.at(-1)).toEqual({ x: N + 9, label: "epoch 2" });
    expect(await page.textContent("#head-progress")).toContain("6,001 / 10,000 steps");
    const stepReads = requests.filter((u) => u.pathname.endsWith(`/operations/${id}/steps`)).length;

    // A zoom re-reads GET …/steps by step: a 500-step range comes back whole, the spike in it.
    await page.evaluate(() => (window as any).__trainwatch.zoom(3_000, 3_500));
    await settled("loss", "s.range !== null && s.x[0] === 3000");
    const zoom = await snapshot("loss");
    const zoomReq = lastRequest(`/operations/${id}/steps`);
    expect(requests.filter((u) => u.pathname.endsWith(`/operations/${id}/steps`)).length).toBe(stepReads + 1);
    expect(zoomReq.searchParams.get("from_step")).toBe("3000");
    expect(zoomReq.searchParams.get("to_step")).toBe("3500");
    expect(zoom.x).toEqual(Array.from({ length: 501 }, (_, i) => 3000 + i));
    expect(valueAt(zoom, "train_loss:raw", SPIKE)).toBe(40);
    expect(await page.textContent("[data-testid=zoom-range]")).toContain("steps 3,000 – 3,500");
    // …and the NaN survives every zoom that holds it.
    await page.evaluate(() => (window as any).__trainwatch.zoom(1_000, 1_400));
    await settled("loss", "s.range !== null && s.x[0] === 1000");
    expect(nanMarked(await snapshot("loss"), "train_loss:raw", NAN)).toBe(true);
    await page.evaluate(() => (window as any).__trainwatch.resetZoom());
    await settled("loss", "s.range === null");
    expect((await page.evaluate(() => (window as any).__trainwatch.views())).full.key).toBe("step");
    expect(pageErrors).toEqual([]);
  });

  test("a run first seen without steps turns to step charts when its first steps arrive live", async () => {
    const fresh = await register("steps-later");
    await page.goto(`${server.url}/#/op/${fresh}`);
    await page.waitForFunction(() => (window as any).__trainwatch.view() === "operation");
    await page.waitForFunction(() => (window as any).__trainwatch.loading() === 0);
    expect((await page.evaluate(() => (window as any).__trainwatch.views())).full?.key ?? "epoch").toBe("epoch");
    await post(fresh, 0, 120);
    await settled("loss", "s.x.at(-1) === 119");
    const loss = await snapshot("loss");
    expect(loss.x).toEqual(Array.from({ length: 120 }, (_, i) => i));
    expect(loss.series.val_loss!.filter((v) => v !== null)).toHaveLength(3);
    await post(fresh, 120, 130);
    await settled("loss", "s.x.at(-1) === 129");
    expect(await page.textContent("#head-progress")).toContain("130 steps");
    expect(pageErrors).toEqual([]);
  });

  test("the comparison overlays two step runs by step, and a zoom there re-reads by step", async () => {
    await page.goto(`${server.url}/#/compare/${id},${other}?x=step`);
    await settled("compare", "s.x.length > 2");
    const full = await snapshot("compare");
    const curvesReq = lastRequest("/operations/curves");
    expect(curvesReq.searchParams.get("x")).toBe("step");
    expect(curvesReq.searchParams.get("fields")).toBe("train_loss");
    const [a, b] = Object.keys(full.series);
    expect(Object.keys(full.series)).toHaveLength(2);
    // Both runs on one step axis, the spike and the NaN of each among the points.
    expect(full.x[0]).toBe(0);
    expect(full.x.at(-1)).toBe(6000);
    expect(valueAt(full, b!, N - 1)).not.toBeNull();
    expect(nanMarked(full, a!, NAN) && nanMarked(full, b!, NAN)).toBe(true);
    expect(valueAt(full, a!, SPIKE) as number).toBeGreaterThan(5);
    expect(await page.inputValue("#x")).toBe("step");

    await page.evaluate(() => (window as any).__trainwatch.zoom(3_100, 3_300));
    await settled("compare", "s.range !== null && s.x[0] === 3100");
    const zoom = await snapshot("compare");
    const req = lastRequest("/operations/curves");
    expect(req.searchParams.get("from_step")).toBe("3100");
    expect(req.searchParams.get("to_step")).toBe("3300");
    expect(zoom.x).toEqual(Array.from({ length: 201 }, (_, i) => 3100 + i));

    // By epoch the same runs show their derived epoch records.
    await page.selectOption("#x", "epoch");
    await page.waitForFunction(() => location.hash.endsWith(",") === false && !location.hash.includes("x=step"));
    await settled("compare", "s.x.length >= 2");
    expect((await snapshot("compare")).x).toEqual([0, 1, 2]);
    expect(lastRequest("/operations/curves").searchParams.has("x")).toBe(false);
    expect(pageErrors).toEqual([]);
  });
});
