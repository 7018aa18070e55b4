/**
 * A ustar archive writer (POSIX.1-1988), pure: regular files only, in memory. Each file is a 512-byte header, its bytes
 * padded to a 512-byte boundary; two zero blocks end the archive. Enough for a checkpoint download, no dependency.
 */

const BLOCK = 512;
const encoder = new TextEncoder();

export interface TarEntry {
  /** Up to 100 bytes of UTF-8 (no prefix field is used). */
  name: string;
  data: Uint8Array;
  /** Seconds since the epoch (default 0). */
  mtime?: number;
}

/** Writes `value` as a NUL-terminated octal field of `width` bytes at `offset`. */
function octal(header: Uint8Array, offset: number, width: number, value: number): void {
  const digits = Math.floor(value)
    .toString(8)
    .padStart(width - 1, "0");
  if (digits.length > width - 1) throw new RangeError(`tar: ${value} does not fit in a ${width}-byte field`);
  header.set(encoder.encode(digits), offset);
  header[offset + width - 1] = 0;
}

function header(entry: TarEntry): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const name = encoder.encode(entry.name);
  if (name.length === 0 || name.length > 100)
    throw new RangeError(`tar: file name must be 1–100 bytes, got ${name.length}`);
  h.set(name, 0);
  octal(h, 100, 8, 0o644); // mode
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, entry.data.length);
  octal(h, 136, 12, entry.mtime ?? 0);
  h[156] = "0".charCodeAt(0); // typeflag: regular file
  h.set(encoder.encode("ustar\0"), 257); // magic
  h.set(encoder.encode("00"), 263); // version
  // The checksum is computed with its own field as eight spaces, then written as six octal digits, NUL, space.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.set(encoder.encode(sum.toString(8).padStart(6, "0")), 148);
  h[154] = 0;
  h[155] = 0x20;
  return h;
}

/** The archive of `entries`, in order. */
export function tar(entries: readonly TarEntry[]): Uint8Array {
  const size = entries.reduce((n, e) => n + BLOCK + Math.ceil(e.data.length / BLOCK) * BLOCK, 2 * BLOCK);
  const out = new Uint8Array(size);
  let at = 0;
  for (const e of entries) {
    out.set(header(e), at);
    at += BLOCK;
    out.set(e.data, at);
    at += Math.ceil(e.data.length / BLOCK) * BLOCK;
  }
  return out;
}

/** Reads back an archive `tar()` wrote (regular files only): for tests and clients that unpack a download. */
export function untar(archive: Uint8Array): TarEntry[] {
  const decoder = new TextDecoder();
  const out: TarEntry[] = [];
  for (let at = 0; at + BLOCK <= archive.length; ) {
    const h = archive.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    const field = (o: number, w: number) => decoder.decode(h.subarray(o, o + w)).replace(/\0.*$/s, "");
    const size = parseInt(field(124, 12).trim() || "0", 8);
    const mtime = parseInt(field(136, 12).trim() || "0", 8);
    at += BLOCK;
    out.push({ name: field(0, 100), data: archive.slice(at, at + size), mtime });
    at += Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}
