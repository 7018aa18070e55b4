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
  const text = await readRange(path, start, size);
  let lines = text.split("\n");
  // What follows the last newline is a line still being written: a follower sends it once it is whole.
  const last = lines.pop() ?? "";
  if (partial && last) lines.push(last);
  // A read that began mid-file: its first line is partial.
  if (start > 0) lines = lines.slice(1);
  const truncated = start > 0 || lines.length > n;
  return { lines: lines.slice(-n), truncated, size: partial ? size : size - Buffer.byteLength(last) };
}

/** Follows a file from `offset`: each `read` returns the whole lines added since (a partial last line waits). */
export class FileFollower {
  private partial = "";

  constructor(
    private readonly path: string,
    private offset: number,
  ) {}

  /**
   * The new whole lines (at most TAIL_BYTES a read; none while the file does not exist yet); `flush`: the partial last
   * line too (the writer is done).
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
    if (size < this.offset) this.offset = 0; // truncated or replaced: from its start
    const end = Math.min(size, this.offset + TAIL_BYTES);
    const text = this.partial + (end > this.offset ? await readRange(this.path, this.offset, end) : "");
    this.offset = end;
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    if (flush && this.partial) lines.push(this.partial), (this.partial = "");
    return lines;
  }
}

async function readRange(path: string, start: number, end: number): Promise<string> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(end - start);
    await fh.read(buf, 0, buf.length, start);
    return buf.toString("utf8");
  } finally {
    await fh.close();
  }
}
