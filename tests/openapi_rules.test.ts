// The OpenAPI document states the rules the server enforces (issue 20), so a client generated from it sends nothing
// the server refuses for a reason the document did not give: dataset xor recipe, metric names, the epoch range, a
// heartbeat's batch ≤ batches and /mcp's Accept. Checked with a JSON Schema engine, as a generated client would.
import { describe, expect, test } from "bun:test";
import { makeApp } from "./helpers.ts";
import { operationsOf, schemaEngine, servedDocument, type Json } from "./openapi.ts";

const docOps = async () => operationsOf(await servedDocument(makeApp().app));
const bodySchema = (op: Json | undefined) => op?.requestBody.content["application/json"].schema as object;

describe("the OpenAPI document states the rules the server enforces", () => {
  test("POST /trainings takes exactly one of dataset and recipe", async () => {
    const valid = schemaEngine().compile(bodySchema((await docOps()).get("POST /api/v1/trainings")));
    const dataset = { kind: "synthetic", generator: "spirals", seed: 1 };
    expect(valid({ recipe: "r" })).toBe(true);
    expect(valid({ dataset })).toBe(true);
    expect(valid({ recipe: "r", dataset })).toBe(false);
    expect(valid({ name: "neither" })).toBe(false);
  });

  test("an epoch's field names follow the custom metric name pattern, reserved names excluded", async () => {
    const ops = await docOps();
    const metrics = bodySchema(ops.get("POST /api/v1/operations/{id}/metrics"));
    const valid = schemaEngine().compile(metrics);
    expect(valid({ epoch: 1, "lr/group0": 0.1 })).toBe(true);
    expect(valid({ epoch: 1, "bad name!": 1 })).toBe(false);
    expect(valid({ epoch: 1, ["m".repeat(65)]: 1 })).toBe(false);
    expect(valid(JSON.parse('{"epoch": 1, "__proto__": 1}'))).toBe(false);
  });

  test("from_epoch and to_epoch say one may not pass the other; a heartbeat's batch is at most batches", async () => {
    const ops = await docOps();
    const params = ops.get("GET /api/v1/operations/{id}/metrics")!.parameters as Json[];
    const describe = (name: string) => params.find((p) => p.name === name)!.description as string;
    expect(describe("from_epoch")).toContain("at most to_epoch");
    expect(describe("to_epoch")).toContain("at least from_epoch");
    const heartbeat = JSON.stringify(bodySchema(ops.get("POST /api/v1/operations/{id}/heartbeat")));
    expect(heartbeat).toContain("at most `batches`");
  });

  test("/mcp's reply lists both media types its Accept must name", async () => {
    const content = (await docOps()).get("POST /mcp")!.responses["200"].content;
    expect(Object.keys(content).sort()).toEqual(["application/json", "text/event-stream"]);
  });
});
