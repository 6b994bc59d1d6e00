import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { destinationCommonSchema } from "../destinations/model.ts";
import type { DestinationView } from "../destinations/service.ts";
import { AppError } from "../util/errors.ts";
import { type ApiDeps, doc, parseInput } from "./deps.ts";
import { dryRun, testLead, testLeadFields } from "./dry-run.ts";
import { withConnectInfo } from "./oauth.ts";
import {
  authUnionDoc,
  destinationExample,
  destinationSchema,
  exchangeExample,
  exchangeSchema,
  json,
  noContent,
} from "./openapi.ts";

const one = (description: string) => json(description, destinationSchema, destinationExample);

const testAnswer = z.object({
  destination: z.string(),
  sent: z.boolean(),
  auth: z.object({
    type: z.string(),
    ok: z.boolean(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
  }),
  outcome: z.looseObject({ kind: z.string() }).describe("`dry_run`, or what the push came to"),
  requests: z.array(exchangeSchema),
  durationMs: z.number(),
});

/** The create/replace body for /docs: the common fields, with `auth` as a union on `type`. */
function destinationBodyDoc() {
  const body = doc(destinationCommonSchema) as { properties: Record<string, unknown> };
  body.properties.auth = authUnionDoc();
  return body;
}

const testSchema = z
  .object({
    ...testLeadFields,
    send: z.boolean().default(false).describe("Really send it and return the client's answer"),
  })
  .strict();

/** Destinations CRUD and the dry run: the `admin` scope. */
export function destinationRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const tags = ["destinations"];
  const view = (v: DestinationView) => withConnectInfo(v, deps.config.publicUrl);
  app.post(
    "/v1/destinations",
    {
      schema: {
        tags,
        summary: "Create a destination (secrets are write-only)",
        description:
          "Common fields below; each connector adds its own (url, baseUrl, options… — see the README). " +
          'Secrets are sealed at rest and read back as "[redacted]".',
        body: destinationBodyDoc(),
        response: { 201: one("The destination as stored, secrets redacted") },
      },
    },
    async (req, reply) => {
      if (req.body === undefined || req.body === null)
        throw new AppError(400, "empty_body", "the body is empty");
      return reply.code(201).send(view(await deps.destinations.create(req.body)));
    },
  );
  app.get(
    "/v1/destinations",
    {
      schema: {
        tags,
        summary: "All destinations, secrets redacted",
        response: {
          200: json("Every destination", z.object({ data: z.array(destinationSchema) }), {
            data: [destinationExample],
          }),
        },
      },
    },
    async () => ({
      data: (await deps.destinations.list()).map(view),
    }),
  );
  app.get(
    "/v1/destinations/:id",
    {
      schema: {
        tags,
        summary: "One destination by id or name",
        response: { 200: one("The destination with its health figures (`health`)") },
      },
    },
    async (req) => {
      const v = view(await deps.destinations.get((req.params as { id: string }).id));
      const health = await deps.store.reads.destinationHealth(v.id, deps.now());
      return health ? { ...v, health } : v;
    },
  );
  app.patch(
    "/v1/destinations/:id",
    {
      schema: {
        tags,
        summary: 'Change fields; secrets left out or sent as "[redacted]" are kept',
        description: "A JSON merge patch of the destination's fields (see POST /v1/destinations).",
        response: { 200: one("The destination as changed") },
      },
    },
    async (req) => {
      if (req.body === undefined || req.body === null)
        throw new AppError(400, "empty_body", "the body is empty");
      const updated = await deps.destinations.update((req.params as { id: string }).id, req.body);
      // Resumed or enabled again: its waiting deliveries go now, here and in other processes.
      if (updated.paused === false && updated.enabled !== false) {
        deps.events.emit("work:available");
        await deps.store.notifyWork().catch(() => undefined);
      }
      return view(updated);
    },
  );
  app.delete(
    "/v1/destinations/:id",
    {
      schema: { tags, summary: "Delete a destination", response: { 204: noContent("Deleted") } },
    },
    async (req, reply) => {
      await deps.destinations.remove((req.params as { id: string }).id);
      return reply.code(204).send();
    },
  );

  app.post(
    "/v1/destinations/:id/test",
    {
      schema: {
        tags,
        summary:
          "Dry run: the auth handshake and the request that would be sent (redacted); send: true really sends",
        body: doc(testSchema),
        response: {
          200: json("What the handshake did and the request that would be (or was) sent", testAnswer, {
            destination: "crm",
            sent: false,
            auth: { type: "bearer", ok: true },
            outcome: { kind: "dry_run" },
            requests: [
              {
                step: exchangeExample.step,
                method: exchangeExample.method,
                url: exchangeExample.url,
                requestHeaders: exchangeExample.requestHeaders,
                requestBody: exchangeExample.requestBody,
                durationMs: 0,
              },
            ],
            durationMs: 3,
          }),
        },
      },
    },
    async (req) => {
      const body = parseInput(testSchema, req.body ?? {});
      const lead = await testLead(deps, body);
      const destination = await deps.destinations.resolve((req.params as { id: string }).id);
      return dryRun(deps, destination, { lead, send: body.send });
    },
  );
}
