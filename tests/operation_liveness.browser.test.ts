// A host training's operation page follows its liveness from the stream alone, in headless Chromium against a real
// server process with 1 s heartbeats: heartbeats move "last heard", the stale badge appears when they stop (the API's
// watchdog says so) and goes when they come back, and the page sends no request for it after it has loaded.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { apiCaller, describeInBrowser, launchChromium, pageWithErrors } from "./fixtures/browser.ts";
import { until } from "./fixtures/poll.ts";
import { startServerProcess, type ServerProcess } from "./helpers.ts";
import { HOST_TRAINING, standInHost } from "./fixtures/stand_in_host.ts";

describeInBrowser("operation page liveness, in headless Chromium", () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let host: ReturnType<typeof standInHost>;
  const pageErrors: string[] = [];

  const call = apiCaller(() => server.url);
  const pageOp = () => page.evaluate(() => (window as any).__trainwatch.op());
  const badges = () => page.evaluate(() => (window as any).__trainwatch.badges() as string[]);

  beforeAll(async () => {
    // Heartbeats every second: late after 1.5 s; the stand-in host answers the watchdog 503, so it fails only after 60 s.
    host = standInHost();
    server = await startServerProcess({
      TRAINWATCH_HEARTBEAT_INTERVAL: "1",
      TRAINWATCH_HOST_TIMEOUT: "60",
      TRAINING_HOST_URL: host.url,
    });
    browser = await launchChromium();
    page = await pageWithErrors(browser, pageErrors);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    host?.stop();
  });

  test("heartbeats move last heard, the stale badge comes and goes, and the page never polls (the advice is asked again only as the run turns stale and back)", async () => {
    const id =
      // The test plays the host's relay: the API started the training on its (stand-in) host.
      (await call("POST", "/trainings", { ...HOST_TRAINING, name: "host-liveness" })).operation_id as string;
    await call("POST", `/operations/${id}/heartbeat`, { started: { backend: "tensorflow-gpu", gpu: "NVIDIA H200" } });
    // Loaded: its advice read, and its system samples (read once the stream has joined, so possibly after the advice).
    const loaded = Promise.all(
      ["analysis", "system"].map((what) =>
        page.waitForResponse((r) => r.url().includes(`/operations/${id}/${what}`), { timeout: 10_000 }),
      ),
    );
    await page.goto(`${server.url}/#/op/${id}`);
    await loaded;
    const requests: string[] = [];
    page.on("request", (r) => {
      if (r.url().includes(`/operations/${id}`)) requests.push(`${r.method()} ${r.url()}`);
    });

    // Heartbeats: the page hears a later last_seen_at than the one it loaded.
    const first = (await pageOp()).last_seen_at as string;
    const beats = setInterval(() => void call("POST", `/operations/${id}/heartbeat`, {}), 250);
    try {
      await until("the page to hear a heartbeat", async () => (await pageOp()).last_seen_at > first);
    } finally {
      clearInterval(beats);
    }

    // Silent: the watchdog finds it late and the page shows it.
    await until("the stale badge", async () => (await badges()).includes("stale"));
    expect((await pageOp()).stale).toBe(true);

    // Heard again: the badge goes.
    await call("POST", `/operations/${id}/heartbeat`, {});
    await until("the stale badge to go", async () => !(await badges()).includes("stale"));
    expect((await pageOp()).status).toBe("running");

    // Nothing but the advice, asked again only when the run turned stale and back (it says to check the trainer meanwhile).
    expect(requests.filter((r) => !r.endsWith(`/operations/${id}/analysis`))).toEqual([]);
    expect(requests.length).toBeLessThanOrEqual(2);
    expect(pageErrors).toEqual([]);
  });
});
