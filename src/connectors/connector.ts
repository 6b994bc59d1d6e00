import type { FastifyInstance } from "fastify";
import type { z } from "zod";
import type { AuthSession } from "../auth/runtime.ts";
import type { HttpClient, HttpResponse } from "../http/http-client.ts";
import type { Lead } from "../lead/lead.ts";
import type { Batching } from "./batching.ts";
import type { Mapping } from "./mapping.ts";
import type { OutcomeCode } from "../domain/codes.ts";

/** How a delivery attempt ended. Expected failures are values, not exceptions. */
export type Outcome =
  | {
      kind: "delivered";
      /** The client's own id for the lead, when it returns one. */
      externalId?: string;
      /** What the client returned that is worth keeping (stored on the delivery). */
      result?: unknown;
      /** Written to `lead.enrichment[<destination name>]` for downstream destinations. */
      enrichment?: unknown;
      status?: number;
    }
  | { kind: "retry"; code: OutcomeCode; message: string; status?: number; retryAfterMs?: number }
  | { kind: "failed"; code: OutcomeCode; message: string; status?: number }
  /** The destination needs a person (OAuth reconnect): wait without spending retries. */
  | { kind: "blocked"; code: OutcomeCode; message: string }
  /**
   * Handed over for an asynchronous completion (a vendor batch, a callback): the delivery waits as
   * `awaiting`, is not claimed again, and is completed later by the connector's `batching`.
   */
  | { kind: "awaiting"; reason: string };

/** Everything a connector may use for one attempt. */
export interface DeliveryContext<C> {
  /** Read-only: a lead handed straight from ingest is one object shared by all its deliveries. */
  lead: Readonly<Lead>;
  leadId: string;
  deliveryId: string;
  /** 1 for the first attempt. */
  attempt: number;
  destination: { id: string; name: string; timeoutMs: number; config: C };
  /** Renders the destination's payload mapping (or the connector's default) over the lead. */
  mapping: Mapping;
  http: HttpClient;
  auth: AuthSession;
  /** What an earlier attempt of this delivery stored (e.g. a chat thread id), for multi-step protocols. */
  state: Record<string, unknown>;
  setState(patch: Record<string, unknown>): void;
}

/**
 * One kind of client. One file (or folder), one entry in `registry.ts`. The connector's own fields
 * (url, options, vendor credentials) are validated by `schema`; common destination fields
 * (name, auth, mapping, filter, retry, …) are handled once for all connectors.
 */
export interface Connector<C = Record<string, unknown>> {
  readonly name: string;
  readonly schema: z.ZodType<C>;
  /** Top-level connector fields that are secret (sealed at rest, redacted on read). */
  readonly secretFields: readonly string[];
  /** The auth config used when the destination gives none. */
  readonly defaultAuth: { type: string } & Record<string, unknown>;
  /** Auth types this connector accepts (undefined: any). */
  readonly authTypes?: readonly string[];
  /** The payload when the destination has no `mapping` (undefined: the canonical lead). */
  defaultPayload?(input: Record<string, unknown>, config: C): unknown;
  /**
   * Vendor logins whose credentials the contract puts among the connector's own fields (ejento's
   * `email`/`password`, reworked's `apiKey`): the auth config is built from them, so they are
   * written once, at the top level, and a destination of this connector takes no `auth` object.
   */
  authFrom?(config: C): { type: string } & Record<string, unknown>;
  deliver(ctx: DeliveryContext<C>): Promise<Outcome>;
  /** Present when deliveries complete together, asynchronously (see `batching.ts`). */
  readonly batching?: Batching<C>;
  /**
   * Admin routes of this connector (e.g. `/v1/destinations/:id/<name>/…`), registered under the
   * `admin` scope by `api/server.ts` for every connector that has them.
   */
  adminRoutes?(app: FastifyInstance, deps: ConnectorRouteDeps): void;
  /** CLI commands (`leadpush <name> …`, against a running server), dispatched by `cli.ts`. */
  readonly commands?: readonly ConnectorCommand[];
}

/** What a connector's admin routes may use: no store, no destination service. */
export interface ConnectorRouteDeps {
  /**
   * A destination of this connector, by id or name (404 `not_found`; 400 `wrong_connector` for a
   * destination of another connector), with a recording, redacting HTTP client.
   */
  open(idOrName: string): Promise<OpenedDestination>;
  /** Validates a body with the zod schema that documents it (400 with `details` when invalid). */
  parseInput<T extends z.ZodType>(schema: T, input: unknown): z.infer<T>;
  /** A zod schema as JSON Schema, for the route's OpenAPI `schema.body`. */
  doc(schema: z.ZodType): Record<string, unknown>;
}

export interface OpenedDestination {
  id: string;
  name: string;
  timeoutMs: number;
  connectorConfig: unknown;
  auth: { type: string } & Record<string, unknown>;
  http: HttpClient;
  /** A session of the credential runtime (the cached login deliveries use), optionally with another auth config. */
  authSession(auth?: { type: string } & Record<string, unknown>): AuthSession;
}

/** A CLI command a connector adds: `leadpush <name> …`. */
export interface ConnectorCommand {
  readonly name: string;
  /** Its lines in `leadpush --help` (indented like the others). */
  readonly usage: string;
  run(argv: string[], api: CommandApi): Promise<number>;
}

/** How a connector's command reaches the running server (`--url`/`--key`, `LEADPUSH_URL`/`LEADPUSH_API_KEY`). */
export interface CommandApi {
  /** The `--url` and `--key` options: spread them into the command's `parseArgs` options. */
  readonly serverOptions: {
    readonly url: { readonly type: "string" };
    readonly key: { readonly type: "string" };
  };
  /** The server those options name; `call` throws an AppError with the server's code on a non-2xx answer. */
  server(values: { url?: string | undefined; key?: string | undefined }): {
    url: string;
    call(method: string, path: string, body?: unknown): Promise<unknown>;
  };
}

export type { HttpResponse };
