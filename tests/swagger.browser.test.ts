// Swagger UI (the project's own swagger-ui-dist) renders the OpenAPI 3.1 document in a real headless Chromium:
// every operation appears, the spec loads without errors, and the schemas of a body and of a stream's events show.
// Debian's chromium at /usr/bin/chromium (or $CHROMIUM), never downloaded.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { describeInBrowser, launchChromium, pageWithErrors } from "./fixtures/browser.ts";
import { makeApp } from "./helpers.ts";
import { operationsOf, servedDocument } from "./openapi.ts";

describeInBrowser("Swagger UI in headless Chromium", () => {
  const { app, store } = makeApp({ TRAINWATCH_TOKEN: "swagger-ui-token" });
  let server: ReturnType<typeof Bun.serve>;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (r) => app.handle(r) });
    browser = await launchChromium();
    page = await pageWithErrors(browser, pageErrors);
    await page.goto(`http://127.0.0.1:${server.port}/swagger`);
    await page.waitForSelector(".opblock", { timeout: 20_000 });
  });

  afterAll(async () => {
    await browser?.close();
    server?.stop(true);
    store.close();
  });

  test("renders every operation of the 3.1 document with no spec errors", async () => {
    const expected = [...operationsOf(await servedDocument(app)).keys()].map((k) => k.toUpperCase()).sort();
    const rendered = await page.$$eval(".opblock", (blocks) =>
      blocks.map(
        (b) =>
          `${b.querySelector(".opblock-summary-method")?.textContent?.trim()} ${b.querySelector(".opblock-summary-path")?.getAttribute("data-path")}`,
      ),
    );
    expect(rendered.map((r) => r.toUpperCase()).sort()).toEqual(expected);
    expect(await page.locator(".version-stamp").first().innerText()).toContain("3.1");
    expect(await page.locator(".errors-wrapper").count()).toBe(0);
    expect(await page.locator("text=Unable to render this definition").count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  test("shows the training request body and the stream's event schemas, and offers bearer authorization", async () => {
    await page.locator('.opblock-post:has([data-path="/api/v1/trainings"]) .opblock-summary').click();
    const trainings = page.locator('.opblock-post:has([data-path="/api/v1/trainings"])');
    await trainings.locator(".opblock-section-request-body").waitFor({ timeout: 10_000 });
    expect(await trainings.locator(".body-param-content-type select").innerText()).toContain("application/json");
    expect(await trainings.locator(".body-param-content-type select option").count()).toBe(1);

    const stream = page.locator('.opblock-get:has([data-path="/api/v1/operations/{id}/metrics/stream"])');
    await stream.locator(".opblock-summary").click();
    await stream.locator(".responses-table").waitFor({ timeout: 10_000 });
    const codes = await stream.locator(".responses-table tr.response .response-col_status").allInnerTexts();
    expect(codes.map((c) => c.trim().slice(0, 3))).toEqual(["200", "400", "401", "404"]);
    const ok = stream.locator('.responses-table tr.response[data-code="200"]');
    // The example Swagger UI builds from the event schema: an event name, and data generated from its contentSchema.
    const example = await ok.innerText();
    expect(example).toContain("text/event-stream");
    expect(example).toContain('"event": "status"');
    expect(example).toContain('\\"operation_id\\"');

    expect(await page.locator(".auth-wrapper .authorize").count()).toBe(1);
    expect(pageErrors).toEqual([]);
  });
});
