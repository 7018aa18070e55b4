// The periodic job the leader's watchdogs and the Slurm poller share (src/operations/periodic.ts): one round at a time,
// a failed round logged and the next one run, and a stop that waits for the round in flight.
import { expect, test } from "bun:test";
import { every, leaderJob } from "../src/operations/periodic.ts";
import { until } from "./helpers.ts";

test("stop waits for the round in flight: it resolves after that round ends, and no round starts after it", async () => {
  const events: string[] = [];
  let release = () => {};
  let rounds = 0;
  const loop = every(
    1,
    async () => {
      rounds++;
      events.push("round start");
      await new Promise<void>((ok) => (release = ok));
      events.push("round end");
    },
    "[test] round",
  );
  await until("a round to start", async () => rounds > 0 || undefined);
  const stopped = loop.stop().then(() => events.push("stopped"));
  release();
  await stopped;
  expect(events).toEqual(["round start", "round end", "stopped"]);
  expect(rounds).toBe(1);
});

test("a round that fails is logged and the next one runs; one at a time", async () => {
  let rounds = 0;
  let concurrent = 0;
  let most = 0;
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => errors.push(args);
  try {
    const loop = every(
      1,
      async () => {
        concurrent++;
        most = Math.max(most, concurrent);
        rounds++;
        await Promise.resolve();
        concurrent--;
        if (rounds === 1) throw new Error("first round fails");
      },
      "[test] round",
    );
    await until("a second round", async () => rounds > 1 || undefined);
    await loop.stop();
  } finally {
    console.error = original;
  }
  expect(most).toBe(1);
  expect(errors[0]).toEqual(["[test] round failed:", new Error("first round fails")]);
});

test("a leader job starts what it runs once while started, runs nothing when begin says null, and stop waits for it", async () => {
  const log: string[] = [];
  let release = () => {};
  const job = leaderJob(() => {
    log.push("begin");
    return {
      stop: () =>
        new Promise<void>((resolve) => {
          log.push("stopping");
          release = () => (log.push("stopped"), resolve());
        }),
    };
  });
  job.start();
  job.start();
  expect(log).toEqual(["begin"]);
  const stopped = job.stop().then(() => log.push("stop resolved"));
  release();
  await stopped;
  expect(log).toEqual(["begin", "stopping", "stopped", "stop resolved"]);
  job.start();
  expect(log.filter((l) => l === "begin")).toHaveLength(2);
  const again = job.stop();
  release();
  await again;

  let asked = 0;
  const off = leaderJob(() => (asked++, null));
  off.start();
  await off.stop();
  expect(asked).toBe(1);
});
