/**
 * The one explainer of schema errors: the first problem of a value against a TypeBox schema, as a field name a
 * person can find and a message that says what is allowed. Used by the routes, the spec check, the MCP tools and the
 * worker, so every door refuses bad input in the same words. Pure: no I/O.
 */
import type { TSchema } from "@sinclair/typebox";
import { Value, ValueErrorType } from "@sinclair/typebox/value";

/** A problem at a JSON pointer relative to the value checked ("" is the value itself). */
export interface Explained {
  path: string;
  message: string;
}

/** A problem named for people: `field` is dotted under a prefix ("body.dataset.path"), `message` starts with it. */
export interface Problem {
  field: string;
  message: string;
}

const REQUIRED = "Expected required property";

/**
 * How much of a client's key or value an error message may echo: EXCERPT_CHARS characters, then "…". Past the
 * longest name the API takes (64, a custom metric's), so a name refused for being a little too long is shown whole.
 */
export const EXCERPT_CHARS = 100;

/**
 * `text` as an error may echo it: unchanged up to `max` characters (default EXCERPT_CHARS), else its first `max`
 * followed by "…" (never half of a surrogate pair).
 */
export function excerpt(text: string, max = EXCERPT_CHARS): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  const end = code >= 0xd800 && code <= 0xdbff ? max - 1 : max;
  return `${text.slice(0, end)}…`;
}

/**
 * `prefix` followed by the pointer's segments, dotted: ("body", "/epochs/3/epoch") → "body.epochs.3.epoch".
 * Pointer escapes are undone, so a metric named "lr/group0" stays one segment; a segment (a client's key) longer than
 * EXCERPT_CHARS is cut to an excerpt.
 */
export function fieldOf(prefix: string, pointer: string): string {
  if (pointer === "" || pointer === "/") return prefix;
  const segments = pointer
    .slice(1)
    .split("/")
    .map((s) => excerpt(s.replaceAll("~1", "/").replaceAll("~0", "~")));
  return prefix ? `${prefix}.${segments.join(".")}` : segments.join(".");
}

/** The first problem of `value` as `{ field, message }` under `prefix`; null when the value is valid. */
export function describeProblem(schema: TSchema, value: unknown, prefix: string): Problem | null {
  const e = explain(schema, value);
  if (!e) return null;
  const field = fieldOf(prefix, e.path);
  return { field, message: `${field}: ${e.message}` };
}

/**
 * The first problem of `value`, or null when it is valid. Rules, in order:
 * - a schema's own `errorMessage` wins (a metric value, a coerced query integer);
 * - a union of literals (and null) lists every allowed value: `Expected one of "completed", "failed"`;
 * - a union of objects sharing a literal property (`kind`, `status`, `target`…) is a discriminated union: the value's
 *   discriminator picks the branch, and a missing or unknown discriminator is the error, listing the allowed values;
 * - `X | null` with a non-null value explains X;
 * - any other union takes the branch that matched deepest (at equal depth a wrong value beats a missing property),
 *   so `{ epochs: [{ epoch: -1 }] }` blames `/epochs/0/epoch`, not "Expected union value".
 */
export function explain(schema: TSchema, value: unknown, path = ""): Explained | null {
  if (Array.isArray(schema.anyOf)) return explainUnion(schema, value, path);
  const first = Value.Errors(schema, value).First();
  if (!first) return null;
  const at = path + first.path;
  if (first.type === ValueErrorType.ObjectRequiredProperty) return { path: at, message: requiredMessage(first.schema) };
  // A union inside (a dataset, a schedule, a metric value): explain it on its own value.
  if (Array.isArray(first.schema.anyOf) && first.path !== "")
    return explain(first.schema, first.value, at) ?? { path: at, message: first.message };
  return {
    path: at,
    message: typeof first.schema.errorMessage === "string" ? first.schema.errorMessage : first.message,
  };
}

function explainUnion(schema: TSchema, value: unknown, path: string): Explained | null {
  if (Value.Check(schema, value)) return null;
  if (typeof schema.errorMessage === "string") return { path, message: schema.errorMessage };
  const branches = schema.anyOf as TSchema[];
  const choices = literalChoices(schema);
  if (choices) return { path, message: `Expected one of ${choices.map(show).join(", ")}` };
  const key = discriminator(branches);
  if (key && isRecord(value)) {
    const values = branches.map((b) => b.properties[key].const as unknown);
    const allowed = values.map(show).join(", ");
    if (value[key] === undefined) return { path: `${path}/${key}`, message: `${REQUIRED}: one of ${allowed}` };
    const branch = branches[values.indexOf(value[key])];
    if (!branch) return { path: `${path}/${key}`, message: `Expected one of ${allowed}` };
    return explain(branch, value, path);
  }
  const nonNull = branches.filter((b) => b.type !== "null");
  if (value !== null && nonNull.length === 1) return explain(nonNull[0]!, value, path);
  let best: Explained | null = null;
  for (const branch of branches) {
    const e = explain(branch, value, path);
    if (!e) return null;
    if (!best || score(e) > score(best)) best = e;
  }
  return best;
}

/** Every value a union of literals (nested unions and null included) allows, or null when any branch is not one. */
function literalChoices(schema: TSchema): unknown[] | null {
  if (schema.const !== undefined) return [schema.const];
  if (schema.type === "null") return [null];
  if (!Array.isArray(schema.anyOf)) return null;
  const all: unknown[] = [];
  for (const branch of schema.anyOf as TSchema[]) {
    const c = literalChoices(branch);
    if (!c) return null;
    all.push(...c);
  }
  return all;
}

/** The property every branch fixes to a distinct literal (`kind`, `status`…), or null. */
function discriminator(branches: TSchema[]): string | null {
  const objects = branches.every((b) => b.type === "object" && b.properties);
  if (!objects || branches.length < 2) return null;
  for (const key of Object.keys(branches[0]!.properties)) {
    const values = branches.map((b) => (b.properties[key] as TSchema | undefined)?.const);
    if (values.every((v) => v !== undefined) && new Set(values).size === values.length) return key;
  }
  return null;
}

/** A missing property that is a choice says which values it takes. */
function requiredMessage(schema: TSchema): string {
  const choices = literalChoices(schema);
  return choices ? `${REQUIRED}: one of ${choices.map(show).join(", ")}` : REQUIRED;
}

const show = (v: unknown) => JSON.stringify(v);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const depth = (p: string) => (p ? p.split("/").length : 0);
/** A branch that got further scores higher; at equal depth, a wrong value beats a missing property. */
const score = (e: Explained) => depth(e.path) * 2 + (e.message.startsWith(REQUIRED) ? 0 : 1);
