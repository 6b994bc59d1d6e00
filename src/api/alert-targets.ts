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
  const notification = z.object({
    id: z.string().describe("Also the message's `webhook-id` (the same on every attempt)"),
    targetId: z.string(),
    kind: z.string().describe("The alert's `type`, e.g. `destination.circuit_opened`"),
    destinationId: z.string().nullable(),
    status: z.enum(["pending", "sent", "failed"]),
    attempts: z.number().int(),
    lastError: z.string().nullable().describe("An error code only (`http_503`, `network_error`, …)"),
    suppressed: z
      .number()
      .int()
      .describe("Alerts of the same target, destination and type held back by the debounce since this one"),
    nextAttemptAt: z.number().nullable().describe("While pending: when it is due (ms since the epoch)"),
    payload: z.unknown().describe("The body sent"),
    createdAt: z.number(),
    updatedAt: z.number(),
  });
  const error = z.object({
    error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
  });
  app.get(
    "/v1/notifications",
    {
      schema: {
        tags,
        summary: "Recent alert notifications, newest first, with status, attempts and last error",
        querystring: doc(listQuery),
        response: { 200: doc(z.object({ data: z.array(notification) })), 400: doc(error) },
      },
    },
    async (req) => {
      const q = parseInput(listQuery, req.query ?? {});
      return { data: await deps.alerts.notifications(q.limit) };
    },
  );
}
