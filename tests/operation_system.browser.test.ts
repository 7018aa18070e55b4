// The operation page's system chart (issue 24), in headless Chromium against a real server process: hidden for a run
// without samples, shown with the stored samples once it has some, fed live by the stream's `system` events, and a GPU
// reading per GPU behind the selector.
import { expect, test } from "bun:test";
import { apiCaller, describeInBrowser, pageOnServer } from "./fixtures/browser.ts";
import { until } from "./fixtures/poll.ts";
import { sampleAt } from "./store_contract_system.ts";

describeInBrowser("operation page system chart, in headless Chromium", () => {
  const ctx = pageOnServer();

  const call = apiCaller(() => ctx.server.url);
  const shown = () => ctx.page.evaluate(() => (window as any).__trainwatch.system());

  test("hidden without samples; shows live samples, per GPU behind the selector, and the stored ones when opened again", async () => {
    const id = (await call("POST", "/operations", { operation_type: "training", name: "system" }))
      .operation_id as string;
    await call("POST", `/operations/${id}/metrics`, { epochs: [{ epoch: 0, train_loss: 1 }] });
    const read = ctx.page.waitForResponse((r) => r.url().includes(`/operations/${id}/system`), { timeout: 10_000 });
    await ctx.page.goto(`${ctx.server.url}/#/op/${id}`);
    await read;
    expect(await shown()).toEqual({ hidden: true, samples: 0, chart: null });

    await call("POST", `/operations/${id}/system`, { samples: [sampleAt(0, 10), sampleAt(60, 20)] });
    const first = await until("the live samples", async () => {
      const s = await shown();
      return s?.samples === 2 && s;
    });
    expect(first.hidden).toBe(false);
    // CPU % first: the process's and the machine's, over minutes since the first sample.
    expect(first.chart.x).toEqual([0, 1]);
    expect(first.chart.series).toEqual({ process: [101.5, 101.5], machine: [40, 40] });

    await ctx.page.selectOption("#system-view", "gpu_util");
    const gpus = (await shown()).chart;
    expect(gpus.series).toEqual({ "GPU 0": [10, 20], "GPU 1": [null, null] });

    // Opened again: the stored samples, read once.
    const again = ctx.page.waitForResponse((r) => r.url().includes(`/operations/${id}/system`), { timeout: 10_000 });
    await ctx.page.reload();
    await again;
    const stored = await until("the stored samples", async () => {
      const s = await shown();
      return s?.samples === 2 && s;
    });
    expect(stored.hidden).toBe(false);
    expect(stored.chart.series.process).toEqual([101.5, 101.5]);
    expect(ctx.pageErrors).toEqual([]);
  });
});
