// The PostgreSQL store's announcer (src/store/pg_announce.ts) without a database: a fake SQL tag records each NOTIFY
// statement and holds it until the test releases it, so the order of statements and when each write is released are
// checked exactly. A write is released once its own payloads are sent, even while later writes keep the queue full.
import { expect, test } from "bun:test";
import type { SQL } from "bun";
import { Announcer } from "../src/store/pg_announce.ts";

/** A SQL tag whose statements wait for `release()`; `sent` holds each statement's payloads, in order. */
function fakeSql() {
  const sent: string[][] = [];
  const pending: (() => void)[] = [];
  const tag = ((_strings: TemplateStringsArray, ...values: unknown[]) => {
    sent.push([...(values[1] as string[])]);
    return new Promise<void>((resolve) => pending.push(resolve));
  }) as unknown as SQL;
  (tag as unknown as { array: (v: string[]) => string[] }).array = (v) => v;
  const release = async () => {
    pending.shift()!();
    // Let the drain loop take its next batch.
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { sql: tag, sent, release };
}

const many = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

test("a write is released once its own payloads are sent, while later writes keep the queue past one statement", async () => {
  const f = fakeSql();
  const a = new Announcer(f.sql, "ch");
  const done: string[] = [];
  a.announce(["first"]).then(() => done.push("first"));
  // While the first statement is in flight, 600 payloads queue: more than one statement (500) holds.
  a.announce(many("b", 600)).then(() => done.push("b"));
  await f.release(); // "first" sent
  expect(done).toEqual(["first"]);
  expect(f.sent[1]).toHaveLength(500);
  // More keep arriving while b's first 500 are in flight: the next statement takes b's last 100 and c's first 400.
  a.announce(many("c", 600)).then(() => done.push("c"));
  await f.release(); // b0..b499
  expect(done).toEqual(["first"]);
  expect(f.sent[2]).toEqual([...many("b", 600).slice(500), ...many("c", 400)]);
  await f.release(); // b's last payloads are out: b is released though c's rest still waits
  expect(done).toEqual(["first", "b"]);
  expect(f.sent[3]).toEqual(many("c", 600).slice(400));
  await f.release();
  expect(done).toEqual(["first", "b", "c"]);
  expect(f.sent.flat()).toEqual(["first", ...many("b", 600), ...many("c", 600)]);
});

test("a statement that fails is logged and its writes are released: their data is committed", async () => {
  const sent: string[][] = [];
  const tag = ((_s: TemplateStringsArray, ...values: unknown[]) => {
    sent.push(values[1] as string[]);
    return Promise.reject(new Error("connection lost"));
  }) as unknown as SQL;
  (tag as unknown as { array: (v: string[]) => string[] }).array = (v) => v;
  const logged: unknown[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => logged.push(args[0]);
  try {
    await new Announcer(tag, "ch").announce(["x", "y"]);
  } finally {
    console.error = error;
  }
  expect(sent).toEqual([["x", "y"]]);
  expect(String(logged[0])).toContain("announcing 2 change(s) failed");
});
