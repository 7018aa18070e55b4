/**
 * Full-history downloads: `metrics.csv` (one row per epoch, one column per field, custom
 * metrics included) and `metrics.json` (the operation and every epoch), both as attachments.
 */
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import type { AppDeps } from "./deps.ts";
import { notFound } from "../errors.ts";
import { EpochInput, STANDARD_FIELDS, type WireEpoch } from "../schemas/epoch.ts";
import { Operation } from "../schemas/operation.ts";
import { ErrorEnvelope } from "../http/index.ts";
import { documented } from "../http/openapi.ts";

const IdParams = Type.Object({ id: Type.String() });
const FIXED = ["epoch", "timestamp", ...STANDARD_FIELDS] as const;

/** RFC 4180 field: quoted (quotes doubled) when it holds a comma, quote, CR or LF. */
export function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

/**
 * Epochs as CSV: header `epoch,timestamp,train_loss,…,duration` then custom metrics in name
 * order; CRLF line ends. Numbers as JavaScript prints them (round-trip exact), NaN, Infinity
 * and -Infinity as those words, null or absent as an empty field.
 */
export function epochsToCsv(epochs: readonly WireEpoch[]): string {
  const custom = new Set<string>();
  const fixed = new Set<string>(FIXED);
  for (const e of epochs) for (const k of Object.keys(e)) if (!fixed.has(k)) custom.add(k);
  const columns = [...FIXED, ...[...custom].sort()];
  const lines = [columns.map(csvField).join(",")];
  for (const e of epochs) {
    const row = e as Record<string, unknown>;
    lines.push(columns.map((c) => (row[c] === null || row[c] === undefined ? "" : csvField(String(row[c])))).join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}

/** `attachment; filename="<id>-metrics.csv"`; ids are URL-safe, but quotes are stripped anyway. */
const attachment = (id: string, ext: string) => `attachment; filename="${id.replace(/["\\\r\n]/g, "")}-metrics.${ext}"`;

export const exportRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/export" })
    .get(
      "/operations/:id/metrics.csv",
      async ({ params }) => {
        if (!(await deps.store.getOperation(params.id))) throw notFound(params.id);
        return new Response(epochsToCsv(await deps.store.readEpochs(params.id)), {
          headers: { "content-type": "text/csv; charset=utf-8", "content-disposition": attachment(params.id, "csv") },
        });
      },
      {
        params: IdParams,
        detail: {
          tags: ["metrics"],
          summary: "Download every epoch as CSV",
          description:
            "One row per stored epoch, ascending; columns epoch, timestamp, train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration, then every custom metric (sorted by name). Empty field = no value; NaN, Infinity and -Infinity are written as such. RFC 4180 quoting, CRLF line ends.",
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
        const doc = {
          operation,
          epochs: await deps.store.readEpochs(params.id),
          exported_at: new Date().toISOString(),
        };
        return new Response(JSON.stringify(doc), {
          headers: {
            "content-type": "application/json; charset=utf-8",
            "content-disposition": attachment(params.id, "json"),
          },
        });
      },
      {
        params: IdParams,
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
