// Auth comes first (issue 20): with a token configured, every route of the OpenAPI document, every method it documents,
// unknown paths and wrong methods answer 401 without the token, before query, path or body validation; only health,
// the docs and the dashboard's files are public. And the 405s that follow it: Allow is what the document lists.
import { describe, expect, test } from "bun:test";
import { isPublicPath } from "../src/app.ts";
import { bareHostApp, json, makeApp, req } from "./helpers.ts";
import { METHODS, operationsOf, servedDocument } from "./openapi.ts";

const TOKEN = "s3cret";
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** A documented path with each `{param}` filled in ("/operations/{id}" → "/operations/1"). */
const concrete = (path: string) => path.replaceAll(/\{[^}]+\}/g, "1");

/** A request as a hostile client would send it: a bad query and a JSON body of the wrong shape on top. */
const unauthenticated = (method: string, path: string) =>
  new Request(`http://localhost${path}?x=1&since_epoch=-9`, {
    method,
    ...(method !== "GET" &&
      method !== "HEAD" && { body: '{"x": [1]}', headers: { "content-type": "application/json" } }),
  });

async function expect401(app: { handle(r: Request): Promise<Response> }, r: Request, realm = "trainwatch") {
  const res = await app.handle(r);
  expect(res.status, `${r.method} ${new URL(r.url).pathname}`).toBe(401);
  expect(res.headers.get("www-authenticate")).toBe(`Bearer realm="${realm}"`);
  return res;
}

describe("with TRAINWATCH_TOKEN, nothing but the public paths answers without it", () => {
  test("every operation of the OpenAPI document, with a bad query and body, is 401 unless documented public", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: TOKEN });
    const doc = await servedDocument(app);
    const ops = operationsOf(doc);
    expect(ops.size).toBeGreaterThan(20);
    const publicOps: string[] = [];
    for (const [key, op] of ops) {
      const [method, path] = key.split(" ") as [string, string];
      const r = unauthenticated(method, concrete(path));
      if (op.security === undefined) {
        publicOps.push(key);
        expect((await app.handle(r)).status, key).not.toBe(401);
        expect(isPublicPath(path), key).toBe(true);
      } else {
        const res = await expect401(app, r);
        expect((await res.json()).error).toEqual({
          code: "UNAUTHORIZED",
          message: "missing or wrong bearer token (Authorization: Bearer <TRAINWATCH_TOKEN>)",
          details: null,
        });
      }
    }
    expect(publicOps).toEqual(["GET /api/v1/health"]);
  });

  test("every documented path asked with every method it lacks is 401, not 405", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: TOKEN });
    const doc = await servedDocument(app);
    for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
      if (isPublicPath(path)) continue;
      for (const m of METHODS) if (!item[m]) await expect401(app, unauthenticated(m.toUpperCase(), concrete(path)));
    }
  });

  test("query validation, bad path parameters and unknown paths under /api and /mcp are 401 first", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: TOKEN });
    for (const path of [
      "/api/v1/operations?x=1",
      "/api/v1/operations?limit=-1",
      "/api/v1/operations/op_1/checkpoints/0x9",
      "/api/v1/operations/op_1/metrics?max_points=abc",
      "/api/v1/nothing-here",
      "/api/v2/operations",
      "/mcp/nothing",
      "/nothing-here",
      "/api/v1/health/extra",
    ])
      await expect401(app, req("GET", path));
    await expect401(app, req("DELETE", "/api/v1/operations/compare"));
    await expect401(app, req("GET", "/mcp"));
    await expect401(
      app,
      new Request("http://localhost/mcp", { method: "POST", body: "{", headers: { "content-type": "text/plain" } }),
    );
  });

  test("health, the Swagger page and document, and the dashboard's files answer without the token", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: TOKEN });
    for (const path of [
      "/api/v1/health",
      "/swagger",
      "/swagger/json",
      "/swagger/assets/swagger-ui.css",
      "/",
      "/assets/app.js",
    ])
      expect((await app.handle(req("GET", path))).status, path).toBe(200);
    // Public, but still held to its methods.
    expect((await app.handle(req("POST", "/api/v1/health"))).status).toBe(405);
  });

  test("the same request with the token gets past the gate to validation", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: TOKEN });
    const res = await json(app.handle(req("GET", "/api/v1/operations?x=1", undefined, AUTH)));
    expect(res.status).toBe(400);
    expect(res.body.error.details.field).toBe("query.x");
  });

  test("the host app: every route, unknown paths and wrong methods are 401 without TRAINWATCH_HOST_TOKEN", async () => {
    const host = bareHostApp("host-token");
    expect(host.routes.length).toBeGreaterThan(5);
    for (const r of host.routes) {
      const path = r.path.replaceAll(/:[^/]+/g, "1");
      await expect401(host, unauthenticated(r.method, path), "trainwatch-host");
      await expect401(host, unauthenticated("PATCH", path), "trainwatch-host");
    }
    await expect401(host, req("GET", "/nothing-here"), "trainwatch-host");
    await expect401(host, req("GET", "/sessions/1/checkpoints/+9"), "trainwatch-host");
  });
});

describe("405 and Allow follow the route table the OpenAPI document is made from", () => {
  test("OPTIONS on every documented path is 405 whose Allow is exactly the document's methods (and HEAD with GET)", async () => {
    const { app } = makeApp();
    const doc = await servedDocument(app);
    for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
      const documented = METHODS.filter((m) => item[m]).map((m) => m.toUpperCase());
      const res = await app.handle(req("OPTIONS", concrete(path)));
      expect(res.status, path).toBe(405);
      const allow = res.headers.get("allow")!.split(", ");
      expect(allow.filter((m) => m !== "HEAD").sort(), path).toEqual([...documented].sort());
      expect(allow.includes("HEAD"), path).toBe(documented.includes("GET"));
    }
  });

  test("DELETE /operations/compare is 405 (compare is GET only), not an operation named compare", async () => {
    const { app } = makeApp();
    for (const method of ["DELETE", "POST", "PUT"]) {
      const res = await json(app.handle(req(method, "/api/v1/operations/compare?ids=a")));
      expect(res.status).toBe(405);
      expect(res.body.error).toMatchObject({ code: "METHOD_NOT_ALLOWED", details: { allow: ["GET", "HEAD"] } });
    }
  });

  test("GET and DELETE /mcp are 405 with Allow: POST, the one method the document has", async () => {
    const { app } = makeApp();
    for (const method of ["GET", "DELETE"]) {
      const res = await app.handle(req(method, "/mcp"));
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("POST");
    }
  });
});

describe("an integer path parameter is plain decimal digits", () => {
  test("checkpoint epochs 0x9, 9e0, +9, %209, 9.0 and ' 9' are 400 naming params.epoch; 9 gets past validation", async () => {
    const { app } = makeApp();
    for (const epoch of ["0x9", "9e0", "+9", "%209", "9.0", "%2B9", "-0", "0b1"]) {
      const res = await json(app.handle(req("GET", `/api/v1/operations/op_1/checkpoints/${epoch}`)));
      expect(res.status, epoch).toBe(400);
      expect(res.body.error.details.field, epoch).toBe("params.epoch");
    }
    const plain = await json(app.handle(req("GET", "/api/v1/operations/op_1/checkpoints/9")));
    expect(plain.body.error.code).toBe("OPERATION_NOT_FOUND");
  });

  test("the host's checkpoint route holds to the same rule", async () => {
    const host = bareHostApp(null);
    const res = await json(host.handle(req("GET", "/sessions/1/checkpoints/0x9")));
    expect(res.status).toBe(400);
    expect(res.body.error.details.field).toBe("params.epoch");
  });
});
