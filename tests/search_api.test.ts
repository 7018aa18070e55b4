// GET /operations?q= (issue 27) over REST on an in-memory store: a search with its sort and page, the status filter
// beside it, and the 400s that name the parameter and the position of what is wrong.
import { afterEach, describe, expect, test } from "bun:test";
import { json, makeApp, req } from "./helpers.ts";

let close: (() => void) | null = null;
afterEach(() => {
  close?.();
  close = null;
});

const API = "/api/v1";

async function appWithRuns() {
  const { app, store } = makeApp();
  close = () => store.close();
  const post = async (body: Record<string, unknown>) =>
    (await json(app.handle(req("POST", `${API}/operations`, { operation_type: "training", ...body })))).body.data
      .operation_id as string;
  const a = await post({ name: "a", tags: ["bert"], group: "sweep-7", config: { lr: 1e-4 } });
  const b = await post({ name: "b", tags: ["bert"], group: "sweep-7", config: { lr: 1e-2 } });
  const c = await post({ name: "c", tags: ["gpt"], config: { lr: 1e-5 } });
  return { app, a, b, c };
}

const list = async (app: ReturnType<typeof makeApp>["app"], params: Record<string, string>) =>
  json(app.handle(req("GET", `${API}/operations?${new URLSearchParams(params)}`)));

describe("GET /operations?q=", () => {
  test("searches, sorts and pages; total_count counts every match", async () => {
    const { app, a, b, c } = await appWithRuns();
    const found = await list(app, { q: 'tags has "bert" and group = "sweep-7" and config.lr < 1e-3' });
    expect(found.status).toBe(200);
    expect(found.body.data.map((o: { operation_id: string }) => o.operation_id)).toEqual([a]);
    expect(found.body.total_count).toBe(1);
    const sorted = await list(app, { q: "config.lr != null", sort: "config.lr", order: "asc", limit: "2" });
    expect(sorted.body.data.map((o: { operation_id: string }) => o.operation_id)).toEqual([c, a]);
    expect(sorted.body.total_count).toBe(3);
    const next = await list(app, { q: "config.lr != null", sort: "config.lr", order: "asc", limit: "2", offset: "2" });
    expect(next.body.data.map((o: { operation_id: string }) => o.operation_id)).toEqual([b]);
    const beside = await list(app, { q: "tags has bert", status: "completed" });
    expect(beside.body.total_count).toBe(0);
  });

  test("a syntax error is a 400 QUERY_SYNTAX naming query.q and the position", async () => {
    const { app } = await appWithRuns();
    const { status, body } = await list(app, { q: 'tags has "bert" and config.lr <' });
    expect(status).toBe(400);
    expect(body).toEqual({
      success: false,
      error: {
        code: "QUERY_SYNTAX",
        message: "query.q at 31: expected a value after '<'",
        details: { field: "query.q", position: 31 },
      },
    });
  });

  test("an unknown field is a 400 QUERY_FIELD; an unknown sort key names query.sort; a bad order is a 400", async () => {
    const { app } = await appWithRuns();
    const field = await list(app, { q: 'group = "x" or colour = "red"' });
    expect(field.status).toBe(400);
    expect(field.body.error).toMatchObject({ code: "QUERY_FIELD", details: { field: "query.q", position: 15 } });
    const sort = await list(app, { sort: "tags" });
    expect(sort.status).toBe(400);
    expect(sort.body.error).toMatchObject({ code: "QUERY_FIELD", details: { field: "query.sort" } });
    const order = await list(app, { order: "sideways" });
    expect(order.status).toBe(400);
    expect(order.body.error.details.field).toBe("query.order");
  });

  test("a value that looks like SQL is a value: it matches nothing and the runs stay", async () => {
    const { app } = await appWithRuns();
    const hostile = await list(app, { q: 'name = "a\\"; DROP TABLE operations; --" or group = "\') OR 1=1 --"' });
    expect(hostile.status).toBe(200);
    expect(hostile.body.total_count).toBe(0);
    expect((await list(app, {})).body.total_count).toBe(3);
  });
});
