// System metrics over the API (issue 24), with app.handle on an in-memory store: the write (400 naming the field, the
// batch bound, 404, 409 finished, a sign of life), the bounded chart read, the operation stream's `system` events, the
// exports, and the PostgreSQL notification codec. The storage itself is in tests/store_contract_system.ts.
import { describe, expect, test } from "bun:test";
import { json, makeApp, req } from "./helpers.ts";
import { SseReader } from "./sse.ts";
import { sampleAt } from "./store_contract_system.ts";
import { decodeChange, systemNotice } from "../src/store/pg_notify.ts";
import { decodeSystemSamples, MAX_SYSTEM_SAMPLES } from "../src/schemas/system.ts";

type App = ReturnType<typeof makeApp>["app"];
const T0 = Date.parse("2026-11-26T15:30:00.000Z");

async function register(app: App): Promise<string> {
  const { status, body } = await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training" })));
  expect(status).toBe(201);
  return body.data.operation_id;
}

const post = (app: App, id: string, body: unknown) =>
  json(app.handle(req("POST", `/api/v1/operations/${id}/system`, body)));
const get = (app: App, id: string, q = "") => json(app.handle(req("GET", `/api/v1/operations/${id}/system${q}`)));

describe("POST /operations/{id}/system", () => {
  test("stores a batch, reads it back, and counts as a sign of life", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const before = (await json(app.handle(req("GET", `/api/v1/operations/${id}`)))).body.data.last_seen_at;
    const res = await post(app, id, { samples: [sampleAt(0), sampleAt(15, 80)] });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ operation_id: id, stored: 2 });
    expect((await get(app, id)).body.data.samples).toEqual([sampleAt(0), sampleAt(15, 80)]);
    const after = (await json(app.handle(req("GET", `/api/v1/operations/${id}`)))).body.data.last_seen_at;
    expect(after).not.toBeNull();
    expect(after).not.toBe(before);
  });

  test("bad input is a 400 naming the field, and nothing is stored", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const bad: [unknown, string][] = [
      [{ samples: [{ ...sampleAt(0), gpus: [{ ...sampleAt(0).gpus![0]!, power_w: -1 }] }] }, "power_w"],
      [{ samples: [{ ...sampleAt(0), machine: { cpu_percent: 140 } }] }, "cpu_percent"],
      [{ samples: [{ ...sampleAt(0), process: { cpu_percent: 1, threads: 3 } }] }, "threads"],
      [{ samples: [{ timestamp: "yesterday" }] }, "timestamp"],
      [{ samples: [{ ...sampleAt(0), gpus: Array.from({ length: 65 }, (_, index) => ({ index })) }] }, "gpus"],
      [{ samples: [] }, "samples"],
    ];
    for (const [body, field] of bad) {
      const res = await post(app, id, body);
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body.error)).toContain(field);
    }
    const many = Array.from({ length: MAX_SYSTEM_SAMPLES + 1 }, (_, i) => ({ timestamp: sampleAt(i).timestamp }));
    expect((await post(app, id, { samples: many })).status).toBe(400);
    expect((await get(app, id)).body.data.samples).toEqual([]);
  });

  test("404 for an unknown operation, 409 once it finished", async () => {
    const { app } = makeApp();
    expect((await post(app, "op_nope", { samples: [sampleAt(0)] })).status).toBe(404);
    const id = await register(app);
    await json(app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "completed" })));
    const res = await post(app, id, { samples: [sampleAt(0)] });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("OPERATION_FINISHED");
  });
});

describe("GET /operations/{id}/system", () => {
  test("max_points bounds the reply; since and until narrow it; until before since is a 400", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await post(app, id, { samples: Array.from({ length: 1_000 }, (_, i) => sampleAt(i * 15)) });
    expect((await get(app, id)).body.data.samples.length).toBe(500);
    const ten = (await get(app, id, "?max_points=10")).body.data.samples;
    expect(ten.length).toBe(10);
    expect(ten[0]).toEqual(sampleAt(0));
    const since = new Date(T0 + 30_000).toISOString();
    const until = new Date(T0 + 75_000).toISOString();
    const part = (await get(app, id, `?since=${since}&until=${until}`)).body.data.samples;
    expect(part.map((s: { timestamp: string }) => (Date.parse(s.timestamp) - T0) / 1000)).toEqual([45, 60, 75]);
    const back = await get(app, id, `?since=${until}&until=${since}`);
    expect(back.status).toBe(400);
    expect(back.body.error.message).toContain("query.until");
    expect((await get(app, id, "?max_points=1")).status).toBe(400);
    expect((await get(app, id, "?since=soon")).status).toBe(400);
    expect((await get(app, "op_nope")).status).toBe(404);
  });
});

describe("the system series on the stream and in the exports", () => {
  test("the operation stream sends a `system` event with each write's samples", async () => {
    const { app } = makeApp();
    const id = await register(app);
    const sse = new SseReader(await app.handle(req("GET", `/api/v1/operations/${id}/metrics/stream`)));
    await sse.until(() => sse.events.some((e) => e.event === "status"), 10_000, "the first status");
    await post(app, id, { samples: [sampleAt(0), sampleAt(15)] });
    await sse.until(() => sse.events.some((e) => e.event === "system"), 10_000, "a system event");
    expect(sse.events.find((e) => e.event === "system")!.data).toEqual({ samples: [sampleAt(0), sampleAt(15)] });
    await sse.cancel();
  });

  test("system.csv has a row per sample and GPU; system.json has every sample", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await post(app, id, { samples: [sampleAt(0), { timestamp: sampleAt(15).timestamp, machine: { cpu_percent: 3 } }] });
    const csv = await (await app.handle(req("GET", `/api/v1/operations/${id}/system.csv`))).text();
    const lines = csv.trimEnd().split("\r\n");
    expect(lines[0]).toBe(
      "timestamp,process_cpu_percent,process_rss_mb,machine_cpu_percent,machine_memory_used_mb,machine_memory_total_mb,machine_load_1m,gpu_index,gpu_name,gpu_utilization_percent,gpu_memory_used_mb,gpu_memory_total_mb,gpu_temperature_c,gpu_power_w",
    );
    expect(lines.slice(1)).toEqual([
      `${sampleAt(0).timestamp},101.5,2048,40,12000,64000,3.5,0,NVIDIA H100,50,30000,81559,61,312.5`,
      `${sampleAt(0).timestamp},101.5,2048,40,12000,64000,3.5,1,,,0,81559,,`,
      `${sampleAt(15).timestamp},,,3,,,,,,,,,,`,
    ]);
    const res = await app.handle(req("GET", `/api/v1/operations/${id}/system.json`));
    expect(res.headers.get("content-disposition")).toContain(`${id}-system.json`);
    const body = await res.json();
    expect(body.operation.operation_id).toBe(id);
    expect(body.samples).toEqual([sampleAt(0), { timestamp: sampleAt(15).timestamp, machine: { cpu_percent: 3 } }]);
  });

  test("a PostgreSQL notification carries a small batch whole and a big one as its range", () => {
    const small = decodeSystemSamples([sampleAt(0), sampleAt(15)]);
    expect(decodeChange(systemNotice("op_a", small))).toEqual({
      kind: "system",
      operation_id: "op_a",
      samples: [sampleAt(0), sampleAt(15)],
      range: [T0, T0 + 15_000],
    });
    const big = decodeSystemSamples(Array.from({ length: 100 }, (_, i) => sampleAt(i)));
    expect(decodeChange(systemNotice("op_a", big))).toEqual({
      kind: "system",
      operation_id: "op_a",
      samples: null,
      range: [T0, T0 + 99_000],
    });
  });
});
