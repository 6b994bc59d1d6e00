import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { leadInputSchema } from "../lead/lead.ts";
import { eraseLeadData } from "../store/erasure.ts";
import { AppError, notFound } from "../util/errors.ts";
import { type ApiDeps, doc, listQuery, parseInput } from "./deps.ts";
import { leadView, loadDeliveries, loadRouting, snapshot } from "./views.ts";

const batchSchema = z.object({ leads: z.array(z.unknown()).min(1).max(1000) });
const leadListQuery = listQuery.extend({
  source: z.string().optional(),
  q: z.string().optional().describe("Text search in name, email and phone"),
});

/** POST /v1/leads and /v1/leads/batch: the `ingest` scope. */
export function leadIngestRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    "/v1/leads",
    {
      schema: {
        tags: ["leads"],
        summary: "Accept one lead",
        description:
          "Stored durably before 201 is returned. A repeated Idempotency-Key returns the first result with 200.",
        headers: { type: "object", properties: { "idempotency-key": { type: "string", maxLength: 200 } } },
        body: doc(leadInputSchema),
      },
    },
    async (req, reply) => {
      if (req.body === undefined || req.body === null) {
        throw new AppError(
          400,
          "empty_body",
          "the body is empty; send a JSON object with at least name and email or phone",
        );
      }
      const key = req.headers["idempotency-key"];
      const idempotencyKey = typeof key === "string" && key.length > 0 ? key.slice(0, 200) : undefined;
      const result = await deps.ingest.accept(req.body, idempotencyKey);
      return reply.code(result.created ? 201 : 200).send({
        id: result.id,
        ...(result.duplicateOf ? { duplicateOf: result.duplicateOf } : {}),
        deliveries: result.deliveries,
      });
    },
  );

  app.post(
    "/v1/leads/batch",
    {
      schema: {
        tags: ["leads"],
        summary: "Accept up to 1 000 leads in one transaction, one result per item",
        body: doc(batchSchema),
      },
    },
    async (req) => {
      const { leads } = parseInput(batchSchema, req.body);
      const results = await deps.ingest.acceptMany(leads);
      return {
        accepted: results.filter((r) => r.ok).length,
        rejected: results.filter((r) => !r.ok).length,
        results: results.map((r, index) =>
          r.ok
            ? {
                index,
                ok: true,
                id: r.result.id,
                ...(r.result.duplicateOf ? { duplicateOf: r.result.duplicateOf } : {}),
                deliveries: r.result.deliveries,
              }
            : { index, ok: false, error: { code: r.code, message: r.message, details: r.details } },
        ),
      };
    },
  );
}

/** Reading and erasing leads: the `admin` scope. */
export function leadAdminRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const db = deps.kysely;
  app.get(
    "/v1/leads/:id",
    {
      schema: {
        tags: ["leads"],
        summary: "A lead with its deliveries and attempts",
        description:
          "`routing` lists every destination the lead did not go to, with a `decision` (`filtered`, " +
          "`filter_error`, `disabled`, `duplicate` with `duplicateOf`) and a `reason`.",
      },
    },
    async (req) => {
      const { id } = req.params as { id: string };
      const found = await snapshot(db, async (trx) => {
        const lead = await trx.selectFrom("leads").selectAll().where("id", "=", id).executeTakeFirst();
        return (
          lead && {
            ...leadView(lead),
            deliveries: await loadDeliveries(trx, { leadId: id }, true),
            routing: await loadRouting(trx, id),
          }
        );
      });
      if (!found) throw notFound("lead", id);
      return found;
    },
  );

  app.get(
    "/v1/leads",
    {
      schema: {
        tags: ["leads"],
        summary: "Leads, newest first, with a cursor",
        querystring: doc(leadListQuery),
      },
    },
    async (req) => {
      const q = parseInput(leadListQuery, req.query);
      let query = db
        .selectFrom("leads")
        .selectAll()
        .orderBy("id", "desc")
        .limit(q.limit + 1);
      if (q.cursor) query = query.where("id", "<", q.cursor);
      if (q.source) query = query.where("source", "=", q.source);
      if (q.q) {
        const like = `%${q.q.toLowerCase().replace(/[%_]/g, "")}%`;
        const op = deps.db.caps.ilike ? "ilike" : "like";
        query = query.where((eb) =>
          eb.or([eb("name", op, like), eb("email", op, like), eb("phone", op, like)]),
        );
      }
      const rows = await query.execute();
      const page = rows.slice(0, q.limit);
      return {
        data: page.map(leadView),
        nextCursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null,
      };
    },
  );

  app.delete(
    "/v1/leads/:id",
    { schema: { tags: ["leads"], summary: "Erase a lead's personal data (keeps delivery statistics)" } },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const erased = await eraseLeadData(db, id, deps.now());
      if (!erased) throw notFound("lead", id);
      return reply.code(204).send();
    },
  );
}
