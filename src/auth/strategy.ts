import type { z } from "zod";
import type { AuthFailureCode } from "../domain/codes.ts";
import type { HttpClient, OutboundRequest } from "../http/http-client.ts";

/** What a handshake produced: header/cookie/token values plus when they stop working. */
export interface Credential {
  /** Named values the strategy attaches to pushes (e.g. `token`, `csrfToken`, `cookie`). Secret. */
  values: Record<string, string>;
  /** Epoch ms after which the credential must not be used; undefined = until rejected. */
  expiresAt?: number;
  /** A refresh token or similar, for `obtain`'s next call. Secret. */
  refresh?: string;
}

export type ObtainResult =
  | { ok: true; credential: Credential }
  | {
      ok: false;
      /** Stable snake_case code, e.g. `auth_rejected`, `auth_unreachable`, `auth_bad_response`. */
      code: AuthFailureCode;
      message: string;
      /** The destination cannot proceed without a person (OAuth reconnect). Deliveries wait. */
      needsReconnect?: boolean;
    };

export interface ObtainContext {
  http: HttpClient;
  timeoutMs: number;
  now(): number;
  /** The previous credential, when refreshing. */
  previous: Credential | undefined;
}

/**
 * One authentication strategy: one file, registered in `registry.ts`. Caching, expiry margins,
 * single flight, re-fetch after a rejection and redaction live in `runtime.ts`, not here.
 */
export interface AuthStrategy<C extends { type: string } = { type: string }> {
  readonly type: C["type"];
  /** The `auth` object of a destination (including `type`). */
  readonly schema: z.ZodType<C>;
  /** Top-level fields of the auth config that are secret: write-only, sealed at rest, redacted. */
  readonly secretFields: readonly string[];
  /**
   * A person must connect the destination in a browser before its first push (OAuth
   * authorization code). Such a destination starts as `needs_reconnect`, and so does one whose
   * auth settings change: its deliveries wait, unclaimed, until the connect.
   */
  readonly connect?: boolean;
  /** The handshake. Absent for strategies that need none (`none`, `basic`, `static_key`). */
  obtain?(config: C, ctx: ObtainContext): Promise<ObtainResult>;
  /** Adds what a push needs to the request (headers, body fields, query). */
  apply(req: OutboundRequest, config: C, credential: Credential | undefined): void;
  /** Whether a response means the credential was refused (runtime re-fetches once). Default: 401, or 403 when `obtain` exists. */
  isRejection?(status: number, headers: Record<string, string>): boolean;
}
