import type { OutcomeCode } from "../domain/codes.ts";
import type { HttpResponse, HttpResult, OutboundRequest } from "../http/http-client.ts";
import type { DeliveryContext, Outcome } from "./connector.ts";
import { ExpressionFailure, type Mapping } from "./mapping.ts";

/** Longest `Retry-After` honoured; longer waits fall back to the schedule's cap. */
export const RETRY_AFTER_CAP_MS = 6 * 60 * 60 * 1000;

export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return Math.min(ms, RETRY_AFTER_CAP_MS);
}

const RETRYABLE = new Set([408, 425, 429]);

/** Finds the client's id for the lead in a typical response body. */
export function externalIdOf(body: unknown): string | undefined {
  if (!body || typeof body !== "object") return undefined;
  const o = body as Record<string, unknown>;
  for (const k of ["id", "leadId", "lead_id", "uuid"]) {
    const v = o[k];
    if (typeof v === "string" || typeof v === "number") return String(v);
  }
  for (const k of ["data", "lead", "result"]) {
    const nested = externalIdOf(o[k]);
    if (nested) return nested;
  }
  return undefined;
}

/** 2xx delivered; 408, 425, 429, 5xx retry (honouring Retry-After); other statuses fail. */
export function classify(res: HttpResponse): Outcome {
  const status = res.status;
  if (status >= 200 && status < 300) {
    const body = res.json();
    const externalId = externalIdOf(body);
    return { kind: "delivered", status, ...(externalId ? { externalId } : {}) };
  }
  const message = `client answered ${status}`;
  if (RETRYABLE.has(status) || status >= 500) {
    const retryAfterMs = parseRetryAfter(res.headers["retry-after"]);
    return {
      kind: "retry",
      code: `http_${status}`,
      message,
      status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  }
  return { kind: "failed", code: `http_${status}`, message, status };
}

export function transportFailure(error: { code: OutcomeCode; message: string }): Outcome {
  if (error.code === "blocked_address") return { kind: "failed", code: error.code, message: error.message };
  return { kind: "retry", code: error.code, message: error.message };
}

/**
 * Renders the payload. A mapping that fails on this lead (a JSONata error, or a time, depth or
 * size limit) fails this delivery for good with `mapping_error`: the same lead fails the same way
 * on every retry, so retrying would only repeat the cost.
 */
export async function renderPayload(
  mapping: Mapping,
  input: Record<string, unknown>,
): Promise<{ ok: true; payload: unknown } | { ok: false; outcome: Outcome }> {
  try {
    return { ok: true, payload: await mapping.render(input) };
  } catch (err) {
    if (!(err instanceof ExpressionFailure)) throw err;
    return { ok: false, outcome: { kind: "failed", code: err.code, message: err.message } };
  }
}

/**
 * Sends a request with the destination's auth applied. A response the strategy calls a rejection
 * (401, 403 for token strategies, 403 + x-csrf-token: Required) drops the credential, fetches a
 * fresh one and sends once more, within the same attempt. Auth handshake failures come back as
 * `auth_*` outcomes that retry on the schedule (or block, when a person must reconnect).
 */
export async function sendWithAuth(
  ctx: Pick<DeliveryContext<unknown>, "auth" | "http"> & { destination: { timeoutMs: number } },
  build: () => OutboundRequest,
  step = "push",
): Promise<{ ok: true; response: HttpResponse } | { ok: false; outcome: Outcome }> {
  for (let round = 0; round < 2; round++) {
    const req = build();
    const prepared = await ctx.auth.prepare(req);
    if (!prepared.ok) {
      // A handshake refused by the private-address guard fails like a push to such an address.
      const outcome: Outcome = prepared.needsReconnect
        ? { kind: "blocked", code: prepared.code, message: prepared.message }
        : transportFailure(prepared);
      return { ok: false, outcome };
    }
    const result: HttpResult = await ctx.http.send(req, { timeoutMs: ctx.destination.timeoutMs, step });
    if (!result.ok) return { ok: false, outcome: transportFailure(result.error) };
    if (round === 0 && ctx.auth.isRejection(result.response.status, result.response.headers)) {
      await ctx.auth.invalidate();
      continue;
    }
    return { ok: true, response: result.response };
  }
  throw new Error("unreachable");
}
