// The TensorBoard mirror on a database replicas share: the mirror on one replica writes the epochs another replica
// stores, relayed through LISTEN/NOTIFY, both a batch small enough to ride in the notification and one so big that
// the relay reads it back from the tables. Same server as the store contract (tests/fixtures/postgres.ts).
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { OperationsService } from "../src/operations/service.ts";
import type { EpochRecord } from "../src/schemas/epoch.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { decodeEvents, eventScalars } from "../src/tensorboard/metrics.ts";
import { TensorboardMirror } from "../src/tensorboard/mirror.ts";
import { readRecords } from "../src/tensorboard/tfrecord.ts";
import { dropSchema, schemaName, withPostgres } from "./fixtures/postgres.ts";
import { until } from "./fixtures/poll.ts";
import { tempDir } from "./helpers.ts";

const curve = (from: number, count: number): EpochRecord[] =>
  Array.from({ length: count }, (_, i) => ({
    epoch: from + i,
    timestamp: new Date(Date.UTC(2026, 0, 1) + (from + i) * 1000).toISOString(),
    train_loss: 1 / (from + i + 1),
  }));

await withPostgres("the TensorBoard mirror on PostgreSQL", (url) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  describe("the mirror on one replica", () => {
    test("writes every epoch another replica stores, from the notification or read back for a big batch", async () => {
      const schema = schemaName();
      cleanups.push(() => dropSchema(url, schema));
      const open = async (id: string) => {
        const store = await PostgresStore.open(url, { schema, replica: { id, leaseMs: 10_000 } });
        const operations = new OperationsService(store);
        await operations.start();
        cleanups.push(async () => {
          await operations.stop();
          await store.close();
        });
        return operations;
      };
      const a = await open("a");
      const b = await open("b");
      const dir = tempDir("trainwatch-tb-pg-");
      cleanups.push(dir.cleanup);
      const mirror = new TensorboardMirror(b, dir.dir);
      mirror.start();
      cleanups.push(() => mirror.stop());

      const op = await a.createOperation({ operation_type: "training", name: "replicated" });
      await a.writeEpochs(op.operation_id, curve(0, 3));
      await a.writeEpochs(op.operation_id, curve(3, 2000));
      const steps = await until("all 2003 epochs in b's file", async () => {
        await mirror.settled();
        const file = mirror.fileOf(op.operation_id);
        if (!file) return undefined;
        const { points } = eventScalars(decodeEvents(readRecords(readFileSync(file)).records), null, new Map());
        return points.length === 2003 && points;
      });
      expect(steps.map((p) => Number(p.step))).toEqual(Array.from({ length: 2003 }, (_, i) => i));
      expect(steps.every((p) => p.value === Math.fround(1 / (Number(p.step) + 1)))).toBe(true);
      expect(steps[2002]!.wallTime).toBe((Date.UTC(2026, 0, 1) + 2002 * 1000) / 1000);
    });
  });
});
