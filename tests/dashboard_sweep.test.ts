// The sweep view's model (public/lib/sweep.js) and the page's pieces of the filter language (public/lib/query.js), as
// plain functions over list items: configuration columns, verdicts (a pruned run's reason as its pruner wrote it), the
// sort with missing values last, the axes (lr on a log scale, categories ordered), and the queries the page writes.
import { describe, expect, test } from "bun:test";
// @ts-expect-error: plain browser modules without type declarations; the assertions below pin their behaviour
import * as sweep from "../public/lib/sweep.js";
// @ts-expect-error: as above
import * as query from "../public/lib/query.js";
// @ts-expect-error: as above
import * as router from "../public/lib/router.js";

const { axisOf, configColumns, flattenConfig, positionOn, sortRuns, ticksOf, verdictsOf } = sweep;
const { groupOfQuery, groupQuery, listHash, queryErrorBox, quote, tagQuery } = query;
const { hashOf, parseHash } = router;

const trends = (over: Record<string, unknown> = {}) => ({
  monitor: "val_loss",
  best_epoch: 3,
  best_val_loss: 0.5,
  is_overfitting: false,
  is_plateaued: false,
  is_diverging: false,
  is_stalled: false,
  ...over,
});
const run = (name: string, config: unknown, over: Record<string, unknown> = {}) => ({
  operation_id: `op-${name}`,
  name,
  status: "completed",
  config,
  trends: trends(),
  progress: { epochs_completed: 10 },
  result: null,
  ...over,
});

describe("the sweep's configuration columns", () => {
  test("a configuration flattens into dotted paths, arrays as their JSON", () => {
    expect(flattenConfig({ lr: 1e-3, model: { width: 64, act: "relu" }, layers: [1, 2], bn: true, x: null })).toEqual([
      ["lr", 1e-3],
      ["model.width", 64],
      ["model.act", "relu"],
      ["layers", "[1,2]"],
      ["bn", true],
      ["x", null],
    ]);
  });

  test("the columns are the union of the runs' paths in the order they first appear", () => {
    const ops = [run("a", { lr: 1, model: { width: 2 } }), run("b", { lr: 2, dropout: 0.1 }), run("c", null)];
    expect(configColumns(ops)).toEqual(["lr", "model.width", "dropout"]);
  });
});

describe("a run's verdicts", () => {
  test("the judgement's flags name the verdicts, diverged first", () => {
    const op = run("a", {}, { trends: trends({ is_diverging: true, is_stalled: true }) });
    expect(verdictsOf(op).map((v: any) => v.key)).toEqual(["diverged", "stalled"]);
  });

  test("a pruned run says by whom and why, as the pruner wrote its result, with the flags it recorded", () => {
    const op = run(
      "t3",
      {},
      {
        status: "cancelled",
        result: {
          pruned: true,
          pruned_by: "trainwatch",
          reason: "overfitting past its best",
          flags: ["overfitting"],
          epoch: 7,
        },
      },
    );
    const v = verdictsOf(op);
    expect(v.map((x: any) => x.key)).toEqual(["pruned", "overfit"]);
    expect(v[0].why).toBe("pruned by trainwatch: overfitting past its best");
    const median = { pruned: true, pruned_by: "MedianPruner", reason: "MedianPruner pruned it at step 5" };
    expect(verdictsOf(run("t4", {}, { result: median }))[0].why).toBe("MedianPruner pruned it at step 5");
  });

  test("a run the judgement has nothing against has no verdict", () => {
    expect(verdictsOf(run("ok", {}))).toEqual([]);
  });
});

describe("sorting the sweep's table", () => {
  const ops = [
    run("a", { lr: 0.1, opt: "sgd" }),
    run("b", { lr: 0.001, opt: "adam" }),
    run("c", { opt: "adamw" }),
    run("d", { lr: 0.01 }, { trends: trends({ best_val_loss: null }) }),
  ];
  const names = (xs: any[]) => xs.map((o) => o.name);

  test("a numeric column sorts numerically, runs without the key last in either order", () => {
    expect(names(sortRuns(ops, "config.lr", "asc"))).toEqual(["b", "d", "a", "c"]);
    expect(names(sortRuns(ops, "config.lr", "desc"))).toEqual(["a", "d", "b", "c"]);
  });

  test("a text column sorts as text; an outcome column by its value, a run without one last", () => {
    expect(names(sortRuns(ops, "config.opt", "asc"))).toEqual(["b", "c", "a", "d"]);
    expect(names(sortRuns(ops, "best_val_loss", "desc"))).toEqual(["a", "b", "c", "d"]);
  });
});

describe("the parallel coordinates' axes", () => {
  test("a learning rate is on a log scale, a width on a linear one", () => {
    const lr = axisOf("lr", [1e-4, 1e-3, 1e-2, null]);
    expect(lr).toMatchObject({ kind: "log", min: 1e-4, max: 1e-2, missing: 1 });
    expect(positionOn(lr, 1e-3)).toBeCloseTo(0.5, 12);
    expect(positionOn(lr, null)).toBeNull();
    expect(ticksOf(lr)).toEqual([1e-4, 1e-3, 1e-2]);
    const width = axisOf("model.width", [32, 64, 128]);
    expect(width.kind).toBe("linear");
    expect(positionOn(width, 64)).toBeCloseTo(32 / 96, 12);
  });

  test("positive numbers spanning two decades are on a log scale whatever their name", () => {
    expect(axisOf("batch", [1, 1000]).kind).toBe("log");
    expect(axisOf("offset", [-1, 1000]).kind).toBe("linear");
  });

  test("text and mixed values are ordered categories: numbers numerically, then text", () => {
    const a = axisOf("opt", ["sgd", "adam", 10, 9, true]);
    expect(a.kind).toBe("category");
    expect(a.categories).toEqual(["9", "10", "adam", "sgd", "true"]);
    expect(positionOn(a, "adam")).toBe(0.5);
  });
});

describe("the page's queries and addresses", () => {
  test("values are quoted as the server reads them", () => {
    expect(quote('a "b" \\c')).toBe('"a \\"b\\" \\\\c"');
    expect(groupQuery("sweep 7")).toBe('group = "sweep 7"');
    expect(tagQuery("bert")).toBe('tags has "bert"');
  });

  test("a group chip's query reads back as its group; any other query as none", () => {
    expect(groupOfQuery(groupQuery("team/sweep-7"))).toBe("team/sweep-7");
    expect(groupOfQuery('group = "a" and tags has "b"')).toBeNull();
  });

  test("a search lives in the list's address and comes back whole, '/', '?' and '&' included", () => {
    const q = 'group = "a/b?c&d" and config.lr < 1e-3';
    const hash = listHash({ q, sort: "config.lr", order: "asc" });
    expect(parseHash(hash)).toMatchObject({ view: "", arg: "" });
    const { params } = parseHash(hash);
    expect([params.get("q"), params.get("sort"), params.get("order")]).toEqual([q, "config.lr", "asc"]);
    expect(listHash({})).toBe("#/");
  });

  test("a group holding '/' is one argument of the sweep's address", () => {
    const { view, arg, params } = parseHash(hashOf("groups", "team/sweep 7", { sort: "best_val_loss" }));
    expect([view, arg, params.get("sort")]).toEqual(["groups", "team/sweep 7", "best_val_loss"]);
    expect(parseHash("#/compare/a,b?x=step")).toMatchObject({ view: "compare", arg: "a,b" });
  });

  test("a refused query is shown with a caret under the position the server named, the query escaped", () => {
    const q = 'name = "<b>" and';
    const box = String(
      queryErrorBox({ code: "QUERY_SYNTAX", message: "expected a field", details: { position: 16 } }, q),
    );
    expect(box).toContain('data-position="16"');
    expect(box).toContain("&lt;b&gt;");
    expect(box).toContain(`<span class="caret">${" ".repeat(16)}^</span>`);
  });
});
