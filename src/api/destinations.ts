import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { destinationCommonSchema } from "../destinations/model.ts";
import type { DestinationView } from "../destinations/service.ts";
import { AppError } from "../util/errors.ts";
import { type ApiDeps, doc, parseInput } from "./deps.ts";
import { dryRun, testLead, testLeadFields } from "./dry-run.ts";
import { withConnectInfo } from "./oauth.ts";

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
        body: doc(destinationCommonSchema),
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
    { schema: { tags, summary: "All destinations, secrets redacted" } },
    async () => ({
      data: (await deps.destinations.list()).map(view),
    }),
  );
  app.get(
    "/v1/destinations/:id",
    { schema: { tags, summary: "One destination by id or name" } },
    async (req) => {
      const v = view(await deps.destinations.get((req.params as { id: string }).id));
      const health = await deps.store.reads.destinationHealth(v.id, deps.now());
      return health ? { ...v, health } : v;
    },
  );
  app.patch(
    "/v1/destinations/:id",
    { schema: { tags, summary: 'Change fields; secrets left out or sent as "[redacted]" are kept' } },
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
    { schema: { tags, summary: "Delete a destination" } },
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
