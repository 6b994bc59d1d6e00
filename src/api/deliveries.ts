import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { AppError, notFound } from "../util/errors.ts";
import { type ApiDeps, doc, listQuery, parseInput } from "./deps.ts";
import { DELIVERY_STATUSES, REPLAYABLE_STATUSES } from "../domain/status.ts";
import { deliveriesView, deliveryView } from "./views.ts";
import { deliveryExample, deliverySchema, exchangeExample, json, page } from "./openapi.ts";

const withAttempts = {
  ...deliveryExample,
  attempts: [
    {
      number: 1,
      at: deliveryExample.createdAt,
      durationMs: 84,
      outcome: "delivered",
      request: { method: "POST", url: exchangeExample.url, headers: exchangeExample.requestHeaders },
      responseStatus: 201,
      responseExcerpt: exchangeExample.responseBody,
      error: null,
      exchanges: [exchangeExample],
    },
  ],
};

const deliveryListQuery = listQuery.extend({
  status: z.enum(DELIVERY_STATUSES).optional(),
  destination: z.string().optional().describe("Destination id or name"),
  lead: z.string().optional(),
});
const replaySchema = z
  .object({
    destination: z.string().optional().describe("Destination id or name; all destinations when absent"),
    status: z.array(z.enum(REPLAYABLE_STATUSES)).default(["failed"]),
    since: z.iso.datetime().optional().describe("Only deliveries created at or after this time"),
    until: z.iso.datetime().optional(),
  })
  .strict();

/** The attempt log, retry and replay: the `admin` scope. */
export function deliveryRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const store = deps.store;
  app.get(
    "/v1/deliveries",
    {
      schema: {
        tags: ["deliveries"],
        summary: "Deliveries, newest first",
        querystring: doc(deliveryListQuery),
        response: {
          200: json("A page of deliveries", page(deliverySchema), {
            data: [deliveryExample],
            nextCursor: null,
          }),
        },
      },
    },
    async (req) => {
      const q = parseInput(deliveryListQuery, req.query);
      const rows = await store.reads.deliveries({
        limit: q.limit,
        cursor: q.cursor,
        status: q.status,
        leadId: q.lead,
        destinationId: q.destination ? (await deps.destinations.get(q.destination)).id : undefined,
      });
      const page = rows.slice(0, q.limit);
      return {
        data: page.map((r) => deliveryView(r)),
        nextCursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null,
      };
    },
  );

  app.get(
    "/v1/deliveries/:id",
    {
      schema: {
        tags: ["deliveries"],
        summary: "A delivery with every attempt",
        response: { 200: json("The delivery and its attempts (redacted)", deliverySchema, withAttempts) },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string };
      const [d] = deliveriesView(await store.reads.delivery(id, true), true);
      if (!d) throw notFound("delivery", id);
      return d;
    },
  );

  app.post(
    "/v1/deliveries/:id/retry",
    {
      schema: {
        tags: ["deliveries"],
        summary: "Try a delivery again now (one more attempt)",
        response: {
          202: json("Due now: the worker sends it", deliverySchema, {
            ...deliveryExample,
            status: "retrying",
            deliveredAt: null,
          }),
        },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const retried = await store.retryNow(id, deps.now());
      if (retried === "not_found") throw notFound("delivery", id);
      if (retried === "erased")
        throw new AppError(409, "lead_erased", "the lead of this delivery was erased: it is not sent again");
      deps.events.emit("work:available");
      await store.notifyWork();
      const [d] = deliveriesView(await store.reads.delivery(id, false), false);
      return reply.code(202).send(d);
    },
  );

  app.post(
    "/v1/deliveries/replay",
    {
      schema: {
        tags: ["deliveries"],
        summary: "Send many deliveries again, by destination and status",
        body: doc(replaySchema),
        response: {
          202: json("How many deliveries are due again", z.object({ replayed: z.number().int() }), {
            replayed: 12,
          }),
        },
      },
    },
    async (req, reply) => {
      const body = parseInput(replaySchema, req.body ?? {});
      const replayed = await store.replay(
        {
          statuses: body.status,
          destinationId: body.destination ? (await deps.destinations.get(body.destination)).id : undefined,
          since: body.since ? Date.parse(body.since) : undefined,
          until: body.until ? Date.parse(body.until) : undefined,
        },
        deps.now(),
      );
      deps.events.emit("work:available");
      await store.notifyWork();
      return reply.code(202).send({ replayed });
    },
  );
}
