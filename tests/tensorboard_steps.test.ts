// Steps in the TensorBoard bridge: the codec writes a step at its own step number under the Hugging Face Trainer's
// tags and reads them back as steps; the import decides steps or epochs from the tag names (or `as`), labels steps
// with their epoch (Lightning's whole `epoch`, the Trainer's fractional `train/epoch`); through the app, a step run's
// GET /tfevents and its live mirror hold its steps (not its derived epochs), and the file imports back to the same
// steps and the same derived epochs.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { OperationsService } from "../src/operations/service.ts";
import type { WireStep } from "../src/schemas/step.ts";
import { SqliteStore } from "../src/store/sqlite.ts";
import { fileVersionEvent, scalarEvent } from "../src/tensorboard/events.ts";
import {
  assembleEpochs,
  assembleSteps,
  decodeEvents,
  eventScalars,
  importAs,
  stepRecords,
  type ScalarPoint,
} from "../src/tensorboard/metrics.ts";
import { TensorboardMirror } from "../src/tensorboard/mirror.ts";
import { frameRecord, readRecords } from "../src/tensorboard/tfrecord.ts";
import { json, req, tempDir } from "./helpers.ts";

const root = tempDir("trainwatch-tb-steps-");
afterAll(() => root.cleanup());
let folders = 0;
/** A fresh folder under this file's temporary root. */
const temp = (name: string) => {
  const dir = join(root.dir, `${name}-${folders++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

/** The points of a file's events, as the import reads them. */
const pointsOf = (bytes: Uint8Array): ScalarPoint[] =>
  eventScalars(decodeEvents(readRecords(bytes).records), null, new Map()).points;

/** A point of tag `tag` at `step` (wall time = step seconds). */
const point = (tag: string, step: number, value: number): ScalarPoint => ({
  tag,
  role: null,
  step: BigInt(step),
  wallTime: step,
  value,
});

describe("the codec", () => {
  test("a step is one event at its own step number under the Trainer's tags, and reads back to the same step", () => {
    // Custom metrics are additional properties of the wire schema, which its static type does not spell.
    const steps = [
      { step: 0, epoch: 0, train_loss: 2.5, learning_rate: 0.5, grad_norm: 3, samples: 8, timestamp: at(1) },
      { step: 7, epoch: 0, train_loss: "NaN", duration: 0.25, tokens: 1024, "lr/head": 0.125, timestamp: at(2) },
      { step: 50, epoch: 1, val_loss: 1.5, val_accuracy: 0.75, "eval/f1": 0.5, timestamp: at(3) },
    ] as WireStep[];
    const points = pointsOf(stepRecords(steps));
    expect(points.map((p) => [Number(p.step), p.tag])).toEqual([
      [0, "train/epoch"],
      [0, "train/loss"],
      [0, "train/learning_rate"],
      [0, "train/grad_norm"],
      [0, "train/samples"],
      [7, "train/epoch"],
      [7, "train/loss"],
      [7, "train/duration"],
      [7, "train/tokens"],
      [7, "lr/head"],
      [50, "train/epoch"],
      [50, "eval/loss"],
      [50, "eval/accuracy"],
      [50, "eval/f1"],
    ]);
    expect(importAs(points)).toBe("steps");
    const back = assembleSteps(points);
    expect(back.steps.map(({ timestamp_ms: _ms, ...s }) => s)).toEqual([
      { step: 0, epoch: 0, train_loss: 2.5, learning_rate: 0.5, grad_norm: 3, samples: 8, timestamp: at(1) },
      {
        step: 7,
        epoch: 0,
        train_loss: Number.NaN,
        duration: 0.25,
        tokens: 1024,
        custom: { "lr/head": 0.125 },
        timestamp: at(2),
      },
      { step: 50, epoch: 1, val_loss: 1.5, val_accuracy: 0.75, custom: { "eval/f1": 0.5 }, timestamp: at(3) },
    ]);
    expect(back.tags).toMatchObject({ "train/loss": "train_loss", "train/epoch": "epoch", "eval/loss": "val_loss" });
  });

  test("the Trainer's fractional train/epoch labels a step with the epoch it ran in, carried forward between logs", () => {
    // 30 steps an epoch, logged every 10: epoch 1.0 is logged at the last step of epoch 0.
    const points: ScalarPoint[] = [];
    for (const step of [10, 20, 30, 40, 60]) {
      points.push(point("train/loss", step, 1 / step), point("train/epoch", step, step / 30));
    }
    points.push(point("eval/loss", 45, 0.5)); // an evaluation without its own epoch value
    const { steps } = assembleSteps(points);
    expect(steps.map((s) => [s.step, s.epoch])).toEqual([
      [10, 0],
      [20, 0],
      [30, 0],
      [40, 1],
      [45, 1],
      [60, 1],
    ]);
  });

  test("steps or epochs by default: the Trainer's tags or a repeated epoch tag mean steps; epoch-level logs stay epochs", () => {
    expect(importAs([point("train/loss", 5, 1)])).toBe("steps");
    expect(importAs([point("eval/loss", 5, 1)])).toBe("steps");
    // Lightning: `epoch` logged with every logged step, the same value at several steps.
    const lightning = [
      point("train_loss", 49, 1),
      point("epoch", 49, 0),
      point("train_loss", 99, 0.5),
      point("epoch", 99, 0),
    ];
    expect(importAs(lightning)).toBe("steps");
    expect(assembleSteps(lightning).steps.map((s) => [s.step, s.epoch, s.train_loss])).toEqual([
      [49, 0, 1],
      [99, 0, 0.5],
    ]);
    // A SummaryWriter logging once an epoch (Loss/train at step = epoch), an `epoch` tag that moves with the step.
    const perEpoch = [
      point("Loss/train", 0, 1),
      point("epoch", 0, 0),
      point("Loss/train", 1, 0.5),
      point("epoch", 1, 1),
    ];
    expect(importAs(perEpoch)).toBe("epochs");
    expect(assembleEpochs(perEpoch).epochs.map((e) => [e.epoch, e.train_loss])).toEqual([
      [0, 1],
      [1, 0.5],
    ]);
  });

  test("steps past 2³¹ − 1 and negative epoch values are counted, not stored", () => {
    const { steps, skipped } = assembleSteps([
      point("train/loss", 2 ** 31, 1),
      point("train/loss", 3, 1),
      point("train/epoch", 3, -1),
    ]);
    expect(steps.map((s) => [s.step, s.epoch])).toEqual([[3, undefined]]);
    expect(skipped).toEqual({ steps: 1, values: 1 });
  });
});

/** The app with its operations service, on a fresh in-memory store, reading `data` as TRAINWATCH_DATA_DIR. */
function setup() {
  const data = temp("data");
  const config = loadConfig({ TRAINWATCH_DATA_DIR: data });
  const store = new SqliteStore(":memory:", config.trends);
  const operations = new OperationsService(store, { trends: config.trends });
  return { app: createApp({ store, config, operations }), operations, data };
}
type App = ReturnType<typeof setup>["app"];

async function stepRun(app: App, name: string, steps: WireStep[]): Promise<string> {
  const created = await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training", name })));
  const id = created.body.data.operation_id;
  const res = await app.handle(req("POST", `/api/v1/operations/${id}/steps`, { steps }));
  expect(res.status).toBe(200);
  return id;
}

/** Three epochs of four steps, an evaluation at each epoch's last step; float32-exact values (simple_value's type). */
const RUN: WireStep[] = Array.from({ length: 12 }, (_, step) => ({
  step,
  epoch: Math.floor(step / 4),
  train_loss: (16 - step) / 8,
  learning_rate: 0.5,
  grad_norm: step === 6 ? "Infinity" : 1 + step / 8,
  ...(step % 4 === 3 ? { val_loss: (20 - step) / 8 } : {}),
  timestamp: at(step + 1),
}));

describe("through the app", () => {
  test("a step run's file holds its steps at their step numbers; it imports back to the same steps and epochs", async () => {
    const { app, data } = setup();
    const id = await stepRun(app, "hf", RUN);
    await app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "completed" }));
    const file = new Uint8Array(
      await (await app.handle(req("GET", `/api/v1/operations/${id}/tfevents`))).arrayBuffer(),
    );
    const points = pointsOf(file);
    expect(new Set(points.map((p) => Number(p.step)))).toEqual(new Set(RUN.map((s) => s.step)));
    expect(points.some((p) => p.tag === "train_loss")).toBe(false); // no derived epoch at step = epoch

    mkdirSync(join(data, "back", "run"), { recursive: true });
    writeFileSync(join(data, "back", "run", "events.out.tfevents.1.x.1"), file);
    const { body } = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "back" })));
    expect(body.data).toMatchObject({ steps: 12, epochs: 3 });
    expect(body.data.runs[0]).toMatchObject({ as: "steps", steps: 12, epochs: 3 });
    const back = body.data.runs[0].operation_id;
    const read = async (op: string, path: string) =>
      (await json(app.handle(req("GET", `/api/v1/operations/${op}/${path}`)))).body.data;
    expect((await read(back, "steps")).steps).toEqual((await read(id, "steps")).steps);
    expect((await read(back, "metrics")).metrics.epochs).toEqual((await read(id, "metrics")).metrics.epochs);
    expect((await read(back, "steps")).epoch_ends).toEqual([
      { epoch: 0, step: 3 },
      { epoch: 1, step: 7 },
      { epoch: 2, step: 11 },
    ]);
  });

  test('as: "epochs" imports a Trainer-tagged logdir as epochs, step = epoch, as before steps', async () => {
    const { app, data } = setup();
    mkdirSync(join(data, "hf", "run"), { recursive: true });
    const events = [
      fileVersionEvent(0),
      scalarEvent(1, 10, [["train/loss", 0.5]]),
      scalarEvent(2, 20, [["train/loss", 0.25]]),
    ];
    writeFileSync(join(data, "hf", "run", "events.out.tfevents.1.x.1"), Buffer.concat(events.map(frameRecord)));
    const asSteps = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "hf" })));
    expect(asSteps.body.data.runs[0]).toMatchObject({ as: "steps", steps: 2, epochs: 0 });
    const asEpochs = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "hf", as: "epochs" })));
    expect(asEpochs.body.data.runs[0]).toMatchObject({ as: "epochs", steps: 0, epochs: 2 });
    const op = asEpochs.body.data.runs[0].operation_id;
    const epochs = (await json(app.handle(req("GET", `/api/v1/operations/${op}/metrics`)))).body.data.metrics.epochs;
    expect(epochs.map((e: { epoch: number }) => e.epoch)).toEqual([10, 20]);
    const bad = await json(app.handle(req("POST", "/api/v1/imports/tensorboard", { logdir: "hf", as: "batches" })));
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe("body.as");
  });

  test("the live mirror writes a step run's steps as they are stored, and not the epochs derived from them", async () => {
    const { app, operations } = setup();
    const dir = temp("mirror");
    const mirror = new TensorboardMirror(operations, dir, () => Date.UTC(2026, 0, 1));
    mirror.start();
    const id = await stepRun(app, "live", RUN.slice(0, 6));
    await mirror.settled();
    const file = mirror.fileOf(id)!;
    expect([...new Set(pointsOf(readFileSync(file)).map((p) => Number(p.step)))]).toEqual([0, 1, 2, 3, 4, 5]);
    // Epoch 0 closed with step 4 (its derived record was stored), yet no epoch-level tag is in the file.
    const epochs = (await json(app.handle(req("GET", `/api/v1/operations/${id}/metrics`)))).body.data.metrics.epochs;
    expect(epochs.map((e: { epoch: number }) => e.epoch)).toEqual([0]);
    await app.handle(req("POST", `/api/v1/operations/${id}/steps`, { steps: RUN.slice(6) }));
    await mirror.settled();
    const points = pointsOf(readFileSync(file));
    expect([...new Set(points.map((p) => Number(p.step)))]).toEqual(RUN.map((s) => s.step));
    expect(new Set(points.map((p) => p.tag))).toEqual(
      new Set(["train/epoch", "train/loss", "train/learning_rate", "train/grad_norm", "eval/loss"]),
    );
    expect(points.find((p) => p.tag === "train/grad_norm" && p.step === 6n)!.value).toBe(Number.POSITIVE_INFINITY);
    await mirror.stop();
  });
});
