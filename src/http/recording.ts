import { hideTokenFields, type Redactor } from "../util/redact.ts";
import {
  encodeBody,
  EXCERPT_BYTES,
  type Exchange,
  fullUrl,
  type HttpClient,
  type Transport,
} from "./http-client.ts";
import type { PoolKey } from "./pools.ts";

// Recording and redaction of exchanges for the attempt log and batch steps.

/**
 * Connection-level answer headers (RFC 9110 §7.6.1) describe the socket, not the answer: the
 * attempt log leaves them out (~70 bytes of every stored attempt).
 */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding"]);

/** The redactor, and its generation, an exchange was recorded (and redacted) with. */
const redactedWith = new WeakMap<Exchange, { redactor: Redactor; generation: number }>();

/**
 * The exchanges of an attempt as they are stored: an auth handshake's answer is recorded before its
 * token is known to the redactor, so whatever was recorded before the redactor last learned a
 * secret (or not by `recordingClient` at all) is redacted once more.
 */
export function redactRecorded(exchanges: Exchange[], redactor: Redactor): Exchange[] {
  return exchanges.map((e) => {
    const done = redactedWith.get(e);
    return done?.redactor === redactor && done.generation === redactor.generation
      ? e
      : redactExchange(e, redactor);
  });
}

function redactExchange(e: Exchange, redactor: Redactor): Exchange {
  const out: Exchange = {
    ...e,
    url: redactor.text(e.url),
    requestHeaders: redactor.headers(e.requestHeaders),
  };
  if (e.requestBody !== undefined) out.requestBody = redactor.text(e.requestBody);
  if (e.responseHeaders !== undefined) out.responseHeaders = redactor.headers(e.responseHeaders);
  if (e.responseBody !== undefined) out.responseBody = redactor.text(e.responseBody);
  if (e.error !== undefined) out.error = { ...e.error, message: redactor.text(e.error.message) };
  return out;
}

/**
 * An HttpClient for one attempt: sends through the transport (the destination's own connection
 * pool with `pool`) and records every exchange, redacted by the destination's redactor, for the
 * attempt log.
 */
export function recordingClient(
  transport: Transport,
  redactor: Redactor,
  exchanges: Exchange[],
  signal?: AbortSignal,
  pool?: PoolKey,
): HttpClient {
  const origin = performance.now();
  return {
    async send(req, { timeoutMs, step = "push" }) {
      const started = performance.now();
      const encoded = encodeBody(req);
      const result = await transport.send(req, timeoutMs, encoded, signal, pool);
      const { body } = encoded;
      // Handshake bodies carry tokens the redactor does not know yet: hide token-like fields first.
      const hide = step.startsWith("auth") ? hideTokenFields : (s: string) => s;
      const ex: Exchange = {
        step,
        method: req.method,
        url: redactor.text(fullUrl(req)),
        requestHeaders: redactor.headers(req.headers),
        startMs: Math.round(started - origin),
        durationMs: Math.round(performance.now() - started),
      };
      if (body !== undefined) ex.requestBody = redactor.text(hide(body).slice(0, EXCERPT_BYTES));
      if (result.ok) {
        ex.status = result.response.status;
        ex.responseHeaders = redactor.headers(result.response.headers, HOP_BY_HOP);
        ex.responseBody = redactor.text(hide(result.response.text).slice(0, EXCERPT_BYTES));
      } else {
        ex.error = { code: result.error.code, message: redactor.text(result.error.message) };
      }
      exchanges.push(ex);
      redactedWith.set(ex, { redactor, generation: redactor.generation });
      return result;
    },
  };
}
