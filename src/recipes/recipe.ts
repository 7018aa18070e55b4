/**
 * Recipes, the pure part: the checks a recipe file must pass beyond its schema, the TypeBox schema of a recipe's
 * params, the check of a request's params against it (defaults filled, 400 naming the field), and how params become
 * argv. No I/O: the file is read by src/recipes/book.ts, the command run by src/script_trainings/runner.ts.
 *
 * Why argv is safe: the program and its fixed arguments come only from the operator's file; a request supplies
 * values, each rendered as one `--key=value` entry (the `=` keeps a value that starts with "-" a value), and no
 * shell ever sees them.
 */
import { Type, type TSchema, type TObject } from "@sinclair/typebox";
import { invalid } from "../errors.ts";
import { describeProblem } from "../schemas/explain.ts";
import {
  MAX_PARAM_STRING,
  RecipeFile,
  type ParamSchema,
  type RecipeDeclaration,
  type RecipeView,
  type Target,
} from "../schemas/recipe.ts";

/** A declared recipe with its working directory resolved (absolute) by whoever read the file. */
export interface Recipe extends RecipeDeclaration {
  cwd: string;
}

export type Params = Record<string, string | number | boolean>;

/** A problem in the recipe file, with the dotted path of the field ("recipes.0.params.properties.lr.default"). */
export interface FileProblem {
  field: string;
  message: string;
}

/** The TypeBox schema of one param, so the request check and its messages are the project's usual ones. */
function paramSchema(p: ParamSchema): TSchema {
  const { type: _type, enum: choices, default: _default, title: _title, ...rest } = p;
  const description = p.description;
  if (choices)
    return Type.Union(
      choices.map((c) => Type.Literal(c)),
      description ? { description } : {},
    );
  if (p.type === "string") return Type.String({ maxLength: MAX_PARAM_STRING, ...rest });
  if (p.type === "integer") return Type.Integer(rest);
  if (p.type === "number") return Type.Number(rest);
  return Type.Boolean(description ? { description } : {});
}

/** The closed object schema a request's params must match (defaults not yet applied). */
export function paramsSchema(recipe: Pick<RecipeDeclaration, "params">): TObject {
  const props: Record<string, TSchema> = {};
  const required = new Set(recipe.params?.required ?? []);
  for (const [name, p] of Object.entries(recipe.params?.properties ?? {})) {
    const s = paramSchema(p);
    props[name] = required.has(name) && p.default === undefined ? s : Type.Optional(s);
  }
  return Type.Object(props, { additionalProperties: false });
}

/** Checks a parsed recipe file beyond its schema; returns the first problem, or null. */
export function checkRecipeFile(file: unknown): FileProblem | null {
  const p = describeProblem(RecipeFile, file, "recipes");
  if (p)
    return {
      field: p.field.replace(/^recipes\.recipes/, "recipes"),
      message: p.message.replace(/^recipes\.recipes/, "recipes"),
    };
  const seen = new Set<string>();
  const recipes = (file as { recipes: RecipeDeclaration[] }).recipes;
  for (const [i, r] of recipes.entries()) {
    const at = `recipes.${i}`;
    const bad = (field: string, message: string): FileProblem => ({
      field: `${at}.${field}`,
      message: `${at}.${field}: ${message}`,
    });
    if (seen.has(r.name)) return bad("name", `recipe "${r.name}" is declared twice`);
    seen.add(r.name);
    const props = r.params?.properties ?? {};
    for (const name of r.params?.required ?? []) {
      if (!(name in props)) return bad("params.required", `"${name}" is required but not among params.properties`);
    }
    for (const [name, p] of Object.entries(props)) {
      const field = `params.properties.${name}`;
      if (p.enum && p.type === "boolean") return bad(`${field}.enum`, "a boolean param takes no enum");
      if (
        p.enum &&
        !p.enum.every((v) =>
          p.type === "string"
            ? typeof v === "string"
            : typeof v === "number" && (p.type === "number" || Number.isInteger(v)),
        )
      ) {
        return bad(`${field}.enum`, `every value must be of the param's type (${p.type})`);
      }
      if (p.pattern !== undefined) {
        try {
          new RegExp(p.pattern);
        } catch (err) {
          return bad(`${field}.pattern`, `not a regular expression (${(err as Error).message})`);
        }
      }
      if (p.default !== undefined) {
        const problem = describeProblem(paramSchema(p), p.default, `${at}.${field}.default`);
        if (problem) return { field: problem.field, message: problem.message };
      }
    }
    if (r.epochs_param !== undefined && props[r.epochs_param]?.type !== "integer") {
      return bad("epochs_param", `"${r.epochs_param}" must name an integer param`);
    }
    const targets = targetsOf(r);
    if (targets.includes("host"))
      return bad("target", 'a GPU host\'s recipes are declared in its own recipe file, so "host" is not a target here');
    if (r.slurm !== undefined && !targets.includes("slurm"))
      return bad("slurm", `only meaningful with target slurm (this recipe's targets: ${targets.join(", ")})`);
  }
  return null;
}

/** The targets a recipe allows, its default first: its `target` as a list (default ["local"]). */
export function targetsOf(recipe: Pick<RecipeDeclaration, "target">): Target[] {
  const t = recipe.target ?? "local";
  return typeof t === "string" ? [t] : [...t];
}

/** What a run of the recipe asks for: its GPUs (default 0), and CPUs, memory and a time limit (null: not stated). */
export interface Resources {
  gpus: number;
  cpus: number | null;
  memory_mb: number | null;
  time_limit_minutes: number | null;
}

export function resourcesOf(
  recipe: Pick<RecipeDeclaration, "gpus" | "cpus" | "memory_mb" | "time_limit_minutes">,
): Resources {
  return {
    gpus: recipe.gpus ?? 0,
    cpus: recipe.cpus ?? null,
    memory_mb: recipe.memory_mb ?? null,
    time_limit_minutes: recipe.time_limit_minutes ?? null,
  };
}

/**
 * A request's params checked against the recipe: a 400 naming the field (`<prefix>.<param>`) on an undeclared param,
 * a wrong type or a value out of bounds; the declared defaults filled in. Key order follows the declaration.
 */
export function checkParams(
  recipe: Pick<RecipeDeclaration, "params">,
  params: unknown,
  prefix = "body.params",
): Params {
  const given = params ?? {};
  const problem = describeProblem(paramsSchema(recipe), given, prefix);
  if (problem) throw invalid(problem.field, problem.message.slice(problem.field.length + 2));
  const out: Params = {};
  for (const [name, p] of Object.entries(recipe.params?.properties ?? {})) {
    const v = (given as Record<string, unknown>)[name] ?? p.default;
    if (v === undefined) continue;
    if (typeof v === "string" && v.includes("\0"))
      throw invalid(`${prefix}.${name}`, "must not contain a NUL character");
    out[name] = v as string | number | boolean;
  }
  return out;
}

/** Params as arguments, in declaration order: `--key=value`; booleans `--key` (true) or `--no-key` (false). */
export function renderArgs(params: Params): string[] {
  return Object.entries(params).map(([k, v]) =>
    typeof v === "boolean" ? (v ? `--${k}` : `--no-${k}`) : `--${k}=${String(v)}`,
  );
}

/** The full argv of a run: the declared command, then the params when they go as arguments. */
export function argvOf(recipe: Pick<RecipeDeclaration, "command" | "params_via">, params: Params): string[] {
  return [...recipe.command, ...(viaOf(recipe).includes("args") ? renderArgs(params) : [])];
}

export const viaOf = (recipe: Pick<RecipeDeclaration, "params_via">) => recipe.params_via ?? ["args", "file"];

/** The planned epochs of a run: the epochs_param's value, when declared. */
export function plannedEpochs(recipe: Pick<RecipeDeclaration, "epochs_param">, params: Params): number | null {
  const v = recipe.epochs_param ? params[recipe.epochs_param] : undefined;
  return typeof v === "number" && Number.isInteger(v) && v >= 1 ? v : null;
}

/**
 * How GET /recipes shows a recipe: on this server (`host` null) with its declared targets, or on the GPU host `host`
 * (target "host" only: the host runs it itself).
 */
export function recipeView(r: RecipeDeclaration, host: string | null): RecipeView {
  const targets: Target[] = host === null ? targetsOf(r) : ["host"];
  const res = resourcesOf(r);
  return {
    name: r.name,
    description: r.description ?? null,
    params: r.params ?? { type: "object", properties: {} },
    params_via: viaOf(r),
    gpus: r.gpus ?? 0,
    epochs_param: r.epochs_param ?? null,
    target: targets[0]!,
    targets,
    resources: { cpus: res.cpus, memory_mb: res.memory_mb, time_limit_minutes: res.time_limit_minutes },
    host,
  };
}
