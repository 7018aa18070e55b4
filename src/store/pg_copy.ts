/**
 * A batch's rows in the two forms the PostgreSQL store sends them (src/store/write_epochs.ts builds the rows):
 * - copyBinary: COPY's binary format, for appends: int8, float8 (NaN and ±Infinity included) and int4 as the server
 *   keeps them, big-endian, and the custom column's JSON as UTF-8;
 * - recordsetJson: one parameter for json_to_recordset, for upserts: ten columns of a thousand rows in one value, which
 *   PostgreSQL parses in one pass (a multi-row VALUES would need 10,000 parameters, and 10,000 epochs overflow the
 *   65,535 limit). Non-finite values travel as "NaN"/"Infinity"/"-Infinity", which float8 reads back as the same numbers.
 * An unusable timestamp (NaN ms) goes as NULL either way, and the NOT NULL column refuses the whole batch.
 */
import { encodeMetric } from "../schemas/epoch.ts";
import type { BatchRow } from "./write_epochs.ts";

const encoder = new TextEncoder();
/** COPY's binary format starts with this signature, then a 32-bit flags field and a 32-bit header extension length. */
const COPY_SIGNATURE = new Uint8Array([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]);

/**
 * `rows` of operation `op` (its int8 id, as a string) in COPY's binary format, in the column order
 * (op, ts, train_loss, val_loss, train_accuracy, val_accuracy, learning_rate, duration, epoch, custom).
 */
export function copyBinary(rows: readonly BatchRow[], op: string): Uint8Array {
  const customs = rows.map(({ custom }) => (custom === null ? null : encoder.encode(custom)));
  let size = 11 + 4 + 4 + 2;
  for (const c of customs) size += 110 + (c?.length ?? 0);
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  buf.set(COPY_SIGNATURE, 0);
  let at = 19; // signature, flags, header extension: zeros
  const opId = BigInt(op);
  const f8 = (x: number | null | undefined) => {
    if (x === null || x === undefined) v.setInt32(at, -1), (at += 4);
    else v.setInt32(at, 8), v.setFloat64(at + 4, x), (at += 12);
  };
  for (let i = 0; i < rows.length; i++) {
    const { e, ts } = rows[i]!;
    v.setInt16(at, 10);
    v.setInt32(at + 2, 8);
    v.setBigInt64(at + 6, opId);
    at += 14;
    // An int8 from a number without a BigInt per row: ms timestamps are integers far below 2^53.
    if (Number.isFinite(ts)) {
      const hi = Math.floor(ts / 2 ** 32);
      v.setInt32(at, 8), v.setInt32(at + 4, hi), v.setUint32(at + 8, ts - hi * 2 ** 32), (at += 12);
    } else v.setInt32(at, -1), (at += 4);
    f8(e.train_loss);
    f8(e.val_loss);
    f8(e.train_accuracy);
    f8(e.val_accuracy);
    f8(e.learning_rate);
    f8(e.duration);
    v.setInt32(at, 4);
    v.setInt32(at + 4, e.epoch);
    at += 8;
    const c = customs[i];
    if (c === null || c === undefined) v.setInt32(at, -1), (at += 4);
    else v.setInt32(at, c.length), buf.set(c, at + 4), (at += 4 + c.length);
  }
  v.setInt16(at, -1);
  return buf.subarray(0, at + 2);
}

/** `rows` as one JSON array for json_to_recordset: e, tl, vl, ta, va, lr, du, ts, c. */
export function recordsetJson(rows: readonly BatchRow[]): string {
  return JSON.stringify(
    rows.map(({ e, ts, custom }) => ({
      e: e.epoch,
      tl: encodeMetric(e.train_loss) ?? null,
      vl: encodeMetric(e.val_loss) ?? null,
      ta: encodeMetric(e.train_accuracy) ?? null,
      va: encodeMetric(e.val_accuracy) ?? null,
      lr: encodeMetric(e.learning_rate) ?? null,
      du: encodeMetric(e.duration) ?? null,
      ts,
      c: custom,
    })),
  );
}
