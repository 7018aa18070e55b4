// The dashboard's module graph, served in process: every module the page imports (through its import map, relative
// paths and the trend core built for the browser) answers 200 as JavaScript, and nothing outside public/ is reachable.
import { describe, expect, test } from "bun:test";
import { makeApp, req } from "./helpers.ts";

// A side-effect import (`import "x"`) starts a statement: a string that merely follows the word (`=== "import"`) is none.
const IMPORTS = /\b(?:import|export)\b[^'";]*?\bfrom\s*["']([^"']+)["']|(?:^|;)\s*import\s*["']([^"']+)["']/gm;

describe("dashboard assets", () => {
  test("every module the page imports is served as JavaScript, the trend core's included", async () => {
    const { app } = makeApp();
    const page = await (await app.handle(req("GET", "/"))).text();
    const map = JSON.parse(/<script type="importmap">([\s\S]*?)<\/script>/.exec(page)![1]!).imports as Record<
      string,
      string
    >;
    const resolve = (spec: string, from: string) => {
      if (spec.startsWith("/")) return spec;
      if (spec.startsWith(".")) return new URL(spec, `http://x${from}`).pathname;
      const prefix = Object.keys(map).find((k) => spec === k || (k.endsWith("/") && spec.startsWith(k)));
      if (!prefix) throw new Error(`${from} imports "${spec}", which the import map does not name`);
      return map[prefix]! + spec.slice(prefix.length);
    };
    const seen = new Set<string>();
    const queue = [...page.matchAll(/<script type="module" src="([^"]+)"/g)].map((m) => m[1]!);
    while (queue.length) {
      const path = queue.shift()!;
      if (seen.has(path)) continue;
      seen.add(path);
      const res = await app.handle(req("GET", path));
      expect(`${path} ${res.status}`).toBe(`${path} 200`);
      expect(res.headers.get("content-type")).toContain("text/javascript");
      const code = await res.text();
      for (const m of code.matchAll(IMPORTS)) queue.push(resolve((m[1] ?? m[2])!, path));
    }
    for (const must of [
      "/assets/views/operation.js",
      "/assets/lib/html.js",
      "/assets/vendor/uPlot.esm.js",
      "/assets/trends/wire.js",
      "/assets/trends/format.js",
      "/assets/schemas/defaults.js",
      "/assets/schemas/fields.js",
      "/assets/operations/progress.js",
    ]) {
      expect(seen).toContain(must);
    }
  });

  test("a path outside public/ is not found", async () => {
    const { app } = makeApp();
    for (const path of [
      "/assets/..%2Fpackage.json",
      "/assets/lib/..%2F..%2Fpackage.json",
      "/assets/trends/index.js",
      "/assets/schemas/spec.js",
      "/assets/operations/lifecycle.js",
      "/assets/vendor/uPlot.cjs.js",
    ]) {
      expect(`${path} ${(await app.handle(req("GET", path))).status}`).toBe(`${path} 404`);
    }
  });
});
