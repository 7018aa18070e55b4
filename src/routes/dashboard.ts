/**
 * The web dashboard at `/`: static ES modules from public/ (views/, lib/), uPlot's ESM build
 * from the project's own node_modules (no CDN), and the trend core's smoothing, downsampling,
 * formatters and wire codec built for the browser by Bun.build at startup, so the page draws
 * and words numbers exactly as the server does; the spec's DEFAULTS table, the epoch's standard
 * fields and the progress rule come the same way, so the New training form shows the defaults the
 * server fills and the operation page counts as the server does. The page's import map names them.
 */
import { Elysia } from "elysia";
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, sep } from "node:path";

const require = createRequire(import.meta.url);
const PUBLIC_DIR = join(import.meta.dir, "../../public");
const UPLOT_DIR = dirname(require.resolve("uplot/dist/uPlot.esm.js"));
const VENDOR = new Set(["uPlot.esm.js", "uPlot.min.css"]);
/**
 * Server modules the page imports as /assets/<folder>/<name>.js: the trend core's, the spec's defaults, the epoch's
 * standard fields and the progress rule. They are pure (tests/layering.test.ts), so they run as is. Built together,
 * each output is named "<folder>/<name>.js".
 */
const BROWSER_MODULES = [
  ...["smoothing", "downsample", "format", "wire"].map((m) => join(import.meta.dir, `../trends/${m}.ts`)),
  join(import.meta.dir, "../schemas/defaults.ts"),
  join(import.meta.dir, "../schemas/fields.ts"),
  join(import.meta.dir, "../schemas/alert_events.ts"),
  join(import.meta.dir, "../operations/progress.ts"),
  join(import.meta.dir, "../operations/utilisation.ts"),
];

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
};
const typeOf = (file: string) => TYPES[file.slice(file.lastIndexOf(".") + 1)] ?? "application/octet-stream";

/** Transpiles the browser modules; one build per app, started with it. Keys: "trends/format.js", "operations/progress.js". */
async function buildBrowserModules(): Promise<Map<string, string>> {
  // The root named: Bun otherwise picks one from the entry points, and named the outputs "src/<folder>/…" for some sets.
  const root = join(import.meta.dir, "..");
  const out = await Bun.build({
    entrypoints: BROWSER_MODULES,
    root,
    target: "browser",
    format: "esm",
    splitting: false,
  });
  if (!out.success) throw new AggregateError(out.logs, "building the dashboard's browser modules failed");
  const files = new Map<string, string>();
  for (const o of out.outputs) files.set(o.path.replace(/^\.\//, ""), await o.text());
  return files;
}

const notFoundPage = () => new Response("not found", { status: 404, headers: { "content-type": "text/plain" } });

/** Serves the dashboard. Public: the page holds no data; it asks for the API token itself. */
export const dashboardRoutes = () => {
  // Only files present at startup are served, by exact relative path ("views/list.js"): no path can escape public/.
  const publicFiles = new Set(
    readdirSync(PUBLIC_DIR, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile() && !d.name.startsWith("."))
      .map((d) => relative(PUBLIC_DIR, join(d.parentPath, d.name)).split(sep).join("/")),
  );
  const built = buildBrowserModules();
  built.catch((err) => console.error("[dashboard]", err));
  const builtFile = async (name: string) => {
    const code = (await built).get(name);
    return code === undefined
      ? notFoundPage()
      : new Response(code, { headers: { "content-type": typeOf(name), "cache-control": "no-cache" } });
  };
  const file = (dir: string, name: string) =>
    new Response(Bun.file(join(dir, name)), { headers: { "content-type": typeOf(name), "cache-control": "no-cache" } });

  return new Elysia({ name: "trainwatch/dashboard" })
    .get("/", () => file(PUBLIC_DIR, "index.html"), { detail: { hide: true } })
    .get("/assets/*", ({ params }) => (publicFiles.has(params["*"]) ? file(PUBLIC_DIR, params["*"]) : notFoundPage()), {
      detail: { hide: true },
    })
    .get(
      "/assets/vendor/:file",
      ({ params }) => (VENDOR.has(params.file) ? file(UPLOT_DIR, params.file) : notFoundPage()),
      {
        detail: { hide: true },
      },
    )
    .get("/assets/trends/:file", ({ params }) => builtFile(`trends/${params.file}`), { detail: { hide: true } })
    .get("/assets/schemas/:file", ({ params }) => builtFile(`schemas/${params.file}`), { detail: { hide: true } })
    .get("/assets/operations/:file", ({ params }) => builtFile(`operations/${params.file}`), {
      detail: { hide: true },
    });
};
