/**
 * `GET /operations/compare?ids=a,b,c`: several runs side by side — each run's summary and its
 * downsampled curves, and which run is best. Each run is judged by the analysis route's judgement
 * and ranked by src/trends/ranking.ts, so the dashboard, the agents and `compare_runs` agree.
 * `GET /operations/curves?ids=a,b,c`: the same runs' curves alone (a comparison chart's zoom, metric or weight),
 * each read as GET /metrics reads one run, so nothing is judged and a long range reads block summaries.
 * Both overlay the runs by epoch (`x=epoch`, the default; a step run by its derived epoch records) or by step (`x=step`,
 * each run's steps read as GET …/steps reads them; a run without steps has no curve there).
 */
import { Elysia, t } from "elysia";
import type { AppDeps } from "./deps.ts";
import { invalid } from "../errors.ts";
import { CompareData, CompareX, CurvesData } from "../schemas/analysis.ts";
import type { Operation } from "../schemas/operation.ts";
import { readChart, readSeries, SCAN_ROWS, stepSeries, type ChartTuning } from "../store/charts.ts";
import { rankRuns } from "../trends/ranking.ts";
import { COMPARE_MAX_POINTS } from "../schemas/operation.ts";
import { queryInt, RangeQuery, StepsQuery } from "../schemas/query.ts";
import { loadOperation } from "../store/load.ts";
import { analyzeOperation, rangeOf, type RangeParams } from "../operations/reads.ts";
import { Envelope, ErrorEnvelope, ok } from "../http/index.ts";
import { documented } from "../http/openapi.ts";

/** Runs one comparison holds: 100 × 10,000 epochs overlaid is bench/dashboard.ts's case. */
export const MAX_COMPARE_RUNS = 100;
export const DEFAULT_COMPARE_POINTS = 1000;

const CompareQuery = t.Object({
  ids: t.String({ minLength: 1, description: `Comma-separated operation ids, 1 … ${MAX_COMPARE_RUNS}.` }),
  max_points: queryInt("max_points", {
    ...COMPARE_MAX_POINTS,
    description: `Points per run's curves (default ${DEFAULT_COMPARE_POINTS}), reduced as GET /metrics reduces them (min/max per bucket; first, last and best kept).`,
  }),
  x: t.Optional(CompareX),
  ...RangeQuery,
  from_step: StepsQuery.properties.from_step,
  to_step: StepsQuery.properties.to_step,
});

/** The x axis a comparison overlays its runs on. */
export type XAxis = "epoch" | "step";

/**
 * The range of a comparison on axis `x`: from_step/to_step for steps, from_epoch/to_epoch for epochs (rangeOf); a bound
 * of the other axis is a 400 naming it, rather than a range silently ignored.
 */
export function axisRange(query: Parameters<typeof rangeOf>[0], x: XAxis): RangeParams {
  const other = x === "step" ? "epoch" : "step";
  for (const end of ["from", "to"] as const)
    if (query[`${end}_${other}`] !== undefined)
      throw invalid(`query.${end}_${other}`, `bounds the ${other} axis; with x=${x} the range is ${end}_${x}`);
  return rangeOf(query, x);
}

/** A run's curves and their EMA, as the replies carry them. */
type RunCurves = Pick<CurvesData["runs"][number], "curves" | "smoothed">;

/**
 * A run's curves on axis `x`: its epochs as GET /metrics reads them (the best epoch kept), or its steps as GET …/steps
 * reads them. `tuning`: the read budget (readSeries).
 */
async function readCurves(
  store: AppDeps["store"],
  op: Operation,
  x: XAxis,
  query: RangeParams & { maxPoints: number },
  tuning: ChartTuning = {},
): Promise<RunCurves> {
  if (x === "step") {
    const { rows, smoothed } = await readSeries(
      stepSeries(store, op.operation_id, op.progress.steps_pruned_at !== undefined),
      query,
      tuning,
    );
    return { curves: rows, ...(smoothed && { smoothed }) };
  }
  const chart = await readChart(store, op.operation_id, { ...query, keepEpoch: op.trends.best_epoch }, tuning);
  return { curves: chart.epochs, ...(chart.smoothed && { smoothed: chart.smoothed }) };
}

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
 * Reads each run's stored judgement (GET …/analysis's, kept on write) and its curves (of the range, smoothed when asked;
 * on axis `x`, epochs by default) as GET …/metrics or GET …/steps read them, sharing one read budget as runCurves does:
 * a comparison costs the same at any run length. Throws OPERATION_NOT_FOUND naming the first unknown id.
 */
export async function compareRuns(
  deps: Pick<AppDeps, "store" | "config">,
  ids: readonly string[],
  maxPoints = DEFAULT_COMPARE_POINTS,
  range: RangeParams = {},
  x: XAxis = "epoch",
) {
  // One after the other: the first unknown id is the one the error names.
  const runs = [];
  for (const id of ids) {
    const op = await loadOperation(deps.store, id);
    runs.push({ op, ...(await analyzeOperation(deps.store, op, deps.config.trends)) });
  }
  const ranking = rankRuns(runs.map((r) => r.analysis));
  const curves: RunCurves[] = [];
  const scanRows = SCAN_ROWS / ids.length;
  for (const { op } of runs) curves.push(await readCurves(deps.store, op, x, { ...range, maxPoints }, { scanRows }));
  return {
    x,
    runs: runs.map(({ op, first, analysis: a }, i) => {
      const location = op.metadata.location;
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
        ...curves[i]!,
      };
    }),
    best_run: ranking.best_run,
    basis: ranking.basis,
    max_points: maxPoints,
  };
}

/**
 * Each run's curves of the range on axis `x` (epochs by default), in the order given (reduced, smoothed, narrowed to
 * fields as asked); the first unknown id is a 404. The rows a request may read before its runs reduce from block
 * summaries (SCAN_ROWS) are shared out over the runs: 100 runs × 10,000 epochs read from their blocks (~2 ms a run),
 * not a million rows (~1.5 s).
 */
export async function runCurves(
  store: AppDeps["store"],
  ids: readonly string[],
  maxPoints = DEFAULT_COMPARE_POINTS,
  range: RangeParams = {},
  x: XAxis = "epoch",
): Promise<CurvesData> {
  const runs: CurvesData["runs"] = [];
  const scanRows = SCAN_ROWS / ids.length;
  for (const id of ids) {
    const op = await loadOperation(store, id);
    runs.push({
      operation_id: id,
      name: op.name,
      operation_type: op.operation_type,
      ...(await readCurves(store, op, x, { ...range, maxPoints }, { scanRows })),
    });
  }
  return { x, runs, max_points: maxPoints };
}

export const compareRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/compare" })
    .get(
      "/operations/compare",
      async ({ query }) => {
        const x = query.x ?? "epoch";
        const range = axisRange(query, x);
        return ok(await compareRuns(deps, parseIds(query.ids), query.max_points ?? DEFAULT_COMPARE_POINTS, range, x));
      },
      {
        query: CompareQuery,
        // Documented rather than validated, like GET /metrics: checking 20 × 1,000 epochs would cost more than building them.
        detail: {
          tags: ["metrics"],
          summary: "Compare runs",
          description:
            "For each run (in the order given, 1 … 100): best epoch and loss, epochs to best (best_epoch − first epoch), final metrics, flags, the recommendation (all over the whole history), and its curves reduced to `max_points` (default 1000) as GET /metrics reduces them; `from_epoch`/`to_epoch` narrow the curves to a zoomed range, `smoothing` adds each run's EMA over its full history and `fields` keeps only the metrics a chart shows. `x=step` overlays the runs by step instead: each run's curves are its steps as GET …/steps reads them, narrowed by `from_step`/`to_step` (the summaries stay per epoch); by epoch (the default) a step run shows its derived epoch records. `best_run` names the best. 400 names a bad `x`, or a bound of the other axis; 404 names the first unknown id.",
          responses: {
            200: documented("Runs side by side", Envelope(CompareData)),
            400: documented("Bad ids or max_points", ErrorEnvelope),
            404: documented("Unknown operation", ErrorEnvelope),
          },
        },
      },
    )
    .get(
      "/operations/curves",
      async ({ query }) => {
        const x = query.x ?? "epoch";
        const range = axisRange(query, x);
        return ok(
          await runCurves(deps.store, parseIds(query.ids), query.max_points ?? DEFAULT_COMPARE_POINTS, range, x),
        );
      },
      {
        query: CompareQuery,
        // Documented rather than validated, like the comparison.
        detail: {
          tags: ["metrics"],
          summary: "Several runs' chart curves",
          description:
            "For each run (in the order given, 1 … 100), its name and its curves as GET /operations/{id}/metrics reduces them, with the same guarantee: `from_epoch`/`to_epoch`, `max_points` (default 1000), `smoothing` and `fields` as there, the best epoch kept; with `x=step`, its steps as GET /operations/{id}/steps reads them, narrowed by `from_step`/`to_step`. Nothing is judged, so a comparison chart costs the ranges read, not every run's history (GET /operations/compare has the summaries); the runs share one read budget, past which they reduce from their block summaries. 404 names the first unknown id.",
          responses: {
            200: documented("Each run's curves", Envelope(CurvesData)),
            400: documented("Bad ids, range or max_points", ErrorEnvelope),
            404: documented("Unknown operation", ErrorEnvelope),
          },
        },
      },
    );
