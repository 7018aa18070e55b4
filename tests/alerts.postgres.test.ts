// Alerts on PostgreSQL replicas (issue 24): two replicas on one schema, each with the server's wiring (an operations
// service, a delivery worker as a leader-only job): an alert raised on either is recorded once, heard on both (the
// streams' `alert`), and sent once, by the leading replica, to a real receiver on 127.0.0.1.
import { afterEach, expect, test } from "bun:test";
import { Deliverer, targetsOf } from "../src/alerts/deliver.ts";
import { alertSettings } from "../src/alerts/service.ts";
import type { AlertFact } from "../src/alerts/payload.ts";
import { loadConfig } from "../src/config.ts";
import { startReplica } from "../src/operations/replicas.ts";
import { OperationsService } from "../src/operations/service.ts";
import type { Alert } from "../src/schemas/alert.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { dropSchema, schemaName, withPostgres } from "./fixtures/postgres.ts";
import { until } from "./fixtures/poll.ts";

await withPostgres("the alert replica tests", (url) => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  test("an alert raised on either replica is recorded once, heard by both, and sent once by the leader", async () => {
    const got: string[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(r) {
        got.push(((await r.json()) as { id: string }).id);
        return new Response("ok");
      },
    });
    cleanups.push(() => server.stop(true));
    const config = loadConfig({ TRAINWATCH_ALERT_WEBHOOK: `http://127.0.0.1:${server.port}/` });
    const schema = schemaName();
    cleanups.push(() => dropSchema(url, schema));

    const replica = async (id: string) => {
      const store = await PostgresStore.open(url, { schema, replica: { id, leaseMs: 10_000 } });
      const operations = new OperationsService(store, {
        trends: config.trends,
        alerts: alertSettings(config.alerts, () => "http://tw.test"),
      });
      await operations.start();
      const heard: Alert[] = [];
      operations.alerts.onAlert((a) => heard.push(a));
      const worker = new Deliverer({ store: store.alerts, targets: targetsOf(config.alerts) });
      operations.alerts.onAlert(() => worker.wake());
      const r = startReplica(operations, store, {
        leaseMs: 10_000,
        leader: store.leadership("jobs"),
        jobs: [{ start: () => worker.start(), stop: () => void worker.stop() }],
        intervalMs: 60_000,
        log: () => {},
      });
      cleanups.push(async () => {
        await r.stop();
        await worker.stop();
        await operations.stop();
        await store.close();
      });
      return { store, operations, heard, replica: r };
    };
    const a = await replica("a");
    const b = await replica("b");
    await a.replica.tick();
    await b.replica.tick();
    expect([a.replica.leading, b.replica.leading].filter(Boolean)).toHaveLength(1);

    const op = (await b.operations.createOperation({ operation_type: "training" })).operation_id;
    // The same fact raised on both replicas (a watchdog's `hung`, say): one row.
    const hung: AlertFact = { kind: "flag", event: "hung", operation_id: op, epoch: 2, step: null };
    await Promise.all([a.operations.alerts.raise(hung), b.operations.alerts.raise(hung)]);
    await b.operations.finish(op, "failed", { error_message: "boom" });

    expect((await a.store.alerts.listAlerts({ limit: 10 })).map((x) => x.alert.event)).toEqual(["failed", "hung"]);
    await until("both alerts heard on both replicas", () => a.heard.length === 2 && b.heard.length === 2);
    // The receiver has a body before the worker records its 2xx: wait for the delivery log, not for the bodies alone.
    await until("both alerts delivered", () => got.length === 2);
    await until("both deliveries logged", async () =>
      (await a.store.alerts.listAlerts({ limit: 10 })).every((x) => x.deliveries.every((d) => d.state !== "pending")),
    );
    const delivered = await a.store.alerts.listAlerts({ limit: 10 });
    expect(delivered.map((x) => x.deliveries.map((d) => [d.state, d.attempts]))).toEqual([
      [["delivered", 1]],
      [["delivered", 1]],
    ]);
    expect(got).toEqual(delivered.map((x) => x.alert.id).reverse());
  });
});
