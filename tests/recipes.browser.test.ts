// The dashboard's side of script trainings in headless Chromium, against a real server process with a recipe file:
// the New training page lists the recipe and builds its form from the params schema, Start script opens the
// operation page, whose Logs panel follows the script live; Cancel stops it and the script's process group is gone.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { describeInBrowser, launchChromium, pageWithErrors } from "./fixtures/browser.ts";
import { groupAlive } from "../src/script_trainings/runner.ts";
import { fakeRecipe, recipeFile } from "./fixtures/scripts.ts";
import { startServerProcess, type ServerProcess } from "./helpers.ts";

describeInBrowser("script trainings on the dashboard, in headless Chromium", () => {
  // Two targets: the form offers the choice (this server has no Slurm executor, so the test keeps the default).
  const file = recipeFile([fakeRecipe({ target: ["local", "slurm"] })]);
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    server = await startServerProcess({
      TRAINWATCH_RECIPES: file.path,
      TRAINWATCH_LOGS_DIR: join(file.dir, "logs"),
      TRAINWATCH_GPUS: "none",
      TRAINWATCH_KILL_GRACE: "1",
    });
    browser = await launchChromium();
    page = await pageWithErrors(browser, pageErrors, { width: 1200, height: 1200 });
    page.on("dialog", (d) => void d.accept());
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    file.cleanup();
  });

  test("pick the recipe, fill its generated form, start it, watch its logs live, cancel it: no process left", async () => {
    await page.goto(`${server.url}/#/new`);
    await page.waitForSelector("#recipe-form select[name=recipe]");
    expect(await page.$$eval("#recipe-form select[name=recipe] option", (os) => os.map((o) => o.textContent))).toEqual([
      "fake — this server or Slurm cluster",
    ]);
    expect(await page.isVisible("#recipe-target-label")).toBe(true);
    expect(await page.$$eval("#recipe-form select[name=target] option", (os) => os.map((o) => o.textContent))).toEqual([
      "this server",
      "Slurm cluster",
    ]);
    // One field per declared param, of its type: a number, a select for the enum, a checkbox for the boolean.
    expect(
      await page.$$eval("#recipe-params [data-type]", (els) =>
        els.map((e) => `${(e as HTMLInputElement).name}:${e.tagName}:${(e as HTMLElement).dataset.type}`),
      ),
    ).toEqual(["epochs:INPUT:integer", "mode:SELECT:string", "finish:INPUT:boolean"]);
    await page.fill("#recipe-params input[name=epochs]", "2");
    await page.selectOption("#recipe-params select[name=mode]", "hang");
    expect(JSON.parse((await page.textContent("#recipe-preview"))!)).toEqual({
      recipe: "fake",
      params: { epochs: 2, mode: "hang", finish: false },
      target: "local",
    });
    await page.click("#recipe-form button[type=submit]");
    await page.waitForURL(/#\/op\//);
    const id = decodeURIComponent(page.url().split("#/op/")[1]!);
    await page.waitForFunction(
      () => (document.querySelector("#logs-text")?.textContent ?? "").includes("waiting"),
      null,
      { timeout: 30_000 },
    );
    const text = (await page.textContent("#logs-text"))!;
    expect(text).toContain("fake_train: mode=hang epochs=2");
    expect(text).toContain("epoch 1 sent: 200");
    const op = await (await fetch(`${server.url}/api/v1/operations/${id}`)).json();
    const pgid = op.data.metadata.pid as number;
    expect(groupAlive(pgid)).toBe(true);
    // The header names the executor and its id there (the script's process group).
    expect(await page.textContent("[data-executor]")).toBe("local");
    expect(await page.textContent("[data-external-id]")).toBe(String(pgid));
    await page.click("#cancel");
    await page.waitForSelector('[data-status="cancelled"]');
    await page.waitForFunction(
      () => (document.querySelector("#logs-text")?.textContent ?? "").includes("killed by SIGTERM"),
      null,
      { timeout: 30_000 },
    );
    expect(await page.textContent("#logs-state")).toBe("ended");
    expect(groupAlive(pgid)).toBe(false);
    expect(pageErrors).toEqual([]);
  });
});
