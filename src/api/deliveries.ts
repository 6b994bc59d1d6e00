import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { ExpressionBuilder } from "kysely";
import type { Database } from "../store/schema.ts";
import { AppError, notFound } from "../util/errors.ts";
import { type ApiDeps, doc, listQuery, parseInput } from "./deps.ts";
import { deliveryView, loadDeliveries, snapshot } from "./views.ts";
import { DELIVERY_STATUSES, REPLAYABLE_STATUSES } from "../domain/status.ts";

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

/** A delivery whose lead was not erased (the erasure made it final for good). */
const leadNotErased = (eb: ExpressionBuilder<Database, "deliveries">) =>
  eb.not(
    eb.exists(
      eb
        .selectFrom("leads")
        .select("leads.id")
        .whereRef("leads.id", "=", "deliveries.lead_id")
        .where("leads.erased_at", "is not", null),
    ),
  );

/** The attempt log, retry and replay: the `admin` scope. */
export function deliveryRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const db = deps.kysely;

  app.get(
    "/v1/deliveries",
    {
      schema: {
        tags: ["deliveries"],
        summary: "Deliveries, newest first",
        querystring: doc(deliveryListQuery),
      },
    },
    async (req) => {
      const q = parseInput(deliveryListQuery, req.query);
      let query = db
        .selectFrom("deliveries")
        .leftJoin("destinations", "destinations.id", "deliveries.destination_id")
        .selectAll("deliveries")
        .select("destinations.name as destination_name")
        .orderBy("deliveries.id", "desc")
        .limit(q.limit + 1);
      if (q.cursor) query = query.where("deliveries.id", "<", q.cursor);
      if (q.status) query = query.where("deliveries.status", "=", q.status);
      if (q.lead) query = query.where("deliveries.lead_id", "=", q.lead);
      if (q.destination) {
        const d = await deps.destinations.get(q.destination);
        query = query.where("deliveries.destination_id", "=", d.id);
      }
      const rows = await query.execute();
      const page = rows.slice(0, q.limit);
      return {
        data: page.map((r) => deliveryView(r)),
        nextCursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null,
      };
    },
  );

  app.get(
    "/v1/deliveries/:id",
    { schema: { tags: ["deliveries"], summary: "A delivery with every attempt" } },
    async (req) => {
      const { id } = req.params as { id: string };
      const [d] = await snapshot(db, (trx) => loadDeliveries(trx, { id }, true));
      if (!d) throw notFound("delivery", id);
      return d;
    },
  );

  app.post(
    "/v1/deliveries/:id/retry",
    { schema: { tags: ["deliveries"], summary: "Try a delivery again now (one more attempt)" } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const res = await db
        .updateTable("deliveries")
        .set({
          status: "pending",
          next_attempt_at: deps.now(),
          updated_at: deps.now(),
          lease_owner: null,
          lease_until: null,
        })
        .where("id", "=", id)
        .where("status", "in", ["failed", "retrying", "delivered", "pending"])
        .where(leadNotErased)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) {
        const found = await db
          .selectFrom("deliveries")
          .innerJoin("leads", "leads.id", "deliveries.lead_id")
          .select("leads.erased_at")
          .where("deliveries.id", "=", id)
          .executeTakeFirst();
        if (!found) throw notFound("delivery", id);
        if (found.erased_at !== null)
          throw new AppError(
            409,
            "lead_erased",
            "the lead of this delivery was erased: it is not sent again",
          );
      }
      deps.events.emit("work:available");
      await deps.db.notifyWork();
      const [d] = await loadDeliveries(db, { id }, false);
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
      },
    },
    async (req, reply) => {
      const body = parseInput(replaySchema, req.body ?? {});
      const now = deps.now();
      let q = db
        .updateTable("deliveries")
        .set({
          status: "pending",
          next_attempt_at: now,
          updated_at: now,
          lease_owner: null,
          lease_until: null,
        })
        .where("status", "in", body.status)
        // An erased lead's deliveries stay as its erasure left them.
        .where(leadNotErased);
      if (body.destination)
        q = q.where("destination_id", "=", (await deps.destinations.get(body.destination)).id);
      if (body.since) q = q.where("created_at", ">=", Date.parse(body.since));
      if (body.until) q = q.where("created_at", "<", Date.parse(body.until));
      const res = await q.executeTakeFirst();
      deps.events.emit("work:available");
      await deps.db.notifyWork();
      return reply.code(202).send({ replayed: Number(res.numUpdatedRows) });
    },
  );
}
