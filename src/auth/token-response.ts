// Shared by the token strategies: what a token endpoint's answer means, as an ObtainResult.
import { z } from "zod";
import type { HttpFailure, HttpResponse, HttpResult } from "../http/http-client.ts";
import type { ObtainResult } from "./strategy.ts";

export type AuthFailure = Extract<ObtainResult, { ok: false }>;

/** Transient statuses of a token endpoint: try again later, like a network failure. */
const TRANSIENT = new Set([408, 425, 429]);

const EXCERPT_CHARS = 100;

/**
 * A short, single-line excerpt of a response body for an error message. Long token-like runs
 * (base64, hex, JWT parts) are blanked too, so an endpoint echoing a credential back cannot leak
 * it through the message; the runtime redacts known secrets on top of this.
 */
export function excerpt(text: string): string {
  const line = text
    .replace(/\s+/g, " ")
    .trim()
    .replace(/[A-Za-z0-9+/=_.~-]{20,}/g, "[…]");
  return line.length > EXCERPT_CHARS ? `${line.slice(0, EXCERPT_CHARS)}…` : line;
}

/** The OAuth-style `error` code of a JSON error body (`invalid_grant`), when it has one. */
function errorCode(res: HttpResponse): string | undefined {
  const body = res.json();
  const e = body && typeof body === "object" ? (body as Record<string, unknown>)["error"] : undefined;
  return typeof e === "string" && /^[A-Za-z0-9_.-]{1,40}$/.test(e) ? e : undefined;
}

/**
 * A handshake request that got no answer. Refused by the private-address guard: `blocked_address`,
 * like a push to such an address (final: only a configuration change helps); otherwise
 * `auth_unreachable` (network error, timeout: try again on the schedule).
 */
export function noAnswer(endpoint: string, error: HttpFailure): AuthFailure {
  const code = error.code === "blocked_address" ? "blocked_address" : "auth_unreachable";
  return { ok: false, code, message: `${endpoint}: ${error.message}` };
}

/**
 * The token endpoint's 2xx response, or the failure its answer means: no answer → `noAnswer`;
 * 5xx, 408/425/429 → `auth_unreachable` (try again on the schedule);
 * any other status → `auth_rejected` (401/403, or an OAuth 400 such as `invalid_grant`).
 */
export function tokenResponse(
  result: HttpResult,
  endpoint = "token endpoint",
): { ok: true; response: HttpResponse } | AuthFailure {
  if (!result.ok) return noAnswer(endpoint, result.error);
  const res = result.response;
  if (res.status >= 200 && res.status < 300) return { ok: true, response: res };
  const detail = errorCode(res) ?? excerpt(res.text);
  const message = `${endpoint} answered ${res.status}${detail ? `: ${detail}` : ""}`;
  if (res.status >= 500 || TRANSIENT.has(res.status)) return { ok: false, code: "auth_unreachable", message };
  return { ok: false, code: "auth_rejected", message };
}

/** A 2xx answer without a usable token. */
export function badResponse(res: HttpResponse, what: string, endpoint = "token endpoint"): AuthFailure {
  const type = (res.headers["content-type"] ?? "no content type").split(";")[0];
  return {
    ok: false,
    code: "auth_bad_response",
    message: `${endpoint} answered ${res.status} (${type}) without ${what}`,
  };
}

/** The non-empty string at a dotted path of a JSON value (`UserAuthenticationResult.data.UserToken`). */
export function stringAt(value: unknown, path: string): string | undefined {
  let cur = value;
  for (const key of path.split(".")) {
    if (!cur || typeof cur !== "object" || Array.isArray(cur) || !Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return typeof cur === "string" && cur.length > 0 ? cur : undefined;
}

/** Epoch ms from an OAuth `expires_in` (seconds, number or numeric string); undefined when absent or invalid. */
export function expiresAtFrom(expiresIn: unknown, now: number): number | undefined {
  const secs = typeof expiresIn === "string" && expiresIn.trim() !== "" ? Number(expiresIn) : expiresIn;
  return typeof secs === "number" && Number.isFinite(secs) && secs > 0 ? now + secs * 1000 : undefined;
}

/**
 * `ttlSeconds`: how long a credential is used when the server says nothing about its lifetime
 * (the runtime reads it; a server's `expires_in` wins). Absent: until a push is refused.
 */
export const ttlSecondsField = z
  .number()
  .int()
  .positive()
  .max(31 * 86400)
  .optional()
  .describe("How long a fetched credential is used, in seconds; absent: until a push is refused.");
