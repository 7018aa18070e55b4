// The TensorBoard codec, pure: TFRecord framing and its CRC32C against bytes TensorBoard's own Python writer produced
// (tensorboard 2.21's RecordWriter and event_pb2), the Event/Summary encoder and decoder (both scalar encodings, what
// is skipped), a truncated tail, a damaged record, and the tag mapping and run grouping of the import.
import { describe, expect, test } from "bun:test";
import {
  CorruptRecordError,
  frameRecord,
  maskCrc,
  maskedCrc32c,
  nextRecordOffset,
  readRecords,
} from "../src/tensorboard/tfrecord.ts";
import {
  FILE_VERSION,
  MalformedEventError,
  decodeEvent,
  fileVersionEvent,
  scalarEvent,
} from "../src/tensorboard/events.ts";
import {
  assembleEpochs,
  decodeEvents,
  defaultField,
  epochScalars,
  eventFile,
  eventScalars,
  groupRuns,
  type ScalarPoint,
} from "../src/tensorboard/metrics.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => Number.parseInt(b, 16)));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/**
 * Written by TensorBoard's RecordWriter: Event(wall_time=1700000000.0, file_version="brain.Event:2"), then
 * Event(wall_time=1700000000.5, step=3, summary={train_loss: 0.25, val_loss: NaN}).
 */
const PYTHON_FILE = hex(
  "1800000000000000a37f4b220900000040fc54d9411a0d627261696e2e4576656e743a32eced8f9d" +
    "31000000000000009d8383e90900002040fc54d94110032a240a110a0a747261696e5f6c6f7373150000803e0a0f0a0876616c5f6c6f7373150000c07fe857538f",
);

/**
 * Also TensorBoard's: TF2 tensor summaries and what is not a scalar. file_version; epoch_loss (plugin scalars, DT_FLOAT
 * float_val 0.5, step 0); epoch_loss again without metadata (tensor_content float32 0.25, step 1); lr (scalars,
 * DT_DOUBLE double_val 0.001, step 1); lr without metadata (tensor_content float64 +Infinity, step 2); weights (plugin
 * histograms, a 2×3 tensor, step 2); weights again without metadata, a float scalar (step 3: still a histogram's tag);
 * an image (step 3); a graph_def.
 */
const TF2_FILE = hex(
  "1800000000000000a37f4b220900000000000024401a0d627261696e2e4576656e743a3218f632a7" +
    "34000000000000005e33175c0900000000000026402a290a270a0a65706f63685f6c6f7373420a080112002a040000003f4a0d0a090a077363616c6172732001fcb57b6a" +
    "2700000000000000bbe1b14609000000000000284010012a1a0a180a0a65706f63685f6c6f7373420a0801120022040000803e83b20945" +
    "3200000000000000241956ec09000000000000294010012a250a230a026c72420e080212003208fca9f1d24d62503f4a0d0a090a077363616c6172732001d7f73303" +
    "2300000000000000b09f7743090000000000002a4010022a160a140a026c72420e080212002208000000000000f07f4e601639" +
    "6800000000000000fe9c7ad4090000000000002b4010022a5b0a590a0777656967687473423e0802120812020802120208033230000000000000f03f000000000000004000000000000008400000000000001040000000000000144000000000000018404a0e0a0c0a0a686973746f6772616d736a0dbfb5" +
    "2400000000000000422b804d090000000000002c4010032a170a150a0777656967687473420a080112002a04000010417083b8ea" +
    "220000000000000078113dfd090000000000002d4010032a150a130a03696d67220c080110011801220489504e4761a41eb1" +
    "0d000000000000003c37b834090000000000002e4022020a007c3d853d",
);

describe("TFRecord framing", () => {
  test("the masked CRC32C matches TensorBoard's (Castagnoli, not IEEE)", () => {
    // TensorBoard's masked_crc32c(b"123456789") and of b"": CRC32C's check value 0xE3069283, masked.
    expect(maskedCrc32c(new TextEncoder().encode("123456789"))).toBe(0xc78ab0e5);
    expect(maskedCrc32c(new Uint8Array())).toBe(0xa282ead8);
    expect(maskCrc(0xe3069283)).toBe(0xc78ab0e5);
    // IEEE CRC-32 of the same bytes is 0xCBF43926: had the wrong polynomial been used, this would differ.
    expect(maskCrc(0xcbf43926)).not.toBe(0xc78ab0e5);
  });

  test("framing the records of TensorBoard's file gives its bytes exactly", () => {
    const { records, truncated } = readRecords(PYTHON_FILE);
    expect(truncated).toBeNull();
    expect(records.map((r) => r.offset)).toEqual([0, 40]);
    const again = new Uint8Array([...frameRecord(records[0]!.data), ...frameRecord(records[1]!.data)]);
    expect(toHex(again)).toBe(toHex(PYTHON_FILE));
  });

  test("the encoder writes TensorBoard's bytes for the same events", () => {
    const ours = new Uint8Array([
      ...frameRecord(fileVersionEvent(1700000000)),
      ...frameRecord(
        scalarEvent(1700000000.5, 3, [
          ["train_loss", 0.25],
          ["val_loss", Number.NaN],
        ]),
      ),
    ]);
    expect(toHex(ours)).toBe(toHex(PYTHON_FILE));
  });

  test("a record cut short at the end is reported as truncated, with what came before intact", () => {
    for (const cut of [1, 4, 11, 12, 13, 30, PYTHON_FILE.length - 40 - 1]) {
      const scan = readRecords(PYTHON_FILE.subarray(0, 40 + cut));
      expect(scan.records).toHaveLength(1);
      expect(scan.truncated).toEqual({ offset: 40, bytes: cut });
    }
    expect(readRecords(new Uint8Array())).toEqual({ records: [], truncated: null });
  });

  test("a flipped byte in a record's data or length is a CorruptRecordError naming the record's offset", () => {
    const data = PYTHON_FILE.slice();
    data[40 + 12 + 5]! ^= 0x01;
    expect(() => readRecords(data)).toThrow(CorruptRecordError);
    try {
      readRecords(data);
    } catch (err) {
      expect((err as CorruptRecordError).offset).toBe(40);
      expect((err as CorruptRecordError).what).toBe("data");
      expect((err as Error).message).toContain("byte offset 40");
    }
    const len = PYTHON_FILE.slice();
    len[1]! ^= 0x01;
    expect(() => readRecords(len)).toThrow(/length checksum of the record at byte offset 0/);
  });

  test("records can be counted from their headers alone", () => {
    expect(nextRecordOffset(PYTHON_FILE.subarray(0, 8), 0)).toBe(40);
    expect(nextRecordOffset(PYTHON_FILE.subarray(40, 48), 40)).toBe(PYTHON_FILE.length);
  });
});

describe("Event messages", () => {
  test("TensorBoard's simple_value events decode to their values, NaN included", () => {
    const [version, scalars] = decodeEvents(readRecords(PYTHON_FILE).records);
    expect(version).toMatchObject({ kind: "file_version", fileVersion: FILE_VERSION, wallTime: 1700000000 });
    expect(scalars!.kind).toBe("summary");
    expect(scalars!.step).toBe(3n);
    expect(scalars!.wallTime).toBe(1700000000.5);
    expect(scalars!.values).toEqual([
      { tag: "train_loss", kind: "simple", value: 0.25 },
      { tag: "val_loss", kind: "simple", value: Number.NaN },
    ]);
  });

  test("values round-trip as float32: ±Infinity and NaN stay, a finite value past float32 becomes Infinity", () => {
    const values: [string, number][] = [
      ["a", 0.1],
      ["b", Number.POSITIVE_INFINITY],
      ["c", Number.NEGATIVE_INFINITY],
      ["d", Number.NaN],
      ["e", 1e300],
      ["f", -0],
      ["unicode/µ", 3],
    ];
    const e = decodeEvent(scalarEvent(12.25, 2 ** 31 - 1, values));
    expect(e.step).toBe(BigInt(2 ** 31 - 1));
    expect(e.values.map((v) => [v.tag, v.kind === "simple" ? v.value : null])).toEqual([
      ["a", Math.fround(0.1)],
      ["b", Number.POSITIVE_INFINITY],
      ["c", Number.NEGATIVE_INFINITY],
      ["d", Number.NaN],
      ["e", Number.POSITIVE_INFINITY],
      ["f", -0],
      ["unicode/µ", 3],
    ]);
  });

  test("TF2 tensor summaries decode in all three layouts; histograms, images and graphs are told apart", () => {
    const events = decodeEvents(readRecords(TF2_FILE).records);
    expect(events.map((e) => e.kind)).toEqual([
      "file_version",
      "summary",
      "summary",
      "summary",
      "summary",
      "summary",
      "summary",
      "summary",
      "other",
    ]);
    expect(events[1]!.values).toEqual([
      { tag: "epoch_loss", kind: "tensor", value: 0.5, plugin: "scalars", scalar: true },
    ]);
    expect(events[2]!.values).toEqual([
      { tag: "epoch_loss", kind: "tensor", value: 0.25, plugin: null, scalar: false },
    ]);
    expect(events[3]!.values[0]).toMatchObject({ tag: "lr", value: 0.001, plugin: "scalars" });
    expect(events[4]!.values[0]).toMatchObject({ tag: "lr", value: Number.POSITIVE_INFINITY, plugin: null });
    expect(events[5]!.values[0]).toMatchObject({ tag: "weights", kind: "tensor", value: null, plugin: "histograms" });
    expect(events[7]!.values[0]).toEqual({ tag: "img", kind: "other", plugin: null });
  });

  test("the opening event of TensorBoard's own writer, file_version with source_metadata, is a file_version event", () => {
    // Event(wall_time=5, file_version="brain.Event:2", source_metadata={writer: "pytorch"}), as event_pb2 serialises it.
    const e = decodeEvent(hex("0900000000000014401a0d627261696e2e4576656e743a3252090a077079746f726368"));
    expect(e).toMatchObject({ kind: "file_version", fileVersion: FILE_VERSION, wallTime: 5 });
    expect(eventScalars([e], null, new Map()).skipped).toEqual({ events: 0, values: 0 });
  });

  test("bytes that are not an Event are a MalformedEventError", () => {
    expect(() => decodeEvent(hex("0a05616263"))).toThrow(MalformedEventError);
    expect(() => decodeEvent(hex("ff"))).toThrow(MalformedEventError);
  });
});

describe("scalars out of a file", () => {
  test("a tag's plugin, declared on its first value only, decides its later values; the rest is counted as skipped", () => {
    const plugins = new Map<string, boolean>();
    const { points, skipped } = eventScalars(decodeEvents(readRecords(TF2_FILE).records), null, plugins);
    expect(points.map((p) => [p.tag, Number(p.step), p.value, p.wallTime])).toEqual([
      ["epoch_loss", 0, 0.5, 11],
      ["epoch_loss", 1, 0.25, 12],
      ["lr", 1, 0.001, 12.5],
      ["lr", 2, Number.POSITIVE_INFINITY, 13],
    ]);
    // The two histogram events, the image and the graph.
    expect(skipped).toEqual({ events: 4, values: 0 });
  });
});

describe("epochs out of scalars", () => {
  const point = (
    tag: string,
    step: number,
    value: number,
    wallTime = 100 + step,
    role: ScalarPoint["role"] = null,
  ) => ({
    tag,
    role,
    step: BigInt(step),
    wallTime,
    value,
  });

  test("standard names map to the standard fields; other tags become custom metrics; step = epoch", () => {
    const { epochs, tags } = assembleEpochs([
      point("loss", 0, 1.5),
      point("val_loss", 0, 1.7),
      point("Accuracy/train", 0, 0.4),
      point("lr", 0, 0.01),
      point("grad norm", 0, Number.NaN),
      point("loss", 1, 1.2, 200.123),
    ]);
    expect(tags).toEqual({
      loss: "train_loss",
      val_loss: "val_loss",
      "Accuracy/train": "train_accuracy",
      lr: "learning_rate",
      "grad norm": "grad_norm",
    });
    expect(epochs).toEqual([
      {
        epoch: 0,
        timestamp: new Date(100_000).toISOString(),
        timestamp_ms: 100_000,
        train_loss: 1.5,
        val_loss: 1.7,
        train_accuracy: 0.4,
        learning_rate: 0.01,
        custom: { grad_norm: Number.NaN },
      },
      { epoch: 1, timestamp: new Date(200_123).toISOString(), timestamp_ms: 200_123, train_loss: 1.2 },
    ]);
  });

  test("a tag map overrides the table, null skips a tag, and two tags for one field do not overwrite each other", () => {
    const { epochs, tags, skipped } = assembleEpochs(
      [point("loss", 0, 1), point("epoch_loss", 0, 2), point("noise", 0, 3), point("my_val", 0, 4)],
      { noise: null, my_val: "val_loss" },
    );
    expect(tags).toEqual({ my_val: "val_loss", noise: null, epoch_loss: "train_loss", loss: "loss" });
    expect(epochs[0]).toMatchObject({ val_loss: 4, train_loss: 2, custom: { loss: 1 } });
    expect(skipped).toEqual({ steps: 0, values: 1 });
  });

  test('a tag named "__proto__" is skipped, and reported as an own key', () => {
    const { epochs, tags } = assembleEpochs([point("__proto__", 0, 1), point("loss", 0, 2)]);
    expect(Object.hasOwn(tags, "__proto__")).toBe(true);
    expect(Object.getOwnPropertyDescriptor(tags, "__proto__")?.value).toBeNull();
    expect(epochs[0]).toEqual({
      epoch: 0,
      timestamp: new Date(100_000).toISOString(),
      timestamp_ms: 100_000,
      train_loss: 2,
    });
  });

  test("steps that are no epoch number and impossible durations are counted, not stored", () => {
    const { epochs, skipped } = assembleEpochs([
      point("loss", -1, 1),
      { ...point("loss", 0, 1), step: 2n ** 40n },
      point("duration", 3, -2),
      point("duration", 4, 2.5),
    ]);
    expect(epochs).toEqual([
      { epoch: 4, timestamp: new Date(104_000).toISOString(), timestamp_ms: 104_000, duration: 2.5 },
    ]);
    expect(skipped).toEqual({ steps: 2, values: 1 });
  });

  test("Keras's train/ and validation/ halves are one run: epoch_loss becomes train_loss and val_loss", () => {
    expect(groupRuns(["mnist/validation", "mnist/train", "other", "", "train"], "logs")).toEqual([
      {
        name: "logs",
        dirs: [
          { dir: "", role: null },
          { dir: "train", role: "train" },
        ],
      },
      {
        name: "mnist",
        dirs: [
          { dir: "mnist/train", role: "train" },
          { dir: "mnist/validation", role: "validation" },
        ],
      },
      { name: "other", dirs: [{ dir: "other", role: null }] },
    ]);
    const { epochs, tags } = assembleEpochs([
      point("epoch_loss", 0, 0.9, 1, "train"),
      point("epoch_accuracy", 0, 0.6, 1, "train"),
      point("epoch_learning_rate", 0, 0.001, 1, "train"),
      point("batch_loss", 37, 0.5, 1, "train"),
      point("epoch_loss", 0, 1.1, 2, "validation"),
      point("epoch_accuracy", 0, 0.5, 2, "validation"),
      point("epoch_auc", 0, 0.7, 2, "validation"),
      point("evaluation_loss_vs_iterations", 100, 1.1, 2, "validation"),
    ]);
    expect(tags).toEqual({
      "train/batch_loss": null,
      "train/epoch_accuracy": "train_accuracy",
      "train/epoch_learning_rate": "learning_rate",
      "train/epoch_loss": "train_loss",
      "validation/epoch_accuracy": "val_accuracy",
      "validation/epoch_auc": "val_auc",
      "validation/epoch_loss": "val_loss",
      "validation/evaluation_loss_vs_iterations": null,
    });
    expect(epochs).toEqual([
      {
        epoch: 0,
        timestamp: new Date(2000).toISOString(),
        timestamp_ms: 2000,
        train_loss: 0.9,
        train_accuracy: 0.6,
        learning_rate: 0.001,
        val_loss: 1.1,
        val_accuracy: 0.5,
        custom: { val_auc: 0.7 },
      },
    ]);
  });

  test("the default table, spelled out", () => {
    expect(defaultField("train_loss", null)).toBe("train_loss");
    expect(defaultField("Loss/val", null)).toBe("val_loss");
    expect(defaultField("validation_loss", null)).toBe("val_loss");
    expect(defaultField("epoch_val_loss", null)).toBe("val_loss");
    expect(defaultField("learning_rate", null)).toBe("learning_rate");
    expect(defaultField("epoch_learning_rate", null)).toBe("learning_rate");
    expect(defaultField("val_acc", null)).toBe("val_accuracy");
    expect(defaultField("epoch", null)).toBe("tb_epoch");
    expect(defaultField("__proto__", null)).toBeNull();
    expect(defaultField("x".repeat(80), null)).toBe("x".repeat(64));
  });
});

describe("epochs into an event file", () => {
  test("an exported file reads back to the same epochs: every metric, NaN and ±Infinity, step = epoch, wall time = timestamp", () => {
    const wire = [
      { epoch: 0, train_loss: 1.5, val_loss: "NaN" as const, timestamp: "2026-01-02T03:04:05.678Z" },
      {
        epoch: 7,
        train_loss: 0.5,
        train_accuracy: 0.75,
        learning_rate: 0.125,
        duration: 2,
        grad_norm: "Infinity" as const,
        "lr/head": "-Infinity" as const,
        timestamp: "2026-01-02T03:04:06.001Z",
      },
      { epoch: 8, timestamp: "2026-01-02T03:04:07.000Z" },
    ];
    expect(epochScalars(wire[1]!)).toEqual([
      ["train_loss", 0.5],
      ["train_accuracy", 0.75],
      ["learning_rate", 0.125],
      ["duration", 2],
      ["grad_norm", Number.POSITIVE_INFINITY],
      ["lr/head", Number.NEGATIVE_INFINITY],
    ]);
    const file = eventFile("2026-01-01T00:00:00.000Z", wire);
    const events = decodeEvents(readRecords(file).records);
    expect(events[0]).toMatchObject({
      kind: "file_version",
      fileVersion: FILE_VERSION,
      wallTime: Date.UTC(2026, 0, 1) / 1000,
    });
    // The epoch without metrics writes no event.
    expect(events).toHaveLength(3);
    const { points } = eventScalars(events, null, new Map());
    const { epochs } = assembleEpochs(points);
    expect(epochs).toEqual([
      {
        epoch: 0,
        timestamp: wire[0]!.timestamp,
        timestamp_ms: Date.parse(wire[0]!.timestamp),
        train_loss: 1.5,
        val_loss: Number.NaN,
      },
      {
        epoch: 7,
        timestamp: wire[1]!.timestamp,
        timestamp_ms: Date.parse(wire[1]!.timestamp),
        train_loss: 0.5,
        train_accuracy: 0.75,
        learning_rate: 0.125,
        duration: 2,
        custom: { grad_norm: Number.POSITIVE_INFINITY, "lr/head": Number.NEGATIVE_INFINITY },
      },
    ]);
  });
});
