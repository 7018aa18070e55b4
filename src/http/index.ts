/**
 * HTTP plumbing shared by the API app, the host app and the MCP endpoint: the success/error envelopes, the one
 * error-to-status mapping, the size- and depth-limited JSON parser and the gate every request meets first (bearer
 * token, then 405 for a method the path lacks).
 */
import { Elysia } from "elysia";
import { OptionalKind, Type, type TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { Value } from "@sinclair/typebox/value";
import { createHash, timingSafeEqual } from "node:crypto";
import { TrainwatchError, errorBody } from "../errors.ts";
import { describeProblem, excerpt } from "../schemas/explain.ts";
import { MAX_JSON_DEPTH, depthExceeds } from "./depth.ts";

export { MAX_JSON_DEPTH } from "./depth.ts";

export const ok = <T>(data: T) => ({ success: true as const, data });

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

/** The longest error message a reply carries; past it, the message is cut (it may echo the client's input). */
export const MAX_ERROR_MESSAGE = 1000;

/**
 * A refusal as the envelope, holding only a bounded excerpt of whatever it echoes of the input: a `field` names each
 * segment in at most EXCERPT_CHARS (100) characters (a 10 KB metric name is "body.<100 characters>…"), the message starts with that
 * field and is cut at MAX_ERROR_MESSAGE, and any other string detail longer than 256 characters is cut to 256.
 */
function boundedBody(code: string, message: string, details: Record<string, unknown> | null) {
  if (!details) return errorBody(code, excerpt(message, MAX_ERROR_MESSAGE), null);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) out[k] = typeof v === "string" && v.length > 256 ? excerpt(v, 256) : v;
  const field = details.field;
  if (typeof field === "string") {
    const short = field
      .split(".")
      .map((s) => excerpt(s))
      .join(".");
    out.field = short;
    if (short !== field && message.startsWith(field)) message = short + message.slice(field.length);
  }
  return errorBody(code, excerpt(message, MAX_ERROR_MESSAGE), out);
}

/**
 * Maps every error to the envelope and its status. Nothing is swallowed: 5xx are logged, and one that is not a
 * TrainwatchError (a bug, a SQLite error) answers a generic INTERNAL_ERROR with a request id instead of its message.
 * A refusal echoes only a bounded excerpt of the input (boundedBody). A request no route takes is 404; 401 and 405
 * come earlier, from `gate`.
 */
export const errorHandling = () =>
  new Elysia({ name: "trainwatch/errors" })
    .error({ TrainwatchError })
    .onError({ as: "global" }, ({ code, error: raised, set, request }) => {
      // Errors thrown by the parsers (body, auth) arrive wrapped in Elysia's ParseError.
      const cause = (raised as { cause?: unknown }).cause;
      const error = code === "PARSE" && cause instanceof TrainwatchError ? cause : raised;
      const route = () => `${request.method} ${excerpt(new URL(request.url).pathname, 256)}`;
      if (error instanceof TrainwatchError) {
        set.status = error.status;
        if (error.status >= 500) console.error(`[api] ${route()}: ${error.code} ${error.message}`);
        return boundedBody(error.code, error.message, error.details);
      }
      switch (code) {
        case "VALIDATION": {
          set.status = 400;
          // Only the explainer reads the value (the first problem, as a bounded field); Elysia's own message, which
          // formats the whole value, is never used.
          const d = validationDetails(error as never);
          return boundedBody("VALIDATION_ERROR", d.message, { field: d.field });
        }
        case "PARSE":
          set.status = 400;
          return boundedBody("VALIDATION_ERROR", `body: could not be parsed (${(error as Error).message})`, {
            field: "body",
          });
        case "NOT_FOUND":
          set.status = 404;
          return errorBody("NOT_FOUND", `no route for ${route()}`);
        default: {
          const s = (error as unknown as { status?: unknown }).status;
          const status = typeof s === "number" ? s : 500;
          set.status = status;
          if (status < 500) return boundedBody(String(code), (error as Error).message ?? String(error), null);
          // The message of an unexpected error is internal (a SQL error, a stack): it goes to the log, keyed by an id the client gets.
          const requestId = crypto.randomUUID().slice(0, 8);
          console.error(`[api] ${route()} (request ${requestId}):`, error);
          return errorBody("INTERNAL_ERROR", `internal error (request ${requestId}); the server log has the details`, {
            request_id: requestId,
          });
        }
      }
    });

/** A route's body check: the first problem of a body as `{ field, message }`, or null when it passes. */
type BodyCheck = (body: unknown) => { field: string; message: string } | null;

/**
 * Each body checked against its route's schema before Elysia checks it, a failure refused here with the explainer's
 * bounded message: Elysia's ValidationError formats the whole value into its message as it is built (22 MB of text and
 * 200 ms for a 2 MB array of numbers), before any error handler can decline it. The check is Elysia's own (the
 * compiled schema, after the schema's top-level defaults are filled in, on a non-empty body), so what passes here
 * passes there, and Elysia's second check of it is a compiled one (microseconds).
 */
export const bodiesFirst = (routes: RouteTable) => {
  let checks: Map<string, BodyCheck> | null = null;
  return new Elysia({ name: "trainwatch/bodies" }).onTransform({ as: "global" }, ({ request, route, body }) => {
    if (body === undefined || body === null) return;
    checks ??= bodyChecks(routes());
    const problem = checks.get(`${request.method} ${route}`)?.(body);
    if (problem) throw new TrainwatchError("VALIDATION_ERROR", problem.message, { field: problem.field });
  });
};

function bodyChecks(routes: ReturnType<RouteTable>): Map<string, BodyCheck> {
  const out = new Map<string, BodyCheck>();
  for (const r of routes) {
    const schema = (r as { hooks?: { body?: unknown } }).hooks?.body;
    if (!schema || typeof schema !== "object") continue;
    const check = bodyCheck(schema as TSchema);
    if (check) out.set(`${r.method} ${r.path}`, check);
  }
  return out;
}

function bodyCheck(schema: TSchema): BodyCheck | null {
  let compiled: ReturnType<typeof TypeCompiler.Compile>;
  try {
    compiled = TypeCompiler.Compile(schema);
  } catch {
    return null; // a kind TypeBox cannot compile: Elysia checks it alone
  }
  const prefix = typeof schema.field === "string" ? schema.field : "body";
  const optional = schema[OptionalKind] === "Optional";
  const defaults = schema.type === "object" ? (Value.Default(schema, {}) as Record<string, unknown>) : null;
  const hasDefaults = defaults !== null && Object.keys(defaults).length > 0;
  return (body) => {
    const plain = typeof body === "object" && body !== null && !Array.isArray(body);
    if (optional && plain && Object.keys(body).length === 0) return null;
    const value = hasDefaults && plain ? Object.assign(structuredClone(defaults), body) : body;
    if (compiled.Check(value)) return null;
    return describeProblem(schema, value, prefix) ?? { field: prefix, message: `${prefix}: invalid value` };
  };
}

/**
 * Bun's own request-body cap, for `listen`: none. Bun answers a body over its cap with a bare 413 before the app
 * sees it; the app's limit (`jsonBody`) refuses a declared Content-Length unread and stops reading an undeclared
 * body at the limit, so nothing past it is read either way, and the refusal is the envelope.
 */
export const SERVER_BODY_CAP = Number.MAX_SAFE_INTEGER;

/**
 * The JSON body parser with the size and depth limits, for every route that takes a body (`gate` has checked the
 * token before a byte is read). Rules, in order: a declared Content-Length over the limit is 413 unread; a body that
 * is not `application/json` is 415 unread; an undeclared (chunked) body is read up to the limit and refused with 413
 * past it; an empty body, one nested deeper than MAX_JSON_DEPTH (checked on the raw text, before anything parses
 * it) or a malformed one is 400. Every refusal is the envelope.
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
    if (depthExceeds(text, MAX_JSON_DEPTH))
      throw new TrainwatchError(
        "VALIDATION_ERROR",
        `body: nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`,
        { field: "body", max_depth: MAX_JSON_DEPTH },
      );
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

/** What the gate needs of the routes: their methods and path patterns (an Elysia app's `routes`), read when first asked. */
export type RouteTable = () => readonly { method: string; path: string }[];

/**
 * The methods `pathname` takes, in a fixed order, from the routes whose pattern matches it most specifically: a
 * pattern segment `:name` matches any one segment and `*` the rest, and at the first segment where two matching
 * patterns differ a literal beats a parameter, which beats `*`. So /operations/compare takes only GET, though
 * DELETE /operations/:id matches it too. A path with GET also takes HEAD (the server answers it). Empty when no route
 * has the path.
 */
export function allowedMethods(routes: readonly { method: string; path: string }[], pathname: string): string[] {
  return methodTable(routes)(pathname);
}

/** allowedMethods with the patterns read once, for the gate, which asks on every request. */
function methodTable(routes: readonly { method: string; path: string }[]): (pathname: string) => string[] {
  const patterns = routes
    .filter((r) => r.method !== "ALL")
    .map((r) => {
      const parts = r.path.split("/");
      const rank = parts.map((p) => (p === "*" ? "0" : p.startsWith(":") ? "1" : "2")).join("");
      return { parts, rank, method: r.method.toUpperCase() };
    });
  return (pathname) => {
    const parts = pathname.split("/");
    let best = "";
    const found = new Set<string>();
    for (const p of patterns) {
      if (p.rank < best || !pathMatches(p.parts, parts)) continue;
      if (p.rank > best) {
        best = p.rank;
        found.clear();
      }
      found.add(p.method);
    }
    if (found.has("GET")) found.add("HEAD");
    return [...found].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  };
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

/** The gate's settings: the token (null: none configured), how a 401 names it, and the paths that answer without it. */
export interface GateOptions {
  token: string | null;
  /** `WWW-Authenticate: Bearer realm="<realm>"`. */
  realm: string;
  /** The setting that holds the token, named in the 401's message (TRAINWATCH_TOKEN). */
  variable: string;
  /** Paths that answer without the token (default: none). Anything else, unknown paths included, needs it. */
  isPublic?: (pathname: string) => boolean;
  routes: RouteTable;
}

/**
 * The first thing every request meets, before routing, query, path or body validation and before a byte of the body
 * is read:
 * 1. with a token configured, a request without `Authorization: Bearer <token>` to a path that is not public is 401,
 *    whatever its method, path (unknown ones too), query or body;
 * 2. a known path asked with a method it lacks is 405 with `Allow` (allowedMethods), so a route that merely matches
 *    the pattern (DELETE /operations/:id for /operations/compare) never reads it. OPTIONS is such a method too: its
 *    405 lists what the path takes, the methods of the OpenAPI document.
 */
export const gate = (opts: GateOptions) => {
  let methods: ((pathname: string) => string[]) | null = null;
  return new Elysia({ name: `${opts.realm}/gate`, seed: opts.token ?? "" }).onRequest(({ request, set }) => {
    const pathname = new URL(request.url).pathname;
    const { token } = opts;
    if (token && !opts.isPublic?.(pathname) && !bearerMatches(request.headers.get("authorization"), token)) {
      set.headers["www-authenticate"] = `Bearer realm="${opts.realm}"`;
      throw new TrainwatchError(
        "UNAUTHORIZED",
        `missing or wrong bearer token (Authorization: Bearer <${opts.variable}>)`,
      );
    }
    methods ??= methodTable(opts.routes());
    const allow = methods(pathname);
    if (allow.length > 0 && !allow.includes(request.method)) {
      set.headers.allow = allow.join(", ");
      throw new TrainwatchError(
        "METHOD_NOT_ALLOWED",
        `${request.method} is not allowed on ${pathname}; allowed: ${allow.join(", ")}`,
        { allow },
      );
    }
  });
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
