import type { Readable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { type RejectedRow, streamCsv } from "../lead/csv-import.ts";
import { AppError } from "../util/errors.ts";
import { newId } from "../util/ids.ts";
import type { ApiDeps } from "./deps.ts";

/** At most this many rejected rows are listed in the answer (all are counted). */
const REJECTED_LISTED = 1000;

/** `POST /v1/imports`: a CSV body, streamed; one transaction per 500 rows. The `ingest` scope. */
export function importRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.addContentTypeParser(["text/csv", "application/csv"], (_req, payload, done) => done(null, payload));
  app.post(
    "/v1/imports",
    {
      bodyLimit: 512 * 1024 * 1024,
      schema: {
        tags: ["leads"],
        summary: "Import leads from a CSV body (text/csv, header row first); ?map=column=field may repeat",
        querystring: {
          type: "object",
          properties: { map: { type: "array", items: { type: "string" } }, source: { type: "string" } },
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
      const id = newId();
      let accepted = 0;
      let duplicates = 0;
      let rejectedCount = 0;
      const rejected: RejectedRow[] = [];
      const { rows, malformed } = await streamCsv(body, { map }, async (batch) => {
        const results = await deps.ingest.acceptMany(
          batch.map((r) =>
            q.source && r.lead.source === undefined ? { ...r.lead, source: q.source } : r.lead,
          ),
        );
        results.forEach((r, i) => {
          if (r.ok) {
            accepted++;
            if (r.result.duplicateOf) duplicates++;
          } else {
            rejectedCount++;
            if (rejected.length < REJECTED_LISTED) {
              rejected.push({
                row: batch[i]!.line,
                error: { code: r.code, message: r.message, details: r.details },
              });
            }
          }
        });
      });
      rejectedCount += malformed.length;
      rejected.push(...malformed);
      deps.log.info({ import: id, rows, accepted, rejected: rejectedCount }, "import finished");
      return reply.code(201).send({ id, rows, accepted, duplicates, rejectedCount, rejected });
    },
  );
}
