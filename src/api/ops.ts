import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { ApiDeps } from "./deps.ts";
import { errorResponse, json, other } from "./openapi.ts";

/** Health, readiness and metrics: no API key (put them behind your network's edge). */
export function opsRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    "/healthz",
    {
      schema: {
        tags: ["operations"],
        summary: "The process is up",
        security: [],
        response: {
          200: json("The process answers", z.object({ status: z.literal("ok") }), { status: "ok" }),
        },
      },
    },
    async () => ({
      status: "ok",
    }),
  );
  app.get(
    "/readyz",
    {
      schema: {
        tags: ["operations"],
        summary: "The database answers",
        security: [],
        response: {
          200: json(
            "The database answers",
            z.object({ status: z.literal("ready"), database: z.enum(["sqlite", "postgres"]) }),
            { status: "ready", database: "postgres" },
          ),
          503: errorResponse,
        },
      },
    },
    async (_req, reply) => {
      try {
        await deps.store.ping();
        return { status: "ready", database: deps.store.databaseKind };
      } catch {
        return reply.code(503).send({
          error: { code: "database_unavailable", message: "the database does not answer", details: [] },
        });
      }
    },
  );
  app.get(
    "/metrics",
    {
      schema: {
        tags: ["operations"],
        summary: "Prometheus metrics",
        security: [],
        response: {
          200: other(
            "Prometheus text format: leadpush_* metrics and the standard process_*/nodejs_* ones",
            "text/plain",
            "# TYPE leadpush_leads_accepted_total counter\nleadpush_leads_accepted_total 1200\n",
          ),
        },
      },
    },
    async (_req, reply) => {
      const body = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).send(body);
    },
  );
}
