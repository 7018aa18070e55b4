// The TensorBoard bridge through the app (app.handle, in-memory SQLite): the live mirror writes every stored epoch to
// its operation's event file as it is stored; GET /tfevents serves one run's file from the stored epochs; POST
// /imports/tensorboard turns a logdir's runs into operations (both scalar encodings, Keras's train/validation pair, a
// truncated tail), refuses paths out of the data directory and damaged files with 400s naming the field, the file and
// the offset, and reports progress through its own `import` operation.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { OperationsService, type OperationEvent } from "../src/operations/service.ts";
import { MAX_METRIC_NAMES } from "../src/schemas/epoch.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { FILE_VERSION, fileVersionEvent, scalarEvent } from "../src/tensorboard/events.ts";
import { decodeEvents, eventFile, eventScalars } from "../src/tensorboard/metrics.ts";
import { TensorboardMirror } from "../src/tensorboard/mirror.ts";
import { frameRecord, readRecords } from "../src/tensorboard/tfrecord.ts";
import { json, req, tempDir, until } from "./helpers.ts";

const dirs: { cleanup: () => void }[] = [];
afterAll(() => {
  for (const d of dirs) d.cleanup();
});
const temp = (prefix: string) => {
  const d = tempDir(prefix);
  dirs.push(d);
  return d.dir;
};

/** The app with its operations service, on a fresh in-memory store, reading `data` as TRAINWATCH_DATA_DIR. */
function setup(data = temp("trainwatch-tb-data-")) {
  const config = loadConfig({ TRAINWATCH_DATA_DIR: data });
  const store = new SqliteStore(":memory:", config.trends);
  const operations = new OperationsService(store, { trends: config.trends });
  const app = createApp({ store, config, operations });
  return { app, store, operations, data };
}

type App = ReturnType<typeof setup>["app"];

async function register(app: App, name?: string): Promise<string> {
  const { body } = await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training", name })));
  return body.data.operation_id;
}

async function post(app: App, id: string, epochs: Record<string, unknown>[]) {
  const res = await app.handle(req("POST", `/api/v1/operations/${id}/metrics`, { epochs }));
  expect(res.status).toBe(200);
}

/** Every scalar of an event file, as [step, tag, value, wall time], and its first event. */
function scalarsOf(bytes: Uint8Array) {
  const events = decodeEvents(readRecords(bytes).records);
  const { points } = eventScalars(events, null, new Map());
  return { first: events[0]!, points: points.map((p) => [Number(p.step), p.tag, p.value, p.wallTime] as const) };
}

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

describe("the live mirror (TRAINWATCH_TENSORBOARD_DIR)", () => {
  test("every stored epoch is in its operation's event file as soon as it is stored: step = epoch, wall time = timestamp", async () => {
    const { app, operations } = setup();
    const dir = temp("trainwatch-tb-mirror-");
    const mirror = new TensorboardMirror(operations, dir, () => Date.UTC(2026, 0, 1));
    mirror.start();
    const id = await register(app, "resnet / v2");
    await post(app, id, [
      { epoch: 0, train_loss: 1.5, val_loss: "NaN", learning_rate: 0.1, timestamp: at(1) },
      { epoch: 1, train_loss: 1.25, val_loss: "Infinity", grad_norm: 3, timestamp: at(2) },
    ]);
    await mirror.settled();
    const file = mirror.fileOf(id)!;
    expect(file).toBe(join(dir, `resnet_v2-${id}`, readdirSync(join(dir, `resnet_v2-${id}`))[0]!));
    expect(file).toMatch(/events\.out\.tfevents\.1767225600\.[^.]+\.\d+$/);
    // Read while the file is open: each write reached the file, nothing is held back in the process.
    const first = scalarsOf(readFileSync(file));
    expect(first.first).toMatchObject({ kind: "file_version", fileVersion: FILE_VERSION });
    expect(first.points).toEqual([
      [0, "train_loss", 1.5, Date.parse(at(1)) / 1000],
      [0, "val_loss", Number.NaN, Date.parse(at(1)) / 1000],
      [0, "learning_rate", Math.fround(0.1), Date.parse(at(1)) / 1000],
      [1, "train_loss", 1.25, Date.parse(at(2)) / 1000],
      [1, "val_loss", Number.POSITIVE_INFINITY, Date.parse(at(2)) / 1000],
      [1, "grad_norm", 3, Date.parse(at(2)) / 1000],
    ]);
    // One epoch more, then the operation finishes: its file is closed, and what came last is in it.
    await post(app, id, [{ epoch: 2, train_loss: 1, timestamp: at(3) }]);
    await app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "completed" }));
    await mirror.settled();
    expect(scalarsOf(readFileSync(file)).points.at(-1)).toEqual([2, "train_loss", 1, Date.parse(at(3)) / 1000]);
    // An operation without a name gets a folder named by its id alone.
    const anonymous = await register(app);
    await post(app, anonymous, [{ epoch: 0, train_loss: 2 }]);
    await mirror.stop();
    expect(readdirSync(dir).sort()).toEqual([anonymous, `resnet_v2-${id}`].sort());
  });

  test("a global listener's epochs events carry epochs only while one asks for them", async () => {
    const { app, operations } = setup();
    const heard: Record<string, number[]> = { plain: [], epochs: [] };
    const count = (key: string) => (e: OperationEvent) => {
      if (e.type === "epochs") heard[key]!.push(e.epochs.length);
    };
    const offPlain = operations.subscribe("*", count("plain"));
    const offEpochs = operations.subscribe("*", count("epochs"), { epochs: true });
    const id = await register(app);
    await post(app, id, [
      { epoch: 0, train_loss: 1 },
      { epoch: 1, train_loss: 0.5 },
    ]);
    offEpochs();
    offEpochs(); // twice is harmless
    await post(app, id, [{ epoch: 2, train_loss: 0.4 }]);
    offPlain();
    // While one asked, every global listener heard the same event (encoded once); after, none carries epochs.
    expect(heard).toEqual({ plain: [2, 0], epochs: [2] });
  });
});

describe("GET /operations/{id}/tfevents", () => {
  test("one run's stored epochs as an event file; 404 for an unknown operation", async () => {
    const { app } = setup();
    const id = await register(app, "download");
    await post(app, id, [
      { epoch: 3, train_loss: 0.5, val_accuracy: 0.75, timestamp: at(4) },
      { epoch: 4, val_loss: "-Infinity", "lr/head": 0.5, timestamp: at(5) },
    ]);
    const res = await app.handle(req("GET", `/api/v1/operations/${id}/tfevents`));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(res.headers.get("content-disposition")).toMatch(
      new RegExp(`^attachment; filename="events\\.out\\.tfevents\\.\\d+\\.trainwatch\\.${id}"$`),
    );
    const { first, points } = scalarsOf(new Uint8Array(await res.arrayBuffer()));
    expect(first.kind).toBe("file_version");
    expect(points).toEqual([
      [3, "train_loss", 0.5, Date.parse(at(4)) / 1000],
      [3, "val_accuracy", 0.75, Date.parse(at(4)) / 1000],
      [4, "val_loss", Number.NEGATIVE_INFINITY, Date.parse(at(5)) / 1000],
      [4, "lr/head", 0.5, Date.parse(at(5)) / 1000],
    ]);
    const missing = await json(
      app.handle(req("GET", "/api/v1/operations/op_training_20000101_000000_00000000/tfevents")),
    );
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("OPERATION_NOT_FOUND");
  });
});

/** A run folder with one event file of the given records (each an Event message). */
function writeRun(data: string, run: string, name: string, events: Uint8Array[]) {
  const path = join(data, run, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, Buffer.concat(events.map(frameRecord)));
  return path;
}

/** A TF2 (Keras) scalar: a DT_FLOAT tensor of the `scalars` plugin, written out by hand field by field. */
function tf2Scalar(wallTime: number, step: number, tag: string, value: number): Uint8Array {
  const f32 = new Uint8Array(new Float32Array([value]).buffer);
  const tensor = [0x08, 0x01, 0x12, 0x00, 0x2a, 0x04, ...f32]; // dtype DT_FLOAT, empty shape, tensor_content
  const plugin = [0x0a, 0x09, 0x0a, 0x07, ...new TextEncoder().encode("scalars")];
  const metadata = [0x4a, plugin.length, ...plugin];
  const t = new TextEncoder().encode(tag);
  const value_ = [0x0a, t.length, ...t, 0x42, tensor.length, ...tensor, ...metadata];
  const summary = [0x0a, value_.length, ...value_];
  const head = new Uint8Array(9);
  head[0] = 0x09;
  new DataView(head.buffer).setFloat64(1, wallTime, true);
  return new Uint8Array([...head, 0x10, step, 0x2a, summary.length, ...summary]);
}

describe("POST /imports/tensorboard", () => {
  test("each run becomes a completed operation with every value; Keras's halves are one run; a truncated tail is reported", async () => {
    const { app, data } = setup();
    // A PyTorch-style run, with NaN, a custom tag, an image-free histogram-free file (simple_value only).
    writeRun(data, "tb/torch/run1", "events.out.tfevents.1.a.1", [
      fileVersionEvent(100),
      scalarEvent(101, 0, [
        ["loss", 1.5],
        ["val_loss", Number.NaN],
        ["grad norm", 2],
      ]),
      scalarEvent(102, 1, [
        ["loss", 1.25],
        ["val_loss", 1.5],
      ]),
    ]);
    // Keras: train/ and validation/ with TF2 tensor summaries.
    writeRun(data, "tb/keras", "train/events.out.tfevents.2.k.2", [
      fileVersionEvent(200),
      tf2Scalar(201, 0, "epoch_loss", 0.75),
      tf2Scalar(201, 0, "epoch_learning_rate", 0.25),
    ]);
    writeRun(data, "tb/keras", "validation/events.out.tfevents.2.k.2", [
      fileVersionEvent(200),
      tf2Scalar(202, 0, "epoch_loss", 0.875),
    ]);
    // A file still being written: its last record is cut short.
    const growing = writeRun(data, "tb/growing", "events.out.tfevents.3.g.3", [
      fileVersionEvent(300),
      scalarEvent(301, 5, [["train_loss", 4]]),
      scalarEvent(302, 6, [["train_loss", 3]]),
    ]);
    const whole = readFileSync(growing);
    writeFileSync(growing, whole.subarray(0, whole.length - 7));
    // A graph-only run: no operation, its event counted as skipped.
    writeRun(data, "tb/graph", "events.out.tfevents.4.x.4", [
      fileVersionEvent(1),
      new Uint8Array([0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x22, 0x00]),
    ]);

    const { status, body } = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "tb" })));
    expect(status).toBe(200);
    const report = body.data;
    expect(report.runs.map((r: { name: string }) => r.name)).toEqual(["graph", "growing", "keras", "torch/run1"]);
    expect(report.epochs).toBe(2 + 1 + 1);
    expect(report.skipped_events).toBe(1);
    const [graph, growingRun, keras, torch] = report.runs;
    expect(graph).toMatchObject({ operation_id: null, epochs: 0, skipped: { events: 1, values: 0, steps: 0 } });
    expect(growingRun).toMatchObject({
      epochs: 1,
      records: 2,
      truncated: [{ file: "growing/events.out.tfevents.3.g.3" }],
    });
    expect(growingRun.truncated[0].bytes).toBe(whole.length - 7 - growingRun.truncated[0].offset);
    expect(keras.files).toEqual([
      "keras/train/events.out.tfevents.2.k.2",
      "keras/validation/events.out.tfevents.2.k.2",
    ]);
    expect(keras.tags).toEqual({
      "train/epoch_learning_rate": "learning_rate",
      "train/epoch_loss": "train_loss",
      "validation/epoch_loss": "val_loss",
    });
    expect(torch.tags).toEqual({ "grad norm": "grad_norm", loss: "train_loss", val_loss: "val_loss" });

    const epochsOf = async (id: string) =>
      (await json(app.handle(req("GET", `/api/v1/operations/${id}/metrics`)))).body.data.metrics.epochs;
    expect(await epochsOf(torch.operation_id)).toEqual([
      { epoch: 0, train_loss: 1.5, val_loss: "NaN", grad_norm: 2, timestamp: new Date(101_000).toISOString() },
      { epoch: 1, train_loss: 1.25, val_loss: 1.5, timestamp: new Date(102_000).toISOString() },
    ]);
    expect(await epochsOf(keras.operation_id)).toEqual([
      { epoch: 0, train_loss: 0.75, val_loss: 0.875, learning_rate: 0.25, timestamp: new Date(202_000).toISOString() },
    ]);
    expect((await epochsOf(growingRun.operation_id)).map((e: { epoch: number }) => e.epoch)).toEqual([5]);

    const op = (await json(app.handle(req("GET", `/api/v1/operations/${torch.operation_id}`)))).body.data;
    expect(op).toMatchObject({ name: "torch/run1", status: "completed", operation_type: "training" });
    expect(op.metadata).toMatchObject({ source: "tensorboard", import_operation_id: report.import_operation_id });
    const imp = (await json(app.handle(req("GET", `/api/v1/operations/${report.import_operation_id}`)))).body.data;
    expect(imp).toMatchObject({ operation_type: "import", status: "completed", result: report });
    expect(imp.progress.percentage).toBe(100);
  });

  test("an exported file imports back to the same epochs", async () => {
    const { app, data } = setup();
    const id = await register(app, "round trip");
    const sent = [
      {
        epoch: 0,
        train_loss: 0.5,
        val_loss: "NaN",
        train_accuracy: 0.25,
        learning_rate: 0.125,
        duration: 2,
        f1: 0.5,
        timestamp: at(1),
      },
      { epoch: 9, train_loss: "Infinity", val_accuracy: 0.75, "lr/head": "-Infinity", timestamp: at(2) },
    ];
    await post(app, id, sent);
    const file = new Uint8Array(
      await (await app.handle(req("GET", `/api/v1/operations/${id}/tfevents`))).arrayBuffer(),
    );
    mkdirSync(join(data, "back", "run"), { recursive: true });
    writeFileSync(join(data, "back", "run", "events.out.tfevents.1.x.1"), file);
    const { body } = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: join(data, "back") })));
    const back = (await json(app.handle(req("GET", `/api/v1/operations/${body.data.runs[0].operation_id}/metrics`))))
      .body.data.metrics.epochs;
    expect(back).toEqual(sent);
  });

  test("a tag_map overrides the table: a tag to a field, a tag to nothing", async () => {
    const { app, data } = setup();
    writeRun(data, "m", "events.out.tfevents.1.m.1", [
      scalarEvent(5, 0, [
        ["Loss/valid", 0.5],
        ["gpu_mem", 9],
        ["loss", 1],
      ]),
    ]);
    const { status, body } = await json(
      app.handle(
        req("POST", "/api/v1/imports/tensorboard", {
          logdir: "m",
          tag_map: { "Loss/valid": "val_loss", gpu_mem: null },
        }),
      ),
    );
    expect(status).toBe(200);
    expect(body.data.runs[0].tags).toEqual({ "Loss/valid": "val_loss", gpu_mem: null, loss: "train_loss" });
    expect(body.data.runs[0].skipped.values).toBe(1);
  });

  test("wait: false replies 202 with the import operation, whose result is the report once it completes", async () => {
    const { app, data } = setup();
    writeRun(data, "w/r", "events.out.tfevents.1.w.1", [
      scalarEvent(5, 0, [["loss", 1]]),
      scalarEvent(6, 1, [["loss", 0.5]]),
    ]);
    const { status, body } = await json(
      app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "w", wait: false })),
    );
    expect(status).toBe(202);
    expect(body.data).toMatchObject({
      operation_type: "import",
      metadata: { source: "tensorboard", logdir: "w", runs: 1 },
    });
    const done = await until("the import to complete", async () => {
      const op = (await json(app.handle(req("GET", `/api/v1/operations/${body.data.operation_id}`)))).body.data;
      return op.status === "completed" && op;
    });
    expect(done.result).toMatchObject({
      import_operation_id: body.data.operation_id,
      epochs: 2,
      runs: [{ name: "r", epochs: 2 }],
    });
  });

  test("a cancelled import stops before its next file and records what it did", async () => {
    const { app, data } = setup();
    // Two runs of 6,000 records each: the import pauses for the event loop after every 5,000, so the cancel lands while
    // it still reads.
    for (const run of ["c/one", "c/two"])
      writeRun(
        data,
        run,
        "events.out.tfevents.1.c.1",
        Array.from({ length: 6000 }, (_, e) => scalarEvent(e, e, [["loss", 1 / (e + 1)]])),
      );
    const { body } = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "c", wait: false })));
    const id = body.data.operation_id;
    const cancel = await json(app.handle(req("DELETE", `/api/v1/operations/${id}`, { reason: "enough", by: "test" })));
    expect(cancel.status).toBe(200);
    const done = await until("the import's report", async () => {
      const op = (await json(app.handle(req("GET", `/api/v1/operations/${id}`)))).body.data;
      return op.result !== null && op;
    });
    expect(done.status).toBe("cancelled");
    expect(done.result).toMatchObject({ cancelled: true, runs: [], epochs: 0 });
    expect((await json(app.handle(req("GET", "/api/v1/operations?operation_type=training")))).body.total_count).toBe(0);
  });

  test("a damaged record is a 400 naming body.logdir, the file and the offset, and nothing is imported", async () => {
    const { app, data } = setup();
    writeRun(data, "bad/a", "events.out.tfevents.1.a.1", [scalarEvent(1, 0, [["loss", 1]])]);
    const path = writeRun(data, "bad/b", "events.out.tfevents.1.b.1", [
      fileVersionEvent(1),
      scalarEvent(2, 0, [["loss", 1]]),
      scalarEvent(3, 1, [["loss", 2]]),
    ]);
    const bytes = readFileSync(path);
    const second = readRecords(new Uint8Array(bytes)).records[1]!.offset;
    bytes[second + 14]! ^= 0xff;
    writeFileSync(path, bytes);
    const { status, body } = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "bad" })));
    expect(status).toBe(400);
    expect(body.error.code).toBe("VALIDATION_ERROR");
    expect(body.error.message).toContain(
      "body.logdir: b/events.out.tfevents.1.b.1: the data checksum of the record at byte offset",
    );
    expect(body.error.details).toMatchObject({
      field: "body.logdir",
      file: "b/events.out.tfevents.1.b.1",
      offset: second,
    });
    const list = (await json(app.handle(req("GET", "/api/v1/operations?operation_type=training")))).body;
    expect(list.total_count).toBe(0);
    const imp = (await json(app.handle(req("GET", `/api/v1/operations/${body.error.details.import_operation_id}`))))
      .body.data;
    expect(imp.status).toBe("failed");
    expect(imp.error_message).toContain(`byte offset ${second}`);
  });

  test("a run with more custom tags than an operation may hold is a 400 naming the run and the limit; nothing is imported", async () => {
    const { app, data } = setup();
    const tags = (n: number) => Array.from({ length: n }, (_, i) => [`t${i}`, i] as [string, number]);
    writeRun(data, "many/fine", "events.out.tfevents.1.f.1", [
      scalarEvent(1, 0, [["loss", 1], ...tags(MAX_METRIC_NAMES)]),
    ]);
    // Split over two steps: the count is of distinct names in the whole run, not per epoch.
    writeRun(data, "many/wide", "events.out.tfevents.1.w.1", [
      scalarEvent(1, 0, tags(MAX_METRIC_NAMES)),
      scalarEvent(2, 1, [["extra", 1]]),
    ]);
    const { status, body } = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "many" })));
    expect(status).toBe(400);
    expect(body.error.code).toBe("VALIDATION_ERROR");
    expect(body.error.message).toContain(
      `body.logdir: run "wide" has ${MAX_METRIC_NAMES + 1} custom metrics (tags that map to no standard field), more than the ${MAX_METRIC_NAMES} an operation may hold`,
    );
    expect(body.error.details).toMatchObject({ field: "body.logdir", run: "wide", limit: MAX_METRIC_NAMES });
    const list = (await json(app.handle(req("GET", "/api/v1/operations?operation_type=training")))).body;
    expect(list.total_count).toBe(0);
    // Skipping one tag brings it within the limit.
    const skipped = await json(
      app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "many", tag_map: { extra: null } })),
    );
    expect(skipped.status).toBe(200);
    expect(skipped.body.data.runs.map((r: { name: string }) => r.name)).toEqual(["fine", "wide"]);
  });

  test("a record that is no Event is refused the same way", async () => {
    const { app, data } = setup();
    writeRun(data, "junk", "events.out.tfevents.1.j.1", [new Uint8Array([0xff, 0xff])]);
    const { status, body } = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "junk" })));
    expect(status).toBe(400);
    expect(body.error.message).toContain("the record at byte offset 0 is not a TensorBoard Event message");
    expect(body.error.details).toMatchObject({ field: "body.logdir", offset: 0 });
  });

  test("a logdir out of the data directory is refused, naming body.logdir: .., absolute, a symlink out, missing, a file, empty", async () => {
    const { app, data } = setup();
    const outside = temp("trainwatch-tb-outside-");
    writeRun(outside, "run", "events.out.tfevents.1.o.1", [scalarEvent(1, 0, [["loss", 1]])]);
    symlinkSync(outside, join(data, "link"));
    writeFileSync(join(data, "plain.txt"), "x");
    mkdirSync(join(data, "empty"));
    const cases: [string, RegExp][] = [
      ["../", /outside the data directory/],
      [`${data}/../${outside.split("/").pop()}`, /outside the data directory/],
      [outside, /outside the data directory/],
      ["link", /outside the data directory/],
      ["nope", /no directory "nope"/],
      ["plain.txt", /is not a directory/],
      ["empty", /no TensorBoard event file/],
    ];
    for (const [logdir, message] of cases) {
      const { status, body } = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir })));
      expect([logdir, status]).toEqual([logdir, 400]);
      expect(body.error.details.field).toBe("body.logdir");
      expect(body.error.message).toMatch(message);
    }
    // A symlink inside a logdir is not followed either.
    writeRun(data, "tb", "events.out.tfevents.1.t.1", [scalarEvent(1, 0, [["loss", 1]])]);
    symlinkSync(outside, join(data, "tb", "escape"));
    const { body } = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "tb" })));
    expect(body.data.runs.map((r: { name: string }) => r.name)).toEqual(["tb"]);
    expect((await json(app.handle(req("GET", "/api/v1/operations?operation_type=training")))).body.total_count).toBe(1);
  });

  test("bad bodies are 400s naming the field", async () => {
    const { app } = setup();
    const cases: [unknown, string][] = [
      [{}, "body.logdir"],
      [{ logdir: "" }, "body.logdir"],
      [{ logdir: "tb", tag_map: { loss: "has space" } }, "body.tag_map"],
      [{ logdir: "tb", tag_map: { loss: "timestamp" } }, "body.tag_map.loss"],
      [{ logdir: "tb", wait: "yes" }, "body.wait"],
      [{ logdir: "tb", extra: 1 }, "body.extra"],
    ];
    for (const [payload, field] of cases) {
      const { status, body } = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", payload)));
      expect([payload, status]).toEqual([payload, 400]);
      expect(String(body.error.details?.field ?? body.error.message)).toStartWith(field);
    }
  });
});

test("eventFile of no epochs is the opening record alone", () => {
  expect(readRecords(eventFile(at(0), [])).records).toHaveLength(1);
});
