/**
 * How the agents reach Trainwatch: each spawns the stdio MCP server (`bun run src/mcp`) with its own environment, so
 * TRAINWATCH_URL and TRAINWATCH_TOKEN pick the API, and talks to it as any MCP client would. Tool failures become ToolError.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");

/**
 * What a person at the terminal can do about each failure. The MCP server's hints speak to a model ("call list_operations");
 * these speak to the person running the agent.
 */
const CLI_HINTS: Record<string, string> = {
  OPERATION_NOT_FOUND:
    "List operations with `curl -s $TRAINWATCH_URL/api/v1/operations` or open the dashboard at $TRAINWATCH_URL/.",
  UNREACHABLE:
    "Start the API with `npm start` (or `bun run src/server.ts`), or set TRAINWATCH_URL to a running server.",
  TIMEOUT: "The server may be overloaded; run the agent again in a few seconds.",
  UNAUTHORIZED: "Set TRAINWATCH_TOKEN to the server's token before running the agent.",
};

/** A tool answered with isError; `code` is the API's or the MCP server's (OPERATION_NOT_FOUND, UNREACHABLE, ...). */
export class ToolError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ToolError";
  }
  /** Worth retrying: the API was unreachable or slow. */
  get transient(): boolean {
    return this.code === "UNREACHABLE" || this.code === "TIMEOUT";
  }
}

export interface McpSession {
  /** Calls a tool and returns its structured result; throws ToolError when the tool reports a failure. */
  call<T>(name: string, args: Record<string, unknown>): Promise<T>;
  close(): Promise<void>;
}

/** Spawns the stdio MCP server and connects an SDK client to it. */
export async function connect(agentName: string): Promise<McpSession> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ["run", join(ROOT, "src/mcp/index.ts")],
    cwd: ROOT,
    env,
    stderr: "inherit",
  });
  const client = new Client({ name: agentName, version: "1.0.0" });
  await client.connect(transport);
  return {
    async call<T>(name: string, args: Record<string, unknown>): Promise<T> {
      const res = await client.callTool({ name, arguments: args });
      if (res.isError) {
        const err = (res.structuredContent as { error?: { code?: string; message?: string } } | undefined)?.error;
        const text =
          (res.content as Array<{ type: string; text?: string }>).find((c) => c.type === "text")?.text ?? "tool failed";
        const code = err?.code ?? "TOOL_ERROR";
        // The plain message plus a hint for the terminal, not the model-facing hint in the text content.
        const message = err?.message ? `${code}: ${err.message}` : text;
        const hint = CLI_HINTS[code];
        throw new ToolError(code, hint ? `${message}${/[.?!]$/.test(message) ? "" : "."} ${hint}` : message);
      }
      return res.structuredContent as T;
    },
    close: () => client.close(),
  };
}

/** Parses a positive number of seconds ("30", "0.2"); null when it is not one. */
export function parseSeconds(raw: string): number | null {
  const v = Number(raw);
  return raw.trim() !== "" && Number.isFinite(v) && v > 0 ? v : null;
}

/** Four decimals for a loss or accuracy, "-" when absent; "NaN" / "Infinity" from the wire as they are. */
export function fmt(v: unknown, digits = 4): string {
  if (v === null || v === undefined) return "-";
  if (typeof v === "string") return v;
  return (v as number).toFixed(digits);
}
