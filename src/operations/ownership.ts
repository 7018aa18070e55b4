/**
 * What in an operation's metadata belongs to the server: the keys Trainwatch writes itself, refused from every client
 * route, and where the operation runs (its location and host), which the stores keep as columns of their own so that
 * nothing deciding where to connect ever reads a client's blob. Pure: the routes and the stores call it.
 */
import { invalid } from "../errors.ts";

/**
 * Keys Trainwatch itself writes: where an operation runs and on which host (what the watchdog, the host relay and the
 * checkpoint and log routes read to decide whom to contact), what ran, how it ended, and its executor's own fields
 * (the operation's `executor`, `external_id`, `pending_reason`, `queue_position` columns: refused here too, so that no
 * metadata blob can pass for them). `session` is reserved for the host sessions a next issue records.
 */
export const OWN_METADATA_KEYS: readonly string[] = [
  "location",
  "host",
  "session",
  "executor",
  "external_id",
  "pending_reason",
  "queue_position",
  "kind",
  "recipe",
  "params",
  "spec",
  "pid",
  "command",
  "output",
  "exit",
  "cuda_visible_devices",
  "checkpoints",
  "cancel",
  "node",
];

/**
 * The own keys an external trainer registering itself (POST /operations) may still state, because there they describe
 * that trainer's own process and nothing on the server reads them: `pid` (the Python client sends its own).
 */
const REGISTRANT_KEYS: ReadonlySet<string> = new Set(["pid"]);

/**
 * Refuses client metadata holding a key Trainwatch writes: a 400 naming it (`${field}.${key}`). `registering`: the body
 * of POST /operations, which may carry REGISTRANT_KEYS.
 */
export function refuseOwnKeys(metadata: Record<string, unknown>, field: string, registering = false): void {
  const own = Object.keys(metadata).find(
    (k) => OWN_METADATA_KEYS.includes(k) && !(registering && REGISTRANT_KEYS.has(k)),
  );
  if (own !== undefined) throw invalid(`${field}.${own}`, "set by Trainwatch, not by a client");
}

/**
 * Where an operation runs: trained here, on a GPU host, by a client outside Trainwatch, imported (TensorBoard), or as
 * a job of a cluster's scheduler (Slurm: the node it runs on in metadata.node).
 */
export const LOCATIONS = ["local", "host", "external", "import", "cluster"] as const;
export type Location = (typeof LOCATIONS)[number];

/** The location and host columns of an operation, as the store keeps them. */
export interface Placement {
  /** Null for an operation created without one (a store test's); every route and trainer names one. */
  location: Location | null;
  /** The training host's URL, only for location "host" once the host took the session. */
  host: string | null;
}

/**
 * The placement server-written metadata states (a create's metadata, or a merge patch over the current placement).
 * A location that is no known one reads "external": it names nothing the server may contact.
 */
export function placementOf(
  metadata: Record<string, unknown>,
  current: Placement = { location: null, host: null },
): Placement {
  const location =
    "location" in metadata
      ? (LOCATIONS as readonly unknown[]).includes(metadata.location)
        ? (metadata.location as Location)
        : "external"
      : current.location;
  const host = "host" in metadata ? (typeof metadata.host === "string" ? metadata.host : null) : current.host;
  return { location, host: location === "host" ? host : null };
}

/** The operation's metadata with its placement columns over whatever its stored blob says about them. */
export function withPlacement(metadata: Record<string, unknown>, p: Placement): Record<string, unknown> {
  if (p.location === null) return metadata;
  const out: Record<string, unknown> = { ...metadata, location: p.location };
  if (p.host !== null) out.host = p.host;
  else delete out.host;
  return out;
}

/**
 * Whether an operation's cancel note (metadata.cancel, from its executor's cancel) says the stop is still owed: its
 * scheduler could not be told yet (down, or refusing), so the executor's poller retries it (Store.cancelsOwed).
 */
export function owesCancel(op: { metadata: Record<string, unknown> }): boolean {
  const note = op.metadata.cancel;
  return typeof note === "object" && note !== null && "owed" in note;
}
