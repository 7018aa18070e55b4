/**
 * Full-history downloads: `metrics.csv` (one row per epoch, one column per field, custom
 * metrics included) and `metrics.json` (the operation and every epoch), both as attachments,
 * streamed: the epochs are read and written a page at a time (src/store/pages.ts, src/http/download.ts), and the
 * CSV's columns come from the operation's stored metric names, not from a scan of its rows.
 */
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import type { AppDeps } from "./deps.ts";
import { epochPages, pageEpochs } from "../store/pages.ts";
import { downloadStream } from "../http/download.ts";
import { notFound } from "../errors.ts";
import { EpochInput, MAX_METRIC_NAMES, STANDARD_FIELDS, type WireEpoch } from "../schemas/epoch.ts";
import { Operation, OperationIdParams } from "../schemas/operation.ts";
import { ErrorEnvelope } from "../http/index.ts";
import { documented } from "../http/openapi.ts";

const FIXED = ["epoch", "timestamp", ...STANDARD_FIELDS] as const;

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
export function csvRows(epochs: readonly WireEpoch[], columns: readonly string[]): string {
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

/** The JSON download, chunk by chunk: exactly `JSON.stringify({ operation, epochs, exported_at })`, epochs a page at a time. */
async function* jsonChunks(store: AppDeps["store"], operation: Operation): AsyncGenerator<string> {
  const id = operation.operation_id;
  const exportedAt = new Date().toISOString();
  yield `{"operation":${JSON.stringify(operation)},"epochs":[`;
  let first = true;
  for await (const page of epochPages(store, id, pageEpochs((await store.metricNames(id)).length))) {
    const json = JSON.stringify(page);
    // The page's array without its brackets, after a comma unless it is the first.
    yield `${first ? "" : ","}${json.slice(1, -1)}`;
    first = false;
  }
  yield `],"exported_at":${JSON.stringify(exportedAt)}}`;
}

/** `attachment; filename="<id>-metrics.csv"`; ids are URL-safe, but quotes are stripped anyway. */
const attachment = (id: string, ext: string) => `attachment; filename="${id.replace(/["\\\r\n]/g, "")}-metrics.${ext}"`;

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
    );
