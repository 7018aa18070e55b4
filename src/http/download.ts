/**
 * A streamed download body: a ReadableStream that produces one chunk per pull, so a slow reader holds the producer back
 * (the page reads of src/store/pages.ts) instead of queueing the whole file, and a reader that goes away stops it.
 */
/** A response body read from `chunks` on demand: each pull takes the next chunk (strings as UTF-8). */
export function downloadStream(chunks: AsyncIterator<string | Uint8Array>): ReadableStream<Uint8Array> {
  const utf8 = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await chunks.next();
      if (done) controller.close();
      else controller.enqueue(typeof value === "string" ? utf8.encode(value) : value);
    },
    async cancel() {
      // The client went away: stop reading pages.
      await chunks.return?.(undefined);
    },
  });
}
