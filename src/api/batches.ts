import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { BatchesTable, BatchItemsTable } from "../store/schema.ts";
import { notFound } from "../util/errors.ts";
import { type ApiDeps, doc, listQuery, parseInput } from "./deps.ts";
import { BATCH_STATUSES } from "../domain/status.ts";
import { json, page } from "./openapi.ts";

const batchSchema = z.looseObject({
  id: z.string(),
  destinationId: z.string(),
  destination: z.string().nullable(),
  status: z.enum(BATCH_STATUSES),
  size: z.number().int(),
  externalId: z.string().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  createdAt: z.string(),
  leadIds: z.array(z.string()),
  items: z.array(z.looseObject({ deliveryId: z.string(), status: z.string() })).optional(),
  log: z.array(z.unknown()).optional().describe("The batch's recent exchanges (redacted)"),
});
const batchExample = {
  id: "01JTX1B0AT01",
  destinationId: "01JTWZZ3C8AB",
  destination: "reworked",
  status: "completed",
  size: 2,
  vendorStatus: "COMPLETED",
  externalId: "job-77",
  checks: 3,
  callbacks: 1,
  callbackAt: "2026-05-04T09:31:00.000Z",
  error: null,
  createdAt: "2026-05-04T09:30:00.000Z",
  submittedAt: "2026-05-04T09:30:01.000Z",
  finishedAt: "2026-05-04T09:31:00.000Z",
  nextCheckAt: null,
  deadlineAt: "2026-05-04T10:30:00.000Z",
  leadIds: ["01JTX0Q5KZ7P", "01JTX0Q5KZ7Q"],
};

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
  const reads = deps.store.reads;
  const tags = ["batches"];

  app.get(
    "/v1/batches",
    {
      schema: {
        tags,
        summary: "Batches, newest first",
        querystring: doc(batchListQuery),
        response: {
          200: json("A page of batches", page(batchSchema), { data: [batchExample], nextCursor: null }),
        },
      },
    },
    async (req) => {
      const q = parseInput(batchListQuery, req.query);
      const rows = await reads.batches({
        limit: q.limit,
        cursor: q.cursor,
        status: q.status,
        destinationId: q.destination ? (await deps.destinations.get(q.destination)).id : undefined,
      });
      const page = rows.slice(0, q.limit);
      const items = await reads.batchItems(page.map((b) => b.id));
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
    {
      schema: {
        tags,
        summary: "A batch with its leads and its recent exchanges",
        response: {
          200: json("The batch, its items and its log", batchSchema, {
            ...batchExample,
            items: [
              {
                deliveryId: "01JTX0Q5M4D1",
                leadId: "01JTX0Q5KZ7P",
                attempt: 1,
                status: "delivered",
                error: null,
              },
            ],
            log: [],
          }),
        },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string };
      const b = await reads.batch(id);
      if (!b) throw notFound("batch", id);
      return batchView(b, await reads.batchItems([id]), true);
    },
  );
}
