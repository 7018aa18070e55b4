/** Server-Sent Events framing, shared by the API's streams (src/operations/fanout.ts) and the GPU host's log stream. */

/** One SSE event. `data` is JSON, which never contains a raw newline, so one `data:` line suffices. */
export function sseEvent(event: string, data: unknown, id?: number): string {
  return `${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Client-side reconnect delay we suggest (`retry:`), in ms. */
export const RETRY_MS = 2000;

/** Response headers of an event stream; `no-transform` and `x-accel-buffering` stop proxies from buffering it. */
export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};
