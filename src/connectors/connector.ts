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
}

export type { HttpResponse };
