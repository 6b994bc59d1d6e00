import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../util/errors.ts";

/** Fastify's own input errors, mapped to our stable codes (never a 5xx for bad input). */
const FASTIFY_CODES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, "payload_too_large", "the body is larger than 1 MB"],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, "empty_body", "the body is empty; send a JSON object"],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, "unsupported_media_type", "send Content-Type: application/json"],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, "invalid_json", "the body is not valid JSON"],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [
    400,
    "invalid_content_length",
    "Content-Length does not match the body",
  ],
};

export function sendError(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  details: unknown[] = [],
) {
  return reply.code(status).send({ error: { code, message, details } });
}

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  if (err instanceof AppError) return sendError(reply, err.status, err.code, err.message, err.details);
  const known = err.code ? FASTIFY_CODES[err.code] : undefined;
  if (known) return sendError(reply, known[0], known[1], known[2]);
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
    return sendError(reply, 400, "invalid_json", "the body is not valid JSON");
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return sendError(reply, err.statusCode, "bad_request", err.message);
  }
  req.log.error({ err, method: req.method, url: req.url.split("?")[0] }, "request failed");
  return sendError(reply, 500, "internal_error", "something went wrong inside leadpush; the log has details");
}
