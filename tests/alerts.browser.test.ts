// The dashboard's alerts, in headless Chromium against a real server process: a run that diverges while the page is
// open shows a toast and rings the bell (its count, its list), the operation page lists the run's alert, and its rules
// editor saves what differs from the server's defaults.
import { expect, test } from "bun:test";
import { apiCaller, describeInBrowser, pageOnServer } from "./fixtures/browser.ts";
import { until } from "./fixtures/poll.ts";

const DIVERGING = [1.0, 0.8, 0.6, 0.5, 0.45, 0.42, 0.6, 0.9, 1.4];

describeInBrowser("alerts on the dashboard, in headless Chromium", () => {
  const ctx = pageOnServer();
  const call = apiCaller(() => ctx.server.url);

  test("a run diverging while the page is open: a toast, the bell's count and list, the run's alert on its page", async () => {
    await ctx.page.goto(`${ctx.server.url}/#/`);
    await ctx.page.waitForSelector("#bell");
    const id = (await call("POST", "/operations", { operation_type: "training", name: "blows-up" }))
      .operation_id as string;
    await call("POST", `/operations/${id}/metrics`, { epochs: DIVERGING.map((l, e) => ({ epoch: e, train_loss: l })) });

    const toast = ctx.page.locator("[data-toast]");
    await toast.first().waitFor({ timeout: 10_000 });
    expect(await toast.first().innerText()).toContain('Run "blows-up" is diverging at epoch 8');
    await until("the bell's count", async () => (await ctx.page.locator("#bell .count").innerText()) === "1");
    await ctx.page.click("#bell");
    expect(await ctx.page.locator("#bell-panel [data-alert]").count()).toBe(1);
    await ctx.page.click("#bell");
    expect(await ctx.page.locator("#bell .count").innerText()).toBe("");

    await ctx.page.goto(`${ctx.server.url}/#/op/${id}`);
    await ctx.page.waitForSelector("#op-alerts [data-alert]");
    expect(await ctx.page.locator("#op-alerts").innerText()).toContain("restore your checkpoint of epoch 5");
    // The rules editor: turn `completed` on and `hung` off.
    await ctx.page.check('#alert-rules input[value="completed"]');
    await ctx.page.uncheck('#alert-rules input[value="hung"]');
    await ctx.page.click('#alert-rules button[type="submit"]');
    await until("the rules saved", async () => {
      const r = await call("GET", `/operations/${id}/alerts`);
      return r.rules?.on?.includes("completed") && r.rules?.off?.includes("hung") ? r : undefined;
    });
    expect(ctx.pageErrors).toEqual([]);
  });

  test("a status alert reads as a line of text in the lists and its toast, not as a status pill", async () => {
    await ctx.page.goto(`${ctx.server.url}/#/`);
    await ctx.page.waitForSelector("#bell");
    const id = (await call("POST", "/operations", { operation_type: "training", name: "crashes" }))
      .operation_id as string;
    await call("POST", `/operations/${id}/complete`, { status: "failed", error_message: "CUDA out of memory" });
    // The status pill's style (.status: small capitals on a grey pill) is not the alert's.
    const looks = (selector: string) =>
      ctx.page.$eval(selector, (el) => {
        const s = getComputedStyle(el);
        return { transform: s.textTransform, radius: s.borderRadius };
      });
    const plain = { transform: "none", radius: "0px" };
    await ctx.page.waitForSelector(`[data-toast]`);
    expect((await looks(`[data-toast]`)).transform).toBe("none");
    await ctx.page.click("#bell");
    await ctx.page.waitForSelector(`#bell-panel [data-alert]`);
    expect(await looks(`#bell-panel [data-alert]`)).toEqual(plain);
    await ctx.page.goto(`${ctx.server.url}/#/op/${id}`);
    await ctx.page.waitForSelector("#op-alerts [data-alert]");
    expect(await looks("#op-alerts [data-alert]")).toEqual(plain);
    expect(ctx.pageErrors).toEqual([]);
  });
});
