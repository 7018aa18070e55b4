/**
 * A log file another machine writes (a Slurm job's output on a shared filesystem), read from its end: its last lines at
 * a bounded cost, and the lines added since, for a live stream that polls. Node's fs only: no watcher, since inotify
 * does not see writes made on another machine of a network filesystem.
 */
import { open, stat } from "node:fs/promises";

/** A read never takes more than this from the end of the file, however long the run. */
export const TAIL_BYTES = 1024 * 1024;

/**
 * The last `n` lines of a file, reading at most TAIL_BYTES from its end. `size` is where a follower goes on: before a
 * last line still being written, which `partial` (default true) counts as a line now, and a follower sends later.
 */
export async function tailFile(
  path: string,
  n: number,
  partial = true,
): Promise<{ lines: string[]; truncated: boolean; size: number }> {
  const size = (await stat(path)).size;
  const start = Math.max(0, size - TAIL_BYTES);
  const bytes = await readRange(path, start, size);
  // Split at the last newline in bytes: what follows is a line still being written (perhaps mid-character), which a
  // follower sends once it is whole.
  const cut = bytes.lastIndexOf(NEWLINE) + 1;
  let lines = cut > 0 ? new TextDecoder().decode(bytes.subarray(0, cut - 1)).split("\n") : [];
  const last = bytes.subarray(cut);
  if (partial && last.length > 0) lines.push(new TextDecoder().decode(last));
  // A read that began mid-file: its first line is partial.
  if (start > 0) lines = lines.slice(1);
  const truncated = start > 0 || lines.length > n;
  return { lines: lines.slice(-n), truncated, size: partial ? size : start + cut };
}

const NEWLINE = 0x0a;

/**
 * Follows a file from `offset`: each `read` returns the whole lines added since (a partial last line waits). Bytes are
 * decoded as a stream, so a character split between two reads (a tqdm bar's block characters) arrives whole.
 */
export class FileFollower {
  private partial = "";
  private decoder = new TextDecoder();

  constructor(
    private readonly path: string,
    private offset: number,
  ) {}

  /**
   * The new whole lines (at most TAIL_BYTES a read; none while the file does not exist yet); `flush` (the writer is
   * done): the partial last line too, once the file is read to its end. A partial line longer than TAIL_BYTES (no
   * newline in a whole read) is sent as it is, so the follower always moves on.
   */
  async read(flush = false): Promise<string[]> {
    const size = await stat(this.path).then(
      (st) => st.size,
      // Not there yet (a job that has not started writes nothing): nothing new.
      (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return this.offset;
        throw err;
      },
    );
    if (size < this.offset) {
      // Truncated or replaced: from its start, forgetting what was pending of the old content.
      this.offset = 0;
      this.partial = "";
      this.decoder = new TextDecoder();
    }
    const end = Math.min(size, this.offset + TAIL_BYTES);
    const atEnd = end === size;
    const text =
      this.partial +
      (end > this.offset
        ? this.decoder.decode(await readRange(this.path, this.offset, end), { stream: !atEnd || !flush })
        : "");
    this.offset = end;
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    if ((flush && atEnd && this.partial) || this.partial.length > TAIL_BYTES)
      lines.push(this.partial), (this.partial = "");
    return lines;
  }
}

async function readRange(path: string, start: number, end: number): Promise<Uint8Array> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(end - start);
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
