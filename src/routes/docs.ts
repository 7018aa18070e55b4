/**
 * OpenAPI from the route schemas (@elysiajs/swagger) and Swagger UI served from the
 * project's own swagger-ui-dist, so /swagger renders with no internet access.
 */
import { Elysia } from "elysia";
import { swagger } from "@elysiajs/swagger";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const assetsDir = dirname(require.resolve("swagger-ui-dist/package.json"));
const ASSETS = new Set(["swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png"]);

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

export const docs = (version: string) =>
  new Elysia({ name: "trainwatch/docs" })
    .use(
      swagger({
        path: "/swagger/_cdn", // the plugin's own page loads from a CDN; ours is below
        specPath: "/swagger/json",
        excludeStaticFile: false, // else routes with a dot (metrics.csv, metrics.json) vanish from the spec
        exclude: ["/swagger", "/swagger/_cdn", /^\/swagger\/assets/, "/"],
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
            { name: "system", description: "Health" },
          ],
          components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
          security: [{ bearer: [] }],
        },
      }),
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
