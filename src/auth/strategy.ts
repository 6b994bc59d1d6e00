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

/** What a connect's callback may use: the same as a handshake, without a previous credential. */
export type ConnectContext = Omit<ObtainContext, "previous">;

/** Kept server-side (sealed) from a connect's start until its callback: flat, JSON-safe values. */
export type PendingConnect = Record<string, string | null>;

/**
 * A connect in a browser (OAuth authorization code): `GET|POST /v1/destinations/:id/connect` calls
 * `begin` and sends the browser to its URL; `GET /v1/oauth/callback` takes the one-time `state`
 * back and calls `complete`. The API knows nothing else about the flow.
 */
export interface ConnectFlow<C> {
  /** How long the browser may take before the pending connect expires. */
  readonly lifetimeMs: number;
  /** The URL to open, the one-time `state` it carries, and what `complete` needs back. */
  begin(config: C, redirectUri: string): Promise<{ url: string; state: string; pending: PendingConnect }>;
  /** The browser came back with `params` (the callback's query): check them, return the credential. */
  complete(
    config: C,
    ctx: ConnectContext,
    callback: { params: URLSearchParams; state: string; pending: PendingConnect; redirectUri: string },
  ): Promise<ObtainResult>;
}

/** `lifetimeMs` of strategies whose config has the common `ttlSeconds` field. */
export function configuredLifetimeMs(config: { ttlSeconds?: number | undefined }): number | undefined {
  return config.ttlSeconds ? config.ttlSeconds * 1000 : undefined;
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
  readonly connect?: ConnectFlow<C>;
  /**
   * How long a credential that names no expiry of its own (`Credential.expiresAt`) is used, in ms;
   * undefined: until a push is refused. The runtime asks this; it reads no config field itself.
   */
  lifetimeMs?(config: C): number | undefined;
  /** The handshake. Absent for strategies that need none (`none`, `basic`, `static_key`). */
  obtain?(config: C, ctx: ObtainContext): Promise<ObtainResult>;
  /** Adds what a push needs to the request (headers, body fields, query). */
  apply(req: OutboundRequest, config: C, credential: Credential | undefined): void;
  /** Whether a response means the credential was refused (runtime re-fetches once). Default: 401, or 403 when `obtain` exists. */
  isRejection?(status: number, headers: Record<string, string>): boolean;
}
