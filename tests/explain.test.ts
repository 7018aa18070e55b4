// The one schema-error explainer (src/schemas/explain.ts): field names and messages for every door that checks input.
import { describe, expect, test } from "bun:test";
import { Type } from "@sinclair/typebox";
import { describeProblem, explain, fieldOf } from "../src/schemas/explain.ts";
import { DEFAULTS } from "../src/schemas/defaults.ts";
import { MetricsInput } from "../src/schemas/epoch.ts";
import { CompleteOperationInput } from "../src/schemas/operation.ts";
import { NormalizedTrainingSpec, TrainingSpec } from "../src/schemas/spec.ts";
import { TrainingRequest } from "../src/routes/trainings.ts";

const spirals = { kind: "synthetic", generator: "spirals" };

describe("explain", () => {
  test("a valid value has no problem", () => {
    expect(explain(TrainingSpec, { dataset: spirals })).toBeNull();
    expect(describeProblem(MetricsInput, { epochs: [{ epoch: 1 }] }, "body")).toBeNull();
  });

  test("a union of literals lists every allowed value, not the first branch", () => {
    expect(describeProblem(CompleteOperationInput, { status: "" }, "body")).toEqual({
      field: "body.status",
      message: 'body.status: Expected one of "completed", "failed", "cancelled"',
    });
    expect(describeProblem(TrainingRequest, { dataset: spirals, target: "gpu" }, "body")?.message).toBe(
      'body.target: Expected one of "local", "host"',
    );
  });

  test("a literal union that allows null lists null too", () => {
    const s = Type.Object({ task: Type.Union([Type.Union([Type.Literal("a"), Type.Literal("b")]), Type.Null()]) });
    expect(explain(s, { task: "c" })).toEqual({ path: "/task", message: 'Expected one of "a", "b", null' });
  });

  test("a discriminated union is explained in the branch its kind selects", () => {
    // A CSV dataset with no path: the CSV branch's problem, not the synthetic branch's generator.
    expect(explain(TrainingSpec, { dataset: { kind: "csv", label: "y" } })).toEqual({
      path: "/dataset/path",
      message: "Expected required property",
    });
    expect(explain(TrainingSpec, { dataset: { kind: "csv", path: "a.csv", label: "y", task: "ranking" } })).toEqual({
      path: "/dataset/task",
      message: 'Expected one of "classification", "regression"',
    });
    expect(explain(TrainingSpec, { dataset: { kind: "synthetic", generator: "moons" } })).toEqual({
      path: "/dataset/generator",
      message: 'Expected one of "spirals", "overfit", "random_walk"',
    });
  });

  test("an unknown or missing discriminator is the error, listing its values", () => {
    expect(explain(TrainingSpec, { dataset: spirals, training: { lr_schedule: { kind: "cosine" } } })).toEqual({
      path: "/training/lr_schedule/kind",
      message: 'Expected one of "constant", "reduce_on_plateau"',
    });
    expect(explain(TrainingSpec, { dataset: { path: "a.csv" } })).toEqual({
      path: "/dataset/kind",
      message: 'Expected required property: one of "synthetic", "csv"',
    });
  });

  test("a nullable object is explained as the object", () => {
    const spec = {
      ...structuredClone(validNormalized),
      training: { ...validNormalized.training, early_stopping: { ...es, patience: -1 } },
    };
    expect(explain(NormalizedTrainingSpec, spec)?.path).toBe("/training/early_stopping/patience");
  });

  test("an undiscriminated union blames the branch that matched deepest", () => {
    expect(explain(MetricsInput, { epochs: [{ epoch: 0 }, { epoch: -1 }] })?.path).toBe("/epochs/1/epoch");
    expect(explain(MetricsInput, { epoch: 1.5 })?.path).toBe("/epoch");
  });

  test("a schema's own errorMessage wins", () => {
    expect(explain(MetricsInput, { epoch: 1, train_loss: "low" })).toEqual({
      path: "/train_loss",
      message: 'expected a finite number, null, "NaN", "Infinity" or "-Infinity"',
    });
  });

  test("field names are dotted under the prefix, with pointer escapes undone", () => {
    expect(fieldOf("body", "")).toBe("body");
    expect(fieldOf("body", "/")).toBe("body");
    expect(fieldOf("body", "/epochs/3/epoch")).toBe("body.epochs.3.epoch");
    expect(fieldOf("body", "/lr~1group0")).toBe("body.lr/group0");
    expect(fieldOf("", "/a/b")).toBe("a.b");
  });
});

const es = { ...DEFAULTS.early_stopping };
const validNormalized = {
  name: "x",
  dataset: { kind: "synthetic", generator: "spirals", samples: 100, seed: 1, features: 2, classes: 3 },
  model: { hidden_layers: [8], activation: "relu", dropout: 0 },
  training: {
    epochs: 1,
    batch_size: 8,
    learning_rate: 0.01,
    optimizer: "adam",
    weight_decay: 0,
    validation_split: 0.2,
    seed: 1,
    early_stopping: es,
    lr_schedule: { kind: "constant" },
  },
};
