// The search language's parser (src/schemas/search.ts): what each query means as a tree, the precedence of not, and
// and or, every operator and kind of value, and errors that name the 0-based position of what is wrong.
import { describe, expect, test } from "bun:test";
import { parseQuery, parseSort, type QueryNode } from "../src/schemas/search.ts";
import { TrainwatchError } from "../src/errors.ts";

/** A tree as a short string: comparisons as `field op value`, connectives in prefix form. */
function show(n: QueryNode | null): string {
  if (n === null) return "ALL";
  switch (n.kind) {
    case "and":
    case "or":
      return `${n.kind}(${show(n.left)}, ${show(n.right)})`;
    case "not":
      return `not(${show(n.expr)})`;
    case "cmp": {
      const f =
        n.field.kind === "config"
          ? `config.${n.field.path}`
          : n.field.kind === "flag"
            ? `flags.${n.field.name}`
            : n.field.name;
      const v = n.value.type === "null" ? "null" : JSON.stringify(n.value.v);
      return `${f} ${n.op} ${v}`;
    }
  }
}

/** The error a parse throws: its code, position and message. */
function failure(q: string): { code: string; position: number; message: string } {
  try {
    parseQuery(q);
  } catch (e) {
    if (!(e instanceof TrainwatchError)) throw e;
    return { code: e.code, position: e.details?.position as number, message: e.message };
  }
  throw new Error(`expected ${q} to fail`);
}

describe("the search parser", () => {
  test("an empty or blank query matches every run", () => {
    expect(parseQuery("")).toBeNull();
    expect(parseQuery("   ")).toBeNull();
  });

  test("not binds tighter than and, and tighter than or; parentheses regroup", () => {
    expect(show(parseQuery("flags.stalled or flags.plateau and not flags.diverging"))).toBe(
      "or(flags.stalled = true, and(flags.plateau = true, not(flags.diverging = true)))",
    );
    expect(show(parseQuery("(flags.stalled or flags.plateau) and not flags.diverging"))).toBe(
      "and(or(flags.stalled = true, flags.plateau = true), not(flags.diverging = true))",
    );
    expect(show(parseQuery("not not flags.stalled"))).toBe("not(not(flags.stalled = true))");
    expect(show(parseQuery("best_epoch = 1 and epochs_completed = 2 and final_loss = 3"))).toBe(
      "and(and(best_epoch = 1, epochs_completed = 2), final_loss = 3)",
    );
  });

  test("keywords are case-insensitive; fields and configuration keys are not", () => {
    expect(show(parseQuery('tags HAS "a" AND NOT flags.diverging OR status = RUNNING'))).toBe(
      'or(and(tags has "a", not(flags.diverging = true)), status = "running")',
    );
    expect(failure('Name = "x"').code).toBe("QUERY_FIELD");
    expect(show(parseQuery("config.LR = 1"))).toBe("config.LR = 1");
  });

  test("every operator and kind of value", () => {
    const cases: [string, string][] = [
      ['name = "bert"', 'name = "bert"'],
      ['name != "bert"', 'name != "bert"'],
      ['name ~ "ber"', 'name ~ "ber"'],
      ["name = null", "name = null"],
      ["status = completed", 'status = "completed"'],
      ['status != "failed"', 'status != "failed"'],
      ["operation_type = training", 'operation_type = "training"'],
      ['group = "sweep 7"', 'group = "sweep 7"'],
      ["group != null", "group != null"],
      ["tags has bert", 'tags has "bert"'],
      ['tags has "lr:1e-3"', 'tags has "lr:1e-3"'],
      ["best_val_loss < 0.5", "best_val_loss < 0.5"],
      ["best_val_loss <= .5", "best_val_loss <= 0.5"],
      ["epochs_completed > 10", "epochs_completed > 10"],
      ["steps_completed >= 1e3", "steps_completed >= 1000"],
      ["final_loss = -2", "final_loss = -2"],
      ["final_val_loss != 1.5E-2", "final_val_loss != 0.015"],
      ["best_epoch = null", "best_epoch = null"],
      ["config.lr < 1e-3", "config.lr < 0.001"],
      ['config.optimizer = "adam"', 'config.optimizer = "adam"'],
      ["config.model.width >= 128", "config.model.width >= 128"],
      ["config.amp = true", "config.amp = true"],
      ["config.amp != false", "config.amp != false"],
      ['config.name ~ "res"', 'config.name ~ "res"'],
      ["config.seed = null", "config.seed = null"],
      ["flags.overfitting", "flags.overfitting = true"],
      ["flags.plateau = false", "flags.plateau = false"],
      ['created_at >= "2026-12-01"', 'created_at >= "2026-12-01T00:00:00.000Z"'],
      ['completed_at < "2026-12-07T10:00:00Z"', 'completed_at < "2026-12-07T10:00:00.000Z"'],
      ['started_at > "2026-12-07 10:00"', 'started_at > "2026-12-07T10:00:00.000Z"'],
      ['started_at > "2026-12-07T12:00:00+02:00"', 'started_at > "2026-12-07T10:00:00.000Z"'],
      ['name = "say \\"hi\\" \\\\ bye"', 'name = "say \\"hi\\" \\\\ bye"'],
    ];
    for (const [q, tree] of cases) expect(`${q} → ${show(parseQuery(q))}`).toBe(`${q} → ${tree}`);
  });

  test("comparisons keep the position of their field", () => {
    const tree = parseQuery('tags has "a" and  config.lr < 1');
    expect(tree?.kind).toBe("and");
    if (tree?.kind !== "and") return;
    expect([tree.left.pos, tree.right.pos]).toEqual([0, 18]);
  });

  test("a syntax error names the 0-based position of the token at fault", () => {
    const cases: [string, number, string][] = [
      ['tags has "bert" and config.lr <', 31, "expected a value after '<'"],
      ['group = "sweep-7" and config.lr < and', 34, "expected a value after '<'"],
      ['name = "open', 7, "unterminated string"],
      ['name = "a\\n"', 9, "escape"],
      ["best_val_loss < 1 best_epoch = 2", 18, "expected 'and', 'or' or the end of the query"],
      ["(flags.stalled or flags.plateau", 31, "')' to close the '(' at 0"],
      ["flags.stalled and", 17, "expected a field"],
      ["and flags.stalled", 0, "expected a field"],
      ["name", 4, "expected an operator after 'name'"],
      ['best_val_loss < "low"', 16, "expected a number after '<'"],
      ["status = sleeping", 9, "expected a status"],
      ['tags = "x"', 5, "'=' does not apply to tags (use has)"],
      ['name < "x"', 5, "'<' does not apply to name"],
      ['created_at > "yesterday"', 13, "expected a date"],
      ["epochs_completed = null", 19, "epochs_completed is never null"],
      ["config.lr ~ 3", 12, "expected a quoted string after '~'"],
      ["flags.stalled = 1", 16, "expected true or false"],
      ['name = "a" $ x', 11, 'unexpected character "$"'],
      ["config.lr < 1e999", 12, "number out of range"],
    ];
    for (const [q, position, message] of cases) {
      const f = failure(q);
      expect(`${q} → ${f.code} at ${f.position}`).toBe(`${q} → QUERY_SYNTAX at ${position}`);
      expect(f.message).toContain(`query.q at ${position}: `);
      expect(f.message).toContain(message);
    }
  });

  test("an unknown field, flag or configuration path is QUERY_FIELD at its position", () => {
    expect(failure('tags has "a" and colour = "red"')).toMatchObject({ code: "QUERY_FIELD", position: 17 });
    expect(failure("flags.sad")).toMatchObject({ code: "QUERY_FIELD", position: 0 });
    expect(failure("best_val_loss < 1 or config. = 1")).toMatchObject({ code: "QUERY_FIELD", position: 21 });
    expect(failure("config.a..b = 1")).toMatchObject({ code: "QUERY_FIELD", position: 0 });
    expect(failure("config.a.b.c.d.e.f.g.h.i = 1")).toMatchObject({ code: "QUERY_FIELD", position: 0 });
  });

  test("a query nested past its bound or longer than 2,000 characters is refused, not recursed into", () => {
    expect(failure(`${"(".repeat(40)}flags.stalled${")".repeat(40)}`).message).toContain("nested more than 32 deep");
    expect(failure(`${"not ".repeat(40)}flags.stalled`).message).toContain("nested more than 32 deep");
    expect(failure(`name = "${"x".repeat(2000)}"`)).toMatchObject({ code: "QUERY_SYNTAX", position: 2000 });
  });

  test("a value with quotes, semicolons and SQL stays one string value", () => {
    const tree = parseQuery('name = "x\\"; DROP TABLE operations; --"');
    expect(show(tree)).toBe('name = "x\\"; DROP TABLE operations; --"');
  });

  test("sort takes any field but tags, created_at by default; an unknown one is QUERY_FIELD naming query.sort", () => {
    expect(parseSort(undefined)).toEqual({ kind: "date", name: "created_at" });
    expect(parseSort("config.model.width")).toEqual({ kind: "config", path: "model.width" });
    expect(parseSort("flags.stalled")).toEqual({ kind: "flag", name: "stalled" });
    for (const bad of ["tags", "colour", "config."]) {
      let err: unknown;
      try {
        parseSort(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TrainwatchError);
      expect((err as TrainwatchError).code).toBe("QUERY_FIELD");
      expect((err as TrainwatchError).details?.field).toBe("query.sort");
    }
  });
});
