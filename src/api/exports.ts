import { Readable, pipeline } from "node:stream";
import { stringify } from "csv-stringify";
import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import { type ApiDeps, doc, parseInput } from "./deps.ts";
import { deliveryFilter, deliveryQuery, leadFilter } from "./list-filters.ts";
import { errorResponse, other } from "./openapi.ts";
import { deliveryView, leadView } from "./views.ts";

/** Rows read per query while streaming (keyset pages). */
const PAGE = 500;

/**
 * A cell a spreadsheet would run as a formula (=, +, -, @, or a tab / carriage return before one)
 * gets a leading apostrophe, so an exported lead named `=HYPERLINK(…)` stays text.
 */
export function safeCell(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

const text = (v: unknown): string => (v === null || v === undefined ? "" : String(v));

const exportLimit = z.coerce
  .number()
  .int()
  .min(1)
  .optional()
  .describe("At most this many rows (newest first); LEADPUSH_REPLAY_MAX (10 000) at most");

const LEAD_COLUMNS = [
  "id",
  "createdAt",
  "name",
  "lastName",
  "email",
  "phone",
  "city",
  "projectId",
  "source",
  "externalId",
  "duplicateOf",
  "erased",
] as const;
const DELIVERY_COLUMNS = [
  "id",
  "createdAt",
  "leadId",
  "destination",
  "status",
  "attempts",
  "lastErrorCode",
  "lastErrorMessage",
  "lastStatus",
  "externalId",
  "deliveredAt",
  "updatedAt",
] as const;

const CSV_EXAMPLE =
  LEAD_COLUMNS.join(",") +
  "\n01JTX0Q5KZ7P,2026-05-04T09:30:00.000Z,Asha,Rao,asha@example.com,'+919820012345,Pune,,web,,,false\n";
const DELIVERY_CSV_EXAMPLE =
  DELIVERY_COLUMNS.join(",") +
  "\n01JTX0Q5M4D1,2026-05-04T09:30:00.000Z,01JTX0Q5KZ7P,crm,failed,3,http_500,HTTP 500,500,,,2026-05-04T09:31:00.000Z\n";

/** Streams `pages` (keyset, newest first) as CSV, at most `cap` rows. */
function sendCsv<T extends { id: string }>(
  reply: FastifyReply,
  filename: string,
  columns: readonly string[],
  cap: number,
  page: (limit: number, cursor: string | undefined) => Promise<T[]>,
  row: (item: T) => Record<string, unknown>,
) {
  async function* records() {
    let cursor: string | undefined;
    let sent = 0;
    while (sent < cap) {
      const limit = Math.min(PAGE, cap - sent);
      const rows = await page(limit, cursor);
      for (const r of rows.slice(0, limit)) {
        const o = row(r);
        yield columns.map((c) => safeCell(text(o[c])));
        sent++;
      }
      if (rows.length <= limit) return;
      cursor = rows[limit - 1]?.id;
    }
  }
  const csv = stringify({ header: true, columns: [...columns] });
  // A read failing midway ends the download early (the client sees a cut transfer), never silently.
  pipeline(Readable.from(records()), csv, (err) => {
    if (err) reply.log.error({ err }, "a CSV export failed midway");
  });
  return reply
    .header("content-type", "text/csv; charset=utf-8")
    .header("content-disposition", `attachment; filename="${filename}"`)
    .header("cache-control", "no-store")
    .send(csv);
}

const csvResponse = (example: string) => ({
  200: other("CSV with a header row", "text/csv", example),
  "4xx": errorResponse,
});

/** CSV exports of the lead and delivery lists, with the lists' filters: the `admin` scope. */
export function exportRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const store = deps.store;
  const leadQuery = leadFilter.extend({ limit: exportLimit });
  app.get(
    "/v1/leads/export",
    {
      schema: {
        tags: ["leads"],
        summary: "The lead list as CSV (same filters as GET /v1/leads), streamed",
        description:
          "Newest first, at most `limit` rows (LEADPUSH_REPLAY_MAX, 10 000 by default). Cells starting " +
          "with = + - @ are prefixed with ' (no formulas in a spreadsheet).",
        querystring: doc(leadQuery),
        produces: ["text/csv"],
        response: csvResponse(CSV_EXAMPLE),
      },
    },
    async (req, reply) => {
      const q = parseInput(leadQuery, req.query);
      const cap = Math.min(q.limit ?? deps.config.replayMax, deps.config.replayMax);
      return sendCsv(
        reply,
        "leads.csv",
        LEAD_COLUMNS,
        cap,
        (limit, cursor) =>
          store.reads.leads({
            limit,
            cursor,
            source: q.source,
            text: q.q,
            field: q.field,
            region: deps.config.defaultRegion,
          }),
        (l) => leadView(l) as Record<string, unknown>,
      );
    },
  );

  const deliveryExportQuery = deliveryFilter.extend({ limit: exportLimit });
  app.get(
    "/v1/deliveries/export",
    {
      schema: {
        tags: ["deliveries"],
        summary: "The delivery list as CSV (same filters as GET /v1/deliveries), streamed",
        description:
          "Newest first, at most `limit` rows (LEADPUSH_REPLAY_MAX, 10 000 by default). Cells starting " +
          "with = + - @ are prefixed with ' (no formulas in a spreadsheet).",
        querystring: doc(deliveryExportQuery),
        produces: ["text/csv"],
        response: csvResponse(DELIVERY_CSV_EXAMPLE),
      },
    },
    async (req, reply) => {
      const q = parseInput(deliveryExportQuery, req.query);
      const cap = Math.min(q.limit ?? deps.config.replayMax, deps.config.replayMax);
      const filter = await deliveryQuery(deps, q);
      return sendCsv(
        reply,
        "deliveries.csv",
        DELIVERY_COLUMNS,
        cap,
        (limit, cursor) => store.reads.deliveries({ limit, cursor, ...filter }),
        (r) => {
          const d = deliveryView(r);
          return {
            ...d,
            attempts: d.attemptCount,
            lastErrorCode: d.lastError?.code,
            lastErrorMessage: d.lastError?.message,
          };
        },
      );
    },
  );
}
