import { Transform, type Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { importIdentity, type RejectedRow, rowKey, streamCsv } from "../ingest/csv-import.ts";
import { AppError } from "../util/errors.ts";
import { newId } from "../util/ids.ts";
import { z } from "zod";
import type { ApiDeps } from "./deps.ts";
import { json } from "./openapi.ts";
import { discardRest } from "./http-errors.ts";
import { idempotencyHeader, scopedKey } from "./leads.ts";

/** At most this many rejected rows are listed in the answer (all are counted). */
const REJECTED_LISTED = 1000;

const tooLarge = (limit: number) =>
  new AppError(
    413,
    "payload_too_large",
    `the file is larger than ${Math.round(limit / 1024 / 1024)} MB (LEADPUSH_IMPORT_MAX_BYTES); split it`,
  );

/** The body as a stream that fails with 413 once more than `limit` bytes went through. */
function limited(payload: Readable, limit: number): Readable {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) cb(tooLarge(limit));
      else cb(null, chunk);
    },
  });
  payload.on("error", (err) => counter.destroy(err));
  return payload.pipe(counter);
}

/**
 * `POST /v1/imports`: a CSV body, streamed; one transaction per 500 rows. The `ingest` scope.
 * Every row is stored with an idempotency key (see `rowKey`), so a re-sent or resumed file
 * creates nothing twice, and a bad row is a rejected row, never an error for the whole file.
 */
export function importRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const limit = deps.config.importMaxBytes;
  // Fastify's bodyLimit does not apply to a parser that passes the stream on: checked here.
  app.addContentTypeParser(["text/csv", "application/csv"], (req, payload, done) => {
    if (Number(req.headers["content-length"]) > limit) done(tooLarge(limit), undefined);
    else done(null, limited(payload, limit));
  });
  app.post(
    "/v1/imports",
    {
      bodyLimit: limit,
      schema: {
        tags: ["leads"],
        summary: "Import leads from a CSV body (text/csv, header row first); ?map=column=field may repeat",
        description:
          "Each row is one lead, under the same limits as POST /v1/leads (a row over 1 MB stops the import " +
          "with a row_too_large rejected row; the rows before it are stored). Rows are idempotent: a row's " +
          "key is the import's identity (the Idempotency-Key header when given, else the header line, " +
          "map and source), its line number and a hash of its values, scoped to the API key; sending a " +
          "file again (or the rest of a stopped one) stores no row twice — `repeated` counts those. " +
          "`complete` is false when the import stopped early. A body over LEADPUSH_IMPORT_MAX_BYTES " +
          "(512 MB) is 413 payload_too_large.",
        headers: { type: "object", properties: { "idempotency-key": { type: "string", maxLength: 200 } } },
        querystring: {
          type: "object",
          properties: { map: { type: "array", items: { type: "string" } }, source: { type: "string" } },
        },
        response: {
          201: json(
            "What became of the rows",
            z.object({
              id: z.string(),
              rows: z.number().int(),
              accepted: z.number().int(),
              repeated: z.number().int(),
              duplicates: z.number().int(),
              rejectedCount: z.number().int(),
              rejected: z
                .array(z.object({ row: z.number().int(), error: z.looseObject({ code: z.string() }) }))
                .describe("The first rejected rows with their errors"),
              complete: z.boolean(),
            }),
            {
              id: "01JTX3IMP001",
              rows: 3,
              accepted: 2,
              repeated: 0,
              duplicates: 0,
              rejectedCount: 1,
              rejected: [
                {
                  row: 3,
                  error: { code: "invalid_lead", message: "the lead is not valid", details: [] },
                },
              ],
              complete: true,
            },
          ),
        },
      },
    },
    async (req, reply) => {
      const body = req.body as Readable | undefined;
      if (!body || typeof (body as Readable).pipe !== "function") {
        throw new AppError(415, "unsupported_media_type", "send the file with Content-Type: text/csv");
      }
      const q = req.query as { map?: string | string[]; source?: string };
      const mapList = q.map === undefined ? [] : Array.isArray(q.map) ? q.map : [q.map];
      const map: Record<string, string> = {};
      for (const m of mapList) {
        const eq = m.lastIndexOf("=");
        if (eq <= 0) throw new AppError(400, "invalid_request", `map expects column=field, got "${m}"`);
        map[m.slice(0, eq)] = m.slice(eq + 1);
      }
      const key = idempotencyHeader(req.headers["idempotency-key"]);
      const id = newId();
      let identity = "";
      const counts = { accepted: 0, repeated: 0, duplicates: 0, rejected: 0 };
      const rejected: RejectedRow[] = [];
      const onHeaders = (headers: string[]) =>
        (identity = importIdentity({ key, headers, map, source: q.source }));
      const { rows, malformed, complete } = await streamCsv(body, { map, onHeaders }, async (batch) => {
        const results = await deps.ingest.acceptMany(
          batch.map((r) =>
            q.source && r.lead.source === undefined ? { ...r.lead, source: q.source } : r.lead,
          ),
          batch.map((r) => scopedKey(req.apiKeyId, rowKey(identity, r))),
          req.apiKeyId,
        );
        results.forEach((r, i) => {
          if (r.ok) {
            if (!r.result.created) counts.repeated++;
            else counts.accepted++;
            if (r.result.duplicateOf) counts.duplicates++;
            return;
          }
          counts.rejected++;
          if (r.cause !== undefined) req.log.error({ err: r.cause, import: id }, "a row could not be stored");
          if (rejected.length < REJECTED_LISTED) {
            rejected.push({
              row: batch[i]!.line,
              error: { code: r.code, message: r.message, details: r.details },
            });
          }
        });
      });
      // A stopped import leaves the rest of the file unread: read it before answering.
      await discardRest(req, reply);
      counts.rejected += malformed.length;
      rejected.push(...malformed);
      deps.log.info({ import: id, rows, ...counts, complete }, "import finished");
      const { accepted, repeated, duplicates } = counts;
      return reply.code(201).send({
        id,
        rows,
        accepted,
        repeated,
        duplicates,
        rejectedCount: counts.rejected,
        rejected,
        complete,
      });
    },
  );
}
