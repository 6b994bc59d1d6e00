import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { alertTargetSchema } from "../alerts/alerter.ts";
import { type ApiDeps, doc, parseInput } from "./deps.ts";

const tags = ["alerts"];

/** Alert targets (admin): where state changes and deliveries failed for good are announced. */
export function alertTargetRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    "/v1/alert-targets",
    { schema: { tags, summary: "List alert targets (secrets redacted)" } },
    async () => ({
      data: await deps.alerts.list(),
    }),
  );

  app.post(
    "/v1/alert-targets",
    {
      schema: {
        tags,
        summary:
          "Create or replace (by name) an alert target: a webhook signed the Standard Webhooks way, or a Slack incoming webhook. A generated secret is shown once.",
        body: doc(alertTargetSchema),
      },
    },
    async (req, reply) => {
      const input = parseInput(alertTargetSchema, req.body);
      const { created, target, secret } = await deps.alerts.upsert(input);
      return reply.code(created ? 201 : 200).send({ ...target, ...(secret ? { secret } : {}) });
    },
  );

  app.delete(
    "/v1/alert-targets/:id",
    { schema: { tags, summary: "Delete an alert target" } },
    async (req, reply) => {
      await deps.alerts.remove((req.params as { id: string }).id);
      return reply.code(204).send();
    },
  );

  const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) });
  app.get(
    "/v1/notifications",
    {
      schema: {
        tags,
        summary: "Recent alert notifications, newest first, with status, attempts and last error",
        querystring: doc(listQuery),
      },
    },
    async (req) => {
      const q = parseInput(listQuery, req.query ?? {});
      return { data: await deps.alerts.notifications(q.limit) };
    },
  );
}
