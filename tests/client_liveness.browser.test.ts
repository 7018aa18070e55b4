// A client run's liveness on the dashboard, in headless Chromium against a real server process with short limits:
// heartbeats without rows show `hung` on the operation page and in the list, and silence shows `stale`, then the run
// failed `lost`, each as a chip the stream brings (the page never polls).
import { expect, test } from "bun:test";
import { apiCaller, describeInBrowser, pageOnServer } from "./fixtures/browser.ts";
import { until } from "./fixtures/poll.ts";

describeInBrowser("client run liveness on the dashboard, in headless Chromium", () => {
  const ctx = pageOnServer({
    TRAINWATCH_CLIENT_HEARTBEAT: "0.2",
    TRAINWATCH_STALE_AFTER: "1",
    TRAINWATCH_LOST_AFTER: "4",
    TRAINWATCH_HUNG_AFTER: "1",
  });

  const call = apiCaller(() => ctx.server.url);
  const badges = () => ctx.page.evaluate(() => (window as any).__trainwatch.badges() as string[]);

  test("heartbeats without rows show hung; silence shows stale, then lost, on the page and in the list", async () => {
    const id = (await call("POST", "/operations", { operation_type: "training", name: "client-liveness" }))
      .operation_id as string;
    await call("POST", `/operations/${id}/metrics`, { epochs: [{ epoch: 0, train_loss: 1 }] });
    await call("POST", `/operations/${id}/heartbeat`, {});
    // Its sampler's last word: the GPU idle, which the hung chip cites.
    const sample = { timestamp: new Date().toISOString(), gpus: [{ index: 0, utilization_percent: 0 }] };
    await call("POST", `/operations/${id}/system`, { samples: [sample] });
    const loaded = ctx.page.waitForResponse((r) => r.url().includes(`/operations/${id}/analysis`), { timeout: 10_000 });
    await ctx.page.goto(`${ctx.server.url}/#/op/${id}`);
    await loaded;

    // The trainer heartbeats (the Python client's thread does) but logs nothing: hung.
    const beats = setInterval(() => void call("POST", `/operations/${id}/heartbeat`, {}), 200);
    try {
      await until("the hung chip", async () => (await badges()).includes("hung"));
      const chip = await ctx.page.$eval('#head [data-badge="hung"]', (el) => el.textContent ?? "");
      expect(chip).toStartWith("hung · GPU 0 utilisation 0 %, sampled ");
      // The advice is asked again when the run turns hung: check the trainer, and never "no issues" beside the chip.
      const action = () =>
        ctx.page.evaluate(
          () => document.querySelector("#recommendation [data-action]")?.getAttribute("data-action") ?? "",
        );
      await until("the advice to check the trainer", async () => (await action()) === "check_trainer");
      expect(await ctx.page.$('#badges [data-badge="none"]')).toBeNull();
    } finally {
      clearInterval(beats);
    }
    // Silent altogether (kill -9): stale, then failed lost.
    await until("the stale badge", async () => (await badges()).includes("stale"));
    await until("the lost chip", async () => (await badges()).includes("lost"));
    const op = await call("GET", `/operations/${id}`);
    expect(op).toMatchObject({ status: "failed", failure_code: "lost" });

    await ctx.page.goto(`${ctx.server.url}/#/`);
    await until("the list's lost chip", async () => (await badges()).includes("lost"));
    expect(ctx.pageErrors).toEqual([]);
  }, 60_000);

  test("the page of a run that is already hung cites its utilisation on the hung chip", async () => {
    const id = (await call("POST", "/operations", { operation_type: "training", name: "hung-before-opened" }))
      .operation_id as string;
    await call("POST", `/operations/${id}/metrics`, { epochs: [{ epoch: 0, train_loss: 1 }] });
    await call("POST", `/operations/${id}/heartbeat`, {});
    const sample = { timestamp: new Date().toISOString(), process: { cpu_percent: 3 } };
    await call("POST", `/operations/${id}/system`, { samples: [sample] });
    const beats = setInterval(() => void call("POST", `/operations/${id}/heartbeat`, {}), 200);
    try {
      await until("the run hung", async () => ((await call("GET", `/operations/${id}`)).hung ? true : undefined));
      // Opened now: the operation arrives hung before the page has read the run's system samples.
      await ctx.page.goto(`${ctx.server.url}/#/op/${id}`);
      // The chip as it stands once the page holds the sample (read in the same turn: not after the next age tick).
      const chip = await until("the page's system samples read", () =>
        ctx.page.evaluate(() =>
          (window as any).__trainwatch.system()?.samples === 1
            ? (document.querySelector('#head [data-badge="hung"]')?.textContent ?? "no hung chip")
            : undefined,
        ),
      );
      expect(chip).toStartWith("hung · process CPU 3 % of one core, sampled ");
    } finally {
      clearInterval(beats);
    }
    expect(ctx.pageErrors).toEqual([]);
  }, 60_000);
});
