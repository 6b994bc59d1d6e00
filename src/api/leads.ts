import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { leadInputSchema } from "../lead/lead.ts";
import { AppError, notFound } from "../util/errors.ts";
import { type ApiDeps, doc, listQuery, parseInput } from "./deps.ts";
import { deliveriesView, leadView, routingView, timelineView } from "./views.ts";
import { leadFilter } from "./list-filters.ts";
import {
  deliveryExample,
  deliverySchema,
  json,
  leadExample,
  leadSchema,
  noContent,
  page,
} from "./openapi.ts";

const acceptedDelivery = z.object({ id: z.string(), destination: z.string(), status: z.string() });
const acceptedSchema = z.object({
  id: z.string(),
  duplicateOf: z.string().optional().describe("An earlier lead with the same email or phone"),
  deliveries: z.array(acceptedDelivery),
});
const acceptedExample = {
  id: "01JTX0Q5KZ7P",
  deliveries: [{ id: "01JTX0Q5M4D1", destination: "crm", status: "pending" }],
};
const batchAnswer = z.object({
  accepted: z.number().int(),
  rejected: z.number().int(),
  results: z.array(
    z.looseObject({
      index: z.number().int(),
      ok: z.boolean(),
      id: z.string().optional(),
      repeated: z.boolean().optional(),
      deliveries: z.array(acceptedDelivery).optional(),
      error: z.looseObject({ code: z.string(), message: z.string() }).optional(),
    }),
  ),
});
const timelineSchema = z.looseObject({ at: z.string(), kind: z.string(), summary: z.string() });
const routingSchema = z.looseObject({
  destinationId: z.string(),
  destination: z.string(),
  decision: z.string(),
  reason: z.string().nullable(),
  at: z.string(),
});

/** The longest `Idempotency-Key` accepted (a longer one is refused, never cut). */
const MAX_KEY_LENGTH = 200;
const batchSchema = z.object({
  leads: z.array(z.unknown()).min(1).max(1000),
  idempotencyKeys: z
    .array(z.string().min(1).max(MAX_KEY_LENGTH).nullable())
    .max(1000)
    .optional()
    .describe(
      "Optional: one Idempotency-Key per lead (null for none), same order and length as leads. A lead " +
        "whose key this API key already used is not stored again: its result is the first lead's.",
    ),
});

/**
 * An Idempotency-Key as stored: scoped to the API key that sent it, so one source's key never
 * returns another source's lead.
 */
export function scopedKey(apiKeyId: string, key: string): string {
  return `${apiKeyId}:${key}`;
}

/** The request's `Idempotency-Key` header (undefined when absent or empty); 400 when too long. */
export function idempotencyHeader(value: string | string[] | undefined): string | undefined {
  const key = Array.isArray(value) ? value[0] : value;
  if (key === undefined || key.length === 0) return undefined;
  if (key.length > MAX_KEY_LENGTH) {
    throw new AppError(
      400,
      "invalid_idempotency_key",
      `the Idempotency-Key header is longer than ${MAX_KEY_LENGTH} characters`,
    );
  }
  return key;
}
const leadListQuery = listQuery.extend(leadFilter.shape);

/** POST /v1/leads and /v1/leads/batch: the `ingest` scope. */
export function leadIngestRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    "/v1/leads",
    {
      schema: {
        tags: ["leads"],
        summary: "Accept one lead",
        description:
          "Stored durably before 201 is returned. A repeated Idempotency-Key from the same API key returns " +
          "the first result with 200 (keys are scoped to the API key that sent them; longer than 200 " +
          "characters: 400 invalid_idempotency_key). Bodies over 1 MB: 413 payload_too_large. A lead " +
          "nested deeper than 32 levels inside attributes, or with a NUL character in any text or key, " +
          "is 400 invalid_lead (details[].code too_deep / nul_character, with the path).",
        headers: {
          type: "object",
          properties: { "idempotency-key": { type: "string", maxLength: MAX_KEY_LENGTH } },
        },
        body: doc(leadInputSchema),
        response: {
          201: json("Stored; one delivery per destination it was routed to", acceptedSchema, acceptedExample),
          200: json("A repeated Idempotency-Key: the first lead's result", acceptedSchema, acceptedExample),
        },
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
      const key = idempotencyHeader(req.headers["idempotency-key"]);
      const result = await deps.ingest.accept(req.body, key && scopedKey(req.apiKeyId, key), req.apiKeyId);
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
        response: {
          200: json("One result per lead, in order (a bad lead fails only itself)", batchAnswer, {
            accepted: 1,
            rejected: 1,
            results: [
              { index: 0, ok: true, ...acceptedExample },
              {
                index: 1,
                ok: false,
                error: {
                  code: "invalid_lead",
                  message: "the lead is not valid",
                  details: [{ path: ["email"], message: "give an email or a phone" }],
                },
              },
            ],
          }),
        },
      },
    },
    async (req) => {
      const { leads, idempotencyKeys } = parseInput(batchSchema, req.body);
      if (idempotencyKeys && idempotencyKeys.length !== leads.length) {
        throw new AppError(400, "invalid_request", "idempotencyKeys must have one entry per lead", [
          {
            path: ["idempotencyKeys"],
            message: `expected ${leads.length} entries, got ${idempotencyKeys.length}`,
          },
        ]);
      }
      const keys = idempotencyKeys?.map((k) => (k === null ? undefined : scopedKey(req.apiKeyId, k)));
      const results = await deps.ingest.acceptMany(leads, keys, req.apiKeyId);
      for (const r of results) {
        if (!r.ok && r.cause !== undefined)
          req.log.error({ err: r.cause, url: req.url }, "a lead could not be stored");
      }
      return {
        accepted: results.filter((r) => r.ok).length,
        rejected: results.filter((r) => !r.ok).length,
        results: results.map((r, index) =>
          r.ok
            ? {
                index,
                ok: true,
                id: r.result.id,
                // Its idempotency key was used before: this is the first lead's result.
                ...(r.result.created ? {} : { repeated: true }),
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
  const store = deps.store;
  app.get(
    "/v1/leads/:id",
    {
      schema: {
        tags: ["leads"],
        summary: "A lead with its deliveries and attempts",
        description:
          "`routing` lists every destination the lead did not go to, with a `decision` (`filtered`, " +
          "`filter_error`, `disabled`, `duplicate` with `duplicateOf`) and a `reason`. `timeline` is " +
          "everything that happened to the lead, oldest first: `accepted` (source, API key), `routed` / " +
          "`not_routed` per destination, each `attempt`, `enrichment`, `delivered` / `failed`, `erased`.",
        response: {
          200: json(
            "The lead, its deliveries (with attempts) and its routing decisions",
            leadSchema.extend({
              deliveries: z.array(deliverySchema),
              routing: z.array(routingSchema),
              timeline: z.array(timelineSchema),
            }),
            {
              ...leadExample,
              deliveries: [deliveryExample],
              routing: [
                {
                  destinationId: "01JTWZZ9QQ01",
                  destination: "partner",
                  decision: "filtered",
                  reason: "the filter was false",
                  at: "2026-05-04T09:30:00.000Z",
                },
              ],
              timeline: [
                {
                  at: "2026-05-04T09:30:00.000Z",
                  kind: "accepted",
                  summary: "accepted from web (API key website)",
                  source: "web",
                  apiKey: { id: "01JTWZZ9KEY1", name: "website" },
                },
                {
                  at: "2026-05-04T09:30:00.000Z",
                  kind: "not_routed",
                  summary: "not sent to partner: filtered",
                  destination: "partner",
                  decision: "filtered",
                },
              ],
            },
          ),
        },
      },
    },
    async (req) => {
      const { id } = req.params as { id: string };
      const found = await store.reads.lead(id);
      if (!found) throw notFound("lead", id);
      return {
        ...leadView(found.lead),
        deliveries: deliveriesView(found.deliveries, true),
        routing: found.routing.map(routingView),
        timeline: found.timeline.map(timelineView),
      };
    },
  );

  app.get(
    "/v1/leads",
    {
      schema: {
        tags: ["leads"],
        summary: "Leads, newest first, with a cursor; search with q",
        querystring: doc(leadListQuery),
        response: {
          200: json("A page of leads", page(leadSchema), { data: [leadExample], nextCursor: null }),
        },
      },
    },
    async (req) => {
      const q = parseInput(leadListQuery, req.query);
      const rows = await store.reads.leads({
        limit: q.limit,
        cursor: q.cursor,
        source: q.source,
        text: q.q,
        field: q.field,
        region: deps.config.defaultRegion,
      });
      const page = rows.slice(0, q.limit);
      return {
        data: page.map(leadView),
        nextCursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null,
      };
    },
  );

  app.delete(
    "/v1/leads/:id",
    {
      schema: {
        tags: ["leads"],
        summary: "Erase a lead's personal data (keeps delivery statistics)",
        response: { 204: noContent("Erased") },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const erased = await store.eraseLead(id, deps.now());
      if (!erased) throw notFound("lead", id);
      return reply.code(204).send();
    },
  );
}
