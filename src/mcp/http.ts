/**
 * The MCP server on the API at `/mcp` (Streamable HTTP, stateless, JSON responses), behind the same bearer token.
 * Its tools use the one typed client with `fetch` bound to the app's own `handle`, so an MCP call takes the same
 * route, validation and auth as any REST call, without a network hop.
 */
import { Elysia } from "elysia";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { TrainwatchClient } from "../client/api.ts";
import { bearerAuth } from "../routes/http.ts";
import { createMcpServer } from "./server.ts";

/** Stateless mode keeps no session, so the GET stream and DELETE of a session do not apply. */
const notAllowed = () =>
  new Response(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed: POST JSON-RPC messages to /mcp." }, id: null }), {
    status: 405,
    headers: { "content-type": "application/json", allow: "POST" },
  });

/**
 * `handle` answers a Request as the whole app would (pass `(r) => app.handle(r)`); `token` is the API's bearer token,
 * required on /mcp and forwarded by the in-process client.
 */
export const mcpHttp = (opts: { token: string | null; handle: (req: Request) => Promise<Response> }) => {
  const client = new TrainwatchClient({
    baseUrl: "http://localhost",
    token: opts.token,
    fetch: ((input: string | URL | Request, init?: RequestInit) => opts.handle(new Request(input, init))) as typeof fetch,
  });
  const detail = { tags: ["mcp"], summary: "MCP endpoint (Streamable HTTP, stateless)" };
  return new Elysia({ name: "trainwatch/mcp" })
    .use(bearerAuth(opts.token))
    .post(
      "/mcp",
      async ({ request, body }) => {
        const server = createMcpServer(client);
        const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
        await server.connect(transport);
        try {
          // JSON-response mode: the reply is complete once handleRequest resolves, so closing afterwards is safe.
          return await transport.handleRequest(request, { parsedBody: body });
        } finally {
          await server.close();
        }
      },
      {
        detail: {
          ...detail,
          description:
            "JSON-RPC messages of the Model Context Protocol. Same tools as `bun run src/mcp` (stdio); needs `Authorization: Bearer <TRAINWATCH_TOKEN>` when a token is set.",
        },
      },
    )
    .get("/mcp", notAllowed, { detail: { ...detail, hide: true } })
    .delete("/mcp", notAllowed, { detail: { ...detail, hide: true } });
};
