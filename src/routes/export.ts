/**
 * Full-history downloads: `metrics.csv` (one row per epoch, one column per field, custom
 * metrics included) and `metrics.json` (the operation and every epoch), both as attachments,
 * streamed: the epochs are read and written a page at a time (src/store/pages.ts, src/http/download.ts), and the
 * CSV's columns come from the operation's stored metric names, not from a scan of its rows.
 */
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import type { AppDeps } from "./deps.ts";
import { epochPages, pageEpochs, stepPages, systemPages } from "../store/pages.ts";
import { downloadStream } from "../http/download.ts";
import { notFound } from "../errors.ts";
import { EpochInput, MAX_METRIC_NAMES, STANDARD_FIELDS, type WireEpoch } from "../schemas/epoch.ts";
import { STEP_FIELDS, StepInput, type WireStep } from "../schemas/step.ts";
import { Operation, OperationIdParams } from "../schemas/operation.ts";
import { SystemSample } from "../schemas/system.ts";
import { ErrorEnvelope } from "../http/index.ts";
import { documented } from "../http/openapi.ts";

const FIXED = ["epoch", "timestamp", ...STANDARD_FIELDS] as const;
/** A steps CSV's fixed columns: the step, its epoch, then as an epoch's. */
const STEP_FIXED = ["step", "epoch", "timestamp", ...STEP_FIELDS] as const;

/** RFC 4180 field: quoted (quotes doubled) when it holds a comma, quote, CR or LF. */
export function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

/** The CSV's columns: `epoch,timestamp,train_loss,…,duration`, then the custom metrics in name order. */
export const csvColumns = (customNames: Iterable<string>): string[] => [...FIXED, ...[...customNames].sort()];

/** The header line of `columns` (CRLF-ended). */
export const csvHeader = (columns: readonly string[]): string => `${columns.map(csvField).join(",")}\r\n`;

/**
 * Epochs as CSV lines under `columns`, each CRLF-ended. Numbers as JavaScript prints them (round-trip exact), NaN,
 * Infinity and -Infinity as those words, null or absent as an empty field.
 */
export function csvRows(
  epochs: readonly (WireEpoch | WireStep | Record<string, unknown>)[],
  columns: readonly string[],
): string {
  let out = "";
  for (const e of epochs) {
    const row = e as Record<string, unknown>;
    out += `${columns.map((c) => (row[c] === null || row[c] === undefined ? "" : csvField(String(row[c])))).join(",")}\r\n`;
  }
  return out;
}

/** Epochs as a whole CSV, the columns those the epochs hold: what the streamed download writes for the same epochs. */
export function epochsToCsv(epochs: readonly WireEpoch[]): string {
  const custom = new Set<string>();
  const fixed = new Set<string>(FIXED);
  for (const e of epochs) for (const k of Object.keys(e)) if (!fixed.has(k)) custom.add(k);
  const columns = csvColumns(custom);
  return csvHeader(columns) + csvRows(epochs, columns);
}

/**
 * The CSV download, chunk by chunk: the header from the operation's stored metric names, then one chunk per page.
 * Epochs written during the download may show in it; a custom metric first named meanwhile has no column.
 */
async function* csvChunks(store: AppDeps["store"], operationId: string): AsyncGenerator<string> {
  const names = await store.metricNames(operationId);
  const columns = csvColumns(names);
  yield csvHeader(columns);
  for await (const page of epochPages(store, operationId, pageEpochs(names.length))) yield csvRows(page, columns);
}

/**
 * The steps CSV, as csvChunks: step, epoch, timestamp, the step fields, then the operation's custom metric names (the
 * list it shares with its epochs, less `step`, the derived epochs' own).
 */
async function* stepCsvChunks(store: AppDeps["store"], operationId: string): AsyncGenerator<string> {
  const names = (await store.metricNames(operationId)).filter((n) => n !== "step");
  const columns = [...STEP_FIXED, ...names];
  yield csvHeader(columns);
  for await (const page of stepPages(store, operationId, pageEpochs(names.length))) yield csvRows(page, columns);
}

/**
 * The JSON download, chunk by chunk: exactly `JSON.stringify({ operation, <series>, exported_at })`, rows a page at a
 * time (`series`: the epochs, or the steps).
 */
async function* jsonChunks(
  store: AppDeps["store"],
  operation: Operation,
  series: "epochs" | "steps" = "epochs",
): AsyncGenerator<string> {
  const id = operation.operation_id;
  const exportedAt = new Date().toISOString();
  yield `{"operation":${JSON.stringify(operation)},"${series}":[`;
  let first = true;
  const size = pageEpochs((await store.metricNames(id)).length);
  for await (const page of series === "steps" ? stepPages(store, id, size) : epochPages(store, id, size)) {
    const json = JSON.stringify(page);
    // The page's array without its brackets, after a comma unless it is the first.
    yield `${first ? "" : ","}${json.slice(1, -1)}`;
    first = false;
  }
  yield `],"exported_at":${JSON.stringify(exportedAt)}}`;
}

/** The system CSV's columns: one row per sample and GPU (a sample without GPUs: one row, its GPU columns empty). */
export const SYSTEM_COLUMNS = [
  "timestamp",
  "process_cpu_percent",
  "process_rss_mb",
  "machine_cpu_percent",
  "machine_memory_used_mb",
  "machine_memory_total_mb",
  "machine_load_1m",
  "gpu_index",
  "gpu_name",
  "gpu_utilization_percent",
  "gpu_memory_used_mb",
  "gpu_memory_total_mb",
  "gpu_temperature_c",
  "gpu_power_w",
] as const;

/** Samples as CSV lines under SYSTEM_COLUMNS: the groups flattened as `<group>_<reading>`, a row per GPU. */
export function systemCsvRows(samples: readonly SystemSample[]): string {
  const rows: Record<string, unknown>[] = [];
  for (const s of samples) {
    const base: Record<string, unknown> = { timestamp: s.timestamp };
    for (const [k, v] of Object.entries(s.process ?? {})) base[`process_${k}`] = v;
    for (const [k, v] of Object.entries(s.machine ?? {})) base[`machine_${k}`] = v;
    if (!s.gpus?.length) rows.push(base);
    for (const g of s.gpus ?? []) {
      const row = { ...base };
      for (const [k, v] of Object.entries(g)) row[`gpu_${k}`] = v;
      rows.push(row);
    }
  }
  return csvRows(rows, SYSTEM_COLUMNS);
}

async function* systemCsvChunks(store: AppDeps["store"], operationId: string): AsyncGenerator<string> {
  yield csvHeader(SYSTEM_COLUMNS);
  for await (const page of systemPages(store, operationId)) yield systemCsvRows(page);
}

/** The system JSON download: exactly `JSON.stringify({ operation, samples, exported_at })`, a page at a time. */
async function* systemJsonChunks(store: AppDeps["store"], operation: Operation): AsyncGenerator<string> {
  const exportedAt = new Date().toISOString();
  yield `{"operation":${JSON.stringify(operation)},"samples":[`;
  let first = true;
  for await (const page of systemPages(store, operation.operation_id)) {
    yield `${first ? "" : ","}${JSON.stringify(page).slice(1, -1)}`;
    first = false;
  }
  yield `],"exported_at":${JSON.stringify(exportedAt)}}`;
}

/** `attachment; filename="<id>-metrics.csv"` (`what`: metrics or steps); ids are URL-safe, but quotes are stripped anyway. */
const attachment = (id: string, ext: string, what = "metrics") =>
  `attachment; filename="${id.replace(/["\\\r\n]/g, "")}-${what}.${ext}"`;

export const exportRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/export" })
    .get(
      "/operations/:id/metrics.csv",
      async ({ params }) => {
        if (!(await deps.store.getOperation(params.id))) throw notFound(params.id);
        return new Response(downloadStream(csvChunks(deps.store, params.id)), {
          headers: { "content-type": "text/csv; charset=utf-8", "content-disposition": attachment(params.id, "csv") },
        });
      },
      {
        params: OperationIdParams,
        detail: {
          tags: ["metrics"],
          summary: "Download every epoch as CSV",
          description: `One row per stored epoch, ascending; columns epoch, timestamp, train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration, then every custom metric the operation holds (sorted by name; at most ${MAX_METRIC_NAMES}). Streamed a page of epochs at a time. Empty field = no value; NaN, Infinity and -Infinity are written as such. RFC 4180 quoting, CRLF line ends.`,
          responses: {
            200: documented("CSV attachment", { type: "string" }, "text/csv"),
            404: documented("Unknown operation", ErrorEnvelope),
          },
        },
      },
    )
    .get(
      "/operations/:id/metrics.json",
      async ({ params }) => {
        const operation = await deps.store.getOperation(params.id);
        if (!operation) throw notFound(params.id);
        return new Response(downloadStream(jsonChunks(deps.store, operation)), {
          headers: {
            "content-type": "application/json; charset=utf-8",
            "content-disposition": attachment(params.id, "json"),
          },
        });
      },
      {
        params: OperationIdParams,
        detail: {
          tags: ["metrics"],
          summary: "Download the full history as JSON",
          description:
            '`{ operation, epochs, exported_at }`: the operation as in `GET /operations/{id}` and every stored epoch as in `GET /metrics` (non-finite values as the strings "NaN", "Infinity", "-Infinity"). A file, so no envelope.',
          responses: {
            200: documented(
              "JSON attachment",
              Type.Object({
                operation: Operation,
                epochs: Type.Array(EpochInput),
                exported_at: Type.String({ format: "date-time" }),
              }),
            ),
            404: documented("Unknown operation", ErrorEnvelope),
          },
        },
      },
    )
    .get(
      "/operations/:id/steps.csv",
      async ({ params }) => {
        if (!(await deps.store.getOperation(params.id))) throw notFound(params.id);
        return new Response(downloadStream(stepCsvChunks(deps.store, params.id)), {
          headers: {
            "content-type": "text/csv; charset=utf-8",
            "content-disposition": attachment(params.id, "csv", "steps"),
          },
        });
      },
      {
        params: OperationIdParams,
        detail: {
          tags: ["metrics"],
          summary: "Download every step as CSV",
          description: `One row per stored step, ascending; columns step, epoch, timestamp, ${STEP_FIELDS.join(", ")}, then every custom metric the operation holds (sorted by name; at most ${MAX_METRIC_NAMES}). Streamed a page of steps at a time; quoting and values as metrics.csv.`,
          responses: {
            200: documented("CSV attachment", { type: "string" }, "text/csv"),
            404: documented("Unknown operation", ErrorEnvelope),
          },
        },
      },
    )
    .get(
      "/operations/:id/steps.json",
      async ({ params }) => {
        const operation = await deps.store.getOperation(params.id);
        if (!operation) throw notFound(params.id);
        return new Response(downloadStream(jsonChunks(deps.store, operation, "steps")), {
          headers: {
            "content-type": "application/json; charset=utf-8",
            "content-disposition": attachment(params.id, "json", "steps"),
          },
        });
      },
      {
        params: OperationIdParams,
        detail: {
          tags: ["metrics"],
          summary: "Download every step as JSON",
          description:
            "`{ operation, steps, exported_at }`: the operation as in `GET /operations/{id}` and every stored step as in `GET /steps`, streamed. A file, so no envelope.",
          responses: {
            200: documented(
              "JSON attachment",
              Type.Object({
                operation: Operation,
                steps: Type.Array(StepInput),
                exported_at: Type.String({ format: "date-time" }),
              }),
            ),
            404: documented("Unknown operation", ErrorEnvelope),
          },
        },
      },
    )
    .get(
      "/operations/:id/system.csv",
      async ({ params }) => {
        if (!(await deps.store.getOperation(params.id))) throw notFound(params.id);
        return new Response(downloadStream(systemCsvChunks(deps.store, params.id)), {
          headers: {
            "content-type": "text/csv; charset=utf-8",
            "content-disposition": attachment(params.id, "csv", "system"),
          },
        });
      },
      {
        params: OperationIdParams,
        detail: {
          tags: ["metrics"],
          summary: "Download every system sample as CSV",
          description: `Every stored system sample, ascending, one row per sample and GPU (a sample without GPUs is one row with empty GPU columns); columns ${SYSTEM_COLUMNS.join(", ")}. Empty field = no value. Streamed a page at a time; quoting as metrics.csv.`,
          responses: {
            200: documented("CSV attachment", { type: "string" }, "text/csv"),
            404: documented("Unknown operation", ErrorEnvelope),
          },
        },
      },
    )
    .get(
      "/operations/:id/system.json",
      async ({ params }) => {
        const operation = await deps.store.getOperation(params.id);
        if (!operation) throw notFound(params.id);
        return new Response(downloadStream(systemJsonChunks(deps.store, operation)), {
          headers: {
            "content-type": "application/json; charset=utf-8",
            "content-disposition": attachment(params.id, "json", "system"),
          },
        });
      },
      {
        params: OperationIdParams,
        detail: {
          tags: ["metrics"],
          summary: "Download every system sample as JSON",
          description:
            "`{ operation, samples, exported_at }`: the operation as in `GET /operations/{id}` and every stored system sample as POST …/system takes them, ascending, streamed. A file, so no envelope.",
          responses: {
            200: documented(
              "JSON attachment",
              Type.Object({
                operation: Operation,
                samples: Type.Array(SystemSample),
                exported_at: Type.String({ format: "date-time" }),
              }),
            ),
            404: documented("Unknown operation", ErrorEnvelope),
          },
        },
      },
    );
