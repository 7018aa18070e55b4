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
  if (run.paramsFile) env.TRAINWATCH_PARAMS = run.paramsFile;
  return env;
}
