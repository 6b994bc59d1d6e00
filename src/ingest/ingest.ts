import type { Kysely } from "kysely";
import type { ApiErrorCode } from "../domain/codes.ts";
import type { ClaimedRow } from "../store/deliveries-repo.ts";
import type { ResolvedDestination } from "../destinations/model.ts";
import type { DestinationService } from "../destinations/service.ts";
import type { Events } from "../events.ts";
import { insertLeads, type IngestResult, type NewLead } from "../store/leads-repo.ts";
import type { Database } from "../store/schema.ts";
import { AppError, type ErrorDetail } from "../util/errors.ts";
import { type Lead, parseLead } from "../lead/lead.ts";
import { routeLead } from "./routing.ts";

/** The local worker's side of the hand-off (implemented by `Worker`). */
export interface Handoff {
  reserve(destination: ResolvedDestination): { owner: string; leaseUntil: number } | undefined;
  unreserve(destinationId: string): void;
  adopt(row: ClaimedRow, destination: ResolvedDestination): void;
}

export type ItemResult =
  | { ok: true; result: IngestResult }
  | {
      ok: false;
      code: ApiErrorCode;
      message: string;
      details: ErrorDetail[];
      /** The store's error behind an `internal_error` (for the log, never for the caller). */
      cause?: unknown;
    };

/** A lead of a group commit that could not be stored: only it gets the error. */
interface Failed {
  failed: true;
  error: unknown;
}
type Written = IngestResult | Failed;
const isFailed = (w: Written | undefined): w is Failed => w !== undefined && "failed" in w;

interface Pending {
  item: NewLead;
  resolve: (r: IngestResult) => void;
  reject: (e: unknown) => void;
}

/** How long a lead may wait for others to share its transaction, under concurrent load only. */
const GROUP_COMMIT_LINGER_MS = 2;
/** Leads waiting that end the wait at once. */
const GROUP_COMMIT_MAX = 256;
/**
 * Transactions a failed group commit may spend isolating the lead(s) that made it fail (halves
 * retried): one bad lead among 1 000 needs ~20. When the store itself is down every half fails,
 * and this bounds the cost before all remaining leads get the error.
 */
const ISOLATION_BUDGET = 64;

/**
 * The write path. Leads are validated and routed, then written with their deliveries by a group
 * commit: every lead that arrives while a transaction is being written goes into the next one, so
 * a burst of requests costs a few transactions, not one each. A 201 is sent only after the commit.
 */
export class Ingest {
  readonly #db: Kysely<Database>;
  readonly #destinations: DestinationService;
  readonly #events: Events;
  readonly #now: () => number;
  readonly #region: string;
  readonly #notifyOthers: () => Promise<void>;
  readonly #duplicateWindowMs: number;
  #handoff: Handoff | undefined;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #scheduled = false;
  /** Leads in the last transaction written. */
  #lastBatch = 0;
  #linger: NodeJS.Timeout | undefined;

  constructor(deps: {
    db: Kysely<Database>;
    destinations: DestinationService;
    events: Events;
    now: () => number;
    defaultRegion: string;
    notifyOthers: () => Promise<void>;
    duplicateWindowMs: number;
  }) {
    this.#duplicateWindowMs = deps.duplicateWindowMs;
    this.#db = deps.db;
    this.#destinations = deps.destinations;
    this.#events = deps.events;
    this.#now = deps.now;
    this.#region = deps.defaultRegion;
    this.#notifyOthers = deps.notifyOthers;
  }

  /**
   * Validates and stores one lead; throws `invalid_lead` (400) for bad input. `apiKeyId`: the key
   * that sent it (shown on the lead's timeline).
   */
  async accept(body: unknown, idempotencyKey?: string, apiKeyId?: string): Promise<IngestResult> {
    const parsed = parseLead(body, this.#region);
    if (!parsed.ok) throw new AppError(400, "invalid_lead", "the lead is not valid", parsed.details);
    return this.#enqueue(await this.#route(parsed.lead, idempotencyKey, apiKeyId));
  }

  /**
   * Many leads, one result each; valid ones are stored in one transaction (a lead the store
   * refuses gets `internal_error`, the others are stored). `keys[i]`: lead i's idempotency key.
   */
  async acceptMany(
    bodies: unknown[],
    keys?: readonly (string | undefined)[],
    apiKeyId?: string,
  ): Promise<ItemResult[]> {
    const routed = await Promise.all(
      bodies.map(async (b, i) => {
        const parsed = parseLead(b, this.#region);
        return parsed.ok
          ? { ok: true as const, item: await this.#route(parsed.lead, keys?.[i], apiKeyId) }
          : parsed;
      }),
    );
    const items = routed.flatMap((r) => (r.ok ? [r.item] : []));
    const stored = items.length > 0 ? await this.#write(items) : [];
    let n = 0;
    return routed.map((r): ItemResult => {
      if (!r.ok)
        return { ok: false, code: "invalid_lead", message: "the lead is not valid", details: r.details };
      const w = stored[n++];
      if (isFailed(w)) {
        const message = "the lead could not be stored; the log has details";
        return { ok: false, code: "internal_error", message, details: [], cause: w.error };
      }
      return { ok: true, result: w as IngestResult };
    });
  }

  async #route(lead: Lead, idempotencyKey: string | undefined, apiKeyId?: string): Promise<NewLead> {
    const all = await this.#destinations.resolved();
    const input = lead as unknown as Record<string, unknown>;
    const routed = await routeLead(all.values(), input, this.#duplicateWindowMs);
    return { lead, idempotencyKey, ...(apiKeyId !== undefined ? { apiKeyId } : {}), ...routed };
  }

  #enqueue(item: NewLead): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // Under concurrent load (the last transaction held more than one lead) wait a moment for
        // more: larger transactions cost less per lead, and each 201 waits for one anyway. A lone
        // lead on an idle system is written at once.
        if (this.#lastBatch > 1) this.#linger = setTimeout(() => void this.#drain(), GROUP_COMMIT_LINGER_MS);
        else setImmediate(() => void this.#drain());
      } else if (this.#linger && this.#queue.length >= GROUP_COMMIT_MAX) {
        clearTimeout(this.#linger);
        this.#linger = undefined;
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    this.#scheduled = false;
    this.#linger = undefined;
    if (this.#flushing) {
      await this.#flushing;
      if (!this.#scheduled && this.#queue.length > 0) {
        this.#scheduled = true;
        setImmediate(() => void this.#drain());
      }
      return;
    }
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    this.#lastBatch = batch.length;
    this.#flushing = this.#write(batch.map((p) => p.item))
      .then(
        (results) =>
          batch.forEach((p, i) => {
            const w = results[i];
            if (isFailed(w)) p.reject(w.error);
            else p.resolve(w as IngestResult);
          }),
        (err: unknown) => batch.forEach((p) => p.reject(err)),
      )
      .finally(() => (this.#flushing = undefined));
    await this.#flushing;
  }

  /** Never throws for a store error: a lead that could not be stored is `Failed`, alone. */
  async #write(items: NewLead[]): Promise<Written[]> {
    // Hand-off: new deliveries the local worker has room for are leased to it in the same write.
    const handoff = this.#handoff;
    const destinations = handoff ? await this.#destinations.resolved() : undefined;
    const reserved: { item: number; destinationId: string }[] = [];
    if (handoff && destinations) {
      items.forEach((item, n) => {
        for (const target of item.targets) {
          const d = destinations.get(target.destinationId);
          const lease = target.status === "pending" && d ? handoff.reserve(d) : undefined;
          if (lease) {
            target.lease = lease;
            reserved.push({ item: n, destinationId: target.destinationId });
          }
        }
      });
    }
    // A reservation whose lead failed (or was a repeat) is given back below, like any unstored row.
    const results = await this.#store(items, { left: ISOLATION_BUDGET });
    for (const r of reserved) {
      const result = results[r.item];
      const row =
        result && !isFailed(result) && result.created
          ? result.handedOff?.find((h) => h.destinationId === r.destinationId)
          : undefined;
      const destination = destinations?.get(r.destinationId);
      if (!row || !destination) {
        handoff?.unreserve(r.destinationId);
        continue;
      }
      handoff?.adopt(
        {
          id: row.id,
          lead_id: row.leadId,
          destination_id: row.destinationId,
          attempts: 0,
          result: null,
          status: "pending",
          lease_until: null,
          lead_data: row.data,
          lead: row.lead,
        },
        destination,
      );
    }
    let queued = 0;
    for (const r of results) {
      if (isFailed(r) || !r.created) continue;
      queued += r.deliveries.filter((d) => d.status === "pending").length - (r.handedOff?.length ?? 0);
      this.#events.emit("lead:accepted", { leadId: r.id, deliveries: r.deliveries.length });
    }
    // Only work nobody holds yet needs a wake-up (here and in other processes).
    if (queued > 0) {
      this.#events.emit("work:available");
      this.#notifyOthers().catch(() => undefined);
    }
    return results;
  }

  /**
   * One transaction for all the leads. When it fails, each half is written on its own (and so on
   * down to single leads) so that only the lead(s) the store refuses get the error; the others are
   * stored and answered as usual. `budget` bounds the transactions spent on that.
   */
  async #store(items: NewLead[], budget: { left: number }): Promise<Written[]> {
    try {
      return await insertLeads(this.#db, items, this.#now(), { windowMs: this.#duplicateWindowMs });
    } catch (error) {
      if (items.length === 1 || budget.left < 2) return items.map(() => ({ failed: true, error }));
      budget.left -= 2;
      const mid = items.length >> 1;
      const first = await this.#store(items.slice(0, mid), budget);
      return first.concat(await this.#store(items.slice(mid), budget));
    }
  }

  /** Lets new deliveries go straight to this process's worker (see `Worker.reserve`). */
  attachWorker(handoff: Handoff): void {
    this.#handoff = handoff;
  }

  /** Waits for writes in progress (shutdown). */
  async idle(): Promise<void> {
    while (this.#flushing || this.#queue.length > 0) {
      await (this.#flushing ?? new Promise((r) => setImmediate(r)));
    }
  }
}
