// The relay policy (src/host/relay_policy.ts) row by row: what the outbox does with a call the API did not
// acknowledge, from the status it was answered with (null: no answer) and the retries made so far. Pure, so no outbox,
// no fake API and no clock: the outbox's own tests show each action carried out.
import { describe, expect, test } from "bun:test";
import { backoffDelay, DEFAULT_BACKOFF, relayAction, verdict, type RelayAction } from "../src/host/relay_policy.ts";

const b = { initialMs: 250, maxMs: 5000 };

describe("relay policy", () => {
  test("retry delays double from the initial delay up to the cap", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 30].map((a) => backoffDelay(a, b))).toEqual([
      250, 500, 1000, 2000, 4000, 5000, 5000, 5000,
    ]);
  });

  test("the default backoff is 250 ms doubling up to 5 s", () => {
    expect(DEFAULT_BACKOFF).toEqual(b);
  });

  const rows: [status: number | null, attempt: number, expected: RelayAction, why: string][] = [
    [
      null,
      0,
      { action: "retry", delayMs: 250, attempt: 1 },
      "no answer (refused connection, timeout): retry at the initial delay",
    ],
    [
      null,
      3,
      { action: "retry", delayMs: 2000, attempt: 4 },
      "no answer, fourth retry: the delay has doubled three times",
    ],
    [null, 12, { action: "retry", delayMs: 5000, attempt: 13 }, "a long outage retries at the cap"],
    [500, 0, { action: "retry", delayMs: 250, attempt: 1 }, "a 500 is the API's trouble, not the call's: retry"],
    [502, 1, { action: "retry", delayMs: 500, attempt: 2 }, "a proxy's 502: retry"],
    [503, 5, { action: "retry", delayMs: 5000, attempt: 6 }, "a 503: retry, capped"],
    [429, 0, { action: "retry", delayMs: 250, attempt: 1 }, "any status no rule names is retried"],
    [422, 2, { action: "retry", delayMs: 1000, attempt: 3 }, "likewise a 422"],
    [401, 0, { action: "park", delayMs: 5000, attempt: 0 }, "a refused token waits at the cap from the first refusal"],
    [
      403,
      7,
      { action: "park", delayMs: 5000, attempt: 7 },
      "a 403 likewise, and the attempt count does not grow while parked",
    ],
    [409, 0, { action: "done" }, "the operation is finished or cancelled on the API: done"],
    [404, 4, { action: "done" }, "the API does not know the operation: done, whatever the retries"],
    [400, 0, { action: "fail" }, "a body the API rejects can never succeed: fail"],
    [413, 2, { action: "fail" }, "too large can never succeed: fail"],
  ];
  for (const [status, attempt, expected, why] of rows) {
    test(`${status ?? "no answer"} after ${attempt} retr${attempt === 1 ? "y" : "ies"} → ${expected.action}: ${why}`, () => {
      expect(relayAction(status, attempt, b)).toEqual(expected);
      expect(verdict(status)).toBe(expected.action);
    });
  }

  test("only 400, 401, 403, 404, 409 and 413 leave retry: every other status from 100 to 599 (2xx aside) is retried", () => {
    const named = new Map<number, RelayAction["action"]>([
      [400, "fail"],
      [401, "park"],
      [403, "park"],
      [404, "done"],
      [409, "done"],
      [413, "fail"],
    ]);
    for (let s = 100; s < 600; s++) {
      if (s >= 200 && s < 300) continue;
      expect(`${s}: ${verdict(s)}`).toBe(`${s}: ${named.get(s) ?? "retry"}`);
    }
  });
});
