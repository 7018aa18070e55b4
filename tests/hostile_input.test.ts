// Hostile input, bounded (issue 20): bodies nested deep, wide and near the size limit, names kilobytes long, many
// names at once, deep query strings and more custom metric names than an operation may hold. Each is a 4xx naming the field, in a short reply that echoes no more than an
// excerpt of the input, and the server answers /health right after. Sized to run in CI in seconds; no timings.
import { describe, expect, test } from "bun:test";
import { MAX_JSON_DEPTH, depthExceeds } from "../src/http/depth.ts";
import { MAX_METRIC_NAMES } from "../src/schemas/epoch.ts";
import { decodeBatch } from "../src/schemas/metric.ts";
import { EXCERPT_CHARS } from "../src/schemas/explain.ts";
import { bareHostApp, json, makeApp, req } from "./helpers.ts";

type App = { handle(r: Request): Promise<Response> };

/** A reply may echo a field and a message of bounded length, never the input: this many bytes at most. */
const MAX_REPLY = 2_000;

const post = (path: string, body: string) =>
  new Request(`http://localhost${path}`, { method: "POST", body, headers: { "content-type": "application/json" } });

/** `[[[…]]]` nested `n` deep. */
const nested = (n: number) => "[".repeat(n) + "]".repeat(n);
/** `{"a":{"a":…1…}}` nested `n` deep. */
const nestedObject = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;

/** Refused with `status`, naming `field`, in a short reply; and /health answers right after. */
async function refused(app: App, r: Request, status: number, field: string) {
  const res = await app.handle(r);
  const text = await res.text();
  expect(res.status).toBe(status);
  expect(text.length).toBeLessThan(MAX_REPLY);
  const body = JSON.parse(text);
  expect(body.success).toBe(false);
  expect(body.error.details.field).toBe(field);
  expect(body.error.message.startsWith(`${field}:`)).toBe(true);
  expect((await app.handle(req("GET", "/api/v1/health"))).status).toBe(200);
  return body.error as { code: string; message: string; details: Record<string, unknown> };
}

async function operation(app: App): Promise<string> {
  const { body } = await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training" })));
  return body.data.operation_id;
}

describe("depth: every JSON body is refused past 64 levels, before anything parses it", () => {
  test("a 60 KB body nested 30,000 deep and a 200,000-deep one to POST /metrics are 400 naming body and the limit", async () => {
    const { app } = makeApp();
    const id = await operation(app);
    for (const depth of [30_000, 200_000]) {
      const e = await refused(app, post(`/api/v1/operations/${id}/metrics`, nested(depth)), 400, "body");
      expect(e).toEqual({
        code: "VALIDATION_ERROR",
        message: `body: nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`,
        details: { field: "body", max_depth: MAX_JSON_DEPTH },
      });
    }
  });

  test("a config 100,000 levels deep, and one just past the limit, are refused; nothing is stored", async () => {
    const { app } = makeApp();
    for (const depth of [100_000, MAX_JSON_DEPTH]) {
      const body = `{"operation_type":"training","config":${nestedObject(depth)}}`;
      await refused(app, post("/api/v1/operations", body), 400, "body");
    }
    const list = await json(app.handle(req("GET", "/api/v1/operations")));
    expect(list.body.total_count).toBe(0);
  });

  test("/mcp, POST /trainings and the host's POST /sessions refuse a deep body the same way", async () => {
    const { app } = makeApp();
    await refused(app, post("/mcp", `{"jsonrpc":"2.0","id":1,"method":"x","params":${nested(50_000)}}`), 400, "body");
    await refused(app, post("/api/v1/trainings", nested(50_000)), 400, "body");
    const host = bareHostApp(null);
    const res = await json(host.handle(post("/sessions", nestedObject(50_000))));
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual({ field: "body", max_depth: MAX_JSON_DEPTH });
  });

  test("the scan counts brackets outside strings only, escapes included, up to the limit exactly", () => {
    expect(depthExceeds(nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH)).toBe(false);
    expect(depthExceeds(nested(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)).toBe(true);
    expect(depthExceeds(JSON.stringify({ a: "[".repeat(1000) }), MAX_JSON_DEPTH)).toBe(false);
    expect(depthExceeds(JSON.stringify({ a: `\\"${"{".repeat(1000)}` }), MAX_JSON_DEPTH)).toBe(false);
    expect(depthExceeds(`["\\\\", ${nested(MAX_JSON_DEPTH)}]`, MAX_JSON_DEPTH)).toBe(true);
    // An unterminated string ends the scan; JSON.parse refuses the text afterwards.
    expect(depthExceeds(`["${"[".repeat(100)}`, MAX_JSON_DEPTH)).toBe(false);
  });

  test("brackets inside strings are not depth: a metric name list in metadata-like text is accepted", async () => {
    const { app } = makeApp();
    const body = JSON.stringify({ operation_type: "training", name: "[".repeat(200) });
    expect((await app.handle(post("/api/v1/operations", body))).status).toBe(201);
  });
});

describe("width and size: big bodies within the limit are refused by their first problem, not formatted whole", () => {
  test("a 1,000,000-element array as the metrics body, and as its epochs, are 400 naming body and body.epochs", async () => {
    const { app } = makeApp();
    const id = await operation(app);
    const million = `[${"1,".repeat(999_999)}1]`;
    await refused(app, post(`/api/v1/operations/${id}/metrics`, million), 400, "body");
    await refused(app, post(`/api/v1/operations/${id}/metrics`, `{"epochs":${million}}`), 400, "body.epochs");
  });

  test("a huge value where a metric goes is 400 naming the metric, and the value is not echoed", async () => {
    const { app } = makeApp();
    const id = await operation(app);
    const body = `{"epoch":1,"train_loss":[${"0.5,".repeat(199_999)}0.5]}`;
    const e = await refused(app, post(`/api/v1/operations/${id}/metrics`, body), 400, "body.train_loss");
    expect(e.message).not.toContain("0.5");
  });

  test("100,000 keys in an operation's body are 400 naming the first unexpected one", async () => {
    const { app } = makeApp();
    const wide: Record<string, unknown> = { operation_type: "training" };
    for (let i = 0; i < 100_000; i++) wide[`k${i}`] = i;
    await refused(app, post("/api/v1/operations", JSON.stringify(wide)), 400, "body.k0");
  });

  test("a body past TRAINWATCH_MAX_BODY_BYTES is 413 naming body", async () => {
    const { app } = makeApp({ TRAINWATCH_MAX_BODY_BYTES: "10000" });
    const e = await refused(app, post("/api/v1/operations", `"${"x".repeat(20_000)}"`), 413, "body");
    expect(e.details.limit).toBe(10_000);
  });
});

describe("long names and many names: an error echoes a bounded excerpt", () => {
  const long = "m".repeat(10_000);
  const cut = `${"m".repeat(EXCERPT_CHARS)}…`;

  test("a 10 KB custom metric name is 400 whose field and message carry a 100-character excerpt of it, once each", async () => {
    const { app } = makeApp();
    const id = await operation(app);
    const e = await refused(
      app,
      post(`/api/v1/operations/${id}/metrics`, JSON.stringify({ epoch: 1, [long]: 1 })),
      400,
      `body.${cut}`,
    );
    expect(e.message).toBe(`body.${cut}: custom metric names may use letters, digits and _ . / - (1 to 64 characters)`);
  });

  test("a 10 KB unknown property, query parameter and query value are refused with excerpts", async () => {
    const { app } = makeApp();
    const body = JSON.stringify({ operation_type: "training", [long]: 1 });
    await refused(app, post("/api/v1/operations", body), 400, `body.${cut}`);
    await refused(app, req("GET", `/api/v1/operations?${long}=1`), 400, `query.${cut}`);
    await refused(app, req("GET", `/api/v1/operations?limit=${"9".repeat(10_000)}`), 400, "query.limit");
  });

  test("an epoch with 10,000 names that are not metric names is 400 naming the first, in a short reply", async () => {
    const { app } = makeApp();
    const id = await operation(app);
    const epoch: Record<string, unknown> = { epoch: 1 };
    for (let i = 0; i < 10_000; i++) epoch[`bad name ${i}`] = 1;
    await refused(app, post(`/api/v1/operations/${id}/metrics`, JSON.stringify(epoch)), 400, "body.bad name 0");
  });

  test("a 10 KB operation id in a path is echoed as an excerpt", async () => {
    const { app } = makeApp();
    const res = await app.handle(req("GET", `/api/v1/operations/${"o".repeat(10_000)}`));
    expect(res.status).toBe(404);
    expect((await res.text()).length).toBeLessThan(MAX_REPLY);
  });
});

describe("deep and repeated query strings", () => {
  test("a bracketed key 1,000 levels deep and 10,000 unknown parameters are 400 naming the query field", async () => {
    const { app } = makeApp();
    const deep = `a${"[b]".repeat(1000)}`;
    const e = await refused(
      app,
      req("GET", `/api/v1/operations?${deep}=1`),
      400,
      `query.${deep.slice(0, EXCERPT_CHARS)}…`,
    );
    expect(e.code).toBe("VALIDATION_ERROR");
    const many = Array.from({ length: 10_000 }, (_, i) => `p${i}=1`).join("&");
    await refused(app, req("GET", `/api/v1/operations?limit=1&${many}`), 400, "query.p0");
  });
});

describe("metric name counts: an operation holds at most MAX_METRIC_NAMES custom names", () => {
  /** One epoch per name, each naming a new custom metric `n<epoch>`. */
  const newNames = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({ epoch: from + i, [`n${from + i}`]: 1 }));

  test("a batch that would take an operation past the limit is 400 naming the first name over it; nothing of it is stored", async () => {
    const { app, store } = makeApp();
    const id = await operation(app);
    const held = MAX_METRIC_NAMES - 6;
    const first = await app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epochs: newNames(0, held) }));
    expect(first.status).toBe(200);
    const e = await refused(
      app,
      req("POST", `/api/v1/operations/${id}/metrics`, { epochs: newNames(held, 10) }),
      400,
      `body.epochs.6.n${MAX_METRIC_NAMES}`,
    );
    expect(e.details).toMatchObject({ limit: MAX_METRIC_NAMES, epoch: MAX_METRIC_NAMES });
    expect((await store.readEpochs(id)).map((x) => x.epoch)).toEqual(newNames(0, held).map((x) => x.epoch));
    expect(await store.metricNames(id)).toHaveLength(held);
  });

  test("a batch whose own names pass the limit is decoded only up to that row, and names the field the stored names make first", async () => {
    const { app, store } = makeApp();
    const id = await operation(app);
    const held = 200;
    await app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epochs: newNames(0, held) }));
    // 10,000 epochs each naming a new metric: the batch alone passes the limit at its row 256, but with 200 names held
    // the first name over it is the batch's row 56, as when the whole batch was decoded; the steps route does the same.
    const e = await refused(
      app,
      req("POST", `/api/v1/operations/${id}/metrics`, { epochs: newNames(held, 10_000) }),
      400,
      `body.epochs.56.n${MAX_METRIC_NAMES}`,
    );
    expect(e.details).toMatchObject({ limit: MAX_METRIC_NAMES, epoch: MAX_METRIC_NAMES });
    const steps = Array.from({ length: 10_000 }, (_, i) => ({ step: i, [`s${i}`]: 1 }));
    await refused(app, req("POST", `/api/v1/operations/${id}/steps`, { steps }), 400, "body.steps.56.s56");
    expect(await store.metricNames(id)).toHaveLength(held);
    expect(await store.readEpochs(id)).toHaveLength(held);
  });

  test("decodeBatch stops after the row that takes the batch's own names past the limit, and decodes every row otherwise", () => {
    const decoded: number[] = [];
    const rows = Array.from({ length: 1_000 }, (_, i) => ({ i, custom: { [`m${i}`]: 1 } }));
    const out = decodeBatch(rows, (r) => (decoded.push(r.i), { timestamp: "t", custom: r.custom }));
    expect(out).toHaveLength(MAX_METRIC_NAMES + 1);
    expect(decoded.at(-1)).toBe(MAX_METRIC_NAMES);
    const same = Array.from({ length: 1_000 }, () => ({ timestamp: "t", custom: { a: 1, b: 2 } }));
    expect(decodeBatch(same, (r) => r)).toHaveLength(1_000);
  });

  test("a single epoch (not a batch) past the limit is 400 naming its own field, body.<name>", async () => {
    const { app, store } = makeApp();
    const id = await operation(app);
    await app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epochs: newNames(0, MAX_METRIC_NAMES) }));
    const e = await refused(
      app,
      req("POST", `/api/v1/operations/${id}/metrics`, { epoch: 300, train_loss: 1, one_more: 1 }),
      400,
      "body.one_more",
    );
    expect(e.message).toStartWith(`body.one_more: an operation holds at most ${MAX_METRIC_NAMES} distinct`);
    expect(e.details).toMatchObject({ limit: MAX_METRIC_NAMES, epoch: 300 });
    expect((await store.readEpochs(id)).some((x) => x.epoch === 300)).toBe(false);
  });
});
