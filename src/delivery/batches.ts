import { hostname } from "node:os";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { CredentialRuntime } from "../auth/runtime.ts";
import type { BatchContext, BatchItem, BatchStep, Batching, ItemResult } from "../connectors/batching.ts";
import type { ResolvedDestination } from "../destinations/model.ts";
import type { DestinationService } from "../destinations/service.ts";
import type { Events } from "../events.ts";
import {
  batchItems,
  claimBatches,
  createBatch,
  finishBatch,
  type LoadedItem,
  nextBatchCheckAt,
  nextCheck,
  recordBatchStep,
  requeueStrays,
  waitingForBatch,
} from "../store/batches-repo.ts";
import type { Capabilities } from "../store/db.ts";
import type { BatchesTable, Database } from "../store/schema.ts";
import { newId } from "../util/ids.ts";
import type { SecretBox } from "../util/secret-box.ts";
import type { UrlSigner } from "../util/signed-url.ts";
import { openAttemptSession } from "./attempt-session.ts";
import { batchCompletion, redactItems } from "./batch-completion.ts";
import { observeBatchStep } from "./batch-health.ts";
import { HealthTracker } from "./health-tracker.ts";
import { upstreamLookup } from "./completion.ts";
import type { Exchange, Transport } from "../http/http-client.ts";
import { type NextRound, WakeableLoop } from "./loop.ts";
import type { DeliveryRuntime } from "./runtime.ts";

/** Signed file and callback URLs stay valid this long after a batch's deadline. */
export const URL_MARGIN_MS = 3600_000;
/** Exchanges kept in a batch's log. */
const LOG_LIMIT = 40;

export interface BatchServiceOptions {
  /** How long a claimed batch step is owned before another process may take it. */
  leaseMs: number;
  /** Longest sleep: other processes' work (new deliveries, callbacks) is seen at least this often. */
  idleCheckMs?: number;
  /** Batch steps run at once by this process. */
  concurrency?: number;
}

/** The signed URLs of a batch (the API shows them too). */
export function batchUrls(signer: UrlSigner, publicUrl: string, batch: { id: string; deadline_at: number }) {
  const exp = Number(batch.deadline_at) + URL_MARGIN_MS;
  return {
    fileUrl: `${publicUrl}/v1/files/${signer.sign("file", batch.id, exp)}`,
    callbackUrl: `${publicUrl}/v1/callbacks/${signer.sign("callback", batch.id, exp)}`,
  };
}

/**
 * Runs batching connectors' batches (src/connectors/batching.ts): closes a batch when a
 * destination's awaiting deliveries reach the batch size or the oldest has waited the window,
 * submits it, checks it (at once after a callback, else on a doubling poll schedule) until it is
 * done, failed or past its deadline, and completes its deliveries in one transaction with the
 * store's `finishBatch` (enrichment merged, downstream `after` deliveries unblocked).
 * Everything is in the database: timers are rebuilt from it on start, and batches are claimed with
 * a lease, so any number of processes share the work.
 */
export class BatchService {
  readonly id = `${hostname()}:${process.pid}:batches:${newId().slice(-8)}`;
  readonly #db: Kysely<Database>;
  readonly #caps: Capabilities;
  readonly #destinations: DestinationService;
  readonly #credentials: CredentialRuntime;
  readonly #transport: Transport;
  readonly #events: Events;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #box: SecretBox;
  readonly #signer: UrlSigner;
  readonly #publicUrl: string;
  readonly #notify: () => Promise<void>;
  readonly #opts: Required<BatchServiceOptions>;
  readonly #loop: WakeableLoop;
  /** The worker's tracker (one per process): batch steps feed the destination's health too. */
  readonly #health: HealthTracker;
  #straysCheckedAt = 0;

  constructor(
    deps: DeliveryRuntime & {
      box: SecretBox;
      signer: UrlSigner;
      publicUrl: string;
      notifyWork: () => Promise<void>;
      options: BatchServiceOptions;
    },
  ) {
    this.#db = deps.db;
    this.#caps = deps.caps;
    this.#destinations = deps.destinations;
    this.#credentials = deps.credentials;
    this.#transport = deps.transport;
    this.#events = deps.events;
    this.#log = deps.log.child({ component: "batches", owner: this.id });
    this.#now = deps.now;
    this.#box = deps.box;
    this.#signer = deps.signer;
    this.#publicUrl = deps.publicUrl;
    this.#notify = deps.notifyWork;
    this.#opts = { idleCheckMs: 1000, concurrency: 8, ...deps.options };
    this.#health = deps.health ?? new HealthTracker(deps);
    this.#loop = new WakeableLoop({
      ...{ events: deps.events, caps: deps.caps, listen: deps.listen, log: this.#log },
      round: () => this.#round(),
      wakeOn: ["deliveries:awaiting", "batch:callback"],
      errorWaitMs: this.#opts.idleCheckMs,
    });
  }

  async start(): Promise<void> {
    await this.#loop.start();
  }

  wake(): void {
    this.#loop.wake();
  }

  /** Finishes the step in progress (bounded by the vendor timeouts) and stops. */
  async stop(): Promise<void> {
    if (!this.#loop.running) return;
    await this.#loop.stop();
    await this.#loop.unlisten();
  }

  async #round(): Promise<NextRound> {
    let next: number | undefined;
    try {
      next = await this.#tick();
    } catch (err) {
      this.#log.error({ err }, "batch step failed; trying again shortly");
    }
    return Math.min(this.#opts.idleCheckMs, Math.max(10, (next ?? Infinity) - this.#now()));
  }

  /** One round: close batches, run due steps. Returns when something falls due next. */
  async #tick(): Promise<number | undefined> {
    const destinations = await this.#destinations.resolved();
    const now = this.#now();
    let next: number | undefined;
    const soonest = (t: number | undefined) => {
      if (t !== undefined && (next === undefined || t < next)) next = t;
    };
    const batchingIds: string[] = [];
    for (const d of destinations.values()) {
      if (!d.connector.batching) continue;
      batchingIds.push(d.id);
      if (d.enabled) soonest(await this.#close(d, d.connector.batching, now));
    }
    if (now - this.#straysCheckedAt > 10_000) {
      this.#straysCheckedAt = now;
      const n = await requeueStrays(this.#db, batchingIds, now);
      if (n > 0) {
        this.#log.warn(
          { count: n },
          "awaiting deliveries of destinations that no longer batch: queued again",
        );
        this.#events.emit("work:available");
      }
    }
    const claimed = await claimBatches(this.#db, this.#caps, {
      owner: this.id,
      now,
      leaseUntil: now + this.#opts.leaseMs,
      limit: this.#opts.concurrency,
    });
    const steps = await Promise.allSettled(claimed.map((b) => this.#step(b, destinations)));
    for (const [i, s] of steps.entries()) {
      if (s.status === "rejected") {
        // The lease runs out and the step is tried again (by any process).
        this.#log.error({ err: s.reason as unknown, batch: claimed[i]?.id }, "batch step failed");
      }
    }
    if (claimed.length === this.#opts.concurrency) soonest(this.#now());
    soonest(await nextBatchCheckAt(this.#db, this.#now()));
    return next;
  }

  /** Closes full batches, and the rest when the window is over; returns when the window ends. */
  async #close(
    d: ResolvedDestination,
    batching: Batching<unknown>,
    now: number,
  ): Promise<number | undefined> {
    const policy = batching.policy(d.connectorConfig);
    for (;;) {
      const waiting = await waitingForBatch(this.#db, d.id, policy.size);
      if (waiting.length === 0) return undefined;
      const closesAt = Math.min(...waiting.map((w) => Number(w.updated_at))) + policy.windowMs;
      const windowOver = now >= closesAt;
      if (waiting.length < policy.size && !windowOver) return closesAt;
      const made = await createBatch(this.#db, this.#caps, {
        destinationId: d.id,
        size: policy.size,
        // Closing because it is full: only a full batch (another process may hold some rows).
        minSize: windowOver ? 1 : policy.size,
        now,
        deadlineAt: now + policy.deadlineMs,
      });
      if (!made) return windowOver ? undefined : closesAt;
      this.#log.info({ destination: d.name, batch: made.id, size: made.size }, "batch closed");
      if (waiting.length < policy.size) return undefined;
    }
  }

  async #step(batch: BatchesTable, destinations: Map<string, ResolvedDestination>): Promise<void> {
    const started = this.#now();
    const d = destinations.get(batch.destination_id);
    const items = await batchItems(this.#db, batch.id, true);
    if (!d?.connector.batching) {
      await this.#finish(batch, undefined, items, [], started, {
        kind: "failed",
        code: "destination_deleted",
        message: "the destination no longer exists or no longer batches",
      });
      return;
    }
    const batching = d.connector.batching;
    const policy = batching.policy(d.connectorConfig);
    const session = openAttemptSession({
      destination: d,
      transport: this.#transport,
      credentials: this.#credentials,
    });
    const { redactor, exchanges, http } = session;
    const urls = batchUrls(this.#signer, this.#publicUrl, batch);
    const ctx: BatchContext<unknown> = {
      batch: {
        id: batch.id,
        externalId: batch.external_id,
        vendorState: batch.vendor_state
          ? (JSON.parse(this.#box.open(batch.vendor_state)) as Record<string, unknown>)
          : {},
        callback: batch.callback ? (JSON.parse(batch.callback) as unknown) : undefined,
        ...urls,
      },
      items: items.map((i): BatchItem => ({ deliveryId: i.deliveryId, leadId: i.leadId, lead: i.lead })),
      destination: { id: d.id, name: d.name, timeoutMs: d.timeoutMs, config: d.connectorConfig },
      mapping: d.mapping,
      policy,
      http,
      auth: session.auth,
      download: async (url, timeoutMs) => {
        const t0 = performance.now();
        const res = await this.#transport.stream(url, timeoutMs);
        exchanges.push({
          step: "download",
          method: "GET",
          url: redactor.text(url),
          requestHeaders: {},
          durationMs: Math.round(performance.now() - t0),
          ...(res.ok ? { status: res.status, responseHeaders: redactor.headers(res.headers) } : {}),
          ...(res.ok ? {} : { error: { code: res.error.code, message: redactor.text(res.error.message) } }),
        });
        return res;
      },
    };
    let step: BatchStep;
    if (items.length === 0) {
      step = { kind: "done", vendorStatus: batch.vendor_status ?? "EMPTY", items: new Map() };
    } else {
      try {
        step = batch.status === "submitting" ? await batching.submit(ctx) : await batching.check(ctx);
      } catch (err) {
        step = { kind: "retry", code: "internal_error", message: String((err as Error)?.message ?? err) };
        this.#log.error({ err, batch: batch.id }, "batch step threw");
      }
    }
    // As for a single attempt: no secret in what is stored (an error may quote a vendor's answer).
    if ("message" in step) step = { ...step, message: redactor.text(step.message) };
    if (step.kind === "done") step = { ...step, items: redactItems(step.items, redactor) };
    const now = this.#now();
    if ((step.kind === "pending" || step.kind === "retry") && now >= Number(batch.deadline_at)) {
      const why = step.kind === "retry" ? ` (last: ${step.code}: ${step.message})` : "";
      step = {
        kind: "failed",
        code: "batch_deadline",
        message: `not finished ${policy.deadlineMs} ms after the batch was closed${why}`,
      };
    }
    const holdUntil = await observeBatchStep(this.#health, d, step, this.#log);
    const recorded = session.recorded();
    const log = JSON.stringify([...(JSON.parse(batch.log) as Exchange[]), ...recorded].slice(-LOG_LIMIT));
    // A step that opened the circuit (or met refused credentials) waits for the probe's time.
    const later = Math.max(
      now + Math.min(policy.pollIntervalMs * 2 ** batch.checks, policy.pollMaxIntervalMs),
      holdUntil ?? 0,
    );
    const release = { updated_at: now, log };
    switch (step.kind) {
      case "submitted":
        await recordBatchStep(this.#db, batch.id, this.id, {
          ...release,
          status: "processing",
          external_id: step.externalId,
          vendor_status: step.vendorStatus ?? null,
          vendor_state: step.vendorState ? this.#box.seal(JSON.stringify(step.vendorState)) : null,
          submitted_at: now,
          checks: 0,
          error: null,
          next_check_at: nextCheck(batch.callback_at, now, now + policy.pollIntervalMs),
        });
        this.#log.info(
          { batch: batch.id, destination: d.name, externalId: step.externalId },
          "batch submitted",
        );
        return;
      case "pending":
      case "retry":
        await recordBatchStep(this.#db, batch.id, this.id, {
          ...release,
          checks: batch.checks + 1,
          ...(step.kind === "pending"
            ? { vendor_status: step.vendorStatus }
            : { error: `${step.code}: ${step.message}` }),
          next_check_at: nextCheck(batch.callback_at, now, later),
        });
        return;
      case "done":
      case "failed":
        await this.#finish(batch, d, items, recorded, started, step, log, holdUntil);
        return;
      default: {
        const never: never = step;
        throw new Error(`unknown batch step ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * Ends a batch: marks it finished (only while this process holds it) and completes its
   * deliveries in the same transaction. `done`: each delivery delivered with its enrichment, or
   * failed (`missing_from_result`). `failed`: each goes back to its retry schedule (the attempt
   * that joined the batch is spent), or fails when none is left.
   */
  async #finish(
    batch: BatchesTable,
    d: ResolvedDestination | undefined,
    items: LoadedItem[],
    exchanges: Exchange[],
    started: number,
    step: Extract<BatchStep, { kind: "done" | "failed" }>,
    log = batch.log,
    holdUntil?: number,
  ): Promise<void> {
    const now = this.#now();
    const completions = items.map((item) => {
      let r: ItemResult | undefined;
      if (step.kind === "done") {
        r = step.items.get(item.deliveryId) ?? {
          ok: false,
          code: "missing_from_result",
          message: `the processed file has no row for lead ${item.leadId}`,
        };
      }
      return batchCompletion({
        owner: this.id,
        batch,
        destination: d,
        item,
        result: r,
        step,
        exchanges,
        started,
        now,
        holdUntil,
      });
    });
    const { upstreamOf } = upstreamLookup(await this.#destinations.resolved());
    const ended = await finishBatch(this.#db, {
      batchId: batch.id,
      owner: this.id,
      values: {
        status: step.kind === "done" ? "completed" : "failed",
        checks: batch.status === "processing" ? batch.checks + 1 : batch.checks,
        vendor_status: step.vendorStatus ?? batch.vendor_status,
        error: step.kind === "failed" ? `${step.code}: ${step.message}` : null,
        updated_at: now,
        log,
      },
      completions,
      now,
      upstreamOf,
    });
    if (!ended) return;
    const counts: Record<string, number> = {};
    for (const c of completions) counts[c.status] = (counts[c.status] ?? 0) + 1;
    this.#log.info({ batch: batch.id, destination: d?.name, outcome: step.kind, counts }, "batch finished");
    this.#events.emit("work:available");
    await this.#notify().catch(() => undefined);
  }
}
