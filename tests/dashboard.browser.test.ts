// The dashboard in a real headless Chromium (Debian's package, never downloaded) against a real server process:
// the token is asked once, curves grow live without a reload, the overfitting badge appears when the curve turns,
// the list follows progress live, and the comparison overlays runs. Screenshots land in artifacts/.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { apiCaller, describeInBrowser, launchChromium, pageWithErrors } from "./fixtures/browser.ts";
import { DEFAULTS } from "../src/schemas/defaults.ts";
import { startServerProcess, type ServerProcess } from "./helpers.ts";
import { HOST_TRAINING, standInHost } from "./fixtures/stand_in_host.ts";
import { overfitAt14 } from "./fixtures/runs.ts";

const ARTIFACTS = join(import.meta.dir, "..", "artifacts");
const TOKEN = "browser-test-token";

/** Train loss keeps falling; val loss bottoms out at epoch 14 and climbs after: overfitting by epoch 30. */
const epoch = (e: number) => ({
  epoch: e,
  ...overfitAt14(e),
  train_accuracy: 1 - 0.5 * 0.93 ** e,
  val_accuracy: Math.min(0.8, 0.5 + 0.02 * e),
  learning_rate: 0.001,
  grad_norm: 2 * 0.95 ** e,
});

describeInBrowser("dashboard in headless Chromium", () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  /** Where the list's host training runs; the test relays its start report itself. */
  const host = standInHost();
  /** Uncaught errors in the page; each test ends by asserting there were none. */
  const pageErrors: string[] = [];

  const call = apiCaller(() => server.url, TOKEN);
  const register = async (name: string) =>
    (await call("POST", "/operations", { operation_type: "training", name, total_epochs_planned: 40 }))
      .operation_id as string;
  const post = (id: string, from: number, to: number) =>
    call("POST", `/operations/${id}/metrics`, { epochs: Array.from({ length: to - from }, (_, i) => epoch(from + i)) });
  const points = (chart = "loss") => page.evaluate((c) => (window as any).__trainwatch.chartPoints(c) as number, chart);
  const waitPoints = (n: number, chart = "loss") =>
    page.waitForFunction(([c, want]) => (window as any).__trainwatch?.chartPoints(c) === want, [chart, n] as const, {
      timeout: 10_000,
    });

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServerProcess({ TRAINWATCH_TOKEN: TOKEN, TRAINING_HOST_URL: host.url });
    browser = await launchChromium();
    page = await pageWithErrors(browser, pageErrors);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    host.stop();
  });

  test("the operation page asks for the token once, its charts grow live without a reload, and the overfitting badge appears when the curve turns", async () => {
    const id = await register("overfits");
    await post(id, 0, 10);

    await page.goto(`${server.url}/#/op/${id}`);
    // The API needs a token: the page asks for it and keeps it.
    await page.waitForSelector("#token-dialog[open]", { timeout: 10_000 });
    await page.fill("#token-input", TOKEN);
    await page.click("#token-dialog button[value=ok]");
    await waitPoints(10);
    expect(await page.evaluate(() => localStorage.getItem("trainwatch.token"))).toBe(TOKEN);
    expect(await page.evaluate(() => (window as any).__trainwatch.badges())).not.toContain("overfitting");

    // Same document from here on: a marker set now must survive every update.
    await page.evaluate(() => ((window as any).__sameDocument = true));
    for (let e = 10; e < 20; e++) await post(id, e, e + 1);
    await waitPoints(20);
    expect(await points("accuracy")).toBe(20);
    expect(await points("custom:grad_norm")).toBe(20);

    await post(id, 20, 32);
    await waitPoints(32);
    await page.waitForSelector('[data-badge="overfitting"]', { timeout: 5000 });
    expect((await call("GET", `/operations/${id}`)).trends.is_overfitting).toBe(true);
    await page.waitForSelector('[data-action="stop"]', { timeout: 5000 });
    expect(await page.textContent(".reason")).toContain("the run is overfitting");
    expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });

    // A reload keeps the token: no second prompt, and the history comes back.
    await page.reload();
    await waitPoints(32);
    expect(await page.isVisible("#token-dialog[open]")).toBe(false);
    expect(pageErrors).toEqual([]);
  });

  test("the operation page shows the config, sets a stop policy from its form, shows the decision live, and cancels as the dashboard", async () => {
    const id = (
      await call("POST", "/operations", {
        operation_type: "training",
        name: "policed",
        total_epochs_planned: 40,
        config: { lr: 0.5, optimizer: "sgd" },
      })
    ).operation_id as string;
    await post(id, 0, 3);
    await page.goto(`${server.url}/#/op/${id}`);
    await waitPoints(3);
    expect(await page.textContent("#config")).toContain("optimizer sgd");
    expect(await page.textContent("#stop-policy")).toContain("no stop policy");
    await page.check('#policy input[value="diverging"]');
    await page.fill('#policy input[name="min_epochs"]', "2");
    await page.click('#policy button[type="submit"]');
    await page.waitForFunction(
      () => document.querySelector("#stop-policy")?.textContent?.includes("stop on diverging from epoch 2"),
      null,
      { timeout: 5000 },
    );
    expect((await call("GET", `/operations/${id}`)).stop_policy).toEqual({ on: ["diverging"], min_epochs: 2 });

    // The loss explodes: the server decides, and the open page hears it from the stream.
    await call("POST", `/operations/${id}/metrics`, {
      epochs: [3, 4].map((e) => ({ epoch: e, train_loss: 10 ** e, val_loss: 10 ** e })),
    });
    await page.waitForSelector('[data-control="stop_policy"]', { timeout: 5000 });
    expect(await page.textContent('[data-control="stop_policy"]')).toStartWith("stop requested by stop_policy: ");

    page.once("dialog", (d) => void d.accept());
    await page.click("#cancel");
    await page.waitForSelector('[data-control="dashboard"]', { timeout: 5000 });
    expect((await call("GET", `/operations/${id}`)).control).toMatchObject({
      decided_by: "dashboard",
      reason: "cancelled by dashboard",
    });
    expect(pageErrors).toEqual([]);
  });

  test("the operations list follows progress live, and the comparison overlays runs with the best one starred", async () => {
    const a = await register("list-a");
    const b = await register("list-b");
    await post(a, 0, 4);
    await page.goto(`${server.url}/#/`);
    await page.waitForSelector(`tr[data-op="${a}"]`, { timeout: 10_000 });
    expect(await page.textContent(`tr[data-op="${a}"] .prog`)).toContain("4 / 40 epochs");
    await post(a, 4, 12);
    await page.waitForFunction(
      (id) => document.querySelector(`tr[data-op="${id}"] .prog`)?.textContent?.includes("12 / 40 epochs"),
      a,
      { timeout: 5000 },
    );
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-list.png"), fullPage: true });

    await post(b, 0, 20);
    await page.goto(`${server.url}/#/compare/${a},${b}`);
    await page.waitForSelector(`tr[data-run="${b}"] .star`, { timeout: 10_000 });
    await page.waitForFunction(() => (window as any).__trainwatch.chartPoints("compare") === 20, null, {
      timeout: 5000,
    });
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-compare.png"), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  test("the New training form shows the spec's defaults as placeholders, sends only the fields filled in, and the server fills the same defaults", async () => {
    await page.goto(`${server.url}/#/new`);
    await page.waitForSelector("#spec-form", { timeout: 10_000 });
    const placeholder = (name: string) => page.getAttribute(`#spec-form [name="${name}"]`, "placeholder");
    const T = DEFAULTS.training;
    expect(await placeholder("epochs")).toBe(String(T.epochs));
    expect(await placeholder("learning_rate")).toBe(String(T.learning_rate));
    expect(await placeholder("batch_size")).toBe(String(T.batch_size));
    expect(await placeholder("validation_split")).toBe(String(T.validation_split));
    expect(await placeholder("hidden")).toBe(DEFAULTS.model.hidden_layers.join(","));
    expect(await placeholder("patience")).toBe(String(DEFAULTS.early_stopping.patience));
    expect(await placeholder("samples")).toBe(String(DEFAULTS.generators.spirals.samples));
    await page.selectOption('#spec-form [name="generator"]', "overfit");
    expect(await placeholder("samples")).toBe(String(DEFAULTS.generators.overfit.samples));
    await page.selectOption('#spec-form [name="generator"]', "spirals");
    const preview = async () => JSON.parse((await page.textContent("#spec-preview"))!);
    expect(await preview()).toEqual({ dataset: { kind: "synthetic", generator: "spirals" }, model: {}, training: {} });

    await page.fill('#spec-form [name="epochs"]', "2");
    expect(await preview()).toEqual({
      dataset: { kind: "synthetic", generator: "spirals" },
      model: {},
      training: { epochs: 2 },
    });
    await page.click("#spec-form button[type=submit]");
    await page.waitForFunction(() => location.hash.startsWith("#/op/"), null, { timeout: 10_000 });
    const id = decodeURIComponent((await page.evaluate(() => location.hash)).slice("#/op/".length));
    const spec = (await call("GET", `/operations/${id}`)).metadata.spec;
    expect(spec.training).toMatchObject({
      epochs: 2,
      learning_rate: T.learning_rate,
      batch_size: T.batch_size,
      optimizer: T.optimizer,
      seed: T.seed,
    });
    expect(spec.model).toEqual({ ...DEFAULTS.model, hidden_layers: [...DEFAULTS.model.hidden_layers] });
    expect(pageErrors).toEqual([]);
  });

  test("an operation page that is left sends nothing after: its throttled analysis refresh is dropped", async () => {
    const id = await register("left-behind");
    await post(id, 0, 3);
    // A page of its own whose clock the test moves: the refresh left waiting is a timer on that clock, so running the
    // clock past the throttle shows whether it fires, with no sleep and no race with a slow machine.
    const own = await pageWithErrors(browser, pageErrors);
    try {
      await own.context().addInitScript((token) => localStorage.setItem("trainwatch.token", token), TOKEN);
      await own.clock.install();
      await own.goto(`${server.url}/#/op/${id}`);
      await own.waitForFunction(() => (window as any).__trainwatch?.chartPoints("loss") === 3, null, {
        timeout: 10_000,
      });
      // From here the page's time moves only when the test moves it. The pause is a minute on, so it is never in the
      // page's past however long the call takes; what the page had waiting fires on the jump, and the throttle is clear.
      await own.clock.pauseAt((await own.evaluate(() => Date.now())) + 60_000);
      /** Resolves once the page has handled the trends of `n` epochs (it counts them in its progress). */
      const trendsOf = (n: number) =>
        own.waitForFunction((want) => (window as any).__trainwatch.op()?.progress.epochs_completed === want, n, {
          timeout: 10_000,
          polling: 20,
        });
      // The first epoch's trends refresh the analysis at once (on the next tick of the clock) …
      await post(id, 3, 4);
      await trendsOf(4);
      const answered = own.waitForResponse((r) => r.url().includes(`/operations/${id}/analysis`), { timeout: 10_000 });
      await own.clock.runFor(1);
      await answered;
      // … the second's ask again 1 ms later, inside the 1.5 s throttle: that one waits.
      await post(id, 4, 5);
      await trendsOf(5);
      const sent: string[] = [];
      own.on("request", (r) => sent.push(r.url()));
      await own.goto(`${server.url}/#/`);
      await own.waitForFunction(() => (window as any).__trainwatch.view() === "list", null, {
        timeout: 10_000,
        polling: 20,
      });
      // Past the throttle: a refresh still waiting fires now. Then one request of the test's own: the page reports its
      // requests in the order it sends them, so once that one is seen, any refresh would have been seen before it.
      await own.clock.runFor(2000);
      const marker = `${server.url}/api/v1/health?after-leaving`;
      const seen = own.waitForRequest(marker, { timeout: 10_000 });
      await own.evaluate((url) => void fetch(url), marker);
      await seen;
      expect(sent).toContain(marker);
      expect(sent.slice(0, sent.indexOf(marker)).filter((u) => u.includes(`/operations/${id}`))).toEqual([]);
    } finally {
      await own.close();
    }
    expect(pageErrors).toEqual([]);
  });

  test("the list shows a newly registered operation and a host training's start report from the stream alone: no list request after the first", async () => {
    await page.goto(`${server.url}/#/`);
    await page.waitForSelector("tr[data-op]", { timeout: 10_000 });
    const listCalls: string[] = [];
    const onRequest = (r: { url(): string; method(): string }) => {
      const u = new URL(r.url());
      if (r.method() === "GET" && u.pathname.startsWith("/api/v1/operations")) listCalls.push(u.pathname + u.search);
    };
    page.on("request", onRequest);
    try {
      const fresh = await register("fresh-without-poll");
      await page.waitForSelector(`tr[data-op="${fresh}"]`, { timeout: 5000 });
      const host = (await call("POST", "/trainings", { ...HOST_TRAINING, name: "on-a-host" })).operation_id as string;
      await page.waitForSelector(`tr[data-op="${host}"]`, { timeout: 5000 });
      await call("POST", `/operations/${host}/heartbeat`, {
        started: { backend: "tensorflow-gpu", gpu: "NVIDIA H200" },
      });
      await page.waitForSelector(`tr[data-op="${host}"] [data-backend="tensorflow-gpu"]`, { timeout: 5000 });
      expect(await page.textContent(`tr[data-op="${host}"] [data-backend]`)).toBe("tensorflow-gpu · NVIDIA H200");
      expect(listCalls).toEqual([]);
    } finally {
      page.off("request", onRequest);
    }
    expect(pageErrors).toEqual([]);
  });

  test("a run named like markup shows as text on every page, and the comparison's x axis labels whole epochs", async () => {
    const evil = `<img src=x onerror="window.__xss=1">`;
    const a = await register(evil);
    const b = await register("short-b");
    await post(a, 0, 3);
    await post(b, 0, 3);
    const xss = () => page.evaluate(() => (window as any).__xss);

    await page.goto(`${server.url}/#/`);
    await page.waitForSelector(`tr[data-op="${a}"]`, { timeout: 10_000 });
    expect(await page.textContent(`tr[data-op="${a}"] a`)).toBe(evil);
    expect(await page.$$eval("img", (imgs) => imgs.length)).toBe(0);

    await page.goto(`${server.url}/#/op/${a}`);
    await waitPoints(3);
    expect(await page.textContent("#head h1")).toContain(evil);

    // Three epochs over a wide chart: left alone, uPlot would label 0.5 steps.
    await page.goto(`${server.url}/#/compare/${a},${b}`);
    await page.waitForFunction(() => (window as any).__trainwatch.chartPoints("compare") === 3, null, {
      timeout: 10_000,
    });
    expect(await page.textContent(`tr[data-run="${a}"] a`)).toBe(evil);
    const ticks = await page.evaluate(() => (window as any).__trainwatch.xTicks("compare") as string[]);
    expect(ticks.length).toBeGreaterThan(1);
    for (const t of ticks) expect(t).toMatch(/^\d+$/);
    expect(await page.$$eval("img", (imgs) => imgs.length)).toBe(0);
    expect(await xss()).toBeUndefined();
    expect(pageErrors).toEqual([]);
  });

  test("the comparison's run picker offers trainings, not a TensorBoard import's own operation", async () => {
    const run = await register("pickable");
    const imp = (await call("POST", "/operations", { operation_type: "import", name: "tensorboard: runs" }))
      .operation_id as string;
    await page.goto(`${server.url}/#/compare/${run}`);
    await page.waitForSelector(`#picker input[value="${run}"]`, { timeout: 10_000 });
    expect(await page.$$eval(`#picker input[value="${imp}"]`, (els) => els.length)).toBe(0);
    expect(pageErrors).toEqual([]);
  });
});
