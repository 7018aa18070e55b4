// The TensorBoard bridge end to end, with real processes: a server started with TRAINWATCH_TENSORBOARD_DIR mirrors
// the epochs a client posts into an event file as they are stored, and `bun run src/cli.ts import-tensorboard` imports
// a logdir through the API, printing the report (and failing with exit 1 and the file and offset on a damaged file).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TrainwatchClient } from "../src/client/api.ts";
import type { TensorboardImportReport } from "../src/schemas/tensorboard.ts";
import { fileVersionEvent, scalarEvent } from "../src/tensorboard/events.ts";
import { decodeEvents, eventScalars } from "../src/tensorboard/metrics.ts";
import { frameRecord, readRecords } from "../src/tensorboard/tfrecord.ts";
import { runBun, startServerProcess, tempDir, until, type ServerProcess } from "./helpers.ts";

const dir = tempDir("trainwatch-tb-e2e-");
const data = join(dir.dir, "data");
const tb = join(dir.dir, "tb");
let server: ServerProcess;
let client: TrainwatchClient;

beforeAll(async () => {
  mkdirSync(data, { recursive: true });
  server = await startServerProcess({ TRAINWATCH_DATA_DIR: data, TRAINWATCH_TENSORBOARD_DIR: tb });
  client = new TrainwatchClient({ baseUrl: server.url });
});
afterAll(async () => {
  await server?.stop();
  dir.cleanup();
});

const cli = (...args: string[]) =>
  runBun(["run", "src/cli.ts", ...args], { ...process.env, TRAINWATCH_URL: server.url, TRAINWATCH_TOKEN: "" });

describe("a server with TRAINWATCH_TENSORBOARD_DIR", () => {
  test("says where it mirrors, and every epoch a client posts reaches the run's event file", async () => {
    expect(server.output()).toContain(`tensorboard: mirroring every operation's epochs to ${tb}`);
    const op = await client.createOperation({ operation_type: "training", name: "e2e" });
    await client.postMetrics(op.operation_id, [{ epoch: 0, train_loss: 2, val_loss: "NaN" }]);
    const folder = join(tb, `e2e-${op.operation_id}`);
    // The mirror writes right after the store answers, from the write's event: poll for the file, never sleep.
    const file = await until("the event file", () => {
      try {
        const names = readdirSync(folder);
        return names.length === 1 && join(folder, names[0]!);
      } catch {
        return undefined;
      }
    });
    const read = () => eventScalars(decodeEvents(readRecords(readFileSync(file)).records), null, new Map()).points;
    await until("epoch 0 in the file", () => read().length === 2);
    await client.postMetrics(op.operation_id, [{ epoch: 1, train_loss: 1.5, val_loss: 1.75 }]);
    const points = await until("epoch 1 in the file", () => {
      const p = read();
      return p.length === 4 && p;
    });
    expect(points.map((p) => [Number(p.step), p.tag, p.value])).toEqual([
      [0, "train_loss", 2],
      [0, "val_loss", Number.NaN],
      [1, "train_loss", 1.5],
      [1, "val_loss", 1.75],
    ]);
  });
});

describe("bun run src/cli.ts import-tensorboard", () => {
  test("imports a logdir through the API and prints one line per run", async () => {
    mkdirSync(join(data, "logs", "run-a"), { recursive: true });
    writeFileSync(
      join(data, "logs", "run-a", "events.out.tfevents.1.cli.1"),
      Buffer.concat(
        [
          fileVersionEvent(1),
          scalarEvent(2, 0, [["loss", 1]]),
          scalarEvent(3, 1, [
            ["loss", 0.5],
            ["lr", 0.1],
          ]),
        ].map(frameRecord),
      ),
    );
    const { stdout, stderr, code } = await cli("import-tensorboard", "logs");
    expect({ code, stderr: stderr.includes("import-tensorboard:") ? stderr : "" }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toMatch(/^imported logs: 1 run\(s\), 2 epoch\(s\), 0 event\(s\) skipped \(import op_import_/);
    const id = /run-a\s+(op_training_\S+)\s+2 epochs from 3 records/.exec(stdout)?.[1];
    expect(id).toBeDefined();
    const epochs = (await client.getMetrics(id!)).metrics.epochs;
    expect(epochs.map((e) => [e.epoch, e.train_loss, e.learning_rate])).toEqual([
      [0, 1, undefined],
      [1, 0.5, Math.fround(0.1)],
    ]);
    const json = await cli("import-tensorboard", "logs", "--json", "--tag-map", '{"lr": null}');
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as TensorboardImportReport;
    expect(report.runs[0]!.tags).toEqual({ loss: "train_loss", lr: null });
  });

  test("a damaged file, a path out of the data directory and bad usage fail with a message", async () => {
    mkdirSync(join(data, "broken", "r"), { recursive: true });
    const bytes = Buffer.concat([fileVersionEvent(1), scalarEvent(2, 0, [["loss", 1]])].map(frameRecord));
    bytes[bytes.length - 6]! ^= 0xff;
    writeFileSync(join(data, "broken", "r", "events.out.tfevents.1.b.1"), bytes);
    const broken = await cli("import-tensorboard", "broken");
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain("r/events.out.tfevents.1.b.1: the data checksum of the record at byte offset 40");
    const out = await cli("import-tensorboard", "../..");
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("body.logdir");
    expect(out.stderr).toContain("outside the data directory");
    const usage = await cli("import-tensorboard");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("usage:");
  });
});
