import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { BatchesTable, BatchItemsTable } from "../store/schema.ts";
import { notFound } from "../util/errors.ts";
import { type ApiDeps, doc, listQuery, parseInput } from "./deps.ts";
import { BATCH_STATUSES } from "../domain/status.ts";

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

const batchListQuery = listQuery.extend({
  destination: z.string().optional().describe("Destination id or name"),
  status: z.enum(BATCH_STATUSES).optional(),
});

export function batchView(
  b: BatchesTable & { destination_name?: string | null },
  items: BatchItemsTable[],
  detail: boolean,
) {
  const [code, ...rest] = (b.error ?? "").split(": ");
  return {
    id: b.id,
    destinationId: b.destination_id,
    destination: b.destination_name ?? null,
    status: b.status,
    size: b.size,
    vendorStatus: b.vendor_status,
    externalId: b.external_id,
    checks: b.checks,
    callbacks: b.callbacks,
    callbackAt: iso(b.callback_at),
    error: b.error ? { code, message: rest.join(": ") } : null,
    createdAt: iso(b.created_at),
    submittedAt: iso(b.submitted_at),
    finishedAt: iso(b.finished_at),
    nextCheckAt: iso(b.next_check_at),
    deadlineAt: iso(b.deadline_at),
    leadIds: items.map((i) => i.lead_id),
    ...(detail
      ? {
          items: items.map((i) => ({
            deliveryId: i.delivery_id,
            leadId: i.lead_id,
            attempt: i.attempt,
            status: i.status,
            error: i.error,
          })),
          log: JSON.parse(b.log) as unknown[],
        }
      : {}),
  };
}

/** Batches of batching connectors (reworked): the `admin` scope. */
export function batchRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const db = deps.kysely;
  const tags = ["batches"];
  const base = () =>
    db
      .selectFrom("batches")
      .leftJoin("destinations", "destinations.id", "batches.destination_id")
      .selectAll("batches")
      .select("destinations.name as destination_name");
  const itemsOf = async (ids: string[]) =>
    ids.length === 0
      ? []
      : db
          .selectFrom("batch_items")
          .selectAll()
          .where("batch_id", "in", ids)
          .orderBy("delivery_id")
          .execute();

  app.get(
    "/v1/batches",
    { schema: { tags, summary: "Batches, newest first", querystring: doc(batchListQuery) } },
    async (req) => {
      const q = parseInput(batchListQuery, req.query);
      let query = base()
        .orderBy("batches.id", "desc")
        .limit(q.limit + 1);
      if (q.cursor) query = query.where("batches.id", "<", q.cursor);
      if (q.status) query = query.where("batches.status", "=", q.status);
      if (q.destination) {
        const d = await deps.destinations.get(q.destination);
        query = query.where("batches.destination_id", "=", d.id);
      }
      const rows = await query.execute();
      const page = rows.slice(0, q.limit);
      const items = await itemsOf(page.map((b) => b.id));
      return {
        data: page.map((b) =>
          batchView(
            b,
            items.filter((i) => i.batch_id === b.id),
            false,
          ),
        ),
        nextCursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null,
      };
    },
  );

  app.get(
    "/v1/batches/:id",
    { schema: { tags, summary: "A batch with its leads and its recent exchanges" } },
    async (req) => {
      const { id } = req.params as { id: string };
      const b = await base().where("batches.id", "=", id).executeTakeFirst();
      if (!b) throw notFound("batch", id);
      return batchView(b, await itemsOf([id]), true);
    },
  );
}
