// The served OpenAPI document as standard tools read it: valid OpenAPI 3.1 for a real validator, strict JSON Schema
// 2020-12 in every schema, and true to the running server (security, parameter types, body types, statuses).
import { describe, expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { makeApp } from "./helpers.ts";
import { operationsOf, schemaEngine, servedDocument, type Json } from "./openapi.ts";

const TOKEN = "doc-test-token";
const configs: { name: string; env: Record<string, string> }[] = [
  { name: "without TRAINWATCH_TOKEN", env: {} },
  { name: "with TRAINWATCH_TOKEN", env: { TRAINWATCH_TOKEN: TOKEN } },
];

/** Every schema position in an operation, labelled for failure messages. */
function schemasOf(key: string, op: Json): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const p of op.parameters ?? []) out.push([`${key} parameter ${p.name}`, p.schema]);
  for (const [type, m] of Object.entries<Json>(op.requestBody?.content ?? {}))
    out.push([`${key} body ${type}`, m.schema]);
  for (const [status, r] of Object.entries<Json>(op.responses ?? {})) {
    for (const [type, m] of Object.entries<Json>(r.content ?? {})) out.push([`${key} ${status} ${type}`, m.schema]);
    for (const [name, h] of Object.entries<Json>(r.headers ?? {}))
      out.push([`${key} ${status} header ${name}`, h.schema]);
  }
  return out;
}

for (const config of configs) {
  describe(`/swagger/json ${config.name}`, () => {
    const load = () => servedDocument(makeApp(config.env).app);

    test("is a valid OpenAPI 3.1 document for @seriousme/openapi-schema-validator", async () => {
      const doc = await load();
      expect(doc.openapi).toBe("3.1.0");
      const result = await new Validator().validate(doc);
      expect(result.errors ?? []).toEqual([]);
      expect(result.valid).toBe(true);
    });

    test("every schema compiles as strict JSON Schema 2020-12 (no 3.0 keywords, no internal options, no unknown formats)", async () => {
      const doc = await load();
      const ajv = schemaEngine();
      const failures: string[] = [];
      for (const [key, op] of operationsOf(doc)) {
        for (const [where, schema] of schemasOf(key, op)) {
          try {
            ajv.compile(schema as object);
          } catch (err) {
            failures.push(`${where}: ${(err as Error).message}`);
          }
        }
      }
      expect(failures).toEqual([]);
    });

    test("request bodies are advertised only as application/json, the one type the server reads", async () => {
      for (const [key, op] of operationsOf(await load())) {
        if (op.requestBody) expect(Object.keys(op.requestBody.content), key).toEqual(["application/json"]);
      }
    });

    test("coerced integer query and path parameters are documented as integers", async () => {
      const doc = await load();
      const limit = operationsOf(doc)
        .get("GET /api/v1/operations")!
        .parameters.find((p: Json) => p.name === "limit");
      expect(limit.schema).toMatchObject({ type: "integer", minimum: 1, maximum: 1000, default: 50 });
      const epoch = operationsOf(doc)
        .get("GET /api/v1/operations/{id}/checkpoints/{epoch}")!
        .parameters.find((p: Json) => p.name === "epoch");
      expect(epoch).toMatchObject({
        in: "path",
        required: true,
        schema: { type: "integer", minimum: 0, maximum: 2 ** 31 - 1 },
      });
      for (const [key, op] of operationsOf(doc)) {
        for (const p of op.parameters ?? []) {
          expect(JSON.stringify(p.schema), `${key} ${p.name}`).not.toContain('"format":"integer"');
        }
      }
    });
  });
}

describe("security in /swagger/json follows TRAINWATCH_TOKEN", () => {
  test("without a token no operation claims security and none documents 401", async () => {
    const doc = await servedDocument(makeApp().app);
    expect(doc.security).toBeUndefined();
    expect(doc.components?.securitySchemes).toBeUndefined();
    for (const [key, op] of operationsOf(doc)) {
      expect(op.security, key).toBeUndefined();
      expect(op.responses["401"], key).toBeUndefined();
    }
  });

  test("with a token every operation but /health requires bearer and documents 401", async () => {
    const doc = await servedDocument(makeApp({ TRAINWATCH_TOKEN: TOKEN }).app);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    for (const [key, op] of operationsOf(doc)) {
      if (key === "GET /api/v1/health") {
        expect(op.security, key).toBeUndefined();
        expect(op.responses["401"], key).toBeUndefined();
      } else {
        expect(op.security, key).toEqual([{ bearerAuth: [] }]);
        expect(op.responses["401"], key).toBeDefined();
      }
    }
  });
});

describe("chart parameters in /swagger/json", () => {
  test("GET /metrics, the comparison and the curves document from_epoch, to_epoch (epochs), smoothing (a weight below 1) and fields, and the smoothed curves", async () => {
    const ops = operationsOf(await servedDocument(makeApp().app));
    for (const key of [
      "GET /api/v1/operations/{id}/metrics",
      "GET /api/v1/operations/compare",
      "GET /api/v1/operations/curves",
    ]) {
      const params = new Map<string, Json>(ops.get(key)!.parameters.map((p: Json) => [p.name, p]));
      expect(params.get("from_epoch")?.schema, key).toMatchObject({
        type: "integer",
        minimum: 0,
        maximum: 2 ** 31 - 1,
      });
      expect(params.get("to_epoch")?.schema, key).toMatchObject({ type: "integer", minimum: 0, maximum: 2 ** 31 - 1 });
      expect(params.get("smoothing")?.schema, key).toMatchObject({ type: "number", minimum: 0, maximum: 0.999 });
      expect(params.get("fields")?.schema, key).toMatchObject({ type: "string" });
    }
    const metrics = ops.get("GET /api/v1/operations/{id}/metrics")!.responses["200"].content["application/json"].schema;
    expect(JSON.stringify(metrics)).toContain('"smoothed"');
  });
});

describe("streams in /swagger/json", () => {
  test("the metrics stream documents 400, 404 and each of its events with the schema of its data", async () => {
    const op = operationsOf(await servedDocument(makeApp().app)).get("GET /api/v1/operations/{id}/metrics/stream")!;
    expect(Object.keys(op.responses).sort()).toEqual(["200", "400", "404"]);
    const event = op.responses["200"].content["text/event-stream"].schema;
    const names = event.oneOf.map((b: Json) => b.properties.event.const);
    expect(names).toEqual(["status", "epoch", "trends", "system", "end", "alert"]);
    for (const b of event.oneOf) expect(b.properties.data.contentSchema.type, b.properties.event.const).toBe("object");
  });
});
