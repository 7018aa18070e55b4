// The store contract's alerts part (issue 24), run by tests/store_contract.ts over every Store: a run's rules round-trip,
// an alert is recorded once per id with one pending delivery per channel, listed recent first and filtered, read with
// its delivery log, and a channel's pending deliveries come oldest first until delivered or failed.
import { describe, expect, test } from "bun:test";
import type { Store } from "../src/store/store.ts";
import type { AlertBody } from "../src/schemas/alert.ts";

/** A generic webhook body of `kind` `event` about `op`, recorded `at`. */
export function body(id: string, op: string, event = "diverging", at = "2026-11-26T15:30:00.000Z"): AlertBody {
  return {
    id,
    kind: "flag",
    event,
    at,
    title: `Run ${op} is ${event}`,
    operation: { id: op, name: null, status: "running", url: `http://127.0.0.1:8000/#/op/${op}` },
    reason: "val_loss rose 40 % over 5 epochs",
    advice: { action: "use_checkpoint", epoch: 12, step: null, checkpoint_epoch: 9, checkpoint_step: null },
    threshold: null,
    failure_code: null,
  };
}

export function alertsContract(open: () => Promise<Store>): void {
  describe("alerts", () => {
    test("a run's alert rules are null until set, round-trip, and clear; unknown runs are OPERATION_NOT_FOUND", async () => {
      const s = await open();
      const id = (await s.createOperation({ operation_type: "training" })).operation_id;
      expect(await s.alerts.getAlertRules(id)).toBeNull();
      const rules = {
        on: ["overfitting" as const],
        thresholds: [{ metric: "val_loss", when: "above" as const, value: 2 }],
      };
      await s.alerts.setAlertRules(id, rules);
      expect(await s.alerts.getAlertRules(id)).toEqual(rules);
      await s.alerts.setAlertRules(id, null);
      expect(await s.alerts.getAlertRules(id)).toBeNull();
      const withRules = await s.createOperation({ operation_type: "training", alert_rules: { off: ["failed"] } });
      expect(await s.alerts.getAlertRules(withRules.operation_id)).toEqual({ off: ["failed"] });
      await expect(s.alerts.getAlertRules("op_nope")).rejects.toMatchObject({ code: "OPERATION_NOT_FOUND" });
      await expect(s.alerts.setAlertRules("op_nope", null)).rejects.toMatchObject({ code: "OPERATION_NOT_FOUND" });
    });

    test("an alert is recorded once per id, with one pending delivery per channel", async () => {
      const s = await open();
      const first = await s.alerts.recordAlert(body("al_1", "op_a"), ["webhook", "slack"]);
      expect(first).toBeGreaterThan(0);
      expect(await s.alerts.recordAlert(body("al_1", "op_a"), ["webhook", "slack"])).toBeNull();
      const a = await s.alerts.getAlert("al_1");
      expect(a?.seq).toBe(first!);
      expect(a?.alert).toEqual(body("al_1", "op_a"));
      expect(a?.deliveries.map((d) => [d.channel, d.state, d.attempts])).toEqual([
        ["slack", "pending", 0],
        ["webhook", "pending", 0],
      ]);
      expect(await s.alerts.getAlert("al_none")).toBeNull();
    });

    test("alerts list most recent first, filtered by operation and time, bounded by limit", async () => {
      const s = await open();
      await s.alerts.recordAlert(body("al_1", "op_a", "diverging", "2026-11-26T15:30:00.000Z"), []);
      await s.alerts.recordAlert(body("al_2", "op_b", "failed", "2026-11-26T15:31:00.000Z"), []);
      await s.alerts.recordAlert(body("al_3", "op_a", "hung", "2026-11-26T15:32:00.000Z"), []);
      expect((await s.alerts.listAlerts({ limit: 10 })).map((a) => a.alert.id)).toEqual(["al_3", "al_2", "al_1"]);
      expect((await s.alerts.listAlerts({ limit: 2 })).map((a) => a.alert.id)).toEqual(["al_3", "al_2"]);
      expect((await s.alerts.listAlerts({ operation_id: "op_a", limit: 10 })).map((a) => a.alert.id)).toEqual([
        "al_3",
        "al_1",
      ]);
      const since = await s.alerts.listAlerts({ since: "2026-11-26T15:30:30.000Z", limit: 10 });
      expect(since.map((a) => a.alert.id)).toEqual(["al_3", "al_2"]);
    });

    test("a channel's pending deliveries come oldest first; an attempt's outcome is its delivery log", async () => {
      const s = await open();
      for (const id of ["al_1", "al_2", "al_3"]) await s.alerts.recordAlert(body(id, "op_a"), ["webhook"]);
      await s.alerts.recordAlert(body("al_s", "op_a"), ["slack"]);
      expect((await s.alerts.pendingDeliveries("webhook", 10)).map((d) => d.alert_id)).toEqual([
        "al_1",
        "al_2",
        "al_3",
      ]);
      const [head] = await s.alerts.pendingDeliveries("webhook", 1);
      expect(head).toMatchObject({ alert_id: "al_1", channel: "webhook", attempts: 0, next_at: null });
      expect(head!.payload.id).toBe("al_1");
      expect(head!.created_at).toBe(Date.parse("2026-11-26T15:30:00.000Z"));

      const retryAt = Date.parse("2026-11-26T15:30:02.000Z");
      await s.alerts.updateDelivery("al_1", "webhook", {
        state: "pending",
        attempts: 1,
        last_status: 503,
        last_error: "HTTP 503",
        next_at: retryAt,
        delivered_at: null,
      });
      expect((await s.alerts.pendingDeliveries("webhook", 1))[0]).toMatchObject({
        alert_id: "al_1",
        attempts: 1,
        next_at: retryAt,
      });
      expect((await s.alerts.getAlert("al_1"))!.deliveries[0]).toEqual({
        channel: "webhook",
        state: "pending",
        attempts: 1,
        last_status: 503,
        last_error: "HTTP 503",
        next_at: "2026-11-26T15:30:02.000Z",
        delivered_at: null,
      });
      await s.alerts.updateDelivery("al_1", "webhook", {
        state: "delivered",
        attempts: 2,
        last_status: 200,
        last_error: null,
        next_at: null,
        delivered_at: "2026-11-26T15:30:03.000Z",
      });
      await s.alerts.updateDelivery("al_2", "webhook", {
        state: "failed",
        attempts: 9,
        last_status: null,
        last_error: "TimeoutError",
        next_at: null,
        delivered_at: null,
      });
      expect((await s.alerts.pendingDeliveries("webhook", 10)).map((d) => d.alert_id)).toEqual(["al_3"]);
      expect((await s.alerts.pendingDeliveries("slack", 10)).map((d) => d.alert_id)).toEqual(["al_s"]);
      expect((await s.alerts.getAlert("al_1"))!.deliveries[0]).toMatchObject({
        state: "delivered",
        attempts: 2,
        last_status: 200,
      });
    });
  });
}
