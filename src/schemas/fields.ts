/**
 * The epoch's standard fields: the metrics every trainer may report under these names (anything else is a custom
 * metric). The epoch schema validates them, and the dashboard runs this module, built for the browser
 * (src/routes/dashboard.ts), to tell a custom metric from a standard one; it imports nothing, so the build is this file.
 * The Python client spells the same list in trainwatch/_wire.py (tests/fields.test.ts holds the two equal).
 */
export const STANDARD_FIELDS = [
  "train_loss",
  "val_loss",
  "train_accuracy",
  "val_accuracy",
  "learning_rate",
  "duration",
] as const;
export type StandardField = (typeof STANDARD_FIELDS)[number];

/**
 * The step's standard fields (src/schemas/step.ts): what a training reports per optimisation step, and the evaluations
 * taken at a step (val_loss, val_accuracy). `samples` and `tokens` count what was seen so far (cumulative).
 */
export const STEP_FIELDS = [
  "train_loss",
  "val_loss",
  "val_accuracy",
  "learning_rate",
  "grad_norm",
  "duration",
  "samples",
  "tokens",
] as const;
export type StepField = (typeof STEP_FIELDS)[number];
