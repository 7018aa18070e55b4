/**
 * Reads the operator's recipe file (TRAINWATCH_RECIPES, default ./trainwatch.recipes.json) once, at start. A missing
 * default file means "no recipes"; a file named explicitly must exist. A file that does not parse or breaks a rule
 * stops the start with one line naming the file and the field (a StartupError), never half-loads.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { invalid } from "../errors.ts";
import { checkRecipeFile, recipeView, type Recipe } from "./recipe.ts";
import type { RecipeDeclaration, RecipeView } from "../schemas/recipe.ts";
import { StartupError } from "../errors.ts";

export const DEFAULT_RECIPES_FILE = "./trainwatch.recipes.json";

/** The recipes one machine declares (the API's, or a GPU host's). */
export class RecipeBook {
  private readonly byName: Map<string, Recipe>;

  constructor(
    recipes: Recipe[],
    /** Where they were read from (null: none); shown in errors so an operator knows which file to edit. */
    readonly source: string | null,
  ) {
    this.byName = new Map(recipes.map((r) => [r.name, r]));
  }

  static empty(): RecipeBook {
    return new RecipeBook([], null);
  }

  list(): Recipe[] {
    return [...this.byName.values()];
  }

  /** As GET /recipes lists them: this machine's own (`host` null), or those of the GPU host `host`. */
  views(host: string | null): RecipeView[] {
    return this.list().map((r) => recipeView(r, host));
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The recipe, or a 400 naming `field` that lists the declared ones: no undeclared name ever reaches a process. */
  get(name: string, field = "body.recipe", where = "this server"): Recipe {
    const r = this.byName.get(name);
    if (r) return r;
    const names = [...this.byName.keys()];
    const declared = names.length
      ? `declared: ${names.join(", ")}`
      : `none is declared${this.source ? ` in ${this.source}` : " (set TRAINWATCH_RECIPES)"}`;
    throw invalid(field, `unknown recipe ${JSON.stringify(name)} on ${where}; ${declared}`, { recipe: name });
  }
}

/** Parses and checks a recipe file's text; `cwd`s resolve against `dir`. Throws StartupError naming `path` and the field. */
export function parseRecipes(text: string, path: string, dir: string): Recipe[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new StartupError(`TRAINWATCH_RECIPES: ${path} is not JSON (${(err as Error).message})`);
  }
  const problem = checkRecipeFile(json);
  if (problem) throw new StartupError(`TRAINWATCH_RECIPES: ${path}: ${problem.message}`);
  return (json as { recipes: RecipeDeclaration[] }).recipes.map((r) => ({
    ...r,
    cwd: r.cwd === undefined ? dir : isAbsolute(r.cwd) ? r.cwd : resolve(dir, r.cwd),
  }));
}

/** Loads `path` (null: the default file, which may be absent). */
export function loadRecipeBook(path: string | null): RecipeBook {
  const file = resolve(path ?? DEFAULT_RECIPES_FILE);
  if (!existsSync(file)) {
    if (path === null) return new RecipeBook([], null);
    throw new StartupError(`TRAINWATCH_RECIPES: ${file} does not exist`);
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new StartupError(`TRAINWATCH_RECIPES: cannot read ${file} (${(err as Error).message})`);
  }
  return new RecipeBook(parseRecipes(text, file, dirname(file)), file);
}
