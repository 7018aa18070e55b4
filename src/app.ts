/** The app factory: builds the Elysia app from its dependencies. Only src/server.ts listens. */
import { Elysia } from "elysia";
import type { Config } from "./config.ts";
import { OperationsService } from "./operations/service.ts";
import { alertSettings } from "./alerts/service.ts";
import type { Store } from "./store/store.ts";
import { trainingsRoutes } from "./routes/trainings.ts";
import { docs } from "./routes/docs.ts";
import { healthRoutes } from "./routes/health.ts";
import { bodiesFirst, errorHandling, gate, jsonBody, type RouteTable } from "./http/index.ts";
import { operationsRoutes } from "./routes/operations.ts";
import { stepsRoutes } from "./routes/steps.ts";
import { systemRoutes } from "./routes/system.ts";
import { mcpHttp } from "./mcp/http.ts";
import { heartbeatRoutes } from "./routes/heartbeat.ts";
import { analysisRoutes } from "./routes/analysis.ts";
import { compareRoutes } from "./routes/compare.ts";
import { dashboardRoutes } from "./routes/dashboard.ts";
import { exportRoutes } from "./routes/export.ts";
import { checkpointRoutes } from "./routes/checkpoints.ts";
import { streamRoutes } from "./routes/stream.ts";
import { recipesRoutes } from "./routes/recipes.ts";
import { tensorboardRoutes } from "./routes/tensorboard.ts";
import { alertsRoutes } from "./routes/alerts.ts";
import type { AppDeps } from "./routes/deps.ts";
import type { Trainers } from "./trainer/types.ts";
import pkg from "../package.json" with { type: "json" };

export type { AppDeps } from "./routes/deps.ts";
export type { Trainers } from "./trainer/types.ts";

/**
 * What answers without TRAINWATCH_TOKEN: health, the API's docs (the Swagger page, its assets and the document) and
 * the dashboard's static files, which hold no data (the page asks for the token itself). Everything else, unknown
 * paths included, is 401 without the token.
 */
export const isPublicPath = (path: string): boolean =>
  path === "/api/v1/health" ||
  path === "/swagger" ||
  path.startsWith("/swagger/") ||
  path === "/" ||
  path.startsWith("/assets/");

export function createApp(input: {
  store: Store;
  config: Config;
  operations?: OperationsService;
  trainers?: Trainers;
}) {
  const deps: AppDeps = {
    ...input,
    operations:
      input.operations ??
      new OperationsService(input.store, {
        trends: input.config.trends,
        alerts: alertSettings(input.config.alerts, () => input.config.publicUrl ?? "http://127.0.0.1:8000"),
      }),
    version: pkg.version,
  };
  const api = new Elysia({ prefix: "/api/v1" }).use(healthRoutes(deps)).group("", (g) =>
    g
      .use(jsonBody(deps.config.maxBodyBytes))
      // Before /operations/:id, so "compare" is never read as an id.
      .use(compareRoutes(deps))
      .use(operationsRoutes(deps))
      .use(stepsRoutes(deps))
      .use(systemRoutes(deps))
      .use(streamRoutes(deps))
      .use(exportRoutes(deps))
      .use(tensorboardRoutes(deps))
      .use(checkpointRoutes(deps))
      .use(analysisRoutes(deps))
      .use(heartbeatRoutes(deps))
      .use(trainingsRoutes(deps))
      .use(recipesRoutes(deps))
      .use(alertsRoutes(deps)),
  );
  // normalize off: bodies are validated, not cleaned (the epoch schema keeps extra keys as
  // custom metrics on purpose), and replies are built field by field. Cleaning cost ~0.6 ms
  // per 1,000-epoch batch on the ingestion path. It only takes effect on the root app.
  const table: { routes: ReturnType<RouteTable> } = { routes: [] };
  const app = new Elysia({ name: "trainwatch", normalize: false })
    .use(errorHandling())
    // First for every request: the token, then 405. It reads the routes on the first request, so it sees every route below.
    .use(
      gate({
        token: deps.config.token,
        realm: "trainwatch",
        variable: "TRAINWATCH_TOKEN",
        isPublic: isPublicPath,
        routes: () => table.routes,
      }),
    )
    .use(bodiesFirst(() => table.routes))
    .use(docs(deps.version, { auth: deps.config.token !== null }))
    .use(dashboardRoutes())
    .use(api)
    // MCP over Streamable HTTP; its tools call the routes above through the app itself.
    .use(
      mcpHttp({
        token: deps.config.token,
        maxBodyBytes: deps.config.maxBodyBytes,
        handle: (req: Request): Promise<Response> => app.handle(req),
      }),
    )
    .decorate("deps", deps);
  table.routes = app.routes;
  return app;
}

export type App = ReturnType<typeof createApp>;
