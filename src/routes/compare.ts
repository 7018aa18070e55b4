/**
 * `GET /operations/compare?ids=a,b,c`: several runs side by side — each run's summary and its
 * downsampled curves, and which run is best. Each run is judged by the analysis route's judgement
 * and ranked by src/trends/ranking.ts, so the dashboard, the agents and `compare_runs` agree.
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "./deps.ts";
import { invalid } from "../errors.ts";
import { CompareData } from "../schemas/analysis.ts";
import { chartOfRows } from "../store/charts.ts";
import { rankRuns } from "../trends/ranking.ts";
import { analyzeOperation } from "./analysis.ts";
import { Envelope, ErrorEnvelope, ok, queryInt } from "../http/index.ts";
import { documented } from "../http/openapi.ts";
import { loadOperation, RangeQuery, rangeOf, type RangeParams } from "./operations.ts";

/** Runs one comparison holds: 100 × 10,000 epochs overlaid is bench/dashboard.ts's case. */
export const MAX_COMPARE_RUNS = 100;
export const DEFAULT_COMPARE_POINTS = 1000;

const CompareQuery = t.Object({
  ids: t.String({ minLength: 1, description: `Comma-separated operation ids, 1 … ${MAX_COMPARE_RUNS}.` }),
  max_points: queryInt("max_points", {
    minimum: 3,
    maximum: 100_000,
    description: `Points per run's curves (default ${DEFAULT_COMPARE_POINTS}), reduced as GET /metrics reduces them (min/max per bucket; first, last and best kept).`,
  }),
  ...RangeQuery,
});

/** Parses `a,b,c`: trimmed, blanks and repeats dropped, order kept. */
export function parseIds(raw: string): string[] {
  const ids = [
    ...new Set(
      raw
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
  if (ids.length === 0) throw invalid("query.ids", "expected at least one operation id");
  if (ids.length > MAX_COMPARE_RUNS) throw invalid("query.ids", `at most ${MAX_COMPARE_RUNS} runs, got ${ids.length}`);
  return ids;
}

/**
 * Reads each run's full history once, judges it, and reduces its curves (of the range, smoothed when asked) for charts.
 * Throws OPERATION_NOT_FOUND naming the first unknown id.
 */
export async function compareRuns(
  deps: Pick<AppDeps, "store" | "config">,
  ids: readonly string[],
  maxPoints = DEFAULT_COMPARE_POINTS,
  range: RangeParams = {},
) {
  // One after the other: the first unknown id is the one the error names.
  const runs = [];
  for (const id of ids) {
    const op = await loadOperation(deps.store, id);
    runs.push({ op, ...(await analyzeOperation(deps.store, op, deps.config.trends)) });
  }
  const ranking = rankRuns(runs.map((r) => r.analysis));
  return {
    runs: runs.map(({ op, epochs, analysis: a }) => {
      const first = epochs[0]?.epoch ?? null;
      const location = op.metadata.location;
      const chart = chartOfRows(epochs, { ...range, maxPoints, keepEpoch: a.best_epoch });
      return {
        operation_id: op.operation_id,
        name: op.name,
        operation_type: op.operation_type,
        status: op.status,
        location: typeof location === "string" ? location : null,
        summary: {
          monitor: a.monitor,
          best_epoch: a.best_epoch,
          best_loss: a.best_value,
          first_epoch: first,
          last_epoch: a.final?.epoch ?? null,
          epochs_to_best: a.epochs_to_best,
          epochs_completed: a.epochs_completed,
          total_epochs_planned: a.total_epochs_planned,
          final: a.final,
          flags: a.flags,
          recommendation: a.recommendation,
        },
        curves: chart.epochs,
        ...(chart.smoothed && { smoothed: chart.smoothed }),
      };
    }),
    best_run: ranking.best_run,
    basis: ranking.basis,
    max_points: maxPoints,
  };
}

export const compareRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/compare" }).get(
    "/operations/compare",
    async ({ query }) =>
      ok(await compareRuns(deps, parseIds(query.ids), query.max_points ?? DEFAULT_COMPARE_POINTS, rangeOf(query))),
    {
      query: CompareQuery,
      // Documented rather than validated, like GET /metrics: checking 20 × 1,000 epochs would cost more than building them.
      detail: {
        tags: ["metrics"],
        summary: "Compare runs",
        description:
          "For each run (in the order given, 1 … 100): best epoch and loss, epochs to best (best_epoch − first epoch), final metrics, flags, the recommendation (all over the whole history), and its curves reduced to `max_points` (default 1000) as GET /metrics reduces them; `from_epoch`/`to_epoch` narrow the curves to a zoomed range, `smoothing` adds each run's EMA over its full history and `fields` keeps only the metrics a chart shows. `best_run` names the best. 404 names the first unknown id.",
        responses: {
          200: documented("Runs side by side", Envelope(CompareData)),
          400: documented("Bad ids or max_points", ErrorEnvelope),
          404: documented("Unknown operation", ErrorEnvelope),
        },
      },
    },
  );
