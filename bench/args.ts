/**
 * The benches' command line: `--name=value` and bare `--flag` arguments, as a map from name to value (a flag's value
 * is undefined, so `args.has("flag")`). A value may itself contain `=` (a PostgreSQL URL's query string).
 */
export const args = new Map(
  process.argv.slice(2).map((a): [string, string | undefined] => {
    const [name, ...value] = a.replace(/^--/, "").split("=");
    return [name!, value.length > 0 ? value.join("=") : undefined];
  }),
);

/** A numeric argument, or `fallback` when it is absent. */
export const int = (name: string, fallback: number) => Number(args.get(name) ?? fallback);
