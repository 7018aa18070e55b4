// The store contract's system-metrics part (issue 24), run by tests/store_contract.ts over every Store: what the system
// series promises whatever holds it — round-trips in wire form, replace on a re-posted instant, ranges, the lifecycle
// (finished → refused, a revivable failure takes them), the bounded chart read, and the latest sample.
import { describe, expect, test } from "bun:test";
import { decodeSystemSamples, type SystemSample } from "../src/schemas/system.ts";
import type { Store } from "../src/store/store.ts";
import { rejection } from "./store_contract_steps.ts";

const T0 = Date.parse("2026-11-26T15:30:00.000Z");
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

/** A sample at second `s`: the process, the machine and two GPUs, one of them lacking temperature and power. */
export const sampleAt = (s: number, util = 50): SystemSample => ({
  timestamp: at(s),
  process: { cpu_percent: 101.5, rss_mb: 2048 },
  machine: { cpu_percent: 40, memory_used_mb: 12_000, memory_total_mb: 64_000, load_1m: 3.5 },
  gpus: [
    {
      index: 0,
      name: "NVIDIA H100",
      utilization_percent: util,
      memory_used_mb: 30_000,
      memory_total_mb: 81_559,
      temperature_c: 61,
      power_w: 312.5,
    },
    {
      index: 1,
      utilization_percent: null,
      memory_used_mb: 0,
      memory_total_mb: 81_559,
      temperature_c: null,
      power_w: null,
    },
  ],
});

const write = (s: Store, id: string, samples: SystemSample[]) => s.writeSystemSamples(id, decodeSystemSamples(samples));

export function systemContract(open: () => Promise<Store>): void {
  describe("system metrics", () => {
    test("samples round-trip in wire form, ascending; a re-posted instant replaces its sample", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      expect(await write(s, id, [sampleAt(30), sampleAt(0), { timestamp: at(15), machine: { cpu_percent: 5 } }])).toBe(
        3,
      );
      expect(await write(s, id, [sampleAt(30, 99)])).toBe(1);
      const all = await s.readSystemSamples(id, { limit: 100 });
      expect(all).toEqual([sampleAt(0), { timestamp: at(15), machine: { cpu_percent: 5 } }, sampleAt(30, 99)]);
    });

    test("a range read takes since < timestamp ≤ until, at most limit, ascending", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      await write(
        s,
        id,
        Array.from({ length: 10 }, (_, i) => sampleAt(i * 15)),
      );
      const ts = (xs: SystemSample[]) => xs.map((x) => (Date.parse(x.timestamp) - T0) / 1000);
      expect(ts(await s.readSystemSamples(id, { since: T0 + 15_000, until: T0 + 60_000, limit: 100 }))).toEqual([
        30, 45, 60,
      ]);
      expect(ts(await s.readSystemSamples(id, { since: T0 + 15_000, limit: 2 }))).toEqual([30, 45]);
      expect(ts(await s.readSystemSamples(id, { until: T0, limit: 100 }))).toEqual([0]);
    });

    test("a finished operation refuses samples and stores none; a revivable failure takes them", async () => {
      const s = await open();
      const done = (await s.createOperation({ operation_type: "training", status: "running" })).operation_id;
      await s.finish(done, "completed");
      const err = await rejection(write(s, done, [sampleAt(0)]));
      expect(err.code).toBe("OPERATION_FINISHED");
      expect(err.details?.status).toBe("completed");
      expect(await s.readSystemSamples(done, { limit: 10 })).toEqual([]);

      const lost = (await s.createOperation({ operation_type: "training", status: "running" })).operation_id;
      await s.finish(lost, "failed", { error_message: "training host unreachable", failure_code: "host_unreachable" });
      expect(await write(s, lost, [sampleAt(0)])).toBe(1);
      expect((await s.getOperation(lost))!.status).toBe("failed");
    });

    test("an unknown operation is OPERATION_NOT_FOUND for writes and reads", async () => {
      const s = await open();
      expect((await rejection(write(s, "op_nope", [sampleAt(0)]))).code).toBe("OPERATION_NOT_FOUND");
      expect((await rejection(s.readSystemSamples("op_nope", { limit: 1 }))).code).toBe("OPERATION_NOT_FOUND");
      expect((await rejection(s.systemChart("op_nope", {}, 10))).code).toBe("OPERATION_NOT_FOUND");
      expect((await rejection(s.latestSystemSample("op_nope"))).code).toBe("OPERATION_NOT_FOUND");
    });

    test("the chart read of a long run gives at most max_points samples, the first of each time bucket", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      // 2,400 samples 15 s apart: 10 hours.
      const all = Array.from({ length: 2_400 }, (_, i) => sampleAt(i * 15, i % 101));
      for (let i = 0; i < all.length; i += 1_000) await write(s, id, all.slice(i, i + 1_000));
      const chart = await s.systemChart(id, {}, 100);
      expect(chart.length).toBe(100);
      // 36,000 s over 100 buckets is 360 s a bucket: every 24th sample, starting with the first.
      expect(chart).toEqual(Array.from({ length: 100 }, (_, b) => all[b * 24]!));
      // A range: its own buckets, from its first sample (150) to its last (300), 30,001 ms each.
      const part = await s.systemChart(id, { since: T0 + 149_000, until: T0 + 300_000 }, 5);
      expect(part.map((x) => (Date.parse(x.timestamp) - T0) / 1000)).toEqual([150, 195, 225, 255, 285]);
    });

    test("the chart read of a short run gives every sample", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      expect(await s.systemChart(id, {}, 100)).toEqual([]);
      const few = [0, 15, 30, 45].map((t) => sampleAt(t));
      await write(s, id, few);
      expect(await s.systemChart(id, {}, 100)).toEqual(few);
      await write(s, id, [sampleAt(45.5)]);
      expect((await s.systemChart(id, {}, 2)).length).toBeLessThanOrEqual(2);
    });

    test("the latest sample is the newest by timestamp, null before any", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      expect(await s.latestSystemSample(id)).toBeNull();
      await write(s, id, [sampleAt(60, 7), sampleAt(0), sampleAt(30)]);
      expect(await s.latestSystemSample(id)).toEqual(sampleAt(60, 7));
    });
  });
}
