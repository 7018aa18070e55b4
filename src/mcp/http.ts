/**
 * The MCP server on the API at `/mcp` (Streamable HTTP, stateless, JSON responses), behind the same bearer token (the
 * app's gate checks it, and answers GET and DELETE, which a stateless endpoint has no use for, with 405).
 * Its tools use the one typed client with `fetch` bound to the app's own `handle`, so an MCP call takes the same
 * route, validation and auth as any REST call, without a network hop.
 */
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { TrainwatchClient } from "../client/api.ts";
import { ErrorEnvelope, jsonBody } from "../http/index.ts";
import { documented, noContent } from "../http/openapi.ts";
import { createMcpServer } from "./server.ts";

/** JSON-RPC 2.0 shapes for the document; the SDK's transport validates the messages themselves. */
const RpcId = Type.Union([Type.String(), Type.Integer(), Type.Null()]);
const RpcMessage = Type.Object(
  {
    jsonrpc: Type.Literal("2.0"),
    id: Type.Optional(RpcId),
    method: Type.Optional(Type.String()),
    params: Type.Optional(Type.Unknown()),
  },
  { description: "A JSON-RPC request or notification (`initialize`, `tools/list`, `tools/call`, …)." },
);
const RpcError = Type.Object({ code: Type.Integer(), message: Type.String(), data: Type.Optional(Type.Unknown()) });
const RpcReply = Type.Union([
  Type.Object({ jsonrpc: Type.Literal("2.0"), id: RpcId, result: Type.Unknown() }),
  Type.Object({ jsonrpc: Type.Literal("2.0"), id: RpcId, error: RpcError }),
]);
const RpcErrorReply = Type.Object({ jsonrpc: Type.Literal("2.0"), id: RpcId, error: RpcError });

/**
 * `handle` answers a Request as the whole app would (pass `(r) => app.handle(r)`); `token` is the API's bearer token,
 * required on /mcp and forwarded by the in-process client.
 */
export const mcpHttp = (opts: {
  token: string | null;
  maxBodyBytes: number;
  handle: (req: Request) => Promise<Response>;
}) => {
  const client = new TrainwatchClient({
    baseUrl: "http://localhost",
    token: opts.token,
    fetch: ((input: string | URL | Request, init?: RequestInit) =>
      opts.handle(new Request(input, init))) as typeof fetch,
  });
  const detail = { tags: ["mcp"], summary: "MCP endpoint (Streamable HTTP, stateless)" };
  return new Elysia({ name: "trainwatch/mcp" }).use(jsonBody(opts.maxBodyBytes)).post(
    "/mcp",
    async ({ request, body }) => {
      const server = createMcpServer(client);
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
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
          "JSON-RPC messages of the Model Context Protocol. Same tools as `bun run src/mcp` (stdio); needs `Authorization: Bearer <TRAINWATCH_TOKEN>` when a token is set, and `Accept: application/json, text/event-stream` (the Streamable HTTP rule, though replies are always JSON).",
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: Type.Union([RpcMessage, Type.Array(RpcMessage, { minItems: 1 })]) as never,
            },
          },
        },
        responses: {
          // Both media types, so a generated client sends the Accept the transport requires (OpenAPI ignores an
          // `Accept` header parameter); this server's replies are always the JSON one.
          200: {
            description:
              "The JSON-RPC reply (a result, or an error such as -32601 method not found); an array for a batch. Send `Accept: application/json, text/event-stream` (406 otherwise); the reply is always application/json.",
            content: {
              "application/json": { schema: Type.Union([RpcReply, Type.Array(RpcReply)]) as never },
              "text/event-stream": {
                schema: {
                  type: "string",
                  description: "Never sent by this server; listed because the client must accept it.",
                } as never,
              },
            },
          },
          202: noContent("Accepted: the body held only notifications or responses, so there is no reply"),
          400: documented(
            "Malformed JSON (the API's error envelope) or not a JSON-RPC message (a JSON-RPC error)",
            Type.Union([ErrorEnvelope, RpcErrorReply]),
          ),
          406: documented("The Accept header lacks application/json or text/event-stream", RpcErrorReply),
          415: documented(
            "Content-Type is not application/json (the API's error envelope, before the MCP transport sees it)",
            ErrorEnvelope,
          ),
        },
      },
    },
  );
};
