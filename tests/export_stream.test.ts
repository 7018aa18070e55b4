// The full-history downloads stream (issue 20, defect 4): metrics.csv, metrics.json and tfevents read the epochs a page
// at a time and write as they go, byte for byte what the in-memory versions wrote before (kept below as the reference),
// and the CSV's columns come from the operation's stored metric names. Also: the name limit through the HTTP API.
import { describe, expect, test } from "bun:test";
import { MAX_METRIC_NAMES, STANDARD_FIELDS, type WireEpoch } from "../src/schemas/epoch.ts";
import { MAX_PAGE_EPOCHS, pageEpochs } from "../src/store/pages.ts";
import { eventFile } from "../src/tensorboard/metrics.ts";
import { json, makeApp, req } from "./helpers.ts";

type App = ReturnType<typeof makeApp>["app"];

/** The CSV export as it was written before it streamed (commit 025fdb5), verbatim: the reference for byte identity. */
function referenceCsv(epochs: readonly WireEpoch[]): string {
  const FIXED = ["epoch", "timestamp", ...STANDARD_FIELDS];
  const csvField = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
  const custom = new Set<string>();
  const fixed = new Set<string>(FIXED);
  for (const e of epochs) for (const k of Object.keys(e)) if (!fixed.has(k)) custom.add(k);
  const columns = [...FIXED, ...[...custom].sort()];
  const lines = [columns.map(csvField).join(",")];
  for (const e of epochs) {
    const row = e as Record<string, unknown>;
    lines.push(columns.map((c) => (row[c] === null || row[c] === undefined ? "" : csvField(String(row[c])))).join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}

async function register(app: App): Promise<string> {
  const { body } = await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training" })));
  return body.data.operation_id;
}

async function post(app: App, id: string, epochs: Record<string, unknown>[]) {
  for (let i = 0; i < epochs.length; i += 10_000) {
    const res = await app.handle(
      req("POST", `/api/v1/operations/${id}/metrics`, { epochs: epochs.slice(i, i + 10_000) }),
    );
    expect(res.status).toBe(200);
  }
}

/** Fixtures of every kind the CSV and JSON must keep: NaN, ±Infinity, nulls, sparse fields, custom metrics, many pages. */
const FIXTURES: Record<string, Record<string, unknown>[]> = {
  empty: [],
  "diverged, sparse and custom": Array.from({ length: 40 }, (_, e) => ({
    epoch: e * 3,
    train_loss: e === 5 ? "NaN" : 1 / (e + 1),
    ...(e % 4 ? { val_loss: e === 9 ? "Infinity" : 0.5 + e / 100 } : {}),
    ...(e === 11 ? { val_loss: "-Infinity" } : {}),
    ...(e % 7 === 0 ? { learning_rate: 0.001, duration: 1.25 } : {}),
    grad_norm: e === 2 ? null : e === 3 ? "NaN" : e,
    "lr/backbone": 1e-21 * e,
    ...(e % 5 === 0 ? { "Acc.top-5": 0.9, a_z: -0 } : {}),
    timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, e)).toISOString(),
  })),
  // Three full pages of the standard fields and a partial fourth, a custom metric on every 1,000th epoch.
  "many pages": Array.from({ length: 3 * MAX_PAGE_EPOCHS + 7 }, (_, e) => ({
    epoch: e,
    train_loss: 1 / (e + 1),
    val_loss: 2 / (e + 1),
    ...(e % 1000 === 0 ? { [`m${e / 1000}`]: e } : {}),
  })),
  // Wide: pages of a few hundred epochs.
  wide: Array.from({ length: 2 * pageEpochs(MAX_METRIC_NAMES) + 3 }, (_, e) => ({
    epoch: e + 100,
    train_loss: e,
    ...Object.fromEntries(Array.from({ length: 16 }, (_, k) => [`n${(e * 16 + k) % MAX_METRIC_NAMES}`, k])),
  })),
};

describe("streamed downloads are byte for byte what the in-memory ones were", () => {
  for (const [name, epochs] of Object.entries(FIXTURES)) {
    test(`${name}: metrics.csv, metrics.json and tfevents`, async () => {
      const { app, store } = makeApp();
      const id = await register(app);
      if (epochs.length) await post(app, id, epochs);
      const stored = await store.readEpochs(id);
      expect(stored).toHaveLength(epochs.length);

      const csv = await app.handle(req("GET", `/api/v1/operations/${id}/metrics.csv`));
      expect(await csv.text()).toBe(referenceCsv(stored));

      const text = await (await app.handle(req("GET", `/api/v1/operations/${id}/metrics.json`))).text();
      const exportedAt = (JSON.parse(text) as { exported_at: string }).exported_at;
      const operation = await store.getOperation(id);
      expect(text).toBe(JSON.stringify({ operation, epochs: stored, exported_at: exportedAt }));

      const tf = await app.handle(req("GET", `/api/v1/operations/${id}/tfevents`));
      expect(new Uint8Array(await tf.arrayBuffer())).toEqual(eventFile(operation!.created_at, stored));
    });
  }
});

describe("the downloads read a page at a time", () => {
  test("a reader that takes only the first chunk makes the server read at most the first pages", async () => {
    const { app, store } = makeApp();
    const id = await register(app);
    await post(app, id, FIXTURES["many pages"]!);
    const pages: number[] = [];
    const read = store.readEpochPage.bind(store);
    store.readEpochPage = (op, after, limit) => {
      pages.push(after);
      return read(op, after, limit);
    };
    // Never the whole history in one read.
    store.readEpochs = () => Promise.reject(new Error("a download read every epoch at once"));
    for (const file of ["metrics.csv", "metrics.json", "tfevents"]) {
      pages.length = 0;
      const reader = (await app.handle(req("GET", `/api/v1/operations/${id}/${file}`))).body!.getReader();
      await reader.read();
      // The first chunk, and at most one more queued behind it: never the whole run.
      expect(pages.length).toBeLessThanOrEqual(2);
      await reader.cancel();
      expect(pages.length).toBeLessThanOrEqual(2);
    }
    // Read to the end: four pages, the fourth short (7 epochs), so it is known to be the last without a fifth read.
    pages.length = 0;
    await (await app.handle(req("GET", `/api/v1/operations/${id}/metrics.csv`))).text();
    expect(pages).toEqual([-1, MAX_PAGE_EPOCHS - 1, 2 * MAX_PAGE_EPOCHS - 1, 3 * MAX_PAGE_EPOCHS - 1]);
  });

  test("the CSV's columns are the stored names: a metric replaced away keeps its empty column", async () => {
    const { app } = makeApp();
    const id = await register(app);
    await post(app, id, [{ epoch: 0, train_loss: 1, gone: 5 }]);
    await post(app, id, [{ epoch: 0, train_loss: 1 }]);
    const text = await (await app.handle(req("GET", `/api/v1/operations/${id}/metrics.csv`))).text();
    expect(text.split("\r\n")[0]).toBe(
      "epoch,timestamp,train_loss,val_loss,train_accuracy,val_accuracy,learning_rate,duration,gone",
    );
    expect(text.split("\r\n")[1]).toEndWith(",1,,,,,,");
  });
});

describe("POST /operations/{id}/metrics: at most MAX_METRIC_NAMES custom names per operation", () => {
  test("the issue's reproduction, one new name per epoch, is a 400 at the first name past the limit, storing nothing", async () => {
    const { app, store } = makeApp();
    const id = await register(app);
    const epochs = Array.from({ length: 10_000 }, (_, e) => ({ epoch: e, [`m${e}`]: 1 }));
    const { status, body } = await json(app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epochs })));
    expect(status).toBe(400);
    expect(body.error.code).toBe("VALIDATION_ERROR");
    expect(body.error.details).toMatchObject({
      field: `body.epochs.${MAX_METRIC_NAMES}.m${MAX_METRIC_NAMES}`,
      limit: MAX_METRIC_NAMES,
    });
    expect(body.error.message).toContain(`at most ${MAX_METRIC_NAMES} distinct custom metric names`);
    expect(await store.readEpochs(id)).toEqual([]);
    expect(await store.metricNames(id)).toEqual([]);
    // Exactly the limit is stored; the standard fields never count.
    const within = epochs.slice(0, MAX_METRIC_NAMES).map((e) => ({ ...e, train_loss: 1, val_accuracy: 0.5 }));
    expect((await app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epochs: within }))).status).toBe(200);
    expect(await store.metricNames(id)).toHaveLength(MAX_METRIC_NAMES);
  });
});
