/**
 * The stop signal's wire shapes (issue 12): an operation's stop policy and the `control` decision a metrics or heartbeat
 * reply carries. One TypeBox source for validation, OpenAPI, MCP and the typed client; the rules live in
 * src/operations/stop_policy.ts.
 */
import { Type, type Static } from "@sinclair/typebox";
import { MAX_EPOCH } from "./epoch.ts";

/**
 * The judgement flags a stop policy may name (the analysis route's `flags`). grad_explosion and slowdown are raised only
 * on a step run; a loss spike is never one of them: a spike that recovers must not stop a run, and one that does not is
 * `diverging`.
 */
export const STOP_FLAGS = ["diverging", "overfitting", "stalled", "plateau", "grad_explosion", "slowdown"] as const;
export type StopFlag = (typeof STOP_FLAGS)[number];

export const StopPolicy = Type.Object(
  {
    on: Type.Array(
      Type.Union([
        Type.Literal("diverging"),
        Type.Literal("overfitting"),
        Type.Literal("stalled"),
        Type.Literal("plateau"),
        Type.Literal("grad_explosion"),
        Type.Literal("slowdown"),
      ]),
      {
        minItems: 1,
        maxItems: STOP_FLAGS.length,
        uniqueItems: true,
        description: `The judgement flags that stop the run: ${STOP_FLAGS.join(", ")} (as GET /operations/{id}/analysis raises them).`,
      },
    ),
    min_epochs: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_EPOCH,
        default: 0,
        description:
          "Fire only at an epoch number ≥ min_epochs (default 0); a step run's epoch is the highest one its steps named (0 when they name none).",
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      "When the judgement raises one of `on` at an epoch ≥ `min_epochs`, the server records one stop decision (`control`) on the operation; every later metrics reply carries it and built-in trainings stop within one batch. On a step run the step judgement decides, in the write of the step that raised the flag: that POST …/steps reply already carries the decision.",
  },
);
export type StopPolicyInput = Static<typeof StopPolicy>;
/** As stored and returned: min_epochs filled in. */
export interface StopPolicy {
  on: StopFlag[];
  min_epochs: number;
}

export const StopControl = Type.Object(
  {
    action: Type.Literal("stop"),
    reason: Type.String({ description: "The judgement's reason (stop_policy), or `cancelled by <by>: <reason>`." }),
    checkpoint_epoch: Type.Union([Type.Integer(), Type.Null()], {
      description: "The epoch whose checkpoint to keep, when there is one to advise.",
    }),
    decided_by: Type.String({ description: 'stop_policy, or who cancelled: "dashboard", "mcp", "monitor", "api", …' }),
    epoch: Type.Union([Type.Integer(), Type.Null()], { description: "The latest stored epoch when it was decided." }),
    step: Type.Optional(
      Type.Union([Type.Integer(), Type.Null()], {
        description: "A step run: the latest judged step when it was decided (the trainer stops at the next step).",
      }),
    ),
    checkpoint_step: Type.Optional(
      Type.Union([Type.Integer(), Type.Null()], {
        description: "A step run: the step whose checkpoint to go back to (the last one at or before it).",
      }),
    ),
    at: Type.String({ format: "date-time" }),
  },
  { description: "A recorded decision to stop the run." },
);
export type StopControl = Static<typeof StopControl>;

export const Control = Type.Union([Type.Object({ action: Type.Literal("continue") }), StopControl], {
  description:
    "The server's word on the run: `continue`, or the recorded stop decision (the trainer should stop, keeping its best checkpoint).",
});
export type Control = Static<typeof Control>;
