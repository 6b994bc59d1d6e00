import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { ApiErrorCode, AppErrorCode } from "../domain/codes.ts";
import { AppError } from "../util/errors.ts";

/**
 * After an early answer (413, 415, …) to a request whose body was not read to its end, the rest
 * is read and dropped, up to these bounds, instead of closing the connection under a client that
 * is still writing: that close resets the connection, and the client sees EPIPE/ECONNRESET
 * instead of the answer. Past either bound the connection is closed anyway.
 */
const DISCARD_MAX_BYTES = 16 * 1024 * 1024;
const DISCARD_MAX_MS = 10_000;

/** Fastify's own input errors, mapped to our stable codes (never a 5xx for bad input). */
const FASTIFY_CODES: Record<string, [number, ApiErrorCode, string]> = {
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, "empty_body", "the body is empty; send a JSON object"],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, "unsupported_media_type", "send Content-Type: application/json"],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, "invalid_json", "the body is not valid JSON"],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [
    400,
    "invalid_content_length",
    "Content-Length does not match the body",
  ],
};

/**
 * A request Node's HTTP parser refuses before Fastify sees it (headers over 16 KB, a malformed
 * request line): answered with our error shape, then the connection is closed.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === "ECONNRESET" || socket.destroyed || !socket.writable) return;
  const [status, reason, code, message] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [431, "Request Header Fields Too Large", "headers_too_large", "the request's headers exceed 16 KB"]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "Request Timeout", "request_timeout", "the request was not received in time"]
        : [400, "Bad Request", "bad_request", "the request is not valid HTTP"];
  const body = JSON.stringify({ error: { code, message, details: [] } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export function sendError(
  reply: FastifyReply,
  status: number,
  code: AppErrorCode,
  message: string,
  details: unknown[] = [],
) {
  return reply.code(status).send({ error: { code, message, details } });
}

/**
 * Reads and drops what is left of a request body, up to the bounds, before an answer that did
 * not need all of it. When a bound was reached the answer closes the connection.
 */
export async function discardRest(req: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (req.raw.complete || req.raw.destroyed) return;
  if (!(await readToEnd(req.raw))) reply.header("connection", "close");
}

function readToEnd(raw: IncomingMessage): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      clearTimeout(timer);
      raw.off("data", count);
      raw.off("end", done);
      raw.off("close", done);
      raw.off("error", done);
      resolve(raw.complete);
    };
    const count = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DISCARD_MAX_BYTES) done();
    };
    const timer = setTimeout(done, DISCARD_MAX_MS);
    raw.on("data", count);
    raw.once("end", done);
    raw.once("close", done);
    raw.once("error", done);
    raw.unpipe(); // a stopped consumer (the CSV parser) would pause it again
    raw.resume();
  });
}

const megabytes = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MB`;

export async function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  // Answering before the body was read, and closing (Fastify asks for "Connection: close"),
  // resets the connection under a client still writing: it sees EPIPE, not this answer.
  await discardRest(req, reply);
  if (err instanceof AppError) return sendError(reply, err.status, err.code, err.message, err.details);
  if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    const limit = req.routeOptions.bodyLimit ?? 1024 * 1024;
    return sendError(reply, 413, "payload_too_large", `the body is larger than ${megabytes(limit)}`);
  }
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
