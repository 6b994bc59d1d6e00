import type { Readable } from "node:stream";
import type { AuthSession } from "../auth/runtime.ts";
import type { HttpClient, StreamResult } from "../http/http-client.ts";
import type { Lead } from "../lead/lead.ts";
import type { Mapping } from "./mapping.ts";
import type { OutcomeCode } from "../domain/codes.ts";

/**
 * Batching: a connector whose deliveries complete together and asynchronously (Reworked: one CSV
 * file per batch, processed by the vendor, results fetched later). Its `deliver()` answers
 * `awaiting`; the batch service (`src/delivery/batches.ts`) gathers awaiting deliveries into
 * batches, runs `submit` and `check` with leases and timers kept in the database, and completes
 * every delivery of a batch in one transaction. The connector only speaks the vendor's protocol.
 */
export interface Batching<C> {
  policy(config: C): BatchPolicy;
  /** The file served to the vendor at the batch's signed `fileUrl`. */
  renderFile(input: {
    items: BatchItem[];
    mapping: Mapping | undefined;
    config: C;
  }): Promise<{ contentType: string; body: string | Readable }>;
  /** Hands the batch to the vendor. */
  submit(ctx: BatchContext<C>): Promise<BatchStep>;
  /** How the batch is doing: uses the vendor's callback when one arrived, else asks (polling). */
  check(ctx: BatchContext<C>): Promise<BatchStep>;
}

/** When a destination's awaiting deliveries become a batch, and how long a batch may take. */
export interface BatchPolicy {
  /** A batch is closed as soon as this many deliveries wait… */
  size: number;
  /** …or when the oldest of them has waited this long, whichever comes first. */
  windowMs: number;
  /** First status check after submitting; each later one waits twice as long, up to the max. */
  pollIntervalMs: number;
  pollMaxIntervalMs: number;
  /** A batch not finished this long after it was closed fails; its deliveries are retried. */
  deadlineMs: number;
  /** Whole-request timeout of the result download (files can be large). */
  downloadTimeoutMs: number;
}

export interface BatchItem {
  deliveryId: string;
  leadId: string;
  lead: Lead;
}

export interface BatchContext<C> {
  batch: {
    id: string;
    /** The vendor's id for the batch, once `submit` returned it. */
    externalId: string | null;
    /** What `submit` asked to keep (sealed at rest: it may hold tokens). */
    vendorState: Record<string, unknown>;
    /** The latest body the vendor posted to `callbackUrl`, if any. */
    callback: unknown;
    /** Signed leadpush URLs (no API key needed; they expire after the deadline plus a margin). */
    fileUrl: string;
    callbackUrl: string;
  };
  items: BatchItem[];
  destination: { id: string; name: string; timeoutMs: number; config: C };
  /** The destination's mapping (undefined: the connector's default), as `renderFile` got it. */
  mapping: Mapping | undefined;
  policy: BatchPolicy;
  /** Recording, redacting client (the batch's log and the deliveries' attempts show the exchanges). */
  http: HttpClient;
  auth: AuthSession;
  /** A streamed GET (result files), with the transport's rules; recorded without the body. */
  download(url: string, timeoutMs: number): Promise<StreamResult>;
}

export type ItemResult =
  | { ok: true; enrichment?: Record<string, unknown>; result?: unknown }
  | { ok: false; code: OutcomeCode; message: string };

export type BatchStep =
  /** The vendor accepted the batch. */
  | { kind: "submitted"; externalId: string; vendorState?: Record<string, unknown>; vendorStatus?: string }
  /** Not finished yet: check again later (or at once when a callback arrives). */
  | { kind: "pending"; vendorStatus: string }
  /** Finished: a result per delivery id; deliveries left out fail with `missing_from_result`. */
  | { kind: "done"; vendorStatus: string; items: Map<string, ItemResult> }
  /** The batch failed as a whole: every delivery goes back to its retry schedule (a new batch next time). */
  | { kind: "failed"; code: OutcomeCode; message: string; vendorStatus?: string }
  /** A passing problem with this step (network, 5xx, auth handshake): the same step again later. */
  | { kind: "retry"; code: OutcomeCode; message: string };
