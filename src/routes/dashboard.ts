/**
 * The web dashboard at `/`: static files from public/, uPlot from the project's own
 * node_modules (no CDN), and the trend core's smoothing and downsampling built for the
 * browser by Bun.build at startup, so the page draws exactly the server's curves.
 */
import { Elysia } from "elysia";
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const PUBLIC_DIR = join(import.meta.dir, "../../public");
const UPLOT_DIR = dirname(require.resolve("uplot/dist/uPlot.iife.min.js"));
const VENDOR = new Set(["uPlot.iife.min.js", "uPlot.min.css"]);
/** Trend-core modules the page imports as /assets/lib/<name>.js. They are pure (tests/trends_purity.test.ts), so they run as is. */
const BROWSER_MODULES = ["smoothing", "downsample"].map((m) => join(import.meta.dir, `../trends/${m}.ts`));

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
};
const typeOf = (file: string) => TYPES[file.slice(file.lastIndexOf(".") + 1)] ?? "application/octet-stream";

/** Transpiles the trend modules for the browser; one build per process, started with the app. */
async function buildBrowserModules(): Promise<Map<string, string>> {
  const out = await Bun.build({ entrypoints: BROWSER_MODULES, target: "browser", format: "esm", splitting: false });
  if (!out.success) throw new AggregateError(out.logs, "building the dashboard's trend modules failed");
  const files = new Map<string, string>();
  for (const o of out.outputs) files.set(basename(o.path), await o.text());
  return files;
}

const notFoundPage = () => new Response("not found", { status: 404, headers: { "content-type": "text/plain" } });

/** Serves the dashboard. Public: the page holds no data; it asks for the API token itself. */
export const dashboardRoutes = () => {
  // Only files present at startup are served, by exact name: no path can escape public/.
  const publicFiles = new Set(readdirSync(PUBLIC_DIR).filter((f) => !f.startsWith(".")));
  const built = buildBrowserModules();
  built.catch((err) => console.error("[dashboard]", err));
  const file = (dir: string, name: string) =>
    new Response(Bun.file(join(dir, name)), { headers: { "content-type": typeOf(name), "cache-control": "no-cache" } });

  return new Elysia({ name: "trainwatch/dashboard" })
    .get("/", () => file(PUBLIC_DIR, "index.html"), { detail: { hide: true } })
    .get("/assets/:file", ({ params }) => (publicFiles.has(params.file) ? file(PUBLIC_DIR, params.file) : notFoundPage()), {
      detail: { hide: true },
    })
    .get("/assets/vendor/:file", ({ params }) => (VENDOR.has(params.file) ? file(UPLOT_DIR, params.file) : notFoundPage()), {
      detail: { hide: true },
    })
    .get(
      "/assets/lib/:file",
      async ({ params }) => {
        const code = (await built).get(params.file);
        return code === undefined
          ? notFoundPage()
          : new Response(code, { headers: { "content-type": typeOf(params.file), "cache-control": "no-cache" } });
      },
      { detail: { hide: true } },
    );
};
