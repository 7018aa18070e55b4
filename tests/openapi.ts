// Reading the served OpenAPI document in tests: its operations, and a JSON Schema 2020-12 engine (ajv) that checks
// schemas strictly and replies against them, the way an OpenAPI 3.1 tool reads them.
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import { req } from "./helpers.ts";

export type Json = Record<string, any>;
export const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

/** The document as a client fetches it. */
export async function servedDocument(app: { handle(r: Request): Promise<Response> }): Promise<Json> {
  const res = await app.handle(req("GET", "/swagger/json"));
  if (res.status !== 200) throw new Error(`/swagger/json answered ${res.status}`);
  return (await res.json()) as Json;
}

/** `"POST /api/v1/operations"` → its operation object, for every operation in the document. */
export function operationsOf(doc: Json): Map<string, Json> {
  const out = new Map<string, Json>();
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    for (const m of METHODS) if (item[m]) out.set(`${m.toUpperCase()} ${path}`, item[m]);
  }
  return out;
}

/**
 * Ajv for OpenAPI 3.1 Schema Objects: JSON Schema 2020-12 in strict mode (an unknown keyword, a format nobody
 * defines or a `minimum` without a numeric type is an error), plus the keywords OpenAPI adds to the dialect.
 */
export function schemaEngine(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addVocabulary(["discriminator", "xml", "externalDocs", "example"]);
  return ajv;
}

/** Compiles each schema once (the document repeats the same objects by value, so key by their JSON). */
export function validatorCache(ajv: Ajv2020) {
  const cache = new Map<string, ValidateFunction>();
  return (schema: unknown): ValidateFunction => {
    const key = JSON.stringify(schema);
    let v = cache.get(key);
    if (!v) cache.set(key, (v = ajv.compile(schema as object)));
    return v;
  };
}
