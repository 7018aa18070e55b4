/**
 * A script's log as Server-Sent Events: the last `tail` lines, then each new batch of lines as the script prints
 * them, then `end` when the run is over (at once for a finished run). The replay and the subscription happen in one
 * synchronous block (the log writes and announces synchronously), so no line is lost or sent twice between them.
 * Served by the API for local runs and by the GPU host for its own (the API relays the host's stream). A log that can
 * only be polled (a Slurm job's output file, LogFeed) goes out as the same events (feedEventStream).
 */
import { RETRY_MS, sseEvent } from "../http/sse.ts";
import type { LogStore } from "./logs.ts";
import type { LogFeed } from "../executors/executor.ts";

/** A reader this far behind is cut off rather than buffered without bound; it can reconnect with a tail. */
const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;

/** A stream's sending end: `send` encodes, cutting off a reader MAX_BACKLOG_BYTES behind; `close` once, after `stop`. */
function sender(c: ReadableStreamDefaultController<Uint8Array>, stop: () => void) {
  const encoder = new TextEncoder();
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    stop();
    try {
      c.close();
    } catch {
      // closed by the reader already
    }
  };
  const send = (text: string) => {
    if (!open) return;
    c.enqueue(encoder.encode(text));
    if ((c.desiredSize ?? 0) < -MAX_BACKLOG_BYTES) close();
  };
  return { send, close, isOpen: () => open };
}

export function logEventStream(
  logs: LogStore,
  operationId: string,
  tail: number,
  heartbeatMs = 15_000,
): ReadableStream<Uint8Array> {
  let stop = () => {};
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
        const { send, close } = sender(c, () => stop());
        const { lines } = logs.tail(operationId, tail);
        send(`retry: ${RETRY_MS}\n\n${sseEvent("lines", { lines })}`);
        const live = logs.live(operationId);
        if (!live) {
          send(sseEvent("end", { running: false }));
          return close();
        }
        const unsubscribe = live.subscribe(
          (batch) => send(sseEvent("lines", { lines: batch })),
          () => {
            send(sseEvent("end", { running: false }));
            close();
          },
        );
        const beat = setInterval(() => send(": heartbeat\n\n"), heartbeatMs);
        (beat as { unref?: () => void }).unref?.();
        stop = () => {
          unsubscribe();
          clearInterval(beat);
        };
      },
      cancel() {
        stop();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
  );
}

/**
 * A followed log (LogFeed: a Slurm job's output file) as the same events: its last lines, then what each poll every
 * `everyMs` (default 500 ms) finds, then `end` when the feed says the run is over. One poll at a time; a failed read
 * is logged with the operation id and sent as an `error` event (generic: no path, no cause) before the stream ends
 * (the reader can reconnect). `signal`: the client went away.
 */
export function feedEventStream(
  feed: LogFeed,
  signal?: AbortSignal,
  everyMs = 500,
  heartbeatMs = 15_000,
): ReadableStream<Uint8Array> {
  let stop = () => {};
  return new ReadableStream<Uint8Array>({
    start(c) {
      const { send, close, isOpen } = sender(c, () => stop());
      send(`retry: ${RETRY_MS}\n\n${sseEvent("lines", { lines: feed.lines })}`);
      let polling = false;
      const poll = setInterval(() => {
        if (polling || !isOpen()) return;
        polling = true;
        feed
          .next()
          .then((lines) => {
            if (lines === null) {
              send(sseEvent("end", { running: false }));
              return close();
            }
            if (lines.length) send(sseEvent("lines", { lines }));
          })
          .catch((err) => {
            // Logged with its cause; the reader hears that the log failed (no path or internals), then the stream ends.
            console.error(`[logs] operation ${feed.operation_id}: reading its log failed:`, err);
            send(
              sseEvent("error", {
                code: "INTERNAL_ERROR",
                message: `reading the log of operation ${feed.operation_id} failed; the server log has the details`,
              }),
            );
            close();
          })
          .finally(() => (polling = false));
      }, everyMs);
      const beat = setInterval(() => send(": heartbeat\n\n"), heartbeatMs);
      (beat as { unref?: () => void }).unref?.();
      signal?.addEventListener("abort", close);
      stop = () => {
        clearInterval(poll);
        clearInterval(beat);
        signal?.removeEventListener("abort", close);
      };
    },
    cancel() {
      stop();
    },
  });
}

/** The events of a log stream, for the OpenAPI document. */
export const LOG_STREAM_DOC =
  "Server-Sent Events: a `lines` event with the last `tail` lines (default 200), then a `lines` event for each batch the script prints, live; `: heartbeat` comments every 15 s; `end` when the script's processes are gone (at once for a finished run), and the stream closes. A log that cannot be read on sends an `error` event (`{code, message}`) and closes.";
