// A Slurm training on the dashboard, in headless Chromium, against a real server with the Slurm executor and the real
// one-node cluster (tests/fixtures/slurm.ts): started from the New training form, its page shows the executor, the
// Slurm job id and the node it runs on, and its Logs panel follows the job's output file live; Cancel leaves no job.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SlurmRestClient } from "../src/executors/slurm_rest.ts";
import { describeInBrowser, pageOnServer } from "./fixtures/browser.ts";
import { slurmServerEnv, type TestSlurm, withSlurm } from "./fixtures/slurm.ts";
import { until } from "./helpers.ts";

const ROOT = resolve(import.meta.dir, "..");

withSlurm("a Slurm training on the dashboard", (slurm: TestSlurm) => {
  describeInBrowser("a Slurm training on the dashboard, in headless Chromium", () => {
    const client = new SlurmRestClient({ url: slurm.url, user: slurm.user, tokenFile: slurm.tokenFile });
    const dir = mkdtempSync(join(tmpdir(), "tw-slurm-dash-"));
    const hold = join(slurm.workdir, `dash-hold-${process.pid}`);
    chmodSync(dir, 0o755);
    const recipe = {
      name: "slurm-dash",
      command: ["/usr/bin/python3", join(ROOT, "tests", "fixtures", "scripts", "slurm_train.py")],
      cwd: slurm.workdir,
      env: { PYTHONPATH: join(ROOT, "clients", "python") },
      params: {
        type: "object",
        properties: { epochs: { type: "integer", default: 2 }, wait_for: { type: "string", default: hold } },
      },
      params_via: ["args"],
      epochs_param: "epochs",
      target: "slurm",
    };
    writeFileSync(join(dir, "recipes.json"), JSON.stringify({ recipes: [recipe] }));
    const ctx = pageOnServer(
      {
        TRAINWATCH_RECIPES: join(dir, "recipes.json"),
        TRAINWATCH_LOGS_DIR: join(dir, "logs"),
        TRAINWATCH_GPUS: "none",
        ...slurmServerEnv(slurm),
      },
      { viewport: { width: 1200, height: 1200 } },
    );
    beforeAll(() => {
      ctx.page.on("dialog", (d) => void d.accept());
    });
    afterAll(() => {
      writeFileSync(hold, "");
      rmSync(dir, { recursive: true, force: true });
    });

    test("start it from the form: the page shows slurm, the job id and the node, the job's log live; cancel: the job is CANCELLED", async () => {
      const { server, page, pageErrors } = ctx;
      await page.goto(`${server.url}/#/new`);
      await page.waitForSelector("#recipe-form select[name=recipe]");
      await page.click("#recipe-form button[type=submit]");
      await page.waitForURL(/#\/op\//);
      const id = decodeURIComponent(page.url().split("#/op/")[1]!);
      const op = (await (await fetch(`${server.url}/api/v1/operations/${id}`)).json()).data;
      await page.waitForFunction(
        () => (document.querySelector("#logs-text")?.textContent ?? "").includes("epoch 1"),
        null,
        {
          timeout: 30_000,
        },
      );
      await page.waitForSelector("[data-node]", { timeout: 30_000 });
      const job = await client.job(Number(op.external_id));
      expect(await page.textContent("[data-executor]")).toBe("slurm");
      expect(await page.textContent("[data-external-id]")).toBe(op.external_id);
      expect(await page.textContent("[data-node]")).toBe(job!.nodes!);
      await page.click("#cancel");
      await page.waitForSelector('[data-status="cancelled"]');
      const ended = await until("the job to be CANCELLED", async () => {
        const j = await client.job(Number(op.external_id));
        return j?.state === "CANCELLED" ? j : undefined;
      });
      expect(ended.state).toBe("CANCELLED");
      expect(pageErrors).toEqual([]);
    });
  });
});
