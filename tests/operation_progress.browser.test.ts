// The operation page's progress bar between status events, in headless Chromium against a real server process: a
// stored epoch reaches the page as `epoch` and `trends` events only, and the page moves its bar with the server's own
// progress rule (src/operations/progress.ts, built for the browser), so it reads what GET /operations/{id} reads.
import { expect, test } from "bun:test";
import { apiCaller, describeInBrowser, pageOnServer } from "./fixtures/browser.ts";
import { until } from "./fixtures/poll.ts";

describeInBrowser("operation page progress, in headless Chromium", () => {
  const ctx = pageOnServer();

  const call = apiCaller(() => ctx.server.url);
  const pageProgress = () => ctx.page.evaluate(() => (window as any).__trainwatch.op()?.progress ?? null);

  test("a live epoch moves the bar to the server's percentage: 2 of 3 epochs read 66.67, as GET says", async () => {
    const id = (
      await call("POST", "/operations", { operation_type: "training", name: "progress", total_epochs_planned: 3 })
    ).operation_id as string;
    await call("POST", `/operations/${id}/metrics`, { epochs: [{ epoch: 0, train_loss: 1 }] });
    const loaded = ctx.page.waitForResponse((r) => r.url().includes(`/operations/${id}/analysis`), { timeout: 10_000 });
    await ctx.page.goto(`${ctx.server.url}/#/op/${id}`);
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
    expect(await ctx.page.locator("#head-progress .progress > div").getAttribute("style")).toBe("width:66.67%");
    expect(ctx.pageErrors).toEqual([]);
  });
});
