/**
 * The executors this server has, by name, and which one a recipe request goes to: the request's `target` when the
 * recipe allows it, else the recipe's first target (src/recipes/recipe.ts targetsOf). Adding one (Slurm) is one
 * `register`; a target no executor is registered for is a 400 naming the field and what to configure (CONFIGURE).
 */
import { invalid } from "../errors.ts";
import { targetsOf } from "../recipes/recipe.ts";
import type { Operation } from "../schemas/operation.ts";
import type { RecipeDeclaration, Target } from "../schemas/recipe.ts";
import { CONFIGURE, type Executor } from "./executor.ts";

export class Executors {
  private readonly byName = new Map<Target, Executor>();

  /** Adds `executor` under its name (a second one of the same name replaces the first). */
  register(executor: Executor): this {
    this.byName.set(executor.name, executor);
    return this;
  }

  all(): Executor[] {
    return [...this.byName.values()];
  }

  has(name: Target): boolean {
    return this.byName.has(name);
  }

  /** The executor `name`, or a 400 naming body.target that says what to configure for it. */
  get(name: Target): Executor {
    const e = this.byName.get(name);
    if (e) return e;
    throw invalid("body.target", `no ${name} executor is configured on this server: ${CONFIGURE[name]}`, {
      target: name,
    });
  }

  /**
   * The executor running `op`: its `executor` column; for an operation recorded before executors (null) its location
   * says (a host's, else this server's). Null when that one is not configured here.
   */
  of(op: Pick<Operation, "executor" | "metadata">): Executor | null {
    const name = (op.executor ?? (op.metadata.location === "host" ? "host" : "local")) as Target;
    return this.byName.get(name) ?? null;
  }
}

/**
 * The target of a recipe request. `declared`: the recipe as this server's file declares it (null: not declared here,
 * so only a GPU host may know it). A named target must be one the declaration allows (400 naming body.target);
 * "host" is always the hosts' to check. Without one: the declaration's first target, else `fallback` (host when
 * USE_TRAINING_HOST_SERVICE=true, else local).
 */
export function chooseTarget(
  requested: Target | undefined,
  declared: Pick<RecipeDeclaration, "name" | "target"> | null,
  fallback: Target,
): Target {
  if (requested === undefined) return declared ? targetsOf(declared)[0]! : fallback;
  if (requested === "host" || declared === null) return requested;
  const allowed = targetsOf(declared);
  if (!allowed.includes(requested))
    throw invalid(
      "body.target",
      `recipe ${JSON.stringify(declared.name)} runs on ${allowed.join(", ")}, not ${requested} (its target in the recipe file)`,
      { allowed },
    );
  return requested;
}
