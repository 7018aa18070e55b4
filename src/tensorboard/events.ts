/**
 * TensorBoard's `Event` and `Summary` protobuf messages (tensorboard/compat/proto/event.proto, summary.proto,
 * tensor.proto), encoded and decoded with @bufbuild/protobuf's wire-level BinaryWriter and BinaryReader. Those two are
 * the maintained library's own varint, fixed-width and length-delimited codecs, used here without its code generator:
 * the handful of fields a scalar needs are written out below by number, so no .proto files, no generated code and no
 * build step enter the repository. Pure: bytes in, plain objects out.
 *
 * Written: the `file_version` event ("brain.Event:2") that opens a file, and one event per step whose summary holds one
 * `simple_value` (float32) per tag. Read: both scalar encodings, `simple_value` (TF1, PyTorch's SummaryWriter) and TF2's
 * tensor summaries (a DT_FLOAT or DT_DOUBLE scalar in `float_val`, `double_val` or `tensor_content`), plus enough of
 * every other value and event to count what was skipped.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** The version the first event of every file names; TensorBoard reads "brain.Event:1" and ":2" alike. */
export const FILE_VERSION = "brain.Event:2";

// Field numbers (event.proto, summary.proto, tensor.proto, tensor_shape.proto).
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5 } as const;
const WHAT_OTHER = new Set([4, 6, 7, 8, 9]);
const SUMMARY_VALUE = 1;
const VALUE = { tag: 1, simpleValue: 2, tensor: 8, metadata: 9 } as const;
const METADATA = { pluginData: 1, dataClass: 4 } as const;
const PLUGIN_NAME = 1;
const TENSOR = { dtype: 1, shape: 2, content: 4, floatVal: 5, doubleVal: 6 } as const;
const SHAPE_DIM = 2;
const DIM_SIZE = 1;
const DT_FLOAT = 1;
const DT_DOUBLE = 2;
/** SummaryMetadata.data_class DATA_CLASS_SCALAR. */
const DATA_CLASS_SCALAR = 1;

/** The first event of a file. */
export function fileVersionEvent(wallTime: number): Uint8Array {
  const w = new BinaryWriter();
  if (wallTime !== 0) w.tag(EVENT.wallTime, WireType.Bit64).double(wallTime);
  return w.tag(EVENT.fileVersion, WireType.LengthDelimited).string(FILE_VERSION).finish();
}

/**
 * One event at `step` whose summary holds one `simple_value` per [tag, value]. Values are float32, as simple_value is:
 * NaN and ±Infinity stay what they are, and a finite value beyond float32's range becomes ±Infinity. Fields at their
 * default (step 0, wall time 0) are left out, as protobuf's own writers do, so the bytes match PyTorch's SummaryWriter.
 */
export function scalarEvent(
  wallTime: number,
  step: number,
  values: readonly (readonly [string, number])[],
): Uint8Array {
  const w = new BinaryWriter();
  if (wallTime !== 0) w.tag(EVENT.wallTime, WireType.Bit64).double(wallTime);
  if (step !== 0) w.tag(EVENT.step, WireType.Varint).int64(step);
  w.tag(EVENT.summary, WireType.LengthDelimited).fork();
  for (const [tag, value] of values) {
    w.tag(SUMMARY_VALUE, WireType.LengthDelimited).fork();
    w.tag(VALUE.tag, WireType.LengthDelimited).string(tag);
    w.tag(VALUE.simpleValue, WireType.Bit32).float(Math.fround(value));
    w.join();
  }
  return w.join().finish();
}

/** What one summary value holds, as far as scalars go. */
export type SummaryValue =
  | { tag: string; kind: "simple"; value: number }
  /**
   * A tensor: `value` is its number when it is one DT_FLOAT or DT_DOUBLE element, else null. `plugin` and `scalar` come
   * from this value's metadata, which TF2 writes only on a tag's first value in a file.
   */
  | { tag: string; kind: "tensor"; value: number | null; plugin: string | null; scalar: boolean }
  /** An image, histogram, audio or empty value. */
  | { tag: string; kind: "other"; plugin: string | null };

export interface DecodedEvent {
  wallTime: number;
  /** int64 on the wire: kept as a bigint, since only some steps are epoch numbers. */
  step: bigint;
  /** Which of Event's `what` fields it carries: a graph, a session log, run metadata … are all "other". */
  kind: "file_version" | "summary" | "other" | "empty";
  fileVersion: string | null;
  values: SummaryValue[];
}

/** A record whose bytes are not an Event message. */
export class MalformedEventError extends Error {
  constructor(why: string) {
    super(`not a TensorBoard Event message (${why})`);
    this.name = "MalformedEventError";
  }
}

/** One record's data as an Event. Throws MalformedEventError when it is not one. */
export function decodeEvent(data: Uint8Array): DecodedEvent {
  try {
    return readEvent(new BinaryReader(data));
  } catch (err) {
    if (err instanceof MalformedEventError) throw err;
    throw new MalformedEventError(err instanceof Error ? err.message : String(err));
  }
}

function readEvent(r: BinaryReader): DecodedEvent {
  const event: DecodedEvent = { wallTime: 0, step: 0n, kind: "empty", fileVersion: null, values: [] };
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === EVENT.wallTime && type === WireType.Bit64) event.wallTime = r.double();
    else if (field === EVENT.step && type === WireType.Varint) event.step = BigInt(r.int64());
    else if (field === EVENT.fileVersion && type === WireType.LengthDelimited) {
      event.kind = "file_version";
      event.fileVersion = r.string();
    } else if (field === EVENT.summary && type === WireType.LengthDelimited) {
      event.kind = "summary";
      event.values.push(...readSummary(new BinaryReader(r.bytes())));
    } else {
      // The other `what`s: graph_def, log_message, session_log, tagged_run_metadata, meta_graph_def. (source_metadata,
      // 10, rides along with file_version in TensorBoard's own writer: it is no event of its own.)
      if (WHAT_OTHER.has(field) && event.kind === "empty") event.kind = "other";
      r.skip(type, field);
    }
  }
  return event;
}

function readSummary(r: BinaryReader): SummaryValue[] {
  const values: SummaryValue[] = [];
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === SUMMARY_VALUE && type === WireType.LengthDelimited)
      values.push(readValue(new BinaryReader(r.bytes())));
    else r.skip(type, field);
  }
  return values;
}

function readValue(r: BinaryReader): SummaryValue {
  let tag = "";
  let simple: number | null = null;
  let tensor: number | null | undefined;
  let plugin: string | null = null;
  let scalarClass = false;
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === VALUE.tag && type === WireType.LengthDelimited) tag = r.string();
    else if (field === VALUE.simpleValue && type === WireType.Bit32) simple = r.float();
    else if (field === VALUE.tensor && type === WireType.LengthDelimited)
      tensor = readScalarTensor(new BinaryReader(r.bytes()));
    else if (field === VALUE.metadata && type === WireType.LengthDelimited) {
      const m = readMetadata(new BinaryReader(r.bytes()));
      plugin = m.plugin;
      scalarClass = m.scalar;
    } else r.skip(type, field);
  }
  if (simple !== null) return { tag, kind: "simple", value: simple };
  if (tensor !== undefined) return { tag, kind: "tensor", value: tensor, plugin, scalar: scalarClass };
  return { tag, kind: "other", plugin };
}

function readMetadata(r: BinaryReader): { plugin: string | null; scalar: boolean } {
  let plugin: string | null = null;
  let scalar = false;
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === METADATA.pluginData && type === WireType.LengthDelimited) {
      const p = new BinaryReader(r.bytes());
      while (p.pos < p.len) {
        const [f, t] = p.tag();
        if (f === PLUGIN_NAME && t === WireType.LengthDelimited) plugin = p.string();
        else p.skip(t, f);
      }
    } else if (field === METADATA.dataClass && type === WireType.Varint) scalar = r.int32() === DATA_CLASS_SCALAR;
    else r.skip(type, field);
  }
  return { plugin, scalar };
}

/** A TensorProto's value when it holds exactly one DT_FLOAT or DT_DOUBLE element, else null. */
function readScalarTensor(r: BinaryReader): number | null {
  let dtype = 0;
  let elements = 1;
  let content: Uint8Array | null = null;
  const floats: number[] = [];
  const doubles: number[] = [];
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === TENSOR.dtype && type === WireType.Varint) dtype = r.int32();
    else if (field === TENSOR.shape && type === WireType.LengthDelimited) elements = shapeElements(r.bytes());
    else if (field === TENSOR.content && type === WireType.LengthDelimited) content = r.bytes();
    else if (field === TENSOR.floatVal) readRepeated(r, type, WireType.Bit32, 4, floats, () => r.float());
    else if (field === TENSOR.doubleVal) readRepeated(r, type, WireType.Bit64, 8, doubles, () => r.double());
    else r.skip(type, field);
  }
  if (elements !== 1) return null;
  if (dtype === DT_FLOAT) {
    if (floats.length > 0) return floats[0]!;
    if (content?.length === 4) return new DataView(content.buffer, content.byteOffset, 4).getFloat32(0, true);
  } else if (dtype === DT_DOUBLE) {
    if (doubles.length > 0) return doubles[0]!;
    if (content?.length === 8) return new DataView(content.buffer, content.byteOffset, 8).getFloat64(0, true);
  }
  return null;
}

/** A repeated float or double: packed (proto3's default) or one value per tag, as older writers did. */
function readRepeated(
  r: BinaryReader,
  type: WireType,
  single: WireType,
  width: 4 | 8,
  into: number[],
  one: () => number,
): void {
  if (type === single) {
    into.push(one());
    return;
  }
  if (type !== WireType.LengthDelimited) {
    r.skip(type);
    return;
  }
  const b = r.bytes();
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i + width <= b.length; i += width)
    into.push(width === 4 ? view.getFloat32(i, true) : view.getFloat64(i, true));
}

/** Elements of a TensorShapeProto: the product of its dims' sizes (1 for a scalar's empty shape). */
function shapeElements(bytes: Uint8Array): number {
  const r = new BinaryReader(bytes);
  let n = 1;
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field !== SHAPE_DIM || type !== WireType.LengthDelimited) {
      r.skip(type, field);
      continue;
    }
    const d = new BinaryReader(r.bytes());
    let size = 0;
    while (d.pos < d.len) {
      const [f, t] = d.tag();
      if (f === DIM_SIZE && t === WireType.Varint) size = Number(d.int64());
      else d.skip(t, f);
    }
    n *= size;
  }
  return n;
}
