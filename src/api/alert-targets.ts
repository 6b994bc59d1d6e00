import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { alertTargetSchema } from "../alerts/alerter.ts";
import { type ApiDeps, doc, parseInput } from "./deps.ts";
import { json, noContent } from "./openapi.ts";

const targetSchema = z.looseObject({
  id: z.string(),
  name: z.string(),
  url: z.string().describe("A Slack webhook's path is redacted"),
  format: z.string(),
  secret: z.string().describe('"[redacted]" on reads; the generated signing secret once, on create'),
  createdAt: z.number(),
});
const targetExample = {
  id: "01JTX2AL0001",
  name: "ops",
  url: "https://hooks.example.com/leadpush",
  format: "standard",
  secret: "[redacted]",
  createdAt: 1777887000000,
};

const tags = ["alerts"];

/** Alert targets (admin): where state changes and deliveries failed for good are announced. */
export function alertTargetRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    "/v1/alert-targets",
    {
      schema: {
        tags,
        summary: "List alert targets (secrets redacted)",
        response: {
          200: json("Every alert target", z.object({ data: z.array(targetSchema) }), {
            data: [targetExample],
          }),
        },
      },
    },
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
        response: {
          201: json("Created; a generated secret is in `secret`, shown this once", targetSchema, {
            ...targetExample,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
          }),
          200: json("Replaced (same name)", targetSchema, targetExample),
        },
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
    {
      schema: { tags, summary: "Delete an alert target", response: { 204: noContent("Deleted") } },
    },
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
  app.get(
    "/v1/notifications",
    {
      schema: {
        tags,
        summary: "Recent alert notifications, newest first, with status, attempts and last error",
        querystring: doc(listQuery),
        response: {
          200: json("Notifications", z.object({ data: z.array(notification) }), {
            data: [
              {
                id: "01JTX2N00001",
                targetId: "01JTX2AL0001",
                kind: "destination.circuit_opened",
                destinationId: "01JTWZZ9QQ01",
                status: "sent",
                attempts: 1,
                lastError: null,
                suppressed: 0,
                nextAttemptAt: null,
                payload: { type: "destination.circuit_opened", data: { destination: "crm" } },
                createdAt: 1777887000000,
                updatedAt: 1777887000000,
              },
            ],
          }),
        },
      },
    },
    async (req) => {
      const q = parseInput(listQuery, req.query ?? {});
      return { data: await deps.alerts.notifications(q.limit) };
    },
  );
}
