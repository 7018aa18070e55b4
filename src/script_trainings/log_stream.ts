/**
 * A script's log as Server-Sent Events: the last `tail` lines, then each new batch of lines as the script prints
 * them, then `end` when the run is over (at once for a finished run). The replay and the subscription happen in one
 * synchronous block (the log writes and announces synchronously), so no line is lost or sent twice between them.
 * Served by the API for local runs and by the GPU host for its own (the API relays the host's stream).
 */
import { RETRY_MS, sseEvent } from "../http/sse.ts";
import type { LogStore } from "./logs.ts";

/** A reader this far behind is cut off rather than buffered without bound; it can reconnect with a tail. */
const MAX_BACKLOG_BYTES = 8 * 1024 * 1024;

export function logEventStream(
  logs: LogStore,
  operationId: string,
  tail: number,
  heartbeatMs = 15_000,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let stop = () => {};
  return new ReadableStream<Uint8Array>(
    {
      start(c) {
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

/** The events of a log stream, for the OpenAPI document. */
export const LOG_STREAM_DOC =
  "Server-Sent Events: a `lines` event with the last `tail` lines (default 200), then a `lines` event for each batch the script prints, live; `: heartbeat` comments every 15 s; `end` when the script's processes are gone (at once for a finished run), and the stream closes.";
