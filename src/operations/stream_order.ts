/**
 * The order of one operation stream's live events: each write once, in version order, with no gap. On PostgreSQL a
 * write is announced after its commit (src/store/pg_announce.ts), so notifications of one operation's writes, made on
 * two replicas, can arrive out of version order, and the one of a replica that died between its commit and its NOTIFY
 * never arrives. A stream starts from its replay's versions (what the replay holds is dropped), sends the write that
 * comes next, holds a later one until the writes before it arrive, and holds a finish (the stream's `end`) until the
 * writes it follows are out. What a stream still waits for is compared, at the relay's periodic version check, with
 * the versions the tables hold: a write the stream already waited for at the previous check is lost (or so late it
 * may as well be), and the stream must replay from the tables (it closes; its client reconnects with Last-Event-ID).
 * The last write of an operation that nothing follows is covered the same way: the check sees the tables ahead.
 * Pure: no I/O, no clock (the checks are its clock).
 */
import type { Versions } from "../store/store.ts";

/** The two numbered series of an operation's writes: WriteResult.version and StepWriteResult.version. */
export type Series = keyof Versions;

/** Something a stream sends: its bytes, and where it stands among the operation's writes. */
export interface Piece {
  /** Null: nothing to send, only the version to count (a step write no stream is shown, say). */
  bytes: Uint8Array | null;
  /** A write of `series`, numbered `version`; absent for an event that has no place in the order (a liveness status). */
  at?: { series: Series; version: number };
  /** A finish: it follows the writes up to these versions, and the stream ends after it. */
  after?: Versions;
}

const SERIES: readonly Series[] = ["epochs", "steps"];

export class StreamOrder {
  /** The last version sent of each series (the replay's to start with). */
  private readonly sent: Versions;
  /** Pieces that arrived before the writes they follow. */
  private waiting: Piece[] = [];
  /** What the stream lacked at the previous check (the tables' versions then); null: nothing. */
  private lacked: Versions | null = null;

  /** `base`: the versions the stream's replay holds. Step writes at or below base.steps still go out (steps are not replayed). */
  constructor(private readonly base: Versions) {
    this.sent = { ...base };
  }

  /** The pieces to send now, in order, once `p` arrived: p itself, what it unblocked, or nothing (held, or held already). */
  accept(p: Piece): Piece[] {
    if (p.at) {
      const { series, version } = p.at;
      // A step write the replay did not send (steps are read apart), heard late: it goes out as it comes.
      if (series === "steps" && version <= this.base.steps) return [p];
      if (version <= this.sent[series]) return []; // the replay holds it, or it was sent
    }
    if (!this.ready(p)) {
      this.waiting.push(p);
      return [];
    }
    const out = [this.mark(p)];
    for (let released = true; released && this.waiting.length > 0; ) {
      released = false;
      for (let i = 0; i < this.waiting.length; i++) {
        const w = this.waiting[i]!;
        if (!this.ready(w)) continue;
        this.waiting.splice(i, 1);
        out.push(this.mark(w));
        released = true;
        break;
      }
    }
    return out;
  }

  /** True when the stream waits for writes (held pieces, or versions the tables hold and it has not sent). */
  get behind(): boolean {
    return this.waiting.length > 0;
  }

  /**
   * A version check: `known`, the versions the tables hold now. True when the stream cannot fill what it lacks: it
   * lacked it at the previous check already (so the notification is lost); it must replay from the tables.
   */
  check(known: Versions): boolean {
    const lost = this.lacked !== null && SERIES.some((s) => this.sent[s] < this.lacked![s]);
    if (lost) return true;
    const need: Versions = { ...known };
    for (const w of this.waiting) {
      if (w.at) need[w.at.series] = Math.max(need[w.at.series], w.at.version - 1);
      if (w.after) for (const s of SERIES) need[s] = Math.max(need[s], w.after[s]);
    }
    this.lacked = SERIES.some((s) => this.sent[s] < need[s]) ? need : null;
    return false;
  }

  private ready(p: Piece): boolean {
    if (p.at && p.at.version !== this.sent[p.at.series] + 1) return false;
    if (p.after && SERIES.some((s) => this.sent[s] < p.after![s])) return false;
    return true;
  }

  private mark(p: Piece): Piece {
    if (p.at) this.sent[p.at.series] = p.at.version;
    return p;
  }
}
