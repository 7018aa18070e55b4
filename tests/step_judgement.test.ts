// The step judgement (issue 23) on synthetic step curves with a seeded PRNG: healthy noisy small-batch runs raise
// nothing; a spike that recovers is reported and never divergence; a blow-up that does not recover is; NaN at its step;
// slow-downs, overfitting on sparse evaluations, stalled and plateau on step scale; every rule advanced batch by batch
// (through JSON, as the store keeps it) equals the rule advanced once; and the analysis route and the stop policy of a
// step run over the API.
import { describe, expect, test } from "bun:test";
import { Rng } from "../src/trainer/datasets/prng.ts";
import { advanceGrad, emptyGradState } from "../src/trends/step_grad.ts";
import {
  advanceStepJudgement,
  emptyStepJudgement,
  stepVerdict,
  type StepVerdict,
} from "../src/trends/step_judgement.ts";
import { advanceNonFinite, emptyNonFiniteState } from "../src/trends/step_nonfinite.ts";
import { advanceOverfit, emptyOverfitState } from "../src/trends/step_overfit.ts";
import { advancePlateau, emptyPlateauState } from "../src/trends/step_plateau.ts";
import { recommendSteps } from "../src/trends/step_recommend.ts";
import { advanceSlowdown, emptySlowdownState } from "../src/trends/step_slowdown.ts";
import { advanceSpikes, emptySpikeState } from "../src/trends/step_spike.ts";
import { advanceStall, emptyStallState } from "../src/trends/step_stall.ts";
import { DEFAULT_STEP_CONFIG, type StepPoint } from "../src/trends/step_types.ts";
import { encodeMetric } from "../src/trends/wire.ts";
import { json, makeApp, req } from "./helpers.ts";

const EVAL_EVERY = 50;

interface Shape {
  /** The noise-free training loss at step t. */
  loss: (t: number) => number;
  /** Multiplicative small-batch noise (σ of log loss). */
  noise: number;
  /** val_loss at an evaluation step, noise-free; null: no evaluations. */
  val?: ((t: number) => number) | null;
  grad?: (t: number) => number;
  duration?: (t: number) => number;
  /** Replaces the train_loss of step t (a NaN, a spike). */
  override?: (t: number, loss: number) => number;
}

/** `n` steps of a run shaped by `shape`, noisy from `seed`. */
function curve(seed: number, n: number, shape: Shape): StepPoint[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, t) => {
    const loss = shape.loss(t) * Math.exp(shape.noise * rng.normal());
    const val = shape.val && t % EVAL_EVERY === 0 ? shape.val(t) * (1 + 0.002 * rng.normal()) : undefined;
    return {
      step: t,
      epoch: Math.floor(t / 500),
      train_loss: shape.override ? shape.override(t, loss) : loss,
      ...(val !== undefined && { val_loss: val }),
      grad_norm: (shape.grad?.(t) ?? 1) * Math.exp(0.25 * rng.normal()),
      duration: (shape.duration?.(t) ?? 0.015) * Math.exp(0.05 * rng.normal()),
    };
  });
}

/** A healthy run: still learning at its end (as a run stopped by its plan is). */
const healthy = (noise: number): Shape => ({
  loss: (t) => 1 + 3 / Math.sqrt(1 + t / 20),
  noise,
  val: (t) => 1.1 + 3 / Math.sqrt(1 + t / 20),
  grad: (t) => 0.5 + Math.exp(-t / 100),
});

/** The verdict after each of random batches of `rows` (1 … 300 steps), and the state they end with. */
function replay(
  rows: readonly StepPoint[],
  seed: number,
): { verdicts: StepVerdict[]; state: ReturnType<typeof emptyStepJudgement> } {
  const rng = new Rng(seed);
  let state = emptyStepJudgement();
  const verdicts: StepVerdict[] = [];
  for (let i = 0; i < rows.length; ) {
    const n = 1 + rng.int(300);
    state = advanceStepJudgement(state, rows.slice(i, i + n));
    verdicts.push(stepVerdict(state));
    i += n;
  }
  return { verdicts, state };
}

const raised = (v: StepVerdict) =>
  Object.entries(v.flags)
    .filter(([, on]) => on)
    .map(([f]) => f);

describe("healthy noisy small-batch runs raise nothing", () => {
  test("over 60 seeds and noise from 5 % to 35 % of the loss: no flag at any point, no spike, no explosion, no slow-down", () => {
    for (let seed = 1; seed <= 60; seed++) {
      const noise = 0.05 + (0.3 * (seed % 7)) / 6;
      const { verdicts } = replay(curve(seed, 2000, healthy(noise)), seed);
      for (const v of verdicts) expect({ seed, raised: raised(v) }).toEqual({ seed, raised: [] });
      const last = verdicts.at(-1)!;
      expect({ seed, spikes: last.spikes, grad: last.grad_explosions, slow: last.slowdowns }).toEqual({
        seed,
        spikes: [],
        grad: [],
        slow: [],
      });
    }
  });
});

describe("loss spikes", () => {
  test("a spike that recovers is reported with its step, size and recovery, and never raises divergence", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const shape = healthy(0.1);
      const spiked: Shape = { ...shape, override: (t, l) => (t >= 700 && t <= 702 ? l * 6 : l) };
      const { verdicts } = replay(curve(seed, 1500, spiked), seed);
      for (const v of verdicts) expect(v.flags.diverging).toBe(false);
      const last = verdicts.at(-1)!;
      expect(last.spikes).toHaveLength(1);
      const s = last.spikes[0]!;
      expect(s).toMatchObject({ step: 700, before_step: 699, recovered: true });
      expect(s.size).toBeGreaterThan(4);
      expect(s.end_step!).toBeLessThanOrEqual(700 + DEFAULT_STEP_CONFIG.recover_steps);
      expect(recommendSteps(last, "running", "improving").action).toBe("continue");
    }
  });

  test("a blow-up that does not recover is divergence within recover_steps, naming the spike's step and the best evaluation before it", () => {
    const shape = healthy(0.1);
    const blowup: Shape = { ...shape, override: (t, l) => (t >= 600 ? l * 1.05 ** Math.min(60, t - 600) : l) };
    const rows = curve(3, 1000, blowup);
    const { verdicts, state } = replay(rows, 3);
    const v = stepVerdict(state);
    expect(v.flags.diverging).toBe(true);
    expect(v.divergence).toMatchObject({ kind: "spike", metric: "train_loss" });
    expect(v.divergence!.step).toBeGreaterThanOrEqual(600);
    expect(v.divergence!.decided_step - v.divergence!.step).toBeLessThanOrEqual(DEFAULT_STEP_CONFIG.recover_steps);
    expect(v.checkpoint_step).toBeLessThan(v.divergence!.step);
    expect(v.checkpoint_step! % EVAL_EVERY).toBe(0);
    const r = recommendSteps(v, "running", "worsening");
    expect(r.action).toBe("stop");
    expect(r.reason).toContain(`restore the last checkpoint taken before step ${v.divergence!.step}`);
    // Once raised it stays raised: no flicker.
    const first = verdicts.findIndex((x) => x.flags.diverging);
    expect(verdicts.slice(first).every((x) => x.flags.diverging)).toBe(true);
  });

  test("grad_norm far above its level is an early warning that raises no divergence by itself", () => {
    const shape = { ...healthy(0.1), grad: (t: number) => (t >= 800 && t < 830 ? 40 : 1) };
    const v = stepVerdict(advanceStepJudgement(emptyStepJudgement(), curve(5, 815, shape)));
    expect(v.flags).toMatchObject({ grad_explosion: true, diverging: false });
    expect(v.grad_explosions[0]).toMatchObject({ step: 800, end_step: null });
  });
});

describe("non-finite losses", () => {
  test("NaN or ±Infinity raises divergence at the step it appears", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const rows = curve(7, 600, { ...healthy(0.1), override: (t, l) => (t >= 432 ? bad : l) });
      const v = stepVerdict(advanceStepJudgement(emptyStepJudgement(), rows.slice(0, 433)));
      expect(v.divergence).toMatchObject({
        kind: "non_finite",
        step: 432,
        decided_step: 432,
        before_step: 431,
        value: encodeMetric(bad),
      });
      expect(v.checkpoint_step).toBe(400);
      expect(stepVerdict(advanceStepJudgement(emptyStepJudgement(), rows.slice(0, 432))).flags.diverging).toBe(false);
    }
  });

  test("a run that reported nothing but non-finite losses is told it diverged", () => {
    const rows: StepPoint[] = Array.from({ length: 30 }, (_, t) => ({ step: t, train_loss: Number.NaN }));
    const v = stepVerdict(advanceStepJudgement(emptyStepJudgement(), rows));
    expect(v.divergence).toMatchObject({ kind: "non_finite", step: 0, only_non_finite: true });
    const r = recommendSteps(v, "completed", "flat");
    expect(r).toMatchObject({ action: "stop", checkpoint_step: null });
    expect(r.reason).toContain("the run diverged");
  });
});

describe("slow-downs, overfitting, stalled and plateau on step scale", () => {
  test("steps taking 3× their usual time for 200 steps are a slow-down from its first step to its end", () => {
    const shape = { ...healthy(0.1), duration: (t: number) => (t >= 400 && t < 600 ? 0.045 : 0.015) };
    const during = stepVerdict(advanceStepJudgement(emptyStepJudgement(), curve(9, 500, shape)));
    expect(during.flags.slowdown).toBe(true);
    expect(during.slowdowns).toEqual([{ step: 400, ratio: expect.any(Number), end_step: null }]);
    expect(during.slowdowns[0]!.ratio).toBeGreaterThan(2.5);
    const after = stepVerdict(advanceStepJudgement(emptyStepJudgement(), curve(9, 1000, shape)));
    expect(after.flags.slowdown).toBe(false);
    expect(after.slowdowns[0]!.end_step).toBeGreaterThan(600);
    expect(after.flags.diverging).toBe(false);
  });

  test("validation rising from its best evaluation while training falls is overfitting, two evaluations after the best", () => {
    const shape: Shape = { ...healthy(0.1), val: (t) => 1.5 + 0.5 * ((t - 600) / 600) ** 2 };
    const rows = curve(11, 2000, shape);
    const at = (n: number) => stepVerdict(advanceStepJudgement(emptyStepJudgement(), rows.slice(0, n)));
    expect(at(601).flags.overfitting).toBe(false);
    const firstFlag = rows.findIndex((_, i) => i % EVAL_EVERY === 0 && at(i + 1).flags.overfitting);
    expect(firstFlag).toBeGreaterThan(600);
    expect((firstFlag - 600) / EVAL_EVERY).toBeLessThanOrEqual(4);
    const v = at(2000);
    expect(v).toMatchObject({ best_step: 600, checkpoint_step: 600, flags: { overfitting: true, diverging: false } });
    expect(recommendSteps(v, "running", "worsening")).toMatchObject({ action: "stop", checkpoint_step: 600 });
  });

  test("a run that never learns is stalled by step 300; one that learns is not", () => {
    const flat = stepVerdict(
      advanceStepJudgement(emptyStepJudgement(), curve(13, 300, { loss: () => 5.5, noise: 0.05 })),
    );
    expect(flat.flags.stalled).toBe(true);
    expect(recommendSteps(flat, "running", "flat").action).toBe("stop");
    const learning = stepVerdict(advanceStepJudgement(emptyStepJudgement(), curve(13, 300, healthy(0.05))));
    expect(learning.flags.stalled).toBe(false);
  });

  test("no new best for plateau_steps steps is a plateau, with the best step to go back to", () => {
    const shape: Shape = {
      loss: (t) => 1 + 3 * Math.exp(-t / 60),
      noise: 0.05,
      val: (t) => 1.2 + 3 * Math.exp(-t / 60),
    };
    const v = stepVerdict(advanceStepJudgement(emptyStepJudgement(), curve(17, 1500, shape)));
    expect(v.flags.plateau).toBe(true);
    expect(v.plateau.steps_since_best!).toBeGreaterThanOrEqual(DEFAULT_STEP_CONFIG.plateau_steps);
  });
});

describe("incremental equals from scratch", () => {
  const shapes: Shape[] = [
    healthy(0.2),
    { ...healthy(0.1), override: (t, l) => (t >= 500 && t <= 501 ? l * 8 : t >= 900 ? l * 1.05 ** (t - 900) : l) },
    { ...healthy(0.1), override: (t, l) => (t === 333 ? Number.NaN : l), duration: (t) => (t > 700 ? 0.05 : 0.015) },
    { ...healthy(0.1), val: (t) => 1.5 + ((t - 500) / 500) ** 2, grad: (t) => (t % 400 < 20 ? 30 : 1) },
    { loss: () => 5.5, noise: 0.05, val: () => 5.6 },
  ];
  const rules: [string, (rows: StepPoint[]) => unknown, (prev: unknown, rows: StepPoint[]) => unknown][] = [
    ["spike", (r) => advanceSpikes(emptySpikeState(), r), (p, r) => advanceSpikes(p as never, r)],
    ["grad", (r) => advanceGrad(emptyGradState(), r), (p, r) => advanceGrad(p as never, r)],
    ["non_finite", (r) => advanceNonFinite(emptyNonFiniteState(), r), (p, r) => advanceNonFinite(p as never, r)],
    ["overfit", (r) => advanceOverfit(emptyOverfitState(), r), (p, r) => advanceOverfit(p as never, r)],
    ["stall", (r) => advanceStall(emptyStallState(), r), (p, r) => advanceStall(p as never, r)],
    ["plateau", (r) => advancePlateau(emptyPlateauState(), r), (p, r) => advancePlateau(p as never, r)],
    ["slowdown", (r) => advanceSlowdown(emptySlowdownState(), r), (p, r) => advanceSlowdown(p as never, r)],
    ["judgement", (r) => advanceStepJudgement(emptyStepJudgement(), r), (p, r) => advanceStepJudgement(p as never, r)],
  ];
  for (const [name, once, advance] of rules) {
    test(`${name}: advanced in random batches through JSON equals advanced once`, () => {
      for (const [i, shape] of shapes.entries()) {
        const rows = curve(100 + i, 1600, shape);
        const rng = new Rng(200 + i);
        let state: unknown = JSON.parse(JSON.stringify(once([])));
        for (let at = 0; at < rows.length; ) {
          const n = 1 + rng.int(rng.next() < 0.5 ? 5 : 400);
          state = JSON.parse(JSON.stringify(advance(state, rows.slice(at, at + n))));
          at += n;
        }
        expect(state).toEqual(JSON.parse(JSON.stringify(once(rows))));
      }
    });
  }

  test("a step at or before the last judged one is not judged again", () => {
    const rows = curve(5, 300, healthy(0.1));
    const s = advanceStepJudgement(emptyStepJudgement(), rows);
    expect(advanceStepJudgement(s, rows.slice(100, 200))).toBe(s);
  });
});

describe("a step run over the API", () => {
  type App = ReturnType<typeof makeApp>["app"];
  const wire = (rows: StepPoint[]) =>
    rows.map((r) => ({
      ...r,
      train_loss: encodeMetric(r.train_loss),
      ...(r.val_loss !== undefined && { val_loss: encodeMetric(r.val_loss) }),
    }));
  const post = (app: App, id: string, rows: StepPoint[]) =>
    json(app.handle(req("POST", `/api/v1/operations/${id}/steps`, { steps: wire(rows) })));
  const analysis = async (app: App, id: string) =>
    (await json(app.handle(req("GET", `/api/v1/operations/${id}/analysis`)))).body.data;

  test("GET …/analysis says where things happened in steps: best_step, spikes, the checkpoint step, the step flags", async () => {
    const { app } = makeApp();
    const id = (await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training" })))).body.data
      .operation_id;
    const rows = curve(21, 1200, { ...healthy(0.1), override: (t, l) => (t >= 700 && t <= 702 ? l * 6 : l) });
    for (let i = 0; i < rows.length; i += 250) expect((await post(app, id, rows.slice(i, i + 250))).status).toBe(200);
    const a = await analysis(app, id);
    expect(a).toMatchObject({
      judged_on: "steps",
      steps_judged: 1200,
      best_step: 1150,
      flags: { diverging: false, spike: false, grad_explosion: false, slowdown: false, overfitting: false },
      recommendation: { action: "continue", checkpoint_epoch: null },
      divergence: null,
    });
    expect(a.spikes).toEqual([
      {
        step: 700,
        before_step: 699,
        peak_step: expect.any(Number),
        size: expect.any(Number),
        noise_multiple: expect.any(Number),
        recovered: true,
        end_step: expect.any(Number),
      },
    ]);
    expect(a.recommendation.reason).toContain("1 spike recovered");
    // Finished: the advice is the best step.
    await json(app.handle(req("POST", `/api/v1/operations/${id}/complete`, { status: "completed" })));
    expect((await analysis(app, id)).recommendation).toMatchObject({ action: "use_checkpoint", checkpoint_step: 1150 });
    // An epoch run keeps its epoch judgement, with empty step fields.
    const epochRun = (await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training" })))).body
      .data.operation_id;
    await json(
      app.handle(req("POST", `/api/v1/operations/${epochRun}/metrics`, { epochs: [{ epoch: 0, train_loss: 1 }] })),
    );
    expect(await analysis(app, epochRun)).toMatchObject({
      judged_on: "epochs",
      steps_judged: 0,
      best_step: null,
      spikes: [],
      slowdowns: [],
      divergence: null,
      flags: { spike: false, grad_explosion: false, slowdown: false },
      recommendation: { checkpoint_step: null },
    });
  });

  test("a stop policy on diverging stops a step run in the reply to the step that diverged, naming the checkpoint before it", async () => {
    const { app } = makeApp();
    const id = (
      await json(
        app.handle(
          req("POST", "/api/v1/operations", { operation_type: "training", stop_policy: { on: ["diverging"] } }),
        ),
      )
    ).body.data.operation_id;
    const rows = curve(23, 600, { ...healthy(0.1), override: (t, l) => (t === 432 ? Number.NaN : l) });
    const before = await post(app, id, rows.slice(0, 432));
    expect(before.body.data.control).toEqual({ action: "continue" });
    const at = await post(app, id, rows.slice(432, 433));
    expect(at.body.data.control).toMatchObject({
      action: "stop",
      decided_by: "stop_policy",
      step: 432,
      checkpoint_step: 400,
      checkpoint_epoch: null,
    });
    expect(at.body.data.control.reason).toContain("train_loss became NaN at step 432");
    // The decision is recorded once: the next reply carries the same one.
    const next = await post(app, id, rows.slice(433, 440));
    expect(next.body.data.control).toEqual(at.body.data.control);
    const op = (await json(app.handle(req("GET", `/api/v1/operations/${id}`)))).body.data;
    expect(op.control).toEqual(at.body.data.control);
  });

  test("a stop policy set on a step run that already diverged decides at once from the step judgement, not the derived epochs", async () => {
    const { app } = makeApp();
    const id = (await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training" })))).body.data
      .operation_id;
    // NaN at step 432, then on past the close of epoch 0 (step 500): the derived epoch 0 is stored too.
    const rows = curve(23, 600, { ...healthy(0.1), override: (t, l) => (t === 432 ? Number.NaN : l) });
    for (let i = 0; i < rows.length; i += 100)
      expect((await post(app, id, rows.slice(i, i + 100))).body.data.control).toEqual({ action: "continue" });
    const put = await json(app.handle(req("PUT", `/api/v1/operations/${id}/stop_policy`, { on: ["diverging"] })));
    expect(put.status).toBe(200);
    // The step write's rule: decided at the latest step stored, the checkpoint the one before the NaN.
    const control = put.body.data.control;
    expect(control).toMatchObject({
      action: "stop",
      decided_by: "stop_policy",
      epoch: 1,
      step: 599,
      checkpoint_step: 400,
      checkpoint_epoch: null,
    });
    expect(control.reason).toContain("train_loss became NaN at step 432");
    // Recorded once: the next step reply carries the same decision.
    expect((await post(app, id, curve(24, 601, healthy(0.1)).slice(600))).body.data.control).toEqual(control);
  });

  test("a recovering spike never stops a run whose policy names every flag", async () => {
    const { app } = makeApp();
    const on = ["diverging", "overfitting", "stalled", "plateau", "grad_explosion", "slowdown"];
    const id = (
      await json(app.handle(req("POST", "/api/v1/operations", { operation_type: "training", stop_policy: { on } })))
    ).body.data.operation_id;
    const rows = curve(25, 1000, { ...healthy(0.1), override: (t, l) => (t >= 500 && t <= 502 ? l * 8 : l) });
    for (let i = 0; i < rows.length; i += 7)
      expect((await post(app, id, rows.slice(i, i + 7))).body.data.control).toEqual({ action: "continue" });
    expect((await analysis(app, id)).spikes).toMatchObject([{ step: 500, recovered: true }]);
  });
});
