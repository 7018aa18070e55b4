// The order of one operation stream's live events (src/operations/stream_order.ts): each write once, in version order,
// with no gap; a finish after the writes it follows; a write waited for across two version checks means a replay.
import { describe, expect, test } from "bun:test";
import { StreamOrder, type Piece, type Series } from "../src/operations/stream_order.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (ps: Piece[]) => ps.map((p) => (p.bytes ? new TextDecoder().decode(p.bytes) : "·"));
const write = (series: Series, version: number): Piece => ({
  bytes: bytes(`${series[0]}${version}`),
  at: { series, version },
});

describe("a stream's write order", () => {
  test("writes heard in version order go out at once; what the replay holds is dropped", () => {
    const o = new StreamOrder({ epochs: 2, steps: 0 });
    expect(text(o.accept(write("epochs", 2)))).toEqual([]);
    expect(text(o.accept(write("epochs", 3)))).toEqual(["e3"]);
    expect(text(o.accept(write("epochs", 4)))).toEqual(["e4"]);
    expect(text(o.accept(write("epochs", 4)))).toEqual([]);
  });

  test("a write heard before the one it follows waits for it, then both go out in version order", () => {
    const o = new StreamOrder({ epochs: 0, steps: 0 });
    expect(text(o.accept(write("epochs", 3)))).toEqual([]);
    expect(text(o.accept(write("epochs", 2)))).toEqual([]);
    expect(o.behind).toBe(true);
    expect(text(o.accept(write("epochs", 1)))).toEqual(["e1", "e2", "e3"]);
    expect(o.behind).toBe(false);
  });

  test("the two series keep their own order; an event without a version is not held back", () => {
    const o = new StreamOrder({ epochs: 0, steps: 0 });
    expect(text(o.accept(write("steps", 2)))).toEqual([]);
    expect(text(o.accept(write("epochs", 1)))).toEqual(["e1"]);
    expect(text(o.accept({ bytes: bytes("status") }))).toEqual(["status"]);
    expect(text(o.accept({ bytes: null, at: { series: "steps", version: 1 } }))).toEqual(["·", "s2"]);
  });

  test("step writes the replay did not send (steps are read apart) still go out, once each", () => {
    const o = new StreamOrder({ epochs: 0, steps: 5 });
    expect(text(o.accept(write("steps", 4)))).toEqual(["s4"]);
    expect(text(o.accept(write("steps", 6)))).toEqual(["s6"]);
  });

  test("a finish waits for the writes it follows, and goes out right after them", () => {
    const o = new StreamOrder({ epochs: 1, steps: 0 });
    const end: Piece = { bytes: bytes("end"), after: { epochs: 3, steps: 1 } };
    expect(text(o.accept(end))).toEqual([]);
    expect(text(o.accept(write("epochs", 3)))).toEqual([]);
    expect(text(o.accept(write("epochs", 2)))).toEqual(["e2", "e3"]);
    expect(text(o.accept(write("steps", 1)))).toEqual(["s1", "end"]);
  });

  describe("version checks", () => {
    test("a write lacked at two checks in a row cannot be filled: the stream replays", () => {
      const o = new StreamOrder({ epochs: 0, steps: 0 });
      o.accept(write("epochs", 2));
      expect(o.check({ epochs: 2, steps: 0 })).toBe(false);
      expect(o.check({ epochs: 2, steps: 0 })).toBe(true);
    });

    test("a write heard between the two checks fills the gap: no replay", () => {
      const o = new StreamOrder({ epochs: 0, steps: 0 });
      o.accept(write("epochs", 2));
      expect(o.check({ epochs: 2, steps: 0 })).toBe(false);
      expect(text(o.accept(write("epochs", 1)))).toEqual(["e1", "e2"]);
      expect(o.check({ epochs: 2, steps: 0 })).toBe(false);
      expect(o.check({ epochs: 2, steps: 0 })).toBe(false);
    });

    test("the last write, which no other follows, is found by the checks alone", () => {
      const o = new StreamOrder({ epochs: 4, steps: 2 });
      expect(o.check({ epochs: 4, steps: 3 })).toBe(false);
      expect(o.check({ epochs: 4, steps: 3 })).toBe(true);
    });

    test("a write committed after the first check is given until the next one to arrive", () => {
      const o = new StreamOrder({ epochs: 4, steps: 0 });
      expect(o.check({ epochs: 4, steps: 0 })).toBe(false);
      expect(o.check({ epochs: 5, steps: 0 })).toBe(false);
      expect(text(o.accept(write("epochs", 5)))).toEqual(["e5"]);
      expect(o.check({ epochs: 5, steps: 0 })).toBe(false);
    });
  });
});
