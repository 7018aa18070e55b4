// The operation page's live feed: GET /operations/{id}/metrics/stream from an epoch on, each event handed to the
// page's handler of its type. Liveness arrives here too: heartbeats and batch progress come as `status` events (at
// most one a second; the API's watchdog sends one when a host training turns stale), so the page never polls.

import { openStream } from "../../lib/api.js";
import { live } from "../../lib/format.js";
import { setConn } from "../../lib/widgets.js";

/**
 * Follows the operation at `path` from after epoch `since` (-1: from the start): `on.epoch`, `on.steps`, `on.trends`,
 * `on.status`, `on.end` and `on.error` each get their event's data; an event of another type, and every event once
 * `alive()` is false, is dropped. Returns the stream (close() ends it) and `joined`, which resolves once the server
 * answered it: every write after that arrives as an event (steps are not replayed, so a step view is read after it).
 */
export function followOperation(path, since, alive, on) {
  let join;
  const joined = new Promise((resolve) => (join = resolve));
  const stream = openStream(`${path}/metrics/stream?since_epoch=${since}`, {
    onState(s) {
      setConn(s);
      if (s !== "reconnecting") join();
    },
    onEvent(type, data) {
      if (alive() && Object.hasOwn(on, type)) on[type](data);
    },
  });
  return { close: () => stream.close(), joined };
}

/** A stored epoch is the trainer heard from, as the server records it: a live operation is heard `now`, not stale, not hung. */
export const heardFrom = (op, now) => (op && live(op) ? { ...op, last_seen_at: now, stale: false, hung: false } : op);
