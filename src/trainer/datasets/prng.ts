// Seeded randomness for data generation, splits, shuffles, initial weights and dropout masks: the same seed gives the
// same numbers on every backend and machine, which TF.js's own random ops cannot promise.

/** mulberry32: a fast 32-bit PRNG with a 2³² period, plenty for shuffles and noise. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box–Muller; one draw per call, simplicity over speed). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** A fresh generator whose seed is drawn from this one, so sub-streams (init, dropout, shuffles) stay independent. */
  fork(): Rng {
    return new Rng(Math.floor(this.next() * 4294967296));
  }

  /**
   * Fills `out` with an inverted-dropout mask: 0 with probability `rate`, else 1/(1−rate). The generator is inlined:
   * this runs for every hidden unit of every row of every batch.
   */
  dropoutMask(out: Float32Array, rate: number): Float32Array {
    const keep = 1 / (1 - rate);
    const threshold = rate * 4294967296;
    let state = this.state;
    for (let i = 0; i < out.length; i++) {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      out[i] = (t ^ (t >>> 14)) >>> 0 < threshold ? 0 : keep;
    }
    this.state = state;
    return out;
  }

  /** Fisher–Yates shuffle of `a` in place. */
  shuffle<T extends { length: number; [i: number]: number }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i]!;
      a[i] = a[j]!;
      a[j] = tmp;
    }
    return a;
  }
}
