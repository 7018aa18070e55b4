// Run comparison and the CSV/JSON downloads, checked against what the store holds (custom metrics and NaN included).
import { describe, expect, test } from "bun:test";
import { TrainwatchClient } from "../src/client/api.ts";
import { csvField, epochsToCsv } from "../src/routes/export.ts";
import { json, makeApp, req } from "./helpers.ts";
import { overfitAt14 } from "./fixtures/runs.ts";

type App = ReturnType<typeof makeApp>["app"];

async function register(app: App, name: string): Promise<string> {
  const { body } = await json(
    app.handle(req("POST", "/api/v1/operations", { operation_type: "training", name, total_epochs_planned: 40 })),
  );
  return body.data.operation_id;
}

async function post(app: App, id: string, epochs: Record<string, unknown>[]) {
  const res = await app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epochs }));
  expect(res.status).toBe(200);
}

/** Stored epochs as GET /metrics reports them: the reference every export is checked against. */
async function stored(app: App, id: string): Promise<Record<string, unknown>[]> {
  return (await json(app.handle(req("GET", `/api/v1/operations/${id}/metrics`)))).body.data.metrics.epochs;
}

/** Run A overfits after epoch 14, logs two custom metrics (one with a slash in its name), a NaN val_loss at epoch 3 and an infinite grad norm at epoch 7. */
const runA = Array.from({ length: 30 }, (_, e) => ({
  epoch: e,
  ...overfitAt14(e),
  val_loss: e === 3 ? "NaN" : overfitAt14(e).val_loss,
  train_accuracy: 0.5 + e / 100,
  val_accuracy: 0.45 + e / 120,
  learning_rate: 0.01,
  duration: 0.25,
  grad_norm: e === 7 ? "Infinity" : 1 + e / 10,
  "lr/backbone": 0.001,
}));
/** Run B starts at epoch 5 (a resumed run) and reaches a lower val_loss than A. */
const runB = Array.from({ length: 20 }, (_, i) => ({
  epoch: i + 5,
  train_loss: 0.9 - i * 0.03,
  val_loss: 0.8 - i * 0.025,
}));

async function threeRuns() {
  const { app } = makeApp();
  const a = await register(app, "overfits");
  const b = await register(app, "resumed");
  const c = await register(app, "empty");
  await post(app, a, runA);
  await post(app, b, runB);
  return { app, a, b, c };
}

const finiteVal = (e: Record<string, unknown>) => (typeof e.val_loss === "number" ? e.val_loss : Infinity);

describe("GET /operations/compare", () => {
  test("each run's summary matches its stored epochs, and the best run is named", async () => {
    const { app, a, b, c } = await threeRuns();
    const { status, body } = await json(app.handle(req("GET", `/api/v1/operations/compare?ids=${a},${b},${c}`)));
    expect(status).toBe(200);
    const { runs, best_run, basis } = body.data;
    expect(runs.map((r: { operation_id: string }) => r.operation_id)).toEqual([a, b, c]);

    for (const [id, run] of [
      [a, runs[0]],
      [b, runs[1]],
    ] as const) {
      const epochs = await stored(app, id);
      const best = epochs.reduce((x, y) => (finiteVal(y) < finiteVal(x) ? y : x));
      const op = (await json(app.handle(req("GET", `/api/v1/operations/${id}`)))).body.data;
      expect(run.summary).toMatchObject({
        monitor: "val_loss",
        best_epoch: best.epoch,
        best_loss: best.val_loss,
        first_epoch: epochs[0]!.epoch,
        last_epoch: epochs.at(-1)!.epoch,
        epochs_to_best: (best.epoch as number) - (epochs[0]!.epoch as number),
        epochs_completed: epochs.length,
        total_epochs_planned: 40,
        flags: {
          overfitting: op.trends.is_overfitting,
          plateau: op.trends.is_plateaued,
          diverging: op.trends.is_diverging,
        },
      });
      expect(run.summary.final).toEqual(epochs.at(-1)); // every field, custom metrics included
      expect(run.curves).toEqual(epochs); // under max_points: the whole history
      expect(run.location).toBe("external");
    }
    expect(runs[0].summary.best_epoch).toBe(14);
    expect(runs[0].summary.flags.overfitting).toBe(true);
    expect(runs[1].summary).toMatchObject({ best_epoch: 24, first_epoch: 5, epochs_to_best: 19 });
    expect(runs[2].summary).toMatchObject({
      best_epoch: null,
      best_loss: null,
      epochs_to_best: null,
      final: null,
      epochs_completed: 0,
    });
    expect(runs[2].curves).toEqual([]);
    expect(best_run).toBe(b);
    expect(basis).toContain(b);
  });

  test("curves are reduced to max_points, keeping the first, last and best epochs", async () => {
    const { app, a } = await threeRuns();
    const { body } = await json(app.handle(req("GET", `/api/v1/operations/compare?ids=${a}&max_points=7`)));
    const run = body.data.runs[0];
    const all = new Map((await stored(app, a)).map((e) => [e.epoch, e]));
    expect(run.curves.length).toBeLessThanOrEqual(7);
    const epochs = run.curves.map((e: { epoch: number }) => e.epoch);
    expect(epochs).toContain(0);
    expect(epochs).toContain(29);
    expect(epochs).toContain(14);
    expect(epochs).toEqual([...epochs].sort((x: number, y: number) => x - y));
    for (const p of run.curves) expect(p).toEqual(all.get(p.epoch)); // thinned, never altered
    expect(body.data.max_points).toBe(7);
  });

  test("bad requests: an unknown id is a 404 naming it; no ids or too many is a 400; 'compare' is never read as an id", async () => {
    const { app, a } = await threeRuns();
    const unknown = await json(app.handle(req("GET", `/api/v1/operations/compare?ids=${a},op_missing`)));
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toContain("op_missing");
    const none = await json(app.handle(req("GET", `/api/v1/operations/compare?ids=,,`)));
    expect(none.status).toBe(400);
    expect(none.body.error.details.field).toBe("query.ids");
    const missing = await json(app.handle(req("GET", `/api/v1/operations/compare`)));
    expect(missing.status).toBe(400);
    const many = Array.from({ length: 101 }, (_, i) => `op_${i}`).join(",");
    expect((await json(app.handle(req("GET", `/api/v1/operations/compare?ids=${many}`)))).status).toBe(400);
    expect((await json(app.handle(req("GET", `/api/v1/operations/compare?ids=${a}&max_points=2`)))).status).toBe(400);
  });

  test("the typed client's compareRuns reads the same reply", async () => {
    const { app, a, b } = await threeRuns();
    const client = new TrainwatchClient({
      baseUrl: "http://localhost",
      fetch: ((input: Request | string | URL, init?: RequestInit) =>
        app.handle(new Request(input, init))) as typeof fetch,
    });
    const reply = await client.compareRuns([a, b], { max_points: 5 });
    expect(reply.best_run).toBe(b);
    // max_points is a bound: each run's reduction keeps at most 5 epochs, at least its first, best and last.
    for (const r of reply.runs) expect(r.curves.length).toBeOneOf([3, 4, 5]);
  });
});

/** RFC 4180 parser, enough for the checks: quoted fields, doubled quotes, CRLF. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") row.push(field), (field = "");
    else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      (row = []), (field = ""), i++;
    } else field += ch;
  }
  return rows;
}

describe("GET /operations/{id}/metrics.csv", () => {
  test("every stored epoch and field, custom metrics as extra columns, NaN and Infinity written as such", async () => {
    const { app, a } = await threeRuns();
    const res = await app.handle(req("GET", `/api/v1/operations/${a}/metrics.csv`));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/csv");
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="${a}-metrics.csv"`);
    const text = await res.text();
    expect(text.endsWith("\r\n")).toBe(true);
    const [header, ...rows] = parseCsv(text);
    expect(header).toEqual([
      "epoch",
      "timestamp",
      "train_loss",
      "val_loss",
      "train_accuracy",
      "val_accuracy",
      "learning_rate",
      "duration",
      "grad_norm",
      "lr/backbone",
    ]);
    const epochs = await stored(app, a);
    expect(rows.length).toBe(epochs.length);
    rows.forEach((row, i) => {
      const e = epochs[i]!;
      header!.forEach((col, j) => {
        const v = e[col];
        expect(row[j]).toBe(v === null || v === undefined ? "" : String(v));
      });
      // Numbers read back exactly.
      expect(Number(row[2])).toBe(e.train_loss as number);
    });
    expect(rows[3]![3]).toBe("NaN");
    expect(rows[7]![8]).toBe("Infinity");
  });

  test("an epoch without a field leaves it empty; an operation without epochs is just the header", async () => {
    const { app, b, c } = await threeRuns();
    const rows = parseCsv(await (await app.handle(req("GET", `/api/v1/operations/${b}/metrics.csv`))).text());
    expect(rows[0]).toHaveLength(8);
    expect(rows[1]!.slice(4)).toEqual(["", "", "", ""]);
    expect(await (await app.handle(req("GET", `/api/v1/operations/${c}/metrics.csv`))).text()).toBe(
      "epoch,timestamp,train_loss,val_loss,train_accuracy,val_accuracy,learning_rate,duration\r\n",
    );
    expect((await app.handle(req("GET", `/api/v1/operations/op_missing/metrics.csv`))).status).toBe(404);
  });

  test("fields with commas, quotes or line breaks are quoted, quotes doubled", () => {
    expect(csvField("0.5")).toBe("0.5");
    expect(csvField("a,b")).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField("two\nlines")).toBe('"two\nlines"');
    expect(epochsToCsv([{ epoch: 0, timestamp: "x,y" }]).split("\r\n")[1]).toBe('0,"x,y",,,,,,');
  });
});

describe("GET /operations/{id}/metrics.json", () => {
  test("downloads the operation and its full history as an attachment", async () => {
    const { app, a } = await threeRuns();
    const res = await app.handle(req("GET", `/api/v1/operations/${a}/metrics.json`));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="${a}-metrics.json"`);
    const doc = await res.json();
    expect(doc.epochs).toEqual(await stored(app, a));
    expect(doc.epochs).toHaveLength(30);
    expect(doc.epochs[3].val_loss).toBe("NaN");
    expect(doc.epochs[7].grad_norm).toBe("Infinity");
    expect(doc.epochs[0]["lr/backbone"]).toBe(0.001);
    expect(doc.operation).toEqual((await json(app.handle(req("GET", `/api/v1/operations/${a}`)))).body.data);
    expect(Date.parse(doc.exported_at)).not.toBeNaN();
    expect((await app.handle(req("GET", `/api/v1/operations/op_missing/metrics.json`))).status).toBe(404);
  });
});

describe("GET /operations/{id}/analysis", () => {
  test("gives the recommendation with its reason", async () => {
    const { app, a } = await threeRuns();
    const { status, body } = await json(app.handle(req("GET", `/api/v1/operations/${a}/analysis`)));
    expect(status).toBe(200);
    expect(body.data.recommendation).toMatchObject({ action: "stop", checkpoint_epoch: 14 });
    expect(body.data.recommendation.reason).toContain("the run is overfitting");
    expect((await app.handle(req("GET", `/api/v1/operations/op_missing/analysis`))).status).toBe(404);
  });

  test("judges with the server's configured thresholds, and quotes them", async () => {
    const { app } = makeApp({ TRAINWATCH_PLATEAU_PATIENCE: "3" });
    const id = (await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training" })))).body.data
      .operation_id;
    // Best at epoch 5, then 5 epochs hovering just above it.
    const epochs = Array.from({ length: 11 }, (_, e) => ({
      epoch: e,
      train_loss: 0.5,
      val_loss: e <= 5 ? 1 - 0.1 * e : 0.51 + (e % 2) * 0.001,
    }));
    await app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epochs }));
    const a = (await json(app.handle(req("GET", `/api/v1/operations/${id}/analysis`)))).body.data;
    expect(a.flags.plateau).toBe(true);
    expect(a.thresholds.plateau_patience).toBe(3);
    expect(a.recommendation.reason).toContain("(patience 3)");
    expect(a.checkpoints).toEqual({ held_by: "trainer", epochs: null });
  });
});
