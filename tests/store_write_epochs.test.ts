// The write algorithm both stores share (src/store/write_epochs.ts), over an in-memory EpochWriter: what it asks a store
// to do and what it keeps, run synchronously (as SQLite runs it) and awaited (as PostgreSQL does). The stores
// themselves are checked by the contract suite (tests/store_contract.ts).
import { describe, expect, test } from "bun:test";
import { encodeEpoch, type EpochRecord } from "../src/schemas/epoch.ts";
import type { SpanSummary } from "../src/trends/downsample.ts";
import { summarizeRows, summarizeTrends } from "../src/trends/index.ts";
import { DEFAULT_TREND_CONFIG, EMPTY_SUMMARY, type EpochPoint } from "../src/trends/types.ts";
import { tailSize } from "../src/trends/summary.ts";
import { encodeJudge } from "../src/trends/judgement_state.ts";
import { BLOCK, blockOf } from "../src/store/blocks.ts";
import {
  runAsync,
  runSync,
  writeEpochs,
  type EpochWriter,
  type InsertPlan,
  type SavedWrite,
  type WriteRow,
} from "../src/store/write_epochs.ts";
import { curve, TS } from "./store_contract.ts";

/** One operation kept in memory, as a store keeps it, and the calls the algorithm made. */
function memoryWriter(status: WriteRow["status"] = "running", failure_code: string | null = null) {
  const row: WriteRow = {
    operation_id: "op_mem",
    status,
    failure_code,
    stop_policy: null,
    control: null,
    summary: JSON.stringify(EMPTY_SUMMARY),
    best_json: null,
    judgement: null,
    metric_names: "[]",
    cadence: null,
    alert_rules: null,
  };
  const epochs = new Map<number, EpochRecord>();
  const blocks = new Map<number, SpanSummary>();
  const plans: InsertPlan[] = [];
  const saves: SavedWrite[] = [];
  const sorted = () => [...epochs.values()].sort((a, b) => a.epoch - b.epoch);
  const point = (e: EpochRecord): EpochPoint => ({
    epoch: e.epoch,
    train_loss: e.train_loss ?? null,
    val_loss: e.val_loss ?? null,
  });
  const writer: EpochWriter<WriteRow> = {
    lock: (id, touched) => {
      if (id !== row.operation_id) throw new Error(`unknown ${id}`);
      return { op: { ...row }, blocks: new Map(touched.filter((b) => blocks.has(b)).map((b) => [b, blocks.get(b)!])) };
    },
    insert: (_op, batch, plan) => {
      plans.push(plan);
      for (const { e } of batch.rows) epochs.set(e.epoch, e);
      const all = sorted();
      return {
        tail: plan.tail > 0 ? all.slice(-plan.tail).map(point) : null,
        history: plan.history ? all.map(point) : null,
        blockRows: all.filter((e) => plan.blocks.includes(blockOf(e.epoch))).map(encodeEpoch),
      };
    },
    save: (_op, w) => {
      saves.push(w);
      row.summary = JSON.stringify(w.trends);
      row.best_json = JSON.stringify(w.state);
      row.judgement = encodeJudge(w.kept);
      if (w.names) row.metric_names = JSON.stringify(w.names);
      if (w.revived || w.started) (row.status = "running"), (row.failure_code = null);
      for (const [b, s] of w.blocks) blocks.set(b, s);
      return saves.length;
    },
  };
  /** The same writer answering with promises, as PostgreSQL's does. */
  const later: EpochWriter<WriteRow> = {
    lock: async (id, touched) => writer.lock(id, touched),
    insert: async (op, batch, plan) => writer.insert(op, batch, plan),
    save: async (op, w) => writer.save(op, w),
  };
  return { row, epochs, blocks, plans, saves, writer, later, sorted };
}

const ctx = { trends: DEFAULT_TREND_CONFIG, tail: tailSize(DEFAULT_TREND_CONFIG), now: () => new Date(TS) };
const write = (m: ReturnType<typeof memoryWriter>, epochs: EpochRecord[]) =>
  runSync(writeEpochs(m.writer, "op_mem", epochs, ctx));

describe("the write algorithm both stores run", () => {
  test("appends keep the summary incrementally, reading only the tail, and it equals the whole history's", () => {
    const m = memoryWriter();
    write(m, curve(0, 3));
    const res = write(m, curve(3, 2));
    expect(m.plans.at(-1)).toMatchObject({ fresh: true, history: false, tail: ctx.tail });
    expect(res.trends).toEqual(summarizeTrends(curve(0, 5)));
  });

  test("a replaced epoch recomputes from the whole history, and the batch's last copy of an epoch is the one stored", () => {
    const m = memoryWriter();
    write(m, curve(0, 10));
    const res = write(m, [
      { epoch: 4, timestamp: TS, train_loss: 9 },
      { epoch: 4, timestamp: TS, train_loss: 0.5 },
    ]);
    expect(m.plans.at(-1)).toMatchObject({ fresh: false, history: true, tail: 0 });
    expect(m.epochs.get(4)!.train_loss).toBe(0.5);
    expect(res.stored).toBe(2);
    expect(res.trends).toEqual(summarizeTrends(m.sorted()));
  });

  test("the chart blocks a write touches are appended to, or summarised again from their rows", () => {
    const m = memoryWriter();
    write(m, curve(0, BLOCK + 5));
    write(m, curve(BLOCK + 5, 3));
    expect(m.plans.at(-1)!.blocks).toEqual([]);
    write(m, [{ epoch: 2, timestamp: TS, train_loss: 7 }]);
    expect(m.plans.at(-1)!.blocks).toEqual([0]);
    for (const b of [0, 1]) {
      const rows = m.sorted().filter((e) => blockOf(e.epoch) === b);
      expect(m.blocks.get(b)).toEqual(summarizeRows(rows.map(encodeEpoch)));
    }
  });

  test("a finished operation is refused before any row: nothing inserted, nothing saved", () => {
    const m = memoryWriter("completed");
    expect(() => write(m, curve(0, 1))).toThrow(expect.objectContaining({ code: "OPERATION_FINISHED" }));
    expect(m.plans).toEqual([]);
    expect(m.saves).toEqual([]);
  });

  test("a pending operation starts, and a host failure revives, with the write's clock as started_at", () => {
    const pending = memoryWriter("pending");
    expect(write(pending, curve(0, 1))).toMatchObject({ statusChanged: true, revived: false });
    expect(pending.saves[0]).toMatchObject({ started: true, revived: false, at: new Date(TS) });
    const lost = memoryWriter("failed", "host_unreachable");
    expect(write(lost, [])).toMatchObject({ statusChanged: true, revived: true, stored: 0 });
    expect(lost.saves[0]).toMatchObject({ started: false, revived: true });
  });

  test("awaited over a writer that answers later, it stores and reports the same as run synchronously", async () => {
    const now = memoryWriter();
    const later = memoryWriter();
    const batches = [curve(0, 40), curve(40, 3), [{ epoch: 12, timestamp: TS, val_loss: 3, custom: { lr: 1 } }]];
    for (const b of batches) {
      const a = write(now, b);
      const c = await runAsync(writeEpochs(later.later, "op_mem", b, ctx));
      expect(c).toEqual(a);
    }
    expect(later.row).toEqual(now.row);
    expect(later.blocks).toEqual(now.blocks);
  });

  test("run synchronously, a step that answers with a promise is an error, not a write left half done", () => {
    const m = memoryWriter();
    expect(() => runSync(writeEpochs(m.later, "op_mem", curve(0, 1), ctx))).toThrow(/promise/);
  });
});
