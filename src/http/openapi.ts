/**
 * The OpenAPI document, made true. @elysiajs/swagger builds it from the route schemas but cannot know what the
 * running server does around them (which body types its parser reads, whether a token is configured, how query
 * strings are coerced), and it labels TypeBox's JSON Schema 2020-12 keywords as OpenAPI 3.0.3. `finalizeDocument`
 * is one pass over the generated document that fixes that for every route; routes only declare what is theirs
 * (`security: []` when public, `responses` for what is documented rather than validated, `sseResponse` events).
 */
import type { TSchema } from "@sinclair/typebox";
import { ErrorEnvelope } from "./index.ts";

type SchemaObject = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: a generated document walked key by key; its values are whatever @elysiajs/swagger wrote
type Json = Record<string, any>;

/** The document's version: TypeBox emits JSON Schema 2020-12 (`const`, numeric `exclusiveMinimum`), which is OpenAPI 3.1's dialect. */
export const OPENAPI_VERSION = "3.1.0";
/** Request bodies the server reads (the parser in http/index.ts); the plugin also advertises multipart and text/plain. */
export const REQUEST_BODY_TYPES: readonly string[] = ["application/json"];
/** The security scheme protected operations name when TRAINWATCH_TOKEN is set. */
export const SECURITY_SCHEME = "bearerAuth";
/**
 * Options the routes put on TypeBox schemas for the error explainer; they mean nothing to a client and are not
 * JSON Schema keywords, so they are removed from the document.
 */
export const INTERNAL_KEYWORDS: readonly string[] = ["field", "errorMessage"];

/** What the running server does that the route schemas do not say. */
export interface DocumentFacts {
  /** A bearer token is configured: every operation not declared `security: []` requires it and may answer 401. */
  auth: boolean;
}

/** `{ description, content: { [mediaType]: { schema } } }`; TypeBox schemas are JSON Schema, which is what OpenAPI wants. */
export function documented(description: string, schema: TSchema | SchemaObject, mediaType = "application/json") {
  return { description, content: { [mediaType]: { schema: schema as never } } };
}

/** A response with no body (MCP's 202 for notifications). */
export const noContent = (description: string) => ({ description });

/** One kind of Server-Sent Event: its `event:` name, what it means, and the JSON its `data:` line carries. */
export interface EventDoc {
  description: string;
  data: TSchema | SchemaObject;
  /** What the `id:` line holds, when the event has one. */
  id?: string;
}

/**
 * A `text/event-stream` response whose schema describes one parsed event, the convention OpenAPI 3.1 tools use
 * (and 3.2's `itemSchema`): `event` is one of the names, `data` is a string holding JSON (`contentSchema`).
 * Comments (`: heartbeat`) and `retry:` blocks carry no data and are not events.
 */
export function sseResponse(description: string, events: Record<string, EventDoc>) {
  const branches = Object.entries(events).map(([name, e]) => ({
    type: "object",
    description: e.description,
    required: ["event", "data"],
    properties: {
      event: { const: name },
      // The last `id:` seen persists across events (the EventSource rule), so any event may carry one.
      id: { type: "string", description: e.id ?? "The last id sent, if any (ids persist across events)." },
      retry: { type: "integer", minimum: 0 },
      data: { type: "string", contentMediaType: "application/json", contentSchema: e.data as never },
    },
  }));
  return documented(description, { description: "One event of the stream.", oneOf: branches }, "text/event-stream");
}

const STATUS_TEXT: Record<string, string> = {
  "200": "OK",
  "201": "Created",
  "202": "Accepted",
  "400": "Bad request: the message names the field",
  "401": "Missing or wrong bearer token",
  "404": "Not found",
  "405": "Method not allowed",
  "406": "Not acceptable",
  "409": "Conflict: the operation is finished",
  "413": "Body too large",
  "415": "Unsupported media type",
  "503": "Service unavailable",
};

const deepClone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Removes INTERNAL_KEYWORDS from a schema and everything below it (in place, on the cloned document). */
function stripInternal(schema: unknown): void {
  if (Array.isArray(schema)) return schema.forEach(stripInternal);
  if (!isObject(schema)) return;
  for (const k of INTERNAL_KEYWORDS) delete schema[k];
  for (const [k, v] of Object.entries(schema)) {
    // Property names and enum values are data, not schemas; only walk into schema positions.
    if (k === "const" || k === "enum" || k === "default" || k === "examples" || k === "example") continue;
    stripInternal(v);
  }
}

/** The string form Elysia adds so a query string can be coerced: `{ type: "string", format: "integer" | "numeric" | "boolean" }`. */
const isCoercionBranch = (s: unknown) =>
  isObject(s) && s.type === "string" && (s.format === "integer" || s.format === "numeric" || s.format === "boolean");

/**
 * A query or path parameter Elysia coerces is `anyOf [string-form, the real schema]`; on the wire every such value is
 * a string, and OpenAPI describes the value it stands for, so the parameter is documented as the real schema.
 */
function collapseCoercion(schema: Json): Json {
  if (!Array.isArray(schema.anyOf)) return schema;
  const real = schema.anyOf.filter((b: unknown) => !isCoercionBranch(b));
  if (real.length !== 1 || real.length === schema.anyOf.length) return schema;
  const { anyOf: _anyOf, ...outer } = schema;
  return { ...outer, ...real[0] };
}

/** Every schema object in the document: components, parameters, bodies, responses and headers. */
function* schemaSlots(doc: Json): Generator<unknown> {
  for (const s of Object.values(doc.components?.schemas ?? {})) yield s;
  for (const op of operations(doc)) {
    for (const p of op.parameters ?? []) yield p.schema;
    for (const m of Object.values(op.requestBody?.content ?? {}) as Json[]) yield m.schema;
    for (const r of Object.values(op.responses ?? {}) as Json[]) {
      for (const m of Object.values(r.content ?? {}) as Json[]) yield m.schema;
      for (const h of Object.values(r.headers ?? {}) as Json[]) yield h.schema;
    }
  }
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** Each operation object of the document. */
export function* operations(doc: Json): Generator<Json> {
  for (const item of Object.values(doc.paths ?? {}) as Json[])
    for (const m of METHODS) if (isObject(item[m])) yield item[m];
}

const unauthorized = () => ({
  description: STATUS_TEXT["401"],
  headers: { "WWW-Authenticate": { description: '`Bearer realm="trainwatch"`', schema: { type: "string" } } },
  content: { "application/json": { schema: deepClone(ErrorEnvelope) } },
});

/** A reply any operation with a JSON body can give, whatever its own schema: the parser's refusals. */
const bodyRefusals = () => ({
  "400": documented("Bad request: malformed or invalid body; the message names the field", deepClone(ErrorEnvelope)),
  "413": documented("Body too large (TRAINWATCH_MAX_BODY_BYTES)", deepClone(ErrorEnvelope)),
  "415": documented("The body is not application/json", deepClone(ErrorEnvelope)),
});

/**
 * Makes the generated document describe the running server, for every route:
 * - `openapi` is 3.1.0, the version whose Schema Object is the JSON Schema TypeBox emits;
 * - request bodies list only REQUEST_BODY_TYPES, and replies drop the plugin's copies of the JSON schema under
 *   `multipart/form-data` and `text/plain`; an operation with a body documents the parser's 400, 413 and 415;
 * - coerced query and path parameters are documented as the integer (or number, boolean) they stand for;
 * - with `facts.auth`, operations not declared `security: []` require the bearer scheme and document 401; without
 *   it, no operation has security (the server asks for none);
 * - every response has a description (OpenAPI requires one), and INTERNAL_KEYWORDS are removed from schemas.
 * The input is not modified: the plugin caches it and it shares objects with the live route schemas.
 */
export function finalizeDocument(generated: Json, facts: DocumentFacts): Json {
  const doc = deepClone(generated);
  doc.openapi = OPENAPI_VERSION;
  delete doc.security;
  const schemes = { ...(doc.components?.securitySchemes ?? {}) };
  if (facts.auth) schemes[SECURITY_SCHEME] = { type: "http", scheme: "bearer", description: "TRAINWATCH_TOKEN" };
  else delete schemes[SECURITY_SCHEME];
  doc.components = { ...doc.components, securitySchemes: schemes };
  if (Object.keys(schemes).length === 0) delete doc.components.securitySchemes;

  for (const op of operations(doc)) {
    op.responses ??= {};
    if (op.requestBody?.content) {
      for (const type of Object.keys(op.requestBody.content))
        if (!REQUEST_BODY_TYPES.includes(type)) delete op.requestBody.content[type];
      for (const [status, r] of Object.entries(bodyRefusals())) op.responses[status] ??= r;
    }
    for (const p of op.parameters ?? [])
      if ((p.in === "query" || p.in === "path") && isObject(p.schema)) p.schema = collapseCoercion(p.schema);

    const isPublic = Array.isArray(op.security) && op.security.length === 0;
    if (facts.auth && !isPublic) {
      op.security = [{ [SECURITY_SCHEME]: [] }];
      op.responses["401"] ??= unauthorized();
    } else {
      delete op.security;
    }

    for (const [status, r] of Object.entries(op.responses) as [string, Json][]) {
      const content = r.content as Json | undefined;
      const json = content?.["application/json"];
      if (content && json) {
        const same = JSON.stringify(json.schema);
        for (const type of ["multipart/form-data", "text/plain"])
          if (content[type] && JSON.stringify(content[type].schema) === same) delete content[type];
      }
      if (typeof r.description !== "string" || r.description === "") {
        r.description = (json?.schema?.description as string | undefined) ?? STATUS_TEXT[status] ?? `HTTP ${status}`;
      }
    }
  }
  for (const s of schemaSlots(doc)) stripInternal(s);
  return doc;
}
