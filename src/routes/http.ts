/**
 * HTTP plumbing shared by every route: the success/error envelopes, the one
 * error-to-status mapping, the size-limited JSON parser and the bearer-token guard.
 */
import { Elysia, t } from "elysia";
import { Type, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { createHash, timingSafeEqual } from "node:crypto";
import { TrainwatchError, errorBody } from "../errors.ts";

export const ok = <T>(data: T) => ({ success: true as const, data });

/**
 * An integer query parameter, coerced from the query string. It names itself
 * because Elysia reports range errors of coerced values without the parameter.
 */
export function queryInt(name: string, opts: IntOptions) {
  return t.Optional(namedInt(`query.${name}`, opts));
}

/** An integer path parameter, coerced and named like queryInt. */
export function pathInt(name: string, opts: IntOptions) {
  return namedInt(`params.${name}`, opts);
}

type IntOptions = { minimum: number; maximum?: number; default?: number; description?: string };

function namedInt(field: string, opts: IntOptions) {
  const range = opts.maximum === undefined ? `≥ ${opts.minimum}` : `from ${opts.minimum} to ${opts.maximum}`;
  return t.Integer({ ...opts, field, errorMessage: `expected an integer ${range}` });
}

/** Response envelope for OpenAPI. */
export const Envelope = <T extends TSchema>(data: T) =>
  Type.Object({ success: Type.Literal(true), data });
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

/** Depth of a JSON pointer, for picking the union branch that matched furthest. */
const depth = (p: string) => (p ? p.split("/").length : 0);
/** A branch that got further scores higher; at equal depth, a wrong value beats a missing property. */
const score = (e: { path: string; message: string }) => depth(e.path) * 2 + (e.message === "Expected required property" ? 0 : 1);

/**
 * The first validation error as `{ path, message }`. Unions are resolved to the
 * branch that matched deepest, so `{ epochs: [{ epoch: -1 }] }` reports
 * `/epochs/0/epoch` rather than "Expected union value".
 */
export function explain(schema: TSchema, value: unknown, base = ""): { path: string; message: string } | null {
  if (Array.isArray(schema.anyOf)) {
    let best: { path: string; message: string } | null = null;
    for (const branch of schema.anyOf as TSchema[]) {
      const e = explain(branch, value, base);
      if (!e) return null;
      if (!best || score(e) > score(best)) best = e;
    }
    if (best && depth(best.path) === depth(base) && typeof schema.errorMessage === "string") return { path: base, message: schema.errorMessage };
    return best;
  }
  const first = Value.Errors(schema, value).First();
  if (!first) return null;
  const path = base + first.path;
  if (typeof first.schema.errorMessage === "string") return { path, message: first.schema.errorMessage };
  // A coerced query number is a union of the number and its string form: say what the number must be.
  const inner = Array.isArray(first.schema.anyOf) ? (first.schema.anyOf as TSchema[]).find((b) => typeof b.errorMessage === "string") : undefined;
  if (inner) return { path, message: inner.errorMessage as string };
  // A union nested inside (a metric value, a coerced query number): explain its branches.
  if (Array.isArray(first.schema.anyOf) && first.path !== "") {
    const inner = explain(first.schema, first.value, path);
    if (inner) return inner;
  }
  return { path, message: first.message };
}

function validationDetails(error: { type?: string; value?: unknown; validator?: unknown }) {
  const v = error.validator as { schema?: TSchema } | TSchema | undefined;
  const schema = (v && "schema" in v && v.schema ? v.schema : v) as TSchema | undefined;
  const where = typeof schema?.field === "string" ? schema.field : (error.type ?? "body");
  const e = schema ? explain(schema, error.value) : null;
  const field = e?.path ? `${where}${e.path.replaceAll("/", ".")}` : where;
  return { field, message: `${field}: ${e?.message ?? "invalid value"}` };
}

/** Maps every error to the envelope and its status. Nothing is swallowed: 5xx are logged. */
export const errorHandling = (maxBodyBytes: number) =>
  new Elysia({ name: "trainwatch/errors" })
    .error({ TrainwatchError })
    .onParse({ as: "global" }, async ({ request }, contentType) => {
      if (!contentType.startsWith("application/json")) return;
      const declared = Number(request.headers.get("content-length") ?? 0);
      if (declared > maxBodyBytes) throw tooLarge(declared, maxBodyBytes);
      const text = await request.text();
      // Bytes, not characters: measure what the client sent.
      const size = Buffer.byteLength(text);
      if (size > maxBodyBytes) throw tooLarge(size, maxBodyBytes);
      if (text.trim() === "") throw new TrainwatchError("VALIDATION_ERROR", "body: empty; expected a JSON document", { field: "body" });
      try {
        return JSON.parse(text);
      } catch (err) {
        throw new TrainwatchError("VALIDATION_ERROR", `body: malformed JSON (${(err as Error).message})`, { field: "body" });
      }
    })
    .onError({ as: "global" }, ({ code, error: raised, set, request }) => {
      // Errors thrown by the parser arrive wrapped in Elysia's ParseError.
      const cause = (raised as { cause?: unknown }).cause;
      const error = code === "PARSE" && cause instanceof TrainwatchError ? cause : raised;
      if (error instanceof TrainwatchError) {
        set.status = error.status;
        if (error.status >= 500) console.error(`[api] ${request.method} ${new URL(request.url).pathname}: ${error.code} ${error.message}`);
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
          return errorBody("VALIDATION_ERROR", `body: could not be parsed (${(error as Error).message})`, { field: "body" });
        case "NOT_FOUND":
          set.status = 404;
          return errorBody("NOT_FOUND", `no route for ${request.method} ${new URL(request.url).pathname}`);
        default: {
          const s = (error as unknown as { status?: unknown }).status;
          const status = typeof s === "number" ? s : 500;
          set.status = status;
          if (status >= 500) console.error(`[api] ${request.method} ${new URL(request.url).pathname}:`, error);
          return errorBody(status >= 500 ? "INTERNAL_ERROR" : String(code), (error as Error).message ?? String(error));
        }
      }
    });

function tooLarge(size: number, limit: number) {
  return new TrainwatchError("PAYLOAD_TOO_LARGE", `body: ${size} bytes exceeds the ${limit}-byte limit`, {
    field: "body",
    limit,
  });
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** True when `header` is `Bearer <token>`; compares fixed-length digests in constant time. */
export function bearerMatches(header: string | null, token: string): boolean {
  const presented = header?.startsWith("Bearer ") ? header.slice(7) : "";
  return timingSafeEqual(digest(presented), digest(token));
}

/** Requires `Authorization: Bearer <token>` when a token is configured. */
export const bearerAuth = (token: string | null, opts: { realm: string; variable: string } = { realm: "trainwatch", variable: "TRAINWATCH_TOKEN" }) =>
  new Elysia({ name: `${opts.realm}/auth`, seed: token ?? "" }).onBeforeHandle({ as: "scoped" }, ({ request, set }) => {
    if (!token) return;
    if (!bearerMatches(request.headers.get("authorization"), token)) {
      set.status = 401;
      set.headers["www-authenticate"] = `Bearer realm="${opts.realm}"`;
      return errorBody("UNAUTHORIZED", `missing or wrong bearer token (Authorization: Bearer <${opts.variable}>)`);
    }
  });
