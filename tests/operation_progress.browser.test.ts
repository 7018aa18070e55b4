// The operation page's progress bar between status events, in headless Chromium against a real server process: a
// stored epoch reaches the page as `epoch` and `trends` events only, and the page moves its bar with the server's own
// progress rule (src/operations/progress.ts, built for the browser), so it reads what GET /operations/{id} reads.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { apiCaller, describeInBrowser, launchChromium, pageWithErrors } from "./fixtures/browser.ts";
import { until } from "./fixtures/poll.ts";
import { startServerProcess, type ServerProcess } from "./helpers.ts";

describeInBrowser("operation page progress, in headless Chromium", () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  const call = apiCaller(() => server.url);
  const pageProgress = () => page.evaluate(() => (window as any).__trainwatch.op()?.progress ?? null);

  beforeAll(async () => {
    server = await startServerProcess();
    browser = await launchChromium();
    page = await pageWithErrors(browser, pageErrors);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("a live epoch moves the bar to the server's percentage: 2 of 3 epochs read 66.67, as GET says", async () => {
    const id = (
      await call("POST", "/operations", { operation_type: "training", name: "progress", total_epochs_planned: 3 })
    ).operation_id as string;
    await call("POST", `/operations/${id}/metrics`, { epochs: [{ epoch: 0, train_loss: 1 }] });
    const loaded = page.waitForResponse((r) => r.url().includes(`/operations/${id}/analysis`), { timeout: 10_000 });
    await page.goto(`${server.url}/#/op/${id}`);
    await loaded;
    expect((await pageProgress()).percentage).toBe(33.33);

    await call("POST", `/operations/${id}/metrics`, { epochs: [{ epoch: 1, train_loss: 0.9 }] });
    const shown = await until("the page to count the second epoch", async () => {
      const p = await pageProgress();
      return p?.epochs_completed === 2 && p;
    });
    const fromServer = (await call("GET", `/operations/${id}`)).progress;
    expect(fromServer.percentage).toBe(66.67);
    expect(shown.percentage).toBe(fromServer.percentage);
    expect(await page.locator("#head-progress .progress > div").getAttribute("style")).toBe("width:66.67%");
    expect(pageErrors).toEqual([]);
  });
});
