import type { FastifyInstance } from "fastify";
import type { ApiDeps } from "./deps.ts";

/** Health, readiness and metrics: no API key (put them behind your network's edge). */
export function opsRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get("/healthz", { schema: { tags: ["operations"], summary: "The process is up" } }, async () => ({
    status: "ok",
  }));
  app.get(
    "/readyz",
    { schema: { tags: ["operations"], summary: "The database answers" } },
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
    { schema: { tags: ["operations"], summary: "Prometheus metrics" } },
    async (_req, reply) => {
      const body = await deps.metrics.registry.metrics();
      return reply.type(deps.metrics.registry.contentType).send(body);
    },
  );
}
