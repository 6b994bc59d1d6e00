import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { AppError, notFound } from "../util/errors.ts";
import { type ApiDeps, doc, listQuery, parseInput } from "./deps.ts";
import { REPLAYABLE_STATUSES } from "../domain/status.ts";
import { deliveryFilter, deliveryQuery } from "./list-filters.ts";
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

const deliveryListQuery = listQuery.extend(deliveryFilter.shape);
const replaySchema = z
  .object({
    destination: z.string().optional().describe("Destination id or name; all destinations when absent"),
    status: z.array(z.enum(REPLAYABLE_STATUSES)).default(["failed"]),
    since: z.iso
      .datetime({ offset: true })
      .optional()
      .describe("Only deliveries created at or after this time"),
    until: z.iso.datetime({ offset: true }).optional(),
    errorCode: deliveryFilter.shape.errorCode,
    dryRun: z
      .boolean()
      .default(false)
      .describe("Only count what would be replayed now (the same filter and cap), change nothing"),
    limit: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe("At most this many (oldest first); the server's cap LEADPUSH_REPLAY_MAX (10 000) at most"),
  })
  .strict();
const replayAnswer = z.object({
  replayed: z.number().int().optional().describe("Deliveries made due again (absent on a dry run)"),
  count: z.number().int().optional().describe("Dry run: deliveries a replay would take now"),
  dryRun: z.boolean().optional(),
  limit: z.number().int().describe("The cap this call used"),
  capped: z.boolean().describe("True when the cap was reached: more match, call again"),
});

/** The attempt log, retry and replay: the `admin` scope. */
export function deliveryRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const store = deps.store;
  app.get(
    "/v1/deliveries",
    {
      schema: {
        tags: ["deliveries"],
        summary: "Deliveries, newest first, by destination, status, error code and time",
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
        ...(await deliveryQuery(deps, q)),
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
        summary: "Send many deliveries again, by destination, status, error code and time",
        description:
          "Matching deliveries (not in flight, lead not erased) become due now, marked as a replay: a " +
          "rate-limited destination gives replays at most half its budget while live leads wait. At " +
          "most `limit` (LEADPUSH_REPLAY_MAX, 10 000 by default) per call, oldest first; `capped` says " +
          "more match. `dryRun: true` counts what the same call would take now and changes nothing.",
        body: doc(replaySchema),
        response: {
          200: json("Dry run: how many deliveries a replay would take now", replayAnswer, {
            dryRun: true,
            count: 12,
            limit: 10000,
            capped: false,
          }),
          202: json("How many deliveries are due again", replayAnswer, {
            replayed: 12,
            limit: 10000,
            capped: false,
          }),
        },
      },
    },
    async (req, reply) => {
      const body = parseInput(replaySchema, req.body ?? {});
      const limit = Math.min(body.limit ?? deps.config.replayMax, deps.config.replayMax);
      const filter = {
        statuses: body.status,
        destinationId: body.destination ? (await deps.destinations.get(body.destination)).id : undefined,
        since: body.since ? Date.parse(body.since) : undefined,
        until: body.until ? Date.parse(body.until) : undefined,
        errorCode: body.errorCode,
      };
      if (body.dryRun) {
        // One more than the cap tells whether the cap would be reached.
        const count = await store.countReplayable({ ...filter, limit: limit + 1 }, deps.now());
        return reply
          .code(200)
          .send({ dryRun: true, count: Math.min(count, limit), limit, capped: count > limit });
      }
      const replayed = await store.replay({ ...filter, limit }, deps.now());
      if (replayed > 0) {
        deps.events.emit("work:available");
        await store.notifyWork();
      }
      const more =
        replayed === limit && (await store.countReplayable({ ...filter, limit: 1 }, deps.now())) > 0;
      return reply.code(202).send({ replayed, limit, capped: more });
    },
  );
}
