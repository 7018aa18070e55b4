// Search, labels and the sweep view in headless Chromium against a real server process: the list's search box filters
// through GET /operations?q= and keeps the query in the address, a query that does not parse shows the server's message
// with a caret at its position, a column heading sorts, a group chip filters to its group; tags and group are edited on
// the operation's page; a group's sweep view sorts its table by any column and draws one parallel-coordinates line per
// run, verdicts marked (diverged red and dashed, pruned dashed), a hovered line named, a clicked one opened. The sweep
// view's screenshot lands in artifacts/.
import { beforeAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { apiCaller, describeInBrowser, pageOnServer } from "./fixtures/browser.ts";
import { until } from "./fixtures/poll.ts";
import { seedSweep, sweepRuns } from "./fixtures/sweep.ts";

const ARTIFACTS = join(import.meta.dir, "..", "artifacts");
const GROUP = "sweep a/7";
const RUNS = sweepRuns(8);

describeInBrowser("search, labels and the sweep view, in headless Chromium", () => {
  const ctx = pageOnServer();
  const call = apiCaller(() => ctx.server.url);
  /** The sweep's ids in RUNS order, and two runs outside it: one tagged bert, one with no labels. */
  let ids: string[] = [];
  let bert = "";
  let plain = "";

  const hook = <T>(fn: string, ...args: unknown[]) =>
    ctx.page.evaluate(([f, a]) => (window as any).__trainwatch[f as string](...(a as unknown[])), [
      fn,
      args,
    ] as const) as Promise<T>;
  const rowsNow = () => ctx.page.$$eval("tbody tr[data-op]", (trs) => trs.map((tr) => (tr as HTMLElement).dataset.op!));
  /** Waits until the list shows the rows `want` (in that order, or in any with `anyOrder`), and returns them. */
  const shows = (want: string[], anyOrder = false) =>
    until(
      `the list to show ${JSON.stringify(want)}`,
      async () => {
        const now = await rowsNow();
        const same = anyOrder
          ? JSON.stringify([...now].sort()) === JSON.stringify([...want].sort())
          : JSON.stringify(now) === JSON.stringify(want);
        return same && now;
      },
      10_000,
    );
  const search = async (q: string) => {
    await ctx.page.fill("#q", q);
    await ctx.page.press("#q", "Enter");
  };
  const listedBy = async (q: string, sort = "", order = "") => {
    const params = new URLSearchParams({ q, limit: "100" });
    if (sort) params.set("sort", sort);
    if (order) params.set("order", order);
    return ((await call("GET", `/operations?${params}`)) as any[]).map((op) => op.operation_id as string);
  };

  // Seeding stores 8 runs' epochs: more than the default 5 s on a loaded machine.
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    ids = await seedSweep(call, GROUP, RUNS);
    bert = (await call("POST", "/operations", { operation_type: "training", name: "bert-base", tags: ["bert"] }))
      .operation_id;
    await call("POST", `/operations/${bert}/metrics`, { epochs: [{ epoch: 0, train_loss: 1, val_loss: 1.1 }] });
    plain = (await call("POST", "/operations", { operation_type: "training", name: "plain" })).operation_id;
  }, 60_000);

  test("the search box filters the list through the server and keeps the query in the address, so a link shares it", async () => {
    await ctx.page.goto(`${ctx.server.url}/#/`);
    await shows([...ids, bert, plain], true);
    await search('tags has "bert" or name = "plain"');
    await shows([bert, plain], true);
    const url = ctx.page.url();
    expect(new URL(url).hash).toStartWith("#/?q=");
    // The address alone brings the same search back.
    await ctx.page.goto("about:blank");
    await ctx.page.goto(url);
    await shows([bert, plain], true);
    expect(await ctx.page.inputValue("#q")).toBe('tags has "bert" or name = "plain"');
    expect(await ctx.page.textContent("#total")).toContain("2 matches");
    expect(ctx.pageErrors).toEqual([]);
  });

  test("a query that does not parse shows the server's message and a caret under the position it names", async () => {
    const q = 'tags has "bert" and config.lr <';
    const res = await fetch(`${ctx.server.url}/api/v1/operations?q=${encodeURIComponent(q)}`);
    const refusal = ((await res.json()) as any).error;
    expect(res.status).toBe(400);
    expect(refusal.code).toBe("QUERY_SYNTAX");

    await ctx.page.goto(`${ctx.server.url}/#/`);
    await search(q);
    const box = await ctx.page.waitForSelector(".query-error", { timeout: 10_000 });
    expect(await box.getAttribute("data-position")).toBe(String(refusal.details.position));
    expect(await ctx.page.textContent(".query-error .msg")).toContain(refusal.message);
    expect(await ctx.page.textContent(".query-error .q")).toBe(q);
    expect(await ctx.page.textContent(".query-error .caret")).toBe(`${" ".repeat(refusal.details.position)}^`);
    // The cursor waits at the position, in the box, to fix it.
    expect(await ctx.page.$eval("#q", (el) => (el as HTMLInputElement).selectionStart)).toBe(refusal.details.position);
    expect(await ctx.page.$$("tbody tr[data-op]")).toHaveLength(0);
    expect(ctx.pageErrors).toEqual([]);
  });

  test("clicking a column heading sorts the list through the server, a second click the other way", async () => {
    const q = `group = "${GROUP}"`;
    await ctx.page.goto(`${ctx.server.url}/#/?q=${encodeURIComponent(q)}`);
    await shows(ids, true);
    const ascending = await listedBy(q, "best_val_loss", "asc");
    expect(ascending).not.toEqual(await rowsNow());
    await ctx.page.click('th[data-sort="best_val_loss"]');
    await shows(ascending);
    const params = () => new URLSearchParams(new URL(ctx.page.url()).hash.split("?")[1]);
    expect([params().get("sort"), params().get("order")]).toEqual(["best_val_loss", "asc"]);
    await ctx.page.click('th[data-sort="best_val_loss"]');
    await shows(await listedBy(q, "best_val_loss", "desc"));
    expect(params().get("order")).toBe("desc");
    expect(ctx.pageErrors).toEqual([]);
  });

  test("each row shows its tags and group as chips, and a group chip filters the list to that group", async () => {
    await ctx.page.goto(`${ctx.server.url}/#/`);
    await shows([...ids, bert, plain], true);
    const chips = await ctx.page.$$eval(`tr[data-op="${ids[0]}"] .chip`, (els) => els.map((e) => e.textContent));
    expect(chips).toEqual([GROUP, ...[...new Set(["sweep", RUNS[0]!.config.optimizer])].sort()]);
    expect(await ctx.page.$$(`tr[data-op="${bert}"] .chip.group`)).toHaveLength(0);

    await ctx.page.click(`tr[data-op="${ids[2]}"] .chip.group`);
    await shows(ids, true);
    expect(await ctx.page.inputValue("#q")).toBe(`group = "${GROUP}"`);
    // A group's list leads to its sweep view.
    expect(await ctx.page.getAttribute("#sweep-link", "href")).toBe(`#/groups/${encodeURIComponent(GROUP)}`);
    expect(ctx.pageErrors).toEqual([]);
  });

  test("tags and group are edited on the operation's page: a tag added and removed, the group set and cleared", async () => {
    await ctx.page.goto(`${ctx.server.url}/#/op/${plain}`);
    await ctx.page.waitForSelector("#labels #add-tag", { timeout: 10_000 });
    const tagsShown = () =>
      ctx.page.$$eval("#labels [data-tag]", (els) => els.map((e) => (e as HTMLElement).dataset.tag));
    const labelsNow = async () => {
      const op = await call("GET", `/operations/${plain}`);
      return { tags: op.tags, group: op.group };
    };

    await ctx.page.fill("#add-tag input", "keep baseline");
    await ctx.page.click("#add-tag button");
    await until("both tags shown", async () => (await tagsShown()).length === 2);
    expect(await tagsShown()).toEqual(["baseline", "keep"]);
    expect(await labelsNow()).toEqual({ tags: ["baseline", "keep"], group: null });

    await ctx.page.click('[data-remove-tag="baseline"]');
    await until("the tag removed", async () => (await tagsShown()).length === 1);
    expect(await labelsNow()).toEqual({ tags: ["keep"], group: null });

    await ctx.page.fill("#set-group input", "ablation 2");
    await ctx.page.click("#set-group button[type=submit]");
    await ctx.page.waitForSelector('#labels .chip.group[data-group="ablation 2"]', { timeout: 10_000 });
    expect(await labelsNow()).toEqual({ tags: ["keep"], group: "ablation 2" });

    await ctx.page.click("#clear-group");
    await ctx.page.waitForSelector("#labels #group-now .muted", { timeout: 10_000 });
    expect(await labelsNow()).toEqual({ tags: ["keep"], group: null });

    // A tag the server refuses: its 400 names the field, under the forms, and nothing changes.
    await ctx.page.fill("#add-tag input", "no!pe");
    await ctx.page.click("#add-tag button");
    const refusal = await ctx.page.waitForSelector("#labels-error .error-box", { timeout: 10_000 });
    expect(await refusal.textContent()).toContain("add_tags");
    expect(await labelsNow()).toEqual({ tags: ["keep"], group: null });
    expect(ctx.pageErrors).toEqual([]);
  });

  test("the sweep view's table holds every run of the group and sorts by any column, the sort kept in the address", async () => {
    await ctx.page.goto(`${ctx.server.url}/#/groups/${encodeURIComponent(GROUP)}`);
    await ctx.page.waitForFunction((n) => (window as any).__trainwatch.chartPoints("parallel") === n, ids.length, {
      timeout: 15_000,
    });
    const order = () =>
      ctx.page.$$eval("table.sweep tbody tr[data-op]", (trs) => trs.map((tr) => (tr as HTMLElement).dataset.op!));
    const headings = await ctx.page.$$eval("table.sweep th", (ths) =>
      ths.map((th) => (th as HTMLElement).dataset.sort),
    );
    const listedFinal = ((await call("GET", "/operations?limit=100")) as any[]).some(
      (op) => typeof op.final_loss === "number",
    );
    expect(headings).toEqual([
      "name",
      "config.lr",
      "config.width",
      "config.dropout",
      "config.optimizer",
      "status",
      "best_val_loss",
      "best_epoch",
      "epochs_completed",
      // The final loss once the list items carry it.
      ...(listedFinal ? ["final_loss"] : []),
      "verdict",
    ]);
    // By best value at first, as the server sorts it.
    expect(await order()).toEqual(await listedBy(`group = "${GROUP}"`, "best_val_loss", "asc"));

    await ctx.page.click('th[data-sort="config.lr"]');
    const byLr = [...ids.keys()].sort((a, b) => RUNS[a]!.config.lr - RUNS[b]!.config.lr || a - b).map((i) => ids[i]!);
    expect(await order()).toEqual(byLr);
    await ctx.page.click('th[data-sort="config.lr"]');
    const byLrDesc = [...ids.keys()]
      .sort((a, b) => RUNS[b]!.config.lr - RUNS[a]!.config.lr || a - b)
      .map((i) => ids[i]!);
    expect(await order()).toEqual(byLrDesc);
    expect(decodeURIComponent(new URL(ctx.page.url()).hash)).toBe(`#/groups/${GROUP}?sort=config.lr&order=desc`);

    // Every run's verdict, as its curve earned it or its pruner recorded it.
    const verdicts = await ctx.page.$$eval("table.sweep tbody tr[data-op]", (trs) =>
      Object.fromEntries(
        trs.map((tr) => [
          (tr as HTMLElement).dataset.op,
          (tr.querySelector("[data-verdict]") as HTMLElement | null)?.dataset.verdict ?? null,
        ]),
      ),
    );
    expect(verdicts).toEqual(Object.fromEntries(ids.map((id, i) => [id, RUNS[i]!.verdict])));
    expect(await ctx.page.textContent(`tr[data-op="${ids[1]}"] .why`)).toContain("MedianPruner pruned it");
    expect(ctx.pageErrors).toEqual([]);
  });

  test("the parallel-coordinates chart draws one line per run over lr (log), width, dropout and optimizer against the best value, verdicts marked", async () => {
    const s = await hook<any>("chart", "parallel");
    expect(s.axes.map((a: any) => [a.key, a.kind])).toEqual([
      ["lr", "log"],
      ["width", "linear"],
      ["dropout", "linear"],
      ["optimizer", "category"],
      ["best_val_loss", "linear"],
    ]);
    expect(s.lines).toHaveLength(ids.length);
    expect(s.drawn).toBe(ids.length);
    const line = (id: string) => s.lines.find((l: any) => l.id === id);
    RUNS.forEach((r, i) => {
      const l = line(ids[i]!);
      expect(l.verdict).toBe(r.verdict);
      // lr 1e-4 … 0.3 on a log scale: each value at its decade's place.
      expect(l.positions[0]).toBeCloseTo(Math.log(r.config.lr / 1e-4) / Math.log(0.3 / 1e-4), 9);
    });
    for (const [i, r] of RUNS.entries()) {
      const l = line(ids[i]!);
      if (r.verdict === "diverged") expect([l.colour, l.dash !== ""]).toEqual(["#dc2626", true]);
      else if (r.verdict === "pruned") expect(l.dash).not.toBe("");
      else if (r.verdict === null) expect(l.dash).toBe("");
    }
    // In the drawing too: the diverged runs' paths are red and dashed.
    const diverged = ids.filter((_, i) => RUNS[i]!.verdict === "diverged");
    for (const id of diverged) {
      const [stroke, dash] = await ctx.page.$eval(`#parallel path.line[data-op="${id}"]`, (p) => [
        p.getAttribute("stroke"),
        p.getAttribute("stroke-dasharray"),
      ]);
      expect(stroke).toBe("#dc2626");
      expect(dash).not.toBe("");
    }
    await ctx.page.screenshot({ path: join(ARTIFACTS, "dashboard-sweep.png"), fullPage: true });

    // Hovering a line names its run; clicking it opens the run.
    const best = await listedBy(`group = "${GROUP}"`, "best_val_loss", "asc");
    const target = `#parallel path.hit[data-op="${best[0]}"]`;
    const d = (await ctx.page.getAttribute(target, "d"))!;
    // Halfway along its first segment (the best run's line is drawn last, on top of any it crosses there).
    const [[x0, y0], [x1, y1]] = d
      .slice(1)
      .split("L")
      .slice(0, 2)
      .map((p) => p.split(",").map(Number)) as [number[], number[]];
    const [x, y] = [(x0! + x1!) / 2, (y0! + y1!) / 2];
    // The chart is near the page's top: scrolled there, no sticky bar covers it.
    await ctx.page.evaluate(() => window.scrollTo(0, 0));
    const svg = (await ctx.page.locator("#parallel .pc-plot svg").boundingBox())!;
    const under = await ctx.page.evaluate(
      ([px, py]) => (document.elementFromPoint(px!, py!) as HTMLElement | null)?.dataset?.op ?? null,
      [svg.x + x!, svg.y + y!],
    );
    expect(under).toBe(best[0]!);
    await ctx.page.mouse.move(svg.x + x!, svg.y + y!);
    await ctx.page.waitForSelector(".pc-tip:not([hidden])", { timeout: 5_000 });
    const name = RUNS[ids.indexOf(best[0]!)]!.name;
    expect(await ctx.page.textContent(".pc-tip b")).toBe(name);
    await ctx.page.mouse.click(svg.x + x!, svg.y + y!);
    await ctx.page.waitForFunction((id) => location.hash === `#/op/${id}`, best[0]);
    expect(ctx.pageErrors).toEqual([]);
  });

  test("a run that joins the group while the sweep view is open gets its row and its line, live", async () => {
    await ctx.page.goto(`${ctx.server.url}/#/groups/${encodeURIComponent(GROUP)}`);
    await ctx.page.waitForFunction((n) => (window as any).__trainwatch.chartPoints("parallel") === n, ids.length, {
      timeout: 15_000,
    });
    await call("PATCH", `/operations/${bert}/labels`, { group: GROUP });
    await ctx.page.waitForFunction((n) => (window as any).__trainwatch.chartPoints("parallel") === n, ids.length + 1, {
      timeout: 10_000,
    });
    expect(await ctx.page.$$(`table.sweep tr[data-op="${bert}"]`)).toHaveLength(1);
    await call("PATCH", `/operations/${bert}/labels`, { group: null });
    await ctx.page.waitForFunction((n) => (window as any).__trainwatch.chartPoints("parallel") === n, ids.length, {
      timeout: 10_000,
    });
    expect(ctx.pageErrors).toEqual([]);
  });
});
