/**
 * HTTP plumbing shared by the API app, the host app and the MCP endpoint: the success/error envelopes, the one
 * error-to-status mapping (405 included), the size-limited JSON parser and the bearer-token guard.
 */
import { Elysia, t } from "elysia";
import { Type, type TSchema } from "@sinclair/typebox";
import { createHash, timingSafeEqual } from "node:crypto";
import { TrainwatchError, errorBody } from "../errors.ts";
import { describeProblem } from "../schemas/explain.ts";

export const ok = <T>(data: T) => ({ success: true as const, data });

/**
 * An integer query parameter, coerced from the query string; `opts` may be a TypeBox integer schema (the bounded
 * epoch, say). It names itself because Elysia reports range errors of coerced values without the parameter.
 */
export function queryInt(name: string, opts: IntOptions) {
  return t.Optional(namedInt(`query.${name}`, opts));
}

/** An integer path parameter, coerced and named like queryInt. */
export function pathInt(name: string, opts: IntOptions) {
  return namedInt(`params.${name}`, opts);
}

type IntOptions = { minimum?: number; maximum?: number; default?: number; description?: string };

/** A number query parameter (fractions allowed), coerced and named like queryInt. */
export function queryNumber(name: string, opts: { minimum: number; maximum: number; description?: string }) {
  const field = `query.${name}`;
  return t.Optional(
    t.Number({ ...opts, field, errorMessage: `expected a number from ${opts.minimum} to ${opts.maximum}` }),
  );
}

function namedInt(field: string, opts: IntOptions) {
  const { minimum = 0, maximum, description } = opts;
  const range = maximum === undefined ? `≥ ${minimum}` : `from ${minimum} to ${maximum}`;
  // Only the bounds are copied: a schema passed as `opts` brings TypeBox's own keys too.
  const bounds = {
    minimum,
    ...(maximum !== undefined && { maximum }),
    ...(opts.default !== undefined && { default: opts.default }),
  };
  return t.Integer({ ...bounds, description, field, errorMessage: `expected an integer ${range}` });
}

/** Response envelope for OpenAPI. */
export const Envelope = <T extends TSchema>(data: T) => Type.Object({ success: Type.Literal(true), data });
export const ErrorEnvelope = Type.Object(
  {
    success: Type.Literal(false),
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    }),
  },
  { description: "Error envelope; `message` names the field at fault." },
);

function validationDetails(error: { type?: string; value?: unknown; validator?: unknown }) {
  const v = error.validator as { schema?: TSchema } | TSchema | undefined;
  const schema = (v && "schema" in v && v.schema ? v.schema : v) as TSchema | undefined;
  // A coerced query or path value that fails its range comes as a bare "property" error; queryInt names it.
  const prefix = typeof schema?.field === "string" ? schema.field : (error.type ?? "body");
  const problem = schema ? describeProblem(schema, error.value, prefix) : null;
  return problem ?? { field: prefix, message: `${prefix}: invalid value` };
}

/** What the error mapper needs of the routes: their methods and path patterns (an Elysia app's `routes`). */
export type RouteTable = () => readonly { method: string; path: string }[];

/**
 * Maps every error to the envelope and its status. Nothing is swallowed: 5xx are logged, and one that is not a
 * TrainwatchError (a bug, a SQLite error) answers a generic INTERNAL_ERROR with a request id instead of its message.
 * With `routes`, a known path asked with a method it lacks answers 405 with `Allow`, not 404.
 */
export const errorHandling = (routes?: RouteTable) =>
  new Elysia({ name: "trainwatch/errors" })
    .error({ TrainwatchError })
    .onError({ as: "global" }, ({ code, error: raised, set, request }) => {
      // Errors thrown by the parsers (body, auth) arrive wrapped in Elysia's ParseError.
      const cause = (raised as { cause?: unknown }).cause;
      const error = code === "PARSE" && cause instanceof TrainwatchError ? cause : raised;
      const route = () => `${request.method} ${new URL(request.url).pathname}`;
      if (error instanceof TrainwatchError) {
        set.status = error.status;
        if (error.status >= 500) console.error(`[api] ${route()}: ${error.code} ${error.message}`);
        return errorBody(error.code, error.message, error.details);
      }
      switch (code) {
        case "VALIDATION": {
          set.status = 400;
          const d = validationDetails(error as never);
          return errorBody("VALIDATION_ERROR", d.message, { field: d.field });
        }
        case "PARSE":
          set.status = 400;
          return errorBody("VALIDATION_ERROR", `body: could not be parsed (${(error as Error).message})`, {
            field: "body",
          });
        case "NOT_FOUND": {
          const path = new URL(request.url).pathname;
          const allow = routes ? allowedMethods(routes(), path) : [];
          if (allow.length > 0 && !allow.includes(request.method)) {
            set.status = 405;
            set.headers.allow = allow.join(", ");
            return errorBody(
              "METHOD_NOT_ALLOWED",
              `${request.method} is not allowed on ${path}; allowed: ${allow.join(", ")}`,
              { allow },
            );
          }
          set.status = 404;
          return errorBody("NOT_FOUND", `no route for ${route()}`);
        }
        default: {
          const s = (error as unknown as { status?: unknown }).status;
          const status = typeof s === "number" ? s : 500;
          set.status = status;
          if (status < 500) return errorBody(String(code), (error as Error).message ?? String(error));
          // The message of an unexpected error is internal (a SQL error, a stack): it goes to the log, keyed by an id the client gets.
          const requestId = crypto.randomUUID().slice(0, 8);
          console.error(`[api] ${route()} (request ${requestId}):`, error);
          return errorBody("INTERNAL_ERROR", `internal error (request ${requestId}); the server log has the details`, {
            request_id: requestId,
          });
        }
      }
    });

/**
 * Bun's own request-body cap, for `listen`: none. Bun answers a body over its cap with a bare 413 before the app
 * sees it; the app's limit (`jsonBody`) refuses a declared Content-Length unread and stops reading an undeclared
 * body at the limit, so nothing past it is read either way, and the refusal is the envelope.
 */
export const SERVER_BODY_CAP = Number.MAX_SAFE_INTEGER;

/**
 * The JSON body parser with the size limit, for every route that takes a body (use it after `bearerAuth`, whose
 * check then runs before a byte is read). Rules, in order: a declared Content-Length over the limit is 413 unread;
 * a body that is not `application/json` is 415 unread; an undeclared (chunked) body is read up to the limit and
 * refused with 413 past it; an empty or malformed body is 400. Every refusal is the envelope.
 */
export const jsonBody = (maxBodyBytes: number) =>
  new Elysia().onParse({ as: "scoped" }, async ({ request }, contentType) => {
    const declared = request.headers.get("content-length");
    if (declared !== null && Number(declared) > maxBodyBytes)
      throw tooLarge(`${Number(declared)} bytes exceeds`, maxBodyBytes);
    if (request.body === null || declared === "0") return;
    const type = contentType.split(";")[0]!.trim().toLowerCase();
    if (type !== "application/json") throw unsupportedType(type);
    const text = declared !== null ? await request.text() : await readCapped(request.body, maxBodyBytes);
    // Bytes, not characters: at most 3 UTF-8 bytes a UTF-16 unit, so only a body near the limit needs measuring.
    if (text.length * 3 > maxBodyBytes) {
      const size = Buffer.byteLength(text);
      if (size > maxBodyBytes) throw tooLarge(`${size} bytes exceeds`, maxBodyBytes);
    }
    if (text.trim() === "")
      throw new TrainwatchError("VALIDATION_ERROR", "body: empty; expected a JSON document", { field: "body" });
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new TrainwatchError("VALIDATION_ERROR", `body: malformed JSON (${(err as Error).message})`, {
        field: "body",
      });
    }
  });

/** A body of unknown length, read until it ends or passes `limit` bytes (then 413, and the rest is never read). */
async function readCapped(body: ReadableStream<Uint8Array>, limit: number): Promise<string> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    size += r.value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge("more than", limit);
    }
    chunks.push(r.value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function tooLarge(what: string, limit: number) {
  return new TrainwatchError("PAYLOAD_TOO_LARGE", `body: ${what} the ${limit}-byte limit`, { field: "body", limit });
}

function unsupportedType(type: string) {
  const sent = type === "" ? "a body without a content type is not accepted" : `content type "${type}" is not accepted`;
  return new TrainwatchError("UNSUPPORTED_MEDIA_TYPE", `body: ${sent}; send application/json`, {
    field: "body",
    content_type: type || null,
    accepted: ["application/json"],
  });
}

const METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * The methods registered for `pathname`, in a fixed order: a pattern segment `:name` matches any one segment and `*`
 * the rest. A path with GET also takes HEAD (the server answers it). Empty when no route has the path.
 */
export function allowedMethods(routes: readonly { method: string; path: string }[], pathname: string): string[] {
  const found = new Set<string>();
  const parts = pathname.split("/");
  for (const r of routes) {
    if (r.method !== "ALL" && pathMatches(r.path.split("/"), parts)) found.add(r.method.toUpperCase());
  }
  if (found.has("GET")) found.add("HEAD");
  return [...found].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const rank = (m: string) => (METHOD_ORDER.includes(m) ? METHOD_ORDER.indexOf(m) : METHOD_ORDER.length);

function pathMatches(pattern: string[], parts: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p === "*") return true;
    const part = parts[i];
    if (part === undefined) return p.endsWith("?");
    if (p.startsWith(":") ? part === "" : p !== part) return false;
  }
  return parts.length === pattern.length;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** True when `header` is `Bearer <token>` (the scheme in any case); compares fixed-length digests in constant time. */
export function bearerMatches(header: string | null, token: string): boolean {
  const m = header ? /^bearer +(\S+) *$/i.exec(header) : null;
  return timingSafeEqual(digest(m?.[1] ?? ""), digest(token));
}

/**
 * Requires `Authorization: Bearer <token>` when a token is configured, first: the check runs at parse (before the
 * body is read or validated) and again before the handler for requests that have no body to parse.
 */
export const bearerAuth = (
  token: string | null,
  opts: { realm: string; variable: string } = { realm: "trainwatch", variable: "TRAINWATCH_TOKEN" },
) => {
  const check = ({ request, set }: { request: Request; set: { headers: Record<string, unknown> } }) => {
    if (!token || bearerMatches(request.headers.get("authorization"), token)) return;
    set.headers["www-authenticate"] = `Bearer realm="${opts.realm}"`;
    throw new TrainwatchError(
      "UNAUTHORIZED",
      `missing or wrong bearer token (Authorization: Bearer <${opts.variable}>)`,
    );
  };
  return new Elysia({ name: `${opts.realm}/auth`, seed: token ?? "" })
    .onParse({ as: "scoped" }, check)
    .onBeforeHandle({ as: "scoped" }, check);
};

/** A tar download named `<operationId>-epoch-<N>.tar`. */
export function tarResponse(operationId: string, epoch: number, bytes: Uint8Array): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, {
    headers: {
      "content-type": "application/x-tar",
      "content-length": String(bytes.length),
      "content-disposition": `attachment; filename="${operationId.replace(/["\\\r\n]/g, "")}-epoch-${epoch}.tar"`,
    },
  });
}
