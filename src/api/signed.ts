import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import type { ApiDeps } from "./deps.ts";
import { json, other } from "./openapi.ts";
import { sendError } from "./http-errors.ts";

/**
 * How long a finished batch's file stays downloadable. The vendor fetches the file when it starts
 * processing; once the batch is final (completed or failed) the CSV of personal data is not
 * needed, and its URL would otherwise stay valid until the batch's deadline plus a margin (~25 h).
 */
export const FILE_GRACE_MS = 10 * 60_000;

/**
 * URLs that vendors call without an API key: the signed token in the path is the proof
 * (src/util/signed-url.ts). `GET /v1/files/:token` serves a batch's file (until `FILE_GRACE_MS`
 * after the batch is final); `POST
 * /v1/callbacks/:token` records that the vendor finished it (idempotent: repeats change nothing).
 */
export function signedRoutes(app: FastifyInstance, deps: ApiDeps): void {
  // Vendors post callbacks in whatever encoding they like: read the body as text, then JSON or form.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => done(null, body));

  const verify = (kind: string, token: string, reply: FastifyReply) => {
    const v = deps.signer.verify(kind, token, deps.now());
    if (v.ok) return v.id;
    if (v.reason === "expired") void sendError(reply, 410, "link_expired", "this link has expired");
    else void sendError(reply, 403, "invalid_signature", "this link is not valid");
    return undefined;
  };

  app.get(
    "/v1/files/:token",
    {
      schema: {
        tags: ["signed URLs"],
        summary: "A batch's file, for the vendor (signed URL)",
        security: [],
        response: {
          200: other(
            "The batch's file (the connector's format)",
            "text/csv",
            "email,name\nasha@example.com,Asha\n",
          ),
        },
      },
    },
    async (req, reply) => {
      const id = verify("file", (req.params as { token: string }).token, reply);
      if (!id) return reply;
      const batch = await deps.store.reads.batchById(id);
      const d = batch && (await deps.destinations.resolved()).get(batch.destination_id);
      if (!batch || !d?.connector.batching) return sendError(reply, 404, "not_found", "no such batch");
      if (batch.finished_at !== null && deps.now() > Number(batch.finished_at) + FILE_GRACE_MS) {
        req.log.info({ batch: id, status: batch.status }, "file of a finished batch refused");
        return sendError(
          reply,
          410,
          "file_expired",
          `this batch is ${batch.status}: its file is no longer served`,
        );
      }
      const items = await deps.store.reads.batchFileItems(id);
      const file = await d.connector.batching.renderFile({
        items: items.map((i) => ({ deliveryId: i.deliveryId, leadId: i.leadId, lead: i.lead })),
        mapping: d.mapping,
        config: d.connectorConfig,
      });
      return reply
        .type(file.contentType)
        .header("cache-control", "no-store")
        .header("content-disposition", `attachment; filename="leadpush-batch-${id}.csv"`)
        .send(file.body);
    },
  );

  app.post(
    "/v1/callbacks/:token",
    {
      schema: {
        tags: ["signed URLs"],
        summary: "A vendor's completion callback (signed URL)",
        security: [],
        response: {
          200: json(
            "Recorded; the batch's status after it",
            z.object({ received: z.literal(true), batch: z.string(), status: z.string() }),
            { received: true, batch: "01JTX1B0AT01", status: "processing" },
          ),
        },
      },
    },
    async (req, reply) => {
      const id = verify("callback", (req.params as { token: string }).token, reply);
      if (!id) return reply;
      const status = await deps.store.recordCallback(id, parseBody(req.body), deps.now());
      if (!status) return sendError(reply, 404, "not_found", "no such batch");
      req.log.info({ batch: id, status }, "batch callback");
      if (status === "submitting" || status === "processing") {
        deps.events.emit("batch:callback", { batchId: id });
        await deps.store.notifyWork().catch(() => undefined);
      }
      return { received: true, batch: id, status };
    },
  );
}

function parseBody(body: unknown): unknown {
  if (typeof body !== "string" || body.trim() === "") return {};
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return Object.fromEntries(new URLSearchParams(body));
  }
}
