/**
 * TFRecord framing, the container of TensorBoard's event files: each record is
 * `uint64 length (LE) · uint32 masked CRC32C of those 8 bytes · data · uint32 masked CRC32C of the data`.
 * Pure: bytes in, bytes or records out. CRC32C (Castagnoli) comes from @aws-crypto/crc32c; zlib's and Bun's crc32
 * are the IEEE polynomial, which TensorBoard rejects.
 */
import { crc32c } from "@aws-crypto/crc32c";

/** Bytes before a record's data (length and its CRC) and after it (the data's CRC). */
export const HEADER_BYTES = 12;
export const FOOTER_BYTES = 4;

/** TFRecord's mask, so a CRC over data that holds CRCs stays strong: ((crc >>> 15) | (crc << 17)) + 0xa282ead8, mod 2³². */
export function maskCrc(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** The masked CRC32C of `data`, as TFRecord stores it. */
export const maskedCrc32c = (data: Uint8Array): number => maskCrc(crc32c(data));

/** One record, framed. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + data.length + FOOTER_BYTES);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, HEADER_BYTES);
  view.setUint32(HEADER_BYTES + data.length, maskedCrc32c(data), true);
  return out;
}

/** A record whose checksum does not match: the file is damaged at `offset` (the record's first byte). */
export class CorruptRecordError extends Error {
  constructor(
    readonly offset: number,
    readonly what: "length" | "data",
  ) {
    super(`the ${what} checksum of the record at byte offset ${offset} does not match (a damaged file)`);
    this.name = "CorruptRecordError";
  }
}

export interface RecordScan {
  /** Every complete record, in file order, with the offset of its first byte. */
  records: { offset: number; data: Uint8Array }[];
  /**
   * The last record was cut short (a writer still appending, or killed mid-write): where it starts and how many bytes
   * of it are there. Null when the bytes end on a record boundary.
   */
  truncated: { offset: number; bytes: number } | null;
}

/**
 * Splits a file's bytes into records, checking both CRCs of each. A record cut short at the end is reported as
 * `truncated`, not an error (the file is still being written); a checksum mismatch anywhere else throws
 * CorruptRecordError with the record's offset. Data are views into `bytes`, not copies.
 */
export function readRecords(bytes: Uint8Array): RecordScan {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: RecordScan["records"] = [];
  let at = 0;
  while (at < bytes.length) {
    const left = bytes.length - at;
    if (left < HEADER_BYTES) return { records, truncated: { offset: at, bytes: left } };
    if (view.getUint32(at + 8, true) !== maskedCrc32c(bytes.subarray(at, at + 8)))
      throw new CorruptRecordError(at, "length");
    const length = view.getBigUint64(at, true);
    if (length > BigInt(left - HEADER_BYTES - FOOTER_BYTES)) return { records, truncated: { offset: at, bytes: left } };
    const start = at + HEADER_BYTES;
    const end = start + Number(length);
    const data = bytes.subarray(start, end);
    if (view.getUint32(end, true) !== maskedCrc32c(data)) throw new CorruptRecordError(at, "data");
    records.push({ offset: at, data });
    at = end + FOOTER_BYTES;
  }
  return { records, truncated: null };
}

/**
 * The offset of the record after the one whose first 8 bytes (its length) are `lengthBytes` at `offset`: for counting
 * records by reading only their headers. Checks nothing.
 */
export function nextRecordOffset(lengthBytes: Uint8Array, offset: number): number {
  const length = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  return offset + HEADER_BYTES + Number(length) + FOOTER_BYTES;
}
