import { z } from "zod";
import type { OutboundRequest } from "../http/http-client.ts";
import type { Credential } from "./strategy.ts";

/**
 * Where a bearer token goes on a push, shared by the token strategies of this folder. The seed
 * documents write `Authentication: Bearer …`; Cognito-protected APIs read `Authorization`, the default.
 */
export const bearerFields = {
  /** The push header carrying the token. */
  headerName: z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "an HTTP header name")
    .default("authorization"),
  /** What goes before the token. */
  headerPrefix: z.string().default("Bearer "),
  /**
   * How long a token is used when the server says nothing about its lifetime (a server's
   * `expires_in` / `ExpiresIn` wins). Absent: until a push is refused.
   */
  ttlSeconds: z
    .number()
    .int()
    .positive()
    .max(31 * 86400)
    .optional(),
};

export function applyBearer(
  req: OutboundRequest,
  config: { headerName: string; headerPrefix: string },
  credential: Credential | undefined,
): void {
  req.headers[config.headerName.toLowerCase()] = config.headerPrefix + (credential?.values["token"] ?? "");
}

/** Epoch ms from an `expires_in` in seconds (number or numeric string); undefined when absent or invalid. */
export function expiresAtFrom(expiresIn: unknown, now: number): number | undefined {
  const secs = typeof expiresIn === "string" && expiresIn.trim() !== "" ? Number(expiresIn) : expiresIn;
  return typeof secs === "number" && Number.isFinite(secs) && secs > 0 ? now + secs * 1000 : undefined;
}

/** A JWT's payload, decoded without verification (to read `cognito:username`, `iss`). */
export function jwtPayload(token: string | undefined): Record<string, unknown> | undefined {
  return jwtPart(token, 1);
}

/** A JWT's header (`alg`), decoded. */
export function jwtHeader(token: string | undefined): Record<string, unknown> | undefined {
  return jwtPart(token, 0);
}

function jwtPart(token: string | undefined, index: number): Record<string, unknown> | undefined {
  const part = token?.split(".")[index];
  if (!part) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
