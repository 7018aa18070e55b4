/**
 * How the agents reach Trainwatch: each spawns the stdio MCP server (`bun run src/mcp`) with its own environment, so
 * TRAINWATCH_URL and TRAINWATCH_TOKEN pick the API, and talks to it as any MCP client would. Tool failures become ToolError.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");

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
        const err = (res.structuredContent as { error?: { code?: string } } | undefined)?.error;
        const text = (res.content as Array<{ type: string; text?: string }>).find((c) => c.type === "text")?.text ?? "tool failed";
        throw new ToolError(err?.code ?? "TOOL_ERROR", text);
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
