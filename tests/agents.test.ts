// Both agent CLIs as real processes (agent → stdio MCP server → API process → SQLite) against synthetic runs.
// No timing asserts: the monitor test waits for what the monitor prints, then acts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TrainwatchClient } from "../src/client/api.ts";
import { finishedWithEarlierBest, improving, overfitting, plateau, seedRun } from "./fixtures/runs.ts";
import { captureOutput, freePort, runBun, startServerProcess, until, type ServerProcess } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");

let server: ServerProcess;
let api: TrainwatchClient;

beforeAll(async () => {
  server = await startServerProcess();
  api = new TrainwatchClient({ baseUrl: server.url });
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

function agentEnv(url = server.url): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "TRAINWATCH_TOKEN") env[k] = v;
  return { ...env, TRAINWATCH_URL: url };
}

/** Runs an agent to completion. */
const runAgent = (script: string, args: string[], url?: string) =>
  runBun([join("agents", script), ...args], agentEnv(url));

/** A running agent whose output can be awaited line by line. */
function startAgent(script: string, args: string[]) {
  const proc = Bun.spawn([process.execPath, join("agents", script), ...args], {
    cwd: ROOT,
    env: agentEnv(),
    stdout: "pipe",
    stderr: "pipe",
  });
  const output = captureOutput(proc);
  return {
    proc,
    output,
    /** Resolves once the output matches; fails with the output so far if the agent exits first or 20 s pass. */
    async waitFor(pattern: RegExp): Promise<void> {
      await until(`the agent to print ${pattern}`, () => {
        if (pattern.test(output())) return true;
        if (proc.exitCode !== null) throw new Error(`the agent exited ${proc.exitCode} before printing ${pattern}`);
        return undefined;
      }).catch((err: Error) => {
        throw new Error(`${err.message}; output:\n${output()}`);
      });
    },
  };
}

const analyze = async (id: string) => {
  const r = await runAgent("loss_analyzer.ts", [id, "--json"]);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
};

describe("loss_analyzer", () => {
  test("an improving run gets continue", async () => {
    const a = await analyze(await seedRun(api, "improving", improving()));
    expect(a.recommendation).toMatchObject({ action: "continue", checkpoint_epoch: null, trajectory: "improving" });
  });

  test("an overfitting run gets stop with the best epoch", async () => {
    const a = await analyze(await seedRun(api, "overfitting", overfitting()));
    expect(a.recommendation).toMatchObject({ action: "stop", checkpoint_epoch: 10 });
    expect(a.flags.overfitting).toBe(true);
  });

  test("a plateau gets stop", async () => {
    const a = await analyze(await seedRun(api, "plateau", plateau()));
    expect(a.recommendation).toMatchObject({ action: "stop", checkpoint_epoch: 5 });
    expect(a.flags).toEqual({
      overfitting: false,
      plateau: true,
      diverging: false,
      stalled: false,
      // The liveness flags: a run registered over REST that never heartbeats is neither.
      stale: false,
      hung: false,
      spike: false,
      grad_explosion: false,
      slowdown: false,
    });
    expect(a.epochs_since_improvement).toBe(11);
  });

  test("a finished run with an earlier best gets use_checkpoint at that epoch", async () => {
    const a = await analyze(await seedRun(api, "finished", finishedWithEarlierBest(), { complete: true }));
    expect(a.recommendation).toMatchObject({ action: "use_checkpoint", checkpoint_epoch: 8 });
  });

  test("the report prints trajectory, best epoch, the three flags, the gap and the recommendation with its reason", async () => {
    const id = await seedRun(api, "overfitting-text", overfitting());
    const r = await runAgent("loss_analyzer.ts", [id]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Loss analysis of ${id} (training, running, 20/30 epochs)`);
    expect(r.stdout).toMatch(/trajectory\s+worsening \(val_loss/);
    expect(r.stdout).toMatch(/best epoch\s+10: val_loss 0\.1500 \(9 epochs ago\)/);
    expect(r.stdout).toMatch(/flags\s+overfitting YES\s+plateau no\s+divergence no\s+stalled no/);
    expect(r.stdout).toMatch(/gap \(val-train\)\s+\+0\.\d{4} at the last epoch, widening/);
    expect(r.stdout).toMatch(/recommendation\s+stop -> checkpoint at epoch 10/);
    expect(r.stdout).toMatch(/reason\s+Validation loss is \d+\.\d% above its best 0\.1500 at epoch 10/);
    expect(r.stdout).toMatch(/thresholds\s+plateau patience 10/);
  });

  test("no data or too little data is reported, not an error", async () => {
    const empty = await runAgent("loss_analyzer.ts", [await seedRun(api, "empty", [])]);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain("No epochs recorded yet");
    expect(empty.stdout).toMatch(/recommendation\s+insufficient_data/);
    const two = await analyze(await seedRun(api, "two", improving().slice(0, 2)));
    expect(two.recommendation.action).toBe("insufficient_data");
    expect(two.recommendation.reason).toContain("Only 2 epochs");
  });

  test("an unknown operation or an unreachable server exits 1 with a message to act on", async () => {
    const missing = await runAgent("loss_analyzer.ts", ["op_missing"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("OPERATION_NOT_FOUND: operation op_missing not found. List operations with");
    // The hint speaks to a person at the terminal, not to a model.
    expect(missing.stderr).not.toContain("list_operations");
    const down = await runAgent("loss_analyzer.ts", ["op_x"], `http://127.0.0.1:${freePort()}`);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("UNREACHABLE: cannot reach the Trainwatch API");
  });
});

/**
 * A step run: `n` steps from `from`, 500 an epoch, train_loss falling (NaN at step 123), an evaluation every 100 steps.
 * Custom-free rows, so the wire type holds them.
 */
const stepRows = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => {
    const step = from + i;
    return {
      step,
      epoch: Math.floor(step / 500),
      train_loss: step === 123 ? ("NaN" as const) : 2 - step / 1000,
      learning_rate: 0.001,
      grad_norm: 1.5,
      ...(step % 100 === 99 ? { val_loss: 2.5 - step / 1000, val_accuracy: 0.5 } : {}),
    };
  });

async function stepRun(name: string, planned: number): Promise<string> {
  return (await api.createOperation({ operation_type: "training", name, total_steps_planned: planned })).operation_id;
}

describe("agents on a step run", () => {
  test("the loss analyzer prints steps done of planned, the latest step's train_loss, the last evaluation and its step, and the step judgement", async () => {
    const id = await stepRun("analyzed-steps", 3000);
    await api.writeSteps(id, stepRows(0, 1000));
    await api.writeSteps(id, stepRows(1000, 50));
    const r = await runAgent("loss_analyzer.ts", [id]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Loss analysis of ${id} (training, running, 2 epochs)`);
    expect(r.stdout).toMatch(/steps\s+1050\/3000 \(35%\)/);
    expect(r.stdout).toMatch(/latest step\s+1049: train_loss 0\.9510/);
    expect(r.stdout).toMatch(/last evaluation\s+step 999: val_loss 1\.5010 {2}val_acc 0\.5000/);
    // Judged on its steps: the NaN at step 123 is divergence there, and the advice names the checkpoint before it.
    expect(r.stdout).toMatch(/judged on\s+1050 steps$/m);
    expect(r.stdout).toMatch(/best step\s+999: val_loss 1\.5010$/m);
    expect(r.stdout).toMatch(/divergence\s+train_loss NaN at step 123; last finite step before it: 122/);
    expect(r.stdout).toMatch(/recommendation\s+stop -> the last checkpoint at or before step 99\b/);
    expect(r.stdout).toContain("train_loss became NaN at step 123: the run is diverging, so stop it");
    const json = JSON.parse((await runAgent("loss_analyzer.ts", [id, "--json"])).stdout);
    expect(json.steps).toEqual({
      completed: 1050,
      planned: 3000,
      latest: { step: 1049, train_loss: 2 - 1049 / 1000 },
      evaluation: { step: 999, val_loss: 2.5 - 999 / 1000, val_accuracy: 0.5 },
      best: { step: 999, metric: "val_loss", value: 2.5 - 999 / 1000 },
    });
    // An epoch run's report has no step lines.
    const epochs = await runAgent("loss_analyzer.ts", [await seedRun(api, "no-steps", improving())]);
    expect(epochs.stdout).not.toMatch(/latest step|last evaluation/);
  });

  test("the loss analyzer of a finished step run whose steps carry no epoch says why there is no epoch judgement, not that one is coming", async () => {
    const id = await stepRun("steps-without-epochs", 300);
    await api.writeSteps(
      id,
      stepRows(0, 300).map(({ epoch: _, ...s }) => s),
    );
    await api.completeOperation(id, { status: "completed" });
    const r = await runAgent("loss_analyzer.ts", [id]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/steps\s+300\/300 \(100%\)/);
    expect(r.stdout).not.toContain("the judgement starts once the first epoch ends");
    expect(r.stdout).toContain("Its steps carry no epoch, so no per-epoch record was derived");
  });

  test("the monitor prints one line per poll with the latest step, not one per step, and the steps in its summary", async () => {
    const id = await stepRun("monitored-steps", 2000);
    const monitor = startAgent("training_monitor.ts", [id, "--interval", "0.2"]);
    try {
      await monitor.waitFor(/waiting for metrics/);
      await api.writeSteps(id, stepRows(0, 600));
      await monitor.waitFor(
        /^step 599 {2}600\/2000 \(30%\) {2}epoch 1 {2}train_loss 1\.4010 {2}lr 1\.00e-3 {2}grad_norm 1\.5000 {2}eval @ step 599: val_loss 1\.9010 val_acc 0\.5000$/m,
      );
      await api.writeSteps(id, stepRows(600, 10));
      await monitor.waitFor(
        /^step 609 {2}610\/2000 \(31%\) {2}epoch 1 {2}train_loss 1\.3910 {2}lr 1\.00e-3 {2}grad_norm 1\.5000$/m,
      );
      await api.completeOperation(id, { status: "completed" });
      expect(await monitor.proc.exited).toBe(0);
    } finally {
      monitor.proc.kill();
    }
    const out = monitor.output();
    // Two writes of 610 steps: two step lines, each printed once.
    expect(out.match(/^step \d+/gm)).toEqual(["step 599", "step 609"]);
    expect(out).toContain(`Finished: ${id} completed after 2 epochs (610 steps).`);
  });
});

/**
 * A step run that blows up: train_loss falling to step 149, then growing ×1.5 a step; an evaluation every 50 steps
 * (val_loss 10 % above train_loss), one epoch. Its one derived epoch's val_loss is the blown-up evaluation's.
 */
const blowUpRows = (n: number) =>
  Array.from({ length: n }, (_, step) => {
    const loss = step < 150 ? 2 - step / 200 : 1.25 * 1.5 ** (step - 150);
    return {
      step,
      epoch: 0,
      train_loss: loss,
      grad_norm: 1,
      ...(step % 50 === 49 ? { val_loss: loss * 1.1 } : {}),
    };
  });

describe("agents on a step run that blew up", () => {
  test("both agents name the best as a step, not the one derived epoch, and the monitor prints the divergence once", async () => {
    const id = (
      await api.createOperation({
        operation_type: "training",
        name: "blown-up-steps",
        total_steps_planned: 400,
        stop_policy: { on: ["diverging"] },
      })
    ).operation_id;
    for (let i = 0; i < 200; i += 20) await api.writeSteps(id, blowUpRows(200).slice(i, i + 20));
    await api.completeOperation(id, { status: "completed" });
    const analyzer = await runAgent("loss_analyzer.ts", [id]);
    const monitor = await runAgent("training_monitor.ts", [id, "--interval", "0.2"]);
    expect(analyzer.code).toBe(0);
    expect(monitor.code).toBe(0);
    // The analyzer: the best is step 149 with its val_loss; no "best epoch" line from the one blown-up derived epoch.
    expect(analyzer.stdout).toMatch(/best step\s+149: val_loss 1\.3805$/m);
    expect(analyzer.stdout).not.toMatch(/best epoch/);
    // The monitor: its summary names the best step, not epoch 0; the divergence flag once, with where it began, beside
    // the decision (which alone carries the advice).
    expect(monitor.stdout).toContain("Best step 149: val_loss 1.3805; trajectory at the end:");
    expect(monitor.stdout).not.toMatch(/at epoch 0/);
    expect(monitor.stdout.match(/^FLAG .*/gm)).toEqual([
      "FLAG divergence at step 199: the spike at step 151 did not recover (judged at step 168); best step 149",
    ]);
    expect(
      monitor.stdout.match(
        /^DECISION stop by stop_policy at step \d+: .*restore the last checkpoint taken before step 151/gm,
      ),
    ).toHaveLength(1); // The server's alert, once: the divergence where it was judged, with the step to go back to.
    expect(monitor.stdout.match(/^ALERT .*/gm)).toEqual([
      expect.stringMatching(/^ALERT diverging: Run "blown-up-steps" is diverging at step \d+ — .*step 151/),
    ]);
  });
});

describe("the server's configured thresholds reach the agents", () => {
  test("with TRAINWATCH_PLATEAU_PATIENCE=3 the loss analyzer (through MCP) quotes patience 3", async () => {
    const tuned = await startServerProcess({ TRAINWATCH_PLATEAU_PATIENCE: "3" });
    try {
      const client = new TrainwatchClient({ baseUrl: tuned.url });
      const id = await seedRun(client, "plateau", plateau());
      const r = await runAgent("loss_analyzer.ts", [id], tuned.url);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/thresholds\s+plateau patience 3,/);
      expect(r.stdout).toMatch(/reason\s+val_loss has not improved for 11 epochs \(patience 3\)/);
      expect(r.stdout).not.toContain("patience 10");
    } finally {
      await tuned.stop();
    }
  }, 30_000);
});

describe("training_monitor", () => {
  test("waits for metrics, shows epochs as they are posted, and with --auto-cancel cancels an overfitting run", async () => {
    const id = await seedRun(api, "live", []);
    const monitor = startAgent("training_monitor.ts", [id, "--interval", "0.2", "--auto-cancel"]);
    try {
      await monitor.waitFor(/waiting for metrics/);
      await api.postMetrics(id, overfitting(0, 4));
      await monitor.waitFor(/^\s+4\s+0\.2000\s+0\.2591\s/m);
      expect(monitor.output()).toMatch(/epoch\s+train_loss\s+val_loss\s+train_acc\s+val_acc\s+lr\s+duration/);
      expect(monitor.output()).toContain("[#####-------------------------] 5/30 epochs (17%)");
      expect(monitor.output()).not.toContain("auto-cancel:");

      await api.postMetrics(id, overfitting(5, 19));
      expect(await monitor.proc.exited).toBe(0);
    } finally {
      monitor.proc.kill();
    }
    const out = monitor.output();
    // The FLAG line states the flag the server saw, not the end-of-run advice.
    expect(out).toMatch(
      /FLAG overfitting at epoch 19: validation loss is \d+\.\d% above its best val_loss 0\.1500 at epoch 10 \(margin \d+\.\d%\) while training loss keeps falling\n/,
    );
    expect(out).toContain(`auto-cancel: cancelling ${id}: overfitting`);
    expect(out).toContain(`Finished: ${id} cancelled after 20 epochs (auto-cancelled).`);
    expect(out).toMatch(/Recommendation: use_checkpoint \(epoch 10\)/);
    expect((await api.getOperation(id)).status).toBe("cancelled");
  });

  test("without --auto-cancel it only flags, and exits 0 with a summary once the run finishes", async () => {
    const id = await seedRun(api, "watched", overfitting());
    const monitor = startAgent("training_monitor.ts", [id, "--interval", "0.2"]);
    try {
      await monitor.waitFor(/FLAG overfitting at epoch 19/);
      await api.completeOperation(id, { status: "completed" });
      expect(await monitor.proc.exited).toBe(0);
    } finally {
      monitor.proc.kill();
    }
    expect(monitor.output()).not.toContain("auto-cancel");
    expect(monitor.output()).toContain(`Finished: ${id} completed after 20 epochs`);
    expect((await api.getOperation(id)).status).toBe("completed");
  });

  test("--auto-cancel also stops a run more than 15 epochs past its best", async () => {
    // Best at epoch 5, then flat (no overfitting) until epoch 21: 16 epochs without improvement.
    const flat = plateau().concat(Array.from({ length: 5 }, (_, k) => ({ ...plateau()[16]!, epoch: 17 + k })));
    const id = await seedRun(api, "stalled", flat);
    const r = await runAgent("training_monitor.ts", [id, "--interval", "0.2", "--auto-cancel"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`auto-cancel: cancelling ${id}: no improvement for 16 epochs (more than 15)`);
    expect((await api.getOperation(id)).status).toBe("cancelled");
  });

  test("an unknown operation or an unreachable server exits 1 with a message to act on", async () => {
    const missing = await runAgent("training_monitor.ts", ["op_missing", "--interval", "0.2"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("OPERATION_NOT_FOUND: operation op_missing not found");
    const down = await runAgent("training_monitor.ts", ["op_x"], `http://127.0.0.1:${freePort()}`);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("UNREACHABLE");
  });

  test("bad usage exits 2", async () => {
    expect((await runAgent("training_monitor.ts", [])).code).toBe(2);
    expect((await runAgent("training_monitor.ts", ["op_x", "--interval", "soon"])).code).toBe(2);
  });
});
