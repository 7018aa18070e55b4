/** Liveness for people, load balancers and the Docker healthcheck. */
import { Elysia } from "elysia";
import { Type } from "@sinclair/typebox";
import { Envelope } from "../http/index.ts";
import type { AppDeps } from "./deps.ts";

export const healthRoutes = (deps: AppDeps) =>
  new Elysia({ name: "trainwatch/health" }).get(
    "/health",
    () => ({
      success: true as const,
      data: {
        status: "ok" as const,
        version: deps.version,
        uptime_s: Math.round(process.uptime()),
        trainers: deps.trainers?.describe() ?? null,
      },
    }),
    {
      response: {
        200: Envelope(
          Type.Object({
            status: Type.Literal("ok"),
            version: Type.String(),
            uptime_s: Type.Number(),
            trainers: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
          }),
        ),
      },
      detail: {
        tags: ["system"],
        summary: "Health",
        description:
          "Always public (no token). Reports version, uptime and trainer capacity, and under `trainers.executors` each recipe executor's state by name (for Slurm: `reachable`, the outage's message while slurmrestd does not answer, and its poll count).",
        security: [], // public even when TRAINWATCH_TOKEN is set; see finalizeDocument
      },
    },
  );
