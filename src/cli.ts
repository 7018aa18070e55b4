/**
 * The Trainwatch command line: `bun run src/cli.ts <command> …` (or `npm run cli -- <command> …`). It talks to a running
 * server through the one typed client (src/client), as TRAINWATCH_URL and TRAINWATCH_TOKEN say or --url and --token.
 *
 *   import-tensorboard <logdir> [--tag-map '{"tag": "field"}'] [--json] [--url URL] [--token TOKEN]
 *     Imports a TensorBoard logdir that lies on the server, inside its TRAINWATCH_DATA_DIR (a path relative to that
 *     directory, or absolute inside it): each run becomes an operation. Progress (records read) goes to stderr while
 *     it runs; the report to stdout (--json: as JSON). Exit 0 when imported, 1 when the import failed, 2 on bad usage.
 */
import { parseArgs } from "node:util";
import { ApiError, TrainwatchClient } from "./client/api.ts";
import type { Operation } from "./schemas/operation.ts";
import type { TensorboardImportReport } from "./schemas/tensorboard.ts";

const USAGE = `usage: bun run src/cli.ts import-tensorboard <logdir> [--tag-map JSON] [--json] [--url URL] [--token TOKEN]
  <logdir>  a directory on the server, inside its TRAINWATCH_DATA_DIR (relative to it, or absolute inside it)`;

/** How often the import operation is read for its progress. */
const POLL_MS = 250;

/** The report as a few lines a person reads: one per run, then what was cut short. */
export function describeReport(r: TensorboardImportReport): string {
  const lines = [
    `imported ${r.logdir}: ${r.runs.filter((x) => x.operation_id).length} run(s), ${r.epochs} epoch(s), ${r.skipped_events} event(s) skipped (import ${r.import_operation_id})${r.cancelled ? " — cancelled: later runs were not imported" : ""}`,
  ];
  const width = Math.max(...r.runs.map((x) => x.name.length), 3);
  for (const run of r.runs) {
    const where = run.operation_id ?? "no scalars, nothing created";
    const skipped = run.skipped.events + run.skipped.values + run.skipped.steps;
    lines.push(
      `  ${run.name.padEnd(width)}  ${where}  ${run.epochs} epochs from ${run.records} records${skipped ? `, skipped ${run.skipped.events} events, ${run.skipped.values} values, ${run.skipped.steps} steps` : ""}`,
    );
    for (const t of run.truncated)
      lines.push(
        `  ${"".padEnd(width)}  ${t.file}: its last record (at byte ${t.offset}) is cut short: still being written?`,
      );
  }
  return lines.join("\n");
}

async function importTensorboard(client: TrainwatchClient, logdir: string, tagMap: unknown, asJson: boolean) {
  let op: Operation = await client.importTensorboard({
    logdir,
    tag_map: tagMap as Record<string, string | null> | undefined,
    wait: false,
  });
  let shown = "";
  while (op.status === "pending" || op.status === "running") {
    const b = op.progress.batch;
    const line = b ? `importing ${logdir}: ${b.batch}/${b.batches} records (${op.progress.percentage}%)` : "";
    if (line && line !== shown) process.stderr.write(`${line}\n`), (shown = line);
    await Bun.sleep(POLL_MS);
    op = await client.getOperation(op.operation_id);
  }
  if (op.status !== "completed" && !op.result) {
    console.error(`import ${op.operation_id} ${op.status}: ${op.error_message ?? "no reason given"}`);
    return 1;
  }
  const report = op.result as TensorboardImportReport;
  console.log(asJson ? JSON.stringify(report, null, 2) : describeReport(report));
  return 0;
}

export async function main(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const [command, logdir, ...rest] = positionals;
  if (command !== "import-tensorboard" || !logdir || rest.length > 0) {
    console.error(USAGE);
    return 2;
  }
  let tagMap: unknown;
  if (values["tag-map"] !== undefined) {
    try {
      tagMap = JSON.parse(values["tag-map"]);
    } catch {
      console.error(`--tag-map: not JSON: ${values["tag-map"]}\n${USAGE}`);
      return 2;
    }
  }
  const client = TrainwatchClient.fromEnv({
    ...env,
    TRAINWATCH_URL: values.url ?? env.TRAINWATCH_URL,
    TRAINWATCH_TOKEN: values.token ?? env.TRAINWATCH_TOKEN,
  });
  try {
    return await importTensorboard(client, logdir, tagMap, values.json === true);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const d = err.details;
    const where = d && typeof d.file === "string" ? ` (file ${d.file}, byte offset ${d.offset})` : "";
    console.error(`import-tensorboard: ${err.message}${where}`);
    return 1;
  }
}

const parse = (argv: string[]) =>
  parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      token: { type: "string" },
      "tag-map": { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
