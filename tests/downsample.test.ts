// The chart reducer (src/trends/downsample.ts) checked property-style over random curves: the budget, the ends and
// the best, every bucket's extremes of every metric, and every NaN/±Infinity — the runs' ends when they fit, one per
// bucket and value otherwise. Summaries merge exactly, as the store's blocks rely on.
import { describe, expect, test } from "bun:test";
import { Rng } from "../src/trainer/datasets/prng.ts";
import {
  downsample,
  mergeSummaries,
  metricValue,
  pickEpochs,
  reduceRows,
  summarizeRows,
  type SpanSummary,
} from "../src/trends/downsample.ts";

/** The trainer's seeded PRNG (mulberry32), so the properties are reproducible; a failure names its seed. */
function rng(seed: number): () => number {
  const g = new Rng(seed);
  return () => g.next();
}

type Row = { epoch: number; [k: string]: number | string | null };
const FIELDS = ["train_loss", "val_loss", "acc", "grad_norm"];
const NON_FINITE = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
const WIRE: Record<string, string> = { NaN: "NaN", Infinity: "Infinity", "-Infinity": "-Infinity" };

/**
 * A random curve: epochs with gaps, a random subset of metrics each present in most rows, random walks with spikes, and
 * (in some curves) non-finite values alone or in runs, sometimes as wire strings.
 */
function randomCurve(r: () => number): Row[] {
  const n = Math.floor(r() ** 2 * 3000);
  const fields = FIELDS.filter(() => r() < 0.7);
  if (fields.length === 0) fields.push("train_loss");
  const presence = Object.fromEntries(fields.map((f) => [f, 0.6 + 0.4 * r()]));
  const nonFiniteRate = r() < 0.3 ? 0 : r() < 0.7 ? 0.002 : 0.05;
  const wire = r() < 0.5;
  const level = Object.fromEntries(fields.map((f) => [f, r() * 10]));
  const rows: Row[] = [];
  let epoch = Math.floor(r() * 100);
  let run: { field: string; value: number; left: number } | null = null;
  for (let i = 0; i < n; i++) {
    epoch += r() < 0.9 ? 1 : 1 + Math.floor(r() * 20);
    const row: Row = { epoch, timestamp: "2026-01-01T00:00:00.000Z" as never };
    for (const f of fields) {
      if (r() > presence[f]!) continue;
      level[f] = level[f]! + (r() - 0.5) + (r() < 0.01 ? (r() - 0.5) * 100 : 0);
      let v = level[f]!;
      if (run && run.field === f && run.left-- > 0) v = run.value;
      else if (r() < nonFiniteRate) {
        v = NON_FINITE[Math.floor(r() * 3)]!;
        if (r() < 0.3) run = { field: f, value: v, left: Math.floor(r() * 30) };
      }
      row[f] = wire && !Number.isFinite(v) ? WIRE[String(v)]! : v;
    }
    if (r() < 0.02) row.val_loss = null;
    rows.push(row);
  }
  return rows;
}

const value = (row: Row, f: string) => metricValue(row[f]);
const same = (a: number | undefined, b: number) => a !== undefined && Object.is(a, b);

/** Every maximal run of one non-finite value over consecutive rows holding `f`: [first epoch, last epoch]. */
function runsOf(rows: Row[], f: string): [number, number][] {
  const out: [number, number][] = [];
  let open: { v: number; from: number; to: number } | null = null;
  for (const row of rows) {
    const v = value(row, f);
    if (v === undefined) continue;
    if (!Number.isFinite(v) && open && Object.is(open.v, v)) open.to = row.epoch;
    else {
      if (open) out.push([open.from, open.to]);
      open = Number.isFinite(v) ? null : { v, from: row.epoch, to: row.epoch };
    }
  }
  if (open) out.push([open.from, open.to]);
  return out;
}

describe("the min/max reducer, over 400 random curves", () => {
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(seed);
    const rows = randomCurve(r);
    const maxPoints = 1 + Math.floor(r() * r() * 500);
    const keep = rows.length && r() < 0.8 ? rows[Math.floor(r() * rows.length)]!.epoch : null;

    test(`seed ${seed}: ${rows.length} rows, max_points ${maxPoints}`, () => {
      const { rows: out, reduction } = reduceRows(rows, maxPoints, keep);
      const budget = Math.max(maxPoints, 3);
      if (rows.length <= budget) {
        expect(out).toBe(rows);
        return;
      }
      expect(reduction).not.toBeNull();
      const red = reduction!;
      const kept = new Set(out.map((o) => o.epoch));
      // The bound, the order, nothing invented.
      expect(out.length).toBeLessThanOrEqual(budget);
      const byEpoch = new Map(rows.map((row) => [row.epoch, row]));
      for (let i = 0; i < out.length; i++) {
        expect(out[i]).toBe(byEpoch.get(out[i]!.epoch)!);
        if (i > 0) expect(out[i]!.epoch).toBeGreaterThan(out[i - 1]!.epoch);
      }
      // The ends and the best.
      expect(kept.has(rows[0]!.epoch)).toBe(true);
      expect(kept.has(rows[rows.length - 1]!.epoch)).toBe(true);
      if (keep !== null) expect(kept.has(keep)).toBe(true);
      // Buckets cover the rows in order.
      if (red.buckets.length > 0) {
        expect(red.buckets[0]!.from).toBe(rows[0]!.epoch);
        expect(red.buckets[red.buckets.length - 1]!.to).toBe(rows[rows.length - 1]!.epoch);
        for (let i = 1; i < red.buckets.length; i++)
          expect(red.buckets[i]!.from).toBeGreaterThan(red.buckets[i - 1]!.to);
      }
      const fields = FIELDS.filter((f) => rows.some((row) => value(row, f) !== undefined));
      // Each bucket: first, last, and every metric's lowest and highest finite value, and each non-finite value it holds in "buckets" mode.
      let at = 0;
      let outAt = 0;
      for (const b of red.buckets) {
        while (rows[at]!.epoch < b.from) at++;
        let end = at;
        while (end < rows.length && rows[end]!.epoch <= b.to) end++;
        const inside = rows.slice(at, end);
        while (outAt < out.length && out[outAt]!.epoch < b.from) outAt++;
        let outEnd = outAt;
        while (outEnd < out.length && out[outEnd]!.epoch <= b.to) outEnd++;
        const outInside = out.slice(outAt, outEnd);
        expect(kept.has(inside[0]!.epoch)).toBe(true);
        expect(kept.has(inside[inside.length - 1]!.epoch)).toBe(true);
        for (const f of fields) {
          const finite = inside
            .map((row) => value(row, f))
            .filter((v): v is number => v !== undefined && Number.isFinite(v));
          if (finite.length) {
            expect(outInside.some((row) => same(value(row, f), Math.min(...finite)))).toBe(true);
            expect(outInside.some((row) => same(value(row, f), Math.max(...finite)))).toBe(true);
          }
          for (const nf of NON_FINITE) {
            if (inside.some((row) => same(value(row, f), nf)))
              expect(outInside.some((row) => same(value(row, f), nf))).toBe(true);
          }
        }
      }
      // "runs" mode: the first and last epoch of every non-finite run are kept.
      if (red.nonFinite === "runs") {
        for (const f of fields)
          for (const [from, to] of runsOf(rows, f)) expect(kept.has(from) && kept.has(to)).toBe(true);
      } else {
        // Only when they could not all fit.
        const ends = new Set([rows[0]!.epoch, rows[rows.length - 1]!.epoch, ...(keep === null ? [] : [keep])]);
        for (const f of fields) for (const [from, to] of runsOf(rows, f)) ends.add(from).add(to);
        expect(ends.size).toBeGreaterThan(budget / 2);
      }
      // The budget holds at least one bucket from 10 + 10 × metrics on; with one or more, each metric's global extremes
      // and each non-finite value it takes are in the reply.
      if (budget >= 10 + 10 * fields.length) expect(red.buckets.length).toBeGreaterThanOrEqual(1);
      if (red.buckets.length === 0) return;
      for (const f of fields) {
        const all = rows.map((row) => value(row, f)).filter((v): v is number => v !== undefined);
        const finite = all.filter(Number.isFinite);
        if (finite.length) expect(out.some((row) => same(value(row, f), Math.max(...finite)))).toBe(true);
        for (const nf of NON_FINITE)
          if (all.some((v) => Object.is(v, nf))) expect(out.some((row) => same(value(row, f), nf))).toBe(true);
      }
    });
  }
});

describe("the reducer's budget and its edges", () => {
  const long = Array.from({ length: 1000 }, (_, i) => ({ epoch: 50 + i, val_loss: 1 / (50 + i) }));

  test("short series come back as they are; max_points below 3 still keeps first, best and last", () => {
    expect(downsample(long.slice(0, 20), 50, 55)).toEqual(long.slice(0, 20));
    expect(downsample(long, 1, 300).map((p) => p.epoch)).toEqual([50, 300, 1049]);
    expect(downsample([], 10)).toEqual([]);
  });

  test("the budget is used: a noisy curve of one metric fills at least half of max_points", () => {
    const r = rng(7);
    const noisy = Array.from({ length: 100_000 }, (_, i) => ({ epoch: i, loss: r() }));
    for (const m of [10, 100, 1000, 2000]) {
      const out = downsample(noisy, m);
      expect(out.length).toBeLessThanOrEqual(m);
      expect(out.length).toBeGreaterThanOrEqual(m / 2);
    }
  });

  test("one spike and one NaN in 200,000 epochs survive a reduction to 50 points", () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => ({
      epoch: i,
      grad_norm: i === 123_457 ? 40 : i === 654 ? Number.NaN : 1 + Math.sin(i) * 0.1,
    }));
    const out = downsample(rows, 50);
    expect(out.length).toBeLessThanOrEqual(50);
    expect(out.find((p) => p.epoch === 123_457)?.grad_norm).toBe(40);
    expect(out.find((p) => p.epoch === 654)?.grad_norm).toBeNaN();
  });

  test("a diverged run (NaN from epoch 600 on) keeps the run's first and last epoch", () => {
    const rows = Array.from({ length: 5000 }, (_, i) => ({ epoch: i, train_loss: i >= 600 ? "NaN" : 1 / (i + 1) }));
    const { rows: out, reduction } = reduceRows(rows, 40);
    expect(reduction!.nonFinite).toBe("runs");
    expect(out.map((p) => p.epoch)).toEqual(expect.arrayContaining([0, 599, 600, 4999]));
  });

  test("NaN every other epoch is more than the budget holds: every bucket keeps one", () => {
    const rows = Array.from({ length: 10_000 }, (_, i) => ({ epoch: i, loss: i % 2 ? Number.NaN : i }));
    const { rows: out, reduction } = reduceRows(rows, 100);
    expect(reduction!.nonFinite).toBe("buckets");
    expect(out.length).toBeLessThanOrEqual(100);
    expect(reduction!.buckets.length).toBeGreaterThanOrEqual(Math.floor((100 - 3) / 7));
  });
});

describe("span summaries merge exactly", () => {
  for (let seed = 1000; seed < 1100; seed++) {
    test(`seed ${seed}: the summary of all rows equals the merge of summaries of random pieces`, () => {
      const r = rng(seed);
      const rows = randomCurve(r);
      if (rows.length === 0) return void expect(summarizeRows(rows).count).toBe(0);
      const cuts = [
        0,
        ...Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * rows.length)).sort((a, b) => a - b),
        rows.length,
      ];
      let merged: SpanSummary = { from: 0, to: 0, count: 0, fields: {} };
      for (let i = 1; i < cuts.length; i++)
        merged = mergeSummaries(merged, summarizeRows(rows, cuts[i - 1]!, cuts[i]!));
      expect(merged).toEqual(summarizeRows(rows));
    });
  }

  test("picking from block summaries keeps what picking from rows keeps", () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => ({
      epoch: i,
      loss: i === 777 ? 99 : i === 15_001 ? "-Infinity" : Math.cos(i),
    }));
    const blocks: SpanSummary[] = [];
    for (let i = 0; i < rows.length; i += 128) blocks.push(summarizeRows(rows, i, Math.min(rows.length, i + 128)));
    const { epochs } = pickEpochs(blocks, 200);
    expect(epochs.length).toBeLessThanOrEqual(200);
    expect(epochs).toEqual(expect.arrayContaining([0, 777, 15_001, 19_999]));
  });
});
