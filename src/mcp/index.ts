/**
 * stdio entry: `bun run src/mcp`. Serves the Trainwatch tools on stdin/stdout and reaches the API at TRAINWATCH_URL
 * (default http://127.0.0.1:8000) with TRAINWATCH_TOKEN when set. stdout carries the protocol; diagnostics go to stderr.
 */
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { TrainwatchClient } from "../client/api.ts";
import { createMcpServer } from "./server.ts";

const client = TrainwatchClient.fromEnv(process.env);
const server = createMcpServer(client);
server.onerror = (err) => console.error("[mcp] protocol error:", err);
await server.connect(new StdioServerTransport());
