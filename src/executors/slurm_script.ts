/**
 * The batch script and environment of a Slurm job that runs a recipe (pure). The script is `#!/bin/bash` and one
 * `exec` of the recipe's argv, every word single-quoted: params reach the program as the recipe's words, never as
 * shell text. Everything else a job needs (the Trainwatch URL, token, operation id) travels in the job's
 * `environment`, not in the script, which Slurm keeps readable to more people than the environment.
 */
import { TrainwatchError } from "../errors.ts";
import { runEnvironment } from "../recipes/run_env.ts";

/** A word as a POSIX shell reads it back unchanged: single quotes, each ' written as '\'' . */
export function shellQuote(word: string): string {
  if (word.includes("\0"))
    throw new TrainwatchError("VALIDATION_ERROR", "argv: a word holds a NUL byte, which no program can receive");
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The batch script that runs `argv` (its first word the program) as the job's one process. With `params` (the params
 * file's text, params_via "file"), the script first writes it to a fresh private file in the node's temp folder
 * (mktemp under $TMPDIR, else /tmp) and exports its path as TRAINWATCH_PARAMS: the API writes nothing on the cluster.
 */
export function batchScript(argv: readonly string[], params: string | null = null): string {
  if (argv.length === 0) throw new TrainwatchError("VALIDATION_ERROR", "argv: the recipe's command is empty");
  const file =
    params === null
      ? ""
      : `TRAINWATCH_PARAMS="$(mktemp "\${TMPDIR:-/tmp}/trainwatch-params.XXXXXX")" || exit 1\nexport TRAINWATCH_PARAMS\nprintf '%s' ${shellQuote(params)} > "$TRAINWATCH_PARAMS" || exit 1\n`;
  return `#!/bin/bash\n${file}exec ${argv.map(shellQuote).join(" ")}\n`;
}

/** What the job's environment is made of: how it reaches its operation, and the recipe's own variables. */
export interface JobEnvironmentInput {
  /** The Trainwatch API the job's client reports to (TRAINWATCH_URL). */
  url: string;
  /** The token it reports with (TRAINWATCH_TOKEN); null when the API takes none. */
  token: string | null;
  operationId: string;
  /** The recipe's own variables; they win over the defaults, never over Trainwatch's own. */
  env?: Record<string, string>;
}

/** PATH of a job that asks for none: slurmrestd passes no environment of its own to the job. */
export const DEFAULT_JOB_PATH = "/usr/local/bin:/usr/bin:/bin";

/**
 * A job's whole environment: PATH (default DEFAULT_JOB_PATH), then what every run gets (src/recipes/recipe.ts
 * runEnvironment: PYTHONUNBUFFERED, the recipe's variables, TRAINWATCH_URL, _OPERATION_ID, _TOKEN); TRAINWATCH_PARAMS
 * comes from the script (batchScript).
 */
export function jobEnvironment(input: JobEnvironmentInput): Record<string, string> {
  return runEnvironment({ PATH: DEFAULT_JOB_PATH }, input.env, {
    url: input.url,
    operationId: input.operationId,
    token: input.token,
    // The script writes the params file on the node and exports its path itself (batchScript).
    paramsFile: null,
  });
}
