/** OpenAPI response entries for routes whose replies are documented rather than validated (large bodies, files, streams). */
import type { TSchema } from "@sinclair/typebox";

type SchemaObject = Record<string, unknown>;

/** `{ description, content: { [mediaType]: { schema } } }`; TypeBox schemas are JSON Schema, which is what OpenAPI wants. */
export function documented(description: string, schema: TSchema | SchemaObject, mediaType = "application/json") {
  return { description, content: { [mediaType]: { schema: schema as never } } };
}
