// Hostile and odd input found by a foreign fuzzer (issue 10): bounded numbers, reserved names, a closed heartbeat,
// auth before the body, one error explainer, refused bodies in the envelope, and 405 for a known path.
import { describe, expect, spyOn, test } from "bun:test";
import { Value } from "@sinclair/typebox/value";
import { MAX_OFFSET } from "../src/schemas/operation.ts";
import { MAX_EPOCH } from "../src/schemas/epoch.ts";
import { BatchProgressSchema, Session } from "../src/schemas/host.ts";
import { bareHostApp as hostApp, json, makeApp, req } from "./helpers.ts";

type App = ReturnType<typeof makeApp>["app"];
const TOKEN = "s3cret";
const AUTH = { authorization: `Bearer ${TOKEN}` };

async function register(app: App, headers: Record<string, string> = {}): Promise<string> {
  const { status, body } = await json(
    app.handle(req("POST", "/api/v1/operations", { operation_type: "training" }, headers)),
  );
  expect(status).toBe(201);
  return body.data.operation_id as string;
}

/** A POST with a raw string body and a content type, as a client other than fetch-with-JSON would send it. */
const raw = (path: string, body: string, contentType: string, headers: Record<string, string> = {}) =>
  new Request(`http://localhost${path}`, {
    method: "POST",
    body,
    headers: { "content-type": contentType, ...headers },
  });

/** A body stream that records whether anyone read from it. */
function watchedBody(bytes: number) {
  const seen = { pulled: false };
  // highWaterMark 0: nothing is pulled until a reader asks.
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        seen.pulled = true;
        c.enqueue(new Uint8Array(bytes).fill(32));
        c.close();
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, seen };
}

const epochsOf = async (app: App, id: string, headers: Record<string, string> = {}) =>
  (await json(app.handle(req("GET", `/api/v1/operations/${id}/metrics`, undefined, headers)))).body.data.metrics
    .epochs as Record<string, unknown>[];

describe("epoch numbers are bounded (0 … 2³¹ − 1) wherever an epoch is accepted", () => {
  test("an epoch past 2³¹ − 1 is a 400 naming it and stores nothing; 2³¹ − 1 itself is kept", async () => {
    const { app } = makeApp();
    const id = await register(app);
    for (const body of [
      '{"epoch": 9007199254740993}',
      '{"epoch": 1e300}',
      `{"epochs": [{"epoch": 0}, {"epoch": ${MAX_EPOCH + 1}}]}`,
    ]) {
      const res = await json(app.handle(raw(`/api/v1/operations/${id}/metrics`, body, "application/json")));
      expect(res.status).toBe(400);
      expect(res.body.error.details.field).toMatch(/^body(\.epochs\.1)?\.epoch$/);
    }
    expect(await epochsOf(app, id)).toEqual([]);
    expect(
      (await json(app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epoch: MAX_EPOCH, train_loss: 1 }))))
        .status,
    ).toBe(200);
    expect((await epochsOf(app, id)).map((e) => e.epoch)).toEqual([MAX_EPOCH]);
  });

  test("since_epoch past the bound is a 400 on the metrics and on the stream", async () => {
    const { app } = makeApp();
    const id = await register(app);
    for (const path of [`/api/v1/operations/${id}/metrics`, `/api/v1/operations/${id}/metrics/stream`]) {
      const res = await json(app.handle(req("GET", `${path}?since_epoch=${MAX_EPOCH + 1}`)));
      expect(res.status).toBe(400);
      expect(res.body.error.details.field).toBe("query.since_epoch");
    }
  });

  test("the host relay's progress and session schemas refuse an epoch past the bound", async () => {
    expect(Value.Check(BatchProgressSchema, { epoch: MAX_EPOCH, batch: 1, batches: 2 })).toBe(true);
    expect(Value.Check(BatchProgressSchema, { epoch: MAX_EPOCH + 1, batch: 1, batches: 2 })).toBe(false);
    expect(Value.Check(BatchProgressSchema, { epoch: 1.2e23, batch: 1, batches: 2 })).toBe(false);
    const session = {
      operation_id: "op",
      status: "running",
      api_url: "http://api",
      started_at: "2026-01-01T00:00:00.000Z",
      finished_at: null,
      epochs_trained: 0,
      progress: { epoch: MAX_EPOCH + 1, batch: 0, batches: 1 },
      backend: null,
      error_message: null,
      relay: { pending: 0, delivered: 0 },
    };
    expect(Value.Check(Session, session)).toBe(false);
  });
});

describe("custom metric names that plain objects reserve", () => {
  for (const name of ["__proto__", "constructor", "prototype"]) {
    test(`a metric named ${name} is a 400 naming it, and nothing is stored`, async () => {
      const { app } = makeApp();
      const id = await register(app);
      // Written by hand: JSON.stringify would drop a __proto__ key before it was sent.
      const res = await json(
        app.handle(
          raw(
            `/api/v1/operations/${id}/metrics`,
            `{"epoch": 1, "train_loss": 0.5, "${name}": 0.25}`,
            "application/json",
          ),
        ),
      );
      expect(res.status).toBe(400);
      expect(res.body.error.details.field).toBe(`body.${name}`);
      expect(res.body.error.message).toContain("reserved");
      expect(await epochsOf(app, id)).toEqual([]);
    });
  }

  test("every other accepted name is read back with its value, so `stored` never hides a loss", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const names = [
      "toString",
      "valueOf",
      "hasOwnProperty",
      "__defineGetter__",
      "isPrototypeOf",
      "lr/group.0",
      "__proto",
    ];
    const epoch = Object.fromEntries([["epoch", 0], ...names.map((n, i) => [n, i + 0.5])]);
    const res = await json(app.handle(req("POST", `/api/v1/operations/${id}/metrics`, epoch)));
    expect(res.body.data.stored).toBe(1);
    const [back] = await epochsOf(app, id);
    for (const [i, n] of names.entries()) expect(Object.hasOwn(back!, n) && back![n]).toBe(i + 0.5);
  });
});

describe("the heartbeat route takes only a closed JSON object, and only for host trainings", () => {
  async function withHostOperation(status: "pending" | "running" = "running") {
    const t = makeApp();
    const op = await t.store.createOperation({ operation_type: "training", status, metadata: { location: "host" } });
    return { ...t, id: op.operation_id };
  }
  const beat = (app: App, id: string, body?: unknown) =>
    json(app.handle(req("POST", `/api/v1/operations/${id}/heartbeat`, body)));

  test("no body, null, a string, a text/plain body or unknown keys are refused and change nothing", async () => {
    const t = await withHostOperation("pending");
    const path = `/api/v1/operations/${t.id}/heartbeat`;
    const refused = [
      await json(t.app.handle(req("POST", path))),
      await beat(t.app, t.id, "null"),
      await beat(t.app, t.id, '"a string"'),
      await json(t.app.handle(raw(path, "{}", "text/plain"))),
      await beat(t.app, t.id, { alive: true }),
      await beat(t.app, t.id, { progress: { epoch: 0, batch: 1, batches: 2, blob: "x".repeat(1000) } }),
      await beat(t.app, t.id, { progress: { epoch: 1.2e23, batch: 1, batches: 2 } }),
      await beat(t.app, t.id, { progress: { epoch: 0, batch: 1, batches: 2 ** 31 } }),
    ];
    expect(refused.map((r) => r.status)).toEqual([400, 400, 400, 415, 400, 400, 400, 400]);
    const op = (await t.store.getOperation(t.id))!;
    expect(op.status).toBe("pending");
    expect(op.progress.batch).toBeUndefined();
  });

  test("a batch past the epoch's batch count is a 400 naming progress.batch", async () => {
    const t = await withHostOperation();
    const res = await beat(t.app, t.id, { progress: { epoch: 0, batch: 11, batches: 10 } });
    expect(res.status).toBe(400);
    expect(res.body.error.details.field).toBe("body.progress.batch");
    expect((await t.store.getOperation(t.id))!.progress.batch).toBeUndefined();
    expect((await beat(t.app, t.id, { progress: { epoch: 0, batch: 10, batches: 10 } })).status).toBe(200);
  });

  test("a heartbeat to a local training only refreshes last_seen_at: a queued one stays pending, and neither is watched", async () => {
    const t = makeApp();
    const local = (
      await t.store.createOperation({ operation_type: "training", status: "pending", metadata: { location: "local" } })
    ).operation_id;
    const res = await beat(t.app, local, {});
    expect(res.status).toBe(200);
    const op = (await t.store.getOperation(local))!;
    expect(op.status).toBe("pending");
    expect(op.last_seen_at).not.toBeNull();
    expect(op.liveness).toBeNull();
  });

  test("a host's report (started, checkpoints) in a heartbeat for an operation not on a host is a 409 NOT_HOST_OPERATION naming the field", async () => {
    const t = makeApp();
    const external = await register(t.app);
    const local = (
      await t.store.createOperation({ operation_type: "training", status: "running", metadata: { location: "local" } })
    ).operation_id;
    for (const id of [external, local]) {
      const res = await beat(t.app, id, { checkpoints: [] });
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe("NOT_HOST_OPERATION");
      expect(res.body.error.details.field).toBe("body.checkpoints");
    }
    expect((await t.store.getOperation(external))!.metadata.checkpoints).toBeUndefined();
  });

  test("a host training being started (pending) or running takes heartbeats", async () => {
    for (const status of ["pending", "running"] as const) {
      const t = await withHostOperation(status);
      const res = await beat(t.app, t.id, { progress: { epoch: 0, batch: 1, batches: 4 } });
      expect(res.status).toBe(200);
      expect(res.body.data.status).toBe("running");
    }
  });
});

describe("listing bounds and internal errors", () => {
  test("limit and offset out of their documented range are a 400 naming the parameter, not a 500", async () => {
    const { app } = makeApp();
    for (const q of [
      "offset=100000000000000000000",
      `offset=${MAX_OFFSET + 1}`,
      "offset=-1",
      "offset=1.5",
      "limit=0",
      "limit=1001",
    ]) {
      const res = await json(app.handle(req("GET", `/api/v1/operations?${q}`)));
      expect(res.status).toBe(400);
      expect(res.body.error.details.field).toBe(`query.${q.split("=")[0]}`);
    }
    expect((await json(app.handle(req("GET", `/api/v1/operations?offset=${MAX_OFFSET}&limit=1000`)))).status).toBe(200);
  });

  test("an unexpected error is a 500 INTERNAL_ERROR with a request id; its message goes to the log only", async () => {
    const { app, store } = makeApp();
    store.listOperations = () => {
      throw new Error("SQLITE_MISMATCH: datatype mismatch in operations.id");
    };
    const logged: unknown[][] = [];
    const spy = spyOn(console, "error").mockImplementation((...args: unknown[]) => void logged.push(args));
    try {
      const res = await json(app.handle(req("GET", "/api/v1/operations")));
      expect(res.status).toBe(500);
      expect(res.body.error.code).toBe("INTERNAL_ERROR");
      expect(JSON.stringify(res.body)).not.toContain("SQLITE");
      const requestId = res.body.error.details.request_id as string;
      expect(res.body.error.message).toContain(requestId);
      const line = logged.map((a) => a.map(String).join(" ")).find((l) => l.includes(requestId));
      expect(line).toContain("GET /api/v1/operations");
      expect(line).toContain("datatype mismatch");
    } finally {
      spy.mockRestore();
    }
  });
});

describe("authentication comes before the body", () => {
  test("an unauthenticated POST is a 401 whatever its body: invalid, oversized or not JSON", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: TOKEN });
    const id = await register(app, AUTH);
    const cases = [
      req("POST", "/api/v1/operations", { bad: 1 }),
      req("POST", `/api/v1/operations/${id}/metrics`, { epoch: -1 }),
      raw("/api/v1/operations", "{", "application/json"),
      raw("/api/v1/operations", "hello", "text/plain"),
      req("POST", "/api/v1/trainings", { dataset: { kind: "csv" } }),
    ];
    for (const r of cases) {
      const res = await app.handle(r);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="trainwatch"');
      expect((await res.json()).error.code).toBe("UNAUTHORIZED");
    }
  });

  test("a refused request's body is never read, even when it declares 5 MB", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: TOKEN });
    const { stream, seen } = watchedBody(1024);
    const r = new Request("http://localhost/api/v1/operations", {
      method: "POST",
      body: stream,
      headers: { "content-type": "application/json", "content-length": String(5 * 1024 * 1024) },
      duplex: "half",
    } as RequestInit);
    expect((await app.handle(r)).status).toBe(401);
    expect(seen.pulled).toBe(false);
  });

  test("/mcp and the host app check the token before the body too", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: TOKEN });
    expect((await app.handle(raw("/mcp", "{", "application/json"))).status).toBe(401);
    const host = hostApp("host-token");
    const res = await host.handle(raw("/sessions", '{"operation_id": 1}', "application/json"));
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="trainwatch-host"');
  });

  test("the scheme is case-insensitive: bearer and BEARER work, a wrong token does not", async () => {
    const { app } = makeApp({ TRAINWATCH_TOKEN: TOKEN });
    for (const scheme of ["bearer", "BEARER", "Bearer"]) {
      expect(
        (await app.handle(req("GET", "/api/v1/operations", undefined, { authorization: `${scheme} ${TOKEN}` }))).status,
      ).toBe(200);
      expect(
        (
          await app.handle(
            req("POST", "/api/v1/operations", { operation_type: "training" }, { authorization: `${scheme} ${TOKEN}` }),
          )
        ).status,
      ).toBe(201);
    }
    expect(
      (await app.handle(req("GET", "/api/v1/operations", undefined, { authorization: `bearer ${TOKEN}x` }))).status,
    ).toBe(401);
    expect(
      (await app.handle(req("GET", "/api/v1/operations", undefined, { authorization: `Basic ${TOKEN}` }))).status,
    ).toBe(401);
  });
});

describe("schema errors name the field and list what is allowed", () => {
  async function problem(app: App, r: Request) {
    const res = await json(app.handle(r));
    expect(res.status).toBe(400);
    return res.body.error as { message: string; details: { field: string } };
  }

  test("query parameters are named, on every route that takes one", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const cases: [string, string][] = [
      [`/api/v1/operations/${id}/metrics/stream?since_epoch=-5`, "query.since_epoch"],
      [`/api/v1/operations/${id}/metrics?since_epoch=-5`, "query.since_epoch"],
      [`/api/v1/operations/compare?ids=${id}&max_points=2`, "query.max_points"],
      [`/api/v1/operations/${id}/metrics?max_points=2`, "query.max_points"],
      ["/api/v1/operations?status=sleeping", "query.status"],
    ];
    for (const [path, field] of cases) {
      const e = await problem(app, req("GET", path));
      expect(e.details.field).toBe(field);
      expect(e.message).toStartWith(`${field}: `);
    }
  });

  test("a choice lists every allowed value, and a union is judged by its discriminator", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const cases: [Request, string][] = [
      [
        req("POST", `/api/v1/operations/${id}/complete`, { status: "" }),
        'body.status: Expected one of "completed", "failed", "cancelled"',
      ],
      [
        req("POST", "/api/v1/trainings", { dataset: { kind: "csv", label: "y" } }),
        "body.dataset.path: Expected required property",
      ],
      [
        req("POST", "/api/v1/trainings", { dataset: { kind: "csv", path: "a.csv", label: "y", task: "ranking" } }),
        'body.dataset.task: Expected one of "classification", "regression"',
      ],
      [
        req("POST", "/api/v1/trainings", { dataset: { kind: "synthetic", generator: "spirals" }, target: "gpu" }),
        'body.target: Expected one of "local", "host", "slurm"',
      ],
      [
        req("POST", "/api/v1/trainings", {
          dataset: { kind: "synthetic", generator: "spirals" },
          training: { lr_schedule: { kind: "cosine" } },
        }),
        'body.training.lr_schedule.kind: Expected one of "constant", "reduce_on_plateau"',
      ],
      [
        req("POST", "/api/v1/trainings", { dataset: { kind: "parquet" } }),
        'body.dataset.kind: Expected one of "synthetic", "csv"',
      ],
    ];
    for (const [r, message] of cases) expect((await problem(app, r)).message).toBe(message);
  });
});

describe("every refused body gets the envelope", () => {
  const LIMIT = 1024;
  const small = () => makeApp({ TRAINWATCH_MAX_BODY_BYTES: String(LIMIT) });

  test("a declared body over the limit is a 413 with the limit, whatever its content type, and is not read", async () => {
    const { app } = small();
    for (const type of [
      "application/json",
      "text/plain",
      "multipart/form-data; boundary=x",
      "application/x-www-form-urlencoded",
    ]) {
      const { stream, seen } = watchedBody(LIMIT + 1);
      const r = new Request("http://localhost/api/v1/operations", {
        method: "POST",
        body: stream,
        headers: { "content-type": type, "content-length": String(LIMIT + 1) },
        duplex: "half",
      } as RequestInit);
      const res = await json(app.handle(r));
      expect(res.status).toBe(413);
      expect(res.body.error).toMatchObject({ code: "PAYLOAD_TOO_LARGE", details: { field: "body", limit: LIMIT } });
      expect(seen.pulled).toBe(false);
    }
  });

  test("a body of unknown length is read only up to the limit, then refused with 413", async () => {
    const { app } = small();
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent > 100 * LIMIT) return c.close();
        sent += 256;
        c.enqueue(new Uint8Array(256).fill(32));
      },
    });
    const r = new Request("http://localhost/api/v1/operations", {
      method: "POST",
      body: stream,
      headers: { "content-type": "application/json" },
      duplex: "half",
    } as RequestInit);
    const res = await json(app.handle(r));
    expect(res.status).toBe(413);
    expect(res.body.error.details.limit).toBe(LIMIT);
    expect(sent).toBeLessThan(3 * LIMIT);
  });

  test("a body that is not JSON is a 415 naming the accepted type, on the API, /mcp and the host", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const paths = [
      "/api/v1/operations",
      `/api/v1/operations/${id}/metrics`,
      `/api/v1/operations/${id}/heartbeat`,
      "/api/v1/trainings",
      "/mcp",
    ];
    for (const path of paths) {
      for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
        const res = await json(app.handle(raw(path, "a=1", type)));
        expect(res.status).toBe(415);
        expect(res.body.error).toMatchObject({
          code: "UNSUPPORTED_MEDIA_TYPE",
          details: { accepted: ["application/json"] },
        });
      }
    }
    const host = hostApp(null);
    expect((await host.handle(raw("/sessions", "a=1", "text/plain"))).status).toBe(415);
    // A body with no content type at all is refused the same way.
    const untyped = await json(
      app.handle(
        new Request("http://localhost/api/v1/operations", {
          method: "POST",
          body: new Blob(['{"operation_type":"training"}']),
        }),
      ),
    );
    expect(untyped.status).toBe(415);
    expect(untyped.body.error.message).toBe(
      "body: a body without a content type is not accepted; send application/json",
    );
    expect(
      (
        await json(
          app.handle(raw("/api/v1/operations", '{"operation_type": "training"}', "application/json; charset=utf-8")),
        )
      ).status,
    ).toBe(201);
  });
});

describe("a known path asked with a method it lacks is a 405 with Allow", () => {
  test("PUT, PATCH, TRACE and DELETE on /api/v1/health", async () => {
    const { app } = makeApp();
    for (const method of ["PUT", "PATCH", "TRACE", "DELETE", "POST"]) {
      const res = await app.handle(req(method, "/api/v1/health"));
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, HEAD");
      expect(await res.json()).toMatchObject({
        success: false,
        error: { code: "METHOD_NOT_ALLOWED", details: { allow: ["GET", "HEAD"] } },
      });
    }
  });

  test("every registered path answers 405 for a method it lacks, listing the methods it has; unknown paths stay 404", async () => {
    const { app } = makeApp();
    const byPath = new Map<string, Set<string>>();
    for (const r of app.routes) {
      const path = r.path.replaceAll(/:[^/]+/g, "x");
      (byPath.get(path) ?? byPath.set(path, new Set()).get(path)!).add(r.method);
    }
    for (const [path, methods] of byPath) {
      // A method the path lacks (PATCH /operations/{id}/metadata exists).
      const res = await app.handle(req(methods.has("PATCH") ? "TRACE" : "PATCH", path));
      expect(res.status).toBe(405);
      const allow = res.headers.get("allow")!.split(", ");
      for (const m of methods) expect(allow).toContain(m);
    }
    const byId = await app.handle(req("PUT", "/api/v1/operations/op_x"));
    expect(byId.headers.get("allow")).toBe("GET, HEAD, DELETE");
    expect((await app.handle(req("PUT", "/api/v1/nothing-here"))).status).toBe(404);
    expect((await app.handle(req("GET", "/api/v1/nothing-here"))).status).toBe(404);
  });

  test("the host app answers 405 the same way", async () => {
    const host = hostApp(null);
    const res = await host.handle(req("PUT", "/sessions"));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
  });
});
