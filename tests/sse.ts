// A minimal Server-Sent Events client for tests and the bench: parses a fetch/app.handle body into events, stamping each
// with the time it was read, and waits for conditions with a timeout.

export interface SseEvent {
  event: string;
  id: number | null;
  data: any;
  /** performance.now() when the event was parsed. */
  at: number;
}

export class SseReader {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  done = false;
  private buffer = "";
  private readonly decoder = new TextDecoder();
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private pending: ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]> | null = null;

  constructor(res: Response) {
    if (!res.body) throw new Error(`no body (status ${res.status})`);
    this.reader = res.body.getReader();
  }

  /** Epoch numbers of the `epoch` events so far. */
  epochs(): number[] {
    return this.events.filter((e) => e.event === "epoch").map((e) => e.data.epoch as number);
  }

  /** Reads until `pred()` holds or the stream ends; throws after `timeoutMs`. */
  async until(pred: () => boolean, timeoutMs = 30_000, what = "condition"): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!pred()) {
      if (this.done)
        throw new Error(
          `stream ended before ${what}; events: ${this.events.map((e) => e.event + (e.id ?? "")).join(" ")}`,
        );
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      this.pending ??= this.reader.read();
      const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), left));
      const res = await Promise.race([this.pending, timer]);
      if (res === "timeout") continue;
      this.pending = null;
      if (res.done) {
        this.done = true;
        continue;
      }
      this.feed(this.decoder.decode(res.value, { stream: true }));
    }
  }

  /** Waits for the server to close the stream. */
  async end(timeoutMs = 30_000): Promise<void> {
    await this.until(() => false, timeoutMs, "the end").catch((err: Error) => {
      if (!this.done) throw err;
    });
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }

  private feed(text: string): void {
    this.buffer += text;
    let cut: number;
    while ((cut = this.buffer.indexOf("\n\n")) >= 0) {
      const block = this.buffer.slice(0, cut);
      this.buffer = this.buffer.slice(cut + 2);
      let event = "message";
      let id: number | null = null;
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) this.comments.push(line.slice(1).trim());
        else if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("id: ")) id = Number(line.slice(4));
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) this.events.push({ event, id, data: JSON.parse(data.join("\n")), at: performance.now() });
    }
  }
}
