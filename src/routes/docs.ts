/**
 * OpenAPI from the route schemas (@elysiajs/swagger), made true to the running server by
 * finalizeDocument, and Swagger UI served from the project's own swagger-ui-dist, so /swagger
 * renders with no internet access.
 */
import { Elysia } from "elysia";
import { swagger } from "@elysiajs/swagger";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { finalizeDocument, type DocumentFacts } from "../http/openapi.ts";

const require = createRequire(import.meta.url);
const assetsDir = dirname(require.resolve("swagger-ui-dist/package.json"));
const ASSETS = new Set([
  "swagger-ui.css",
  "swagger-ui-bundle.js",
  "swagger-ui-standalone-preset.js",
  "favicon-32x32.png",
]);

const page = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <title>Trainwatch API</title>
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <link rel="icon" href="/swagger/assets/favicon-32x32.png" />
  <link rel="stylesheet" href="/swagger/assets/swagger-ui.css" />
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/swagger/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "/swagger/json", dom_id: "#swagger-ui", deepLinking: true, persistAuthorization: true });
  </script>
</body>
</html>`;

/** Where the plugin serves the document as it generates it; /swagger/json serves it finalized. */
const GENERATED_PATH = "/swagger/generated.json";

/** The plugin, and the function behind its spec route (it reads the app's routes when called, so it sees them all). */
function generator(plugin: ReturnType<typeof swagger>): () => Record<string, unknown> {
  const route = plugin.routes.find((r) => r.path === GENERATED_PATH);
  if (!route || typeof route.handler !== "function")
    throw new Error(`@elysiajs/swagger no longer serves ${GENERATED_PATH}`);
  return route.handler as () => Record<string, unknown>;
}

/** The docs. `facts` says what the document cannot read from the routes (is a token configured?). */
export const docs = (version: string, facts: DocumentFacts) => {
  const plugin = swagger({
    path: "/swagger/_cdn", // the plugin's own page loads from a CDN; ours is below
    specPath: GENERATED_PATH,
    excludeStaticFile: false, // else routes with a dot (metrics.csv, metrics.json) vanish from the spec
    exclude: ["/swagger", "/swagger/_cdn", "/swagger/json", GENERATED_PATH, /^\/swagger\/assets/, "/"],
    documentation: {
      info: {
        title: "Trainwatch API",
        version,
        description:
          "Training operations and their per-epoch metrics, with trend analysis (best epoch, overfitting, plateau, divergence). Errors use `{ success: false, error: { code, message, details } }`.",
      },
      tags: [
        { name: "operations", description: "Register, list, finish and cancel operations" },
        { name: "metrics", description: "Push and read epochs with the trend summary" },
        { name: "trainings", description: "Start trainings locally or on a GPU host" },
        { name: "checkpoints", description: "The best and last checkpoints of local and host trainings, as downloads" },
        { name: "imports", description: "Runs from other tools: TensorBoard logdirs on the server" },
        { name: "mcp", description: "Model Context Protocol for agents" },
        { name: "system", description: "Health" },
      ],
    },
  });
  const generate = generator(plugin);
  // Built once, as JSON text, on the first request (src/server.ts makes that request as it starts, so no visitor pays
  // the ~40 ms and the ~15 MB of building it): by then every route is registered, and routes do not change afterwards.
  let document: string | null = null;
  return new Elysia({ name: "trainwatch/docs" })
    .use(plugin)
    .get(
      "/swagger/json",
      () =>
        new Response((document ??= JSON.stringify(finalizeDocument(generate(), facts))), {
          headers: { "content-type": "application/json" },
        }),
      { detail: { hide: true } },
    )
    .get("/swagger", () => new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } }), {
      detail: { hide: true },
    })
    .get(
      "/swagger/assets/:file",
      ({ params, set }) => {
        if (!ASSETS.has(params.file)) {
          set.status = 404;
          return "not found";
        }
        return Bun.file(join(assetsDir, params.file));
      },
      { detail: { hide: true } },
    );
};
