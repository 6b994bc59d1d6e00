import { hostname } from "node:os";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { CredentialRuntime } from "../auth/runtime.ts";
import type { Outcome } from "../connectors/connector.ts";
import type { ResolvedDestination } from "../destinations/model.ts";
import type { DestinationService } from "../destinations/service.ts";
import type { Events } from "../events.ts";
import type { Lead } from "../lead/lead.ts";
import type { Capabilities } from "../store/db.ts";
import type { Database } from "../store/schema.ts";
import { wakeableDelay } from "../util/delay.ts";
import { newId } from "../util/ids.ts";
import { runAttempt } from "./attempt.ts";
import type { Exchange, Transport } from "./http-client.ts";
import { type Completion, completeMany } from "../store/completions.ts";
import {
  claimDue,
  type ClaimedRow,
  nextDueAt,
  releaseLeases,
  renewLeases,
} from "../store/deliveries-repo.ts";
import { nextRetryDelay } from "./schedule.ts";

/** Shortest sleep between claims when something is due but not claimable (leased elsewhere). */
const MIN_SLEEP_MS = 20;

/** What the background processors (the worker, the batch service) run on; wired once in app.ts. */
export interface DeliveryRuntime {
  db: Kysely<Database>;
  caps: Capabilities;
  destinations: DestinationService;
  credentials: CredentialRuntime;
  transport: Transport;
  events: Events;
  log: Logger;
  now: () => number;
  /** Subscribes to other processes' wake-ups (LISTEN/NOTIFY); returns an unsubscribe function. */
  listen: (onWake: () => void) => Promise<() => Promise<void>>;
}

export interface WorkerOptions {
  /** Deliveries in flight at once in this process. */
  concurrency: number;
  /** A claim is owned for the destination's timeout plus this long. */
  leaseMs: number;
  /** Longest sleep when nothing is due (catches other processes' retries and expired leases). */
  idleCheckMs?: number;
  /** While a destination waits for an OAuth reconnect, look again this often. */
  blockedRecheckMs?: number;
  /**
   * Attempt outcomes finishing within this window are written in one transaction (sooner when
   * `COMPLETION_BATCH` are waiting). Longer windows mean fewer, larger commits; a crash in the
   * window means those pushes are made again (same Idempotency-Key), as for any in-flight push.
   */
  completionWindowMs?: number;
}

/**
 * The outcome of a push cut off at the end of the shutdown grace. Not an attempt that spends a
 * retry, and due again at once: the next worker (or the restart) pushes it again with the same
 * Idempotency-Key — it may have reached the client before it was cut off.
 */
export const SHUTDOWN_ABORTED = "shutdown_aborted";

/** How long aborted pushes get to settle and be recorded after the grace (a local write). */
const ABORT_SETTLE_MS = 2000;

/** Completions waiting that make the writer go at once instead of at the window's end. */
const COMPLETION_BATCH = 256;

/** Keeps the `result` column: the client's answer and a connector's state between attempts. */
interface StoredResult {
  response?: unknown;
  state?: Record<string, unknown>;
}

/**
 * The delivery loop: claims due deliveries with a lease, runs each through its connector with the
 * destination's auth, records the attempt and decides what happens next. Wakes at once on new work.
 */
export class Worker {
  readonly id = `${hostname()}:${process.pid}:${newId().slice(-8)}`;
  readonly #db: Kysely<Database>;
  readonly #caps: Capabilities;
  readonly #destinations: DestinationService;
  readonly #credentials: CredentialRuntime;
  readonly #transport: Transport;
  readonly #events: Events;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #opts: Required<WorkerOptions>;
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #perDestination = new Map<string, number>();
  #completions: Completion[] = [];
  #writing: Promise<void> | undefined;
  /** Ends the current completion window early (many waiting, or shutting down). */
  #writeNow: (() => void) | undefined;
  #running = false;
  #wakeRequested = false;
  #excluded: string[] = [];
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #unlisten: (() => Promise<void>) | undefined;
  #offWork: (() => void) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  /** Aborts every push in flight when the shutdown grace ends. */
  #abort = new AbortController();
  /** Due rows may be waiting that this worker had no room for (set by claims, cleared when drained). */
  #backlog = true;
  /** Slots promised to ingest's hand-off, not started yet. */
  #reserved = 0;

  constructor(deps: DeliveryRuntime & { options: WorkerOptions }) {
    this.#db = deps.db;
    this.#caps = deps.caps;
    this.#destinations = deps.destinations;
    this.#credentials = deps.credentials;
    this.#transport = deps.transport;
    this.#events = deps.events;
    this.#log = deps.log.child({ worker: this.id });
    this.#now = deps.now;
    this.#opts = { idleCheckMs: 2000, blockedRecheckMs: 60_000, completionWindowMs: 10, ...deps.options };
    this.#listenFn = deps.listen;
  }
  readonly #listenFn: (onWake: () => void) => Promise<() => Promise<void>>;

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    if (this.#abort.signal.aborted) this.#abort = new AbortController();
    this.#offWork = this.#events.on("work:available", () => this.wake());
    if (this.#caps.listenNotify) this.#unlisten = await this.#listenFn(() => this.wake());
    this.#heartbeat = setInterval(
      () => {
        const ids = [...this.#inflight.keys()];
        if (ids.length === 0) return;
        renewLeases(this.#db, this.id, ids, this.#now() + this.#opts.leaseMs).catch((err: unknown) =>
          this.#log.warn({ err }, "renewing leases failed"),
        );
      },
      Math.max(100, Math.floor(this.#opts.leaseMs / 3)),
    );
    this.#heartbeat.unref();
    this.#loop = this.#run();
  }

  /** Look for work now. */
  wake(): void {
    this.#backlog = true;
    this.#wakeRequested = true;
    this.#wake?.();
  }

  /**
   * Stop claiming; wait for in-flight pushes up to `graceMs`, then abort the rest: each is
   * recorded as a `shutdown_aborted` attempt and due again at once. The grace is a hard limit.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#offWork?.();
    this.wake();
    await this.#loop;
    const settled = async (ms: number) => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(this.#inflight.values()),
        new Promise((r) => (timer = setTimeout(r, ms))),
      ]);
      clearTimeout(timer);
    };
    await settled(graceMs);
    if (this.#inflight.size > 0) {
      this.#log.warn({ inflight: this.#inflight.size }, "shutdown grace over: aborting pushes in flight");
      this.#abort.abort(new Error("the shutdown grace (LEADPUSH_SHUTDOWN_GRACE_MS) ended"));
      await settled(ABORT_SETTLE_MS);
    }
    await this.#flush();
    clearInterval(this.#heartbeat);
    await releaseLeases(this.#db, this.id, [...this.#inflight.keys()], this.#now());
    await this.#unlisten?.();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      this.#wakeRequested = false;
      let claimedFull = false;
      try {
        claimedFull = await this.#claimOnce();
      } catch (err) {
        this.#log.error({ err }, "claiming deliveries failed; trying again shortly");
      }
      if (!this.#running) break;
      if (claimedFull && !this.#wakeRequested) continue;
      if (this.#wakeRequested) continue;
      await this.#sleep();
    }
  }

  /**
   * Waits for a wake-up (new work, a finished push) or until the next delivery falls due. Always
   * yields to the event loop: with the embedded database every query resolves as a microtask.
   */
  async #sleep(): Promise<void> {
    let wait = this.#opts.idleCheckMs;
    // With pushes in flight, their completion wakes the loop; only an idle worker needs a timer.
    if (this.#inflight.size === 0) {
      const due = await nextDueAt(this.#db, this.#excluded).catch(() => undefined);
      if (due !== undefined) wait = Math.min(wait, Math.max(MIN_SLEEP_MS, due - this.#now()));
    }
    if (this.#wakeRequested || !this.#running) return;
    const delay = wakeableDelay(wait);
    this.#wake = delay.wake;
    await delay.done;
    this.#wake = undefined;
  }

  /**
   * Hand-off from ingest in this process: a new delivery can be given straight to this worker,
   * leased to it in the very transaction that stores the lead, when the worker has room for it
   * now. It saves a claim query per lead and the wake-up latency. Returns the lease to write, or
   * undefined (then the row waits in the queue for any worker).
   */
  reserve(destination: ResolvedDestination): { owner: string; leaseUntil: number } | undefined {
    if (
      !this.#running ||
      !destination.enabled ||
      destination.paused ||
      destination.state === "needs_reconnect"
    )
      return undefined;
    const busy = this.#perDestination.get(destination.id) ?? 0;
    if (busy >= destination.concurrency || this.#inflight.size + this.#reserved >= this.#opts.concurrency)
      return undefined;
    this.#perDestination.set(destination.id, busy + 1);
    this.#reserved++;
    return { owner: this.id, leaseUntil: this.#now() + this.#opts.leaseMs };
  }

  /** Gives back a reservation whose row was not stored (a repeated idempotency key, a failed write). */
  unreserve(destinationId: string): void {
    this.#reserved--;
    this.#perDestination.set(destinationId, (this.#perDestination.get(destinationId) ?? 1) - 1);
  }

  /** Starts a reserved delivery that is now stored and leased to this worker. */
  adopt(row: ClaimedRow, destination: ResolvedDestination): void {
    this.#reserved--;
    if (!this.#running) {
      // Stopping: the lease will run out and another worker (or the next start) takes the row.
      this.#perDestination.set(destination.id, (this.#perDestination.get(destination.id) ?? 1) - 1);
      return;
    }
    this.#startJob(row, destination);
  }

  /** Claims what fits; returns true when it claimed a full batch (more may be waiting). */
  async #claimOnce(): Promise<boolean> {
    const free = this.#opts.concurrency - this.#inflight.size - this.#reserved;
    if (free <= 0) return false;
    const destinations = await this.#destinations.resolved();
    const exclude: string[] = [];
    let destinationSlots = 0;
    let atCapacity = false;
    for (const d of destinations.values()) {
      const busy = this.#perDestination.get(d.id) ?? 0;
      if (busy >= d.concurrency) atCapacity = true;
      // A destination waiting for an OAuth reconnect is not claimed: the reconnect makes its
      // deliveries due and wakes the workers. A paused one likewise until it is resumed.
      if (!d.enabled || d.paused || d.state === "needs_reconnect" || busy >= d.concurrency)
        exclude.push(d.id);
      else destinationSlots += d.concurrency - busy;
    }
    this.#excluded = exclude;
    const now = this.#now();
    // Rows of deleted destinations are claimable too (to be failed): allow at least one.
    const limit = Math.min(free, 256, Math.max(destinationSlots, 1));
    // Claim in batches: while pushes are in flight, wait until a quarter of the slots are free
    // instead of running a claim query for every finished push.
    const capacity = Math.min(this.#opts.concurrency, Math.max(destinationSlots + this.#inflight.size, 1));
    if (this.#inflight.size > 0 && limit < Math.min(16, capacity / 4)) return false;
    const rows = await claimDue(this.#db, this.#caps, {
      owner: this.id,
      now,
      leaseUntil: now + this.#opts.leaseMs,
      limit,
      excludeDestinations: exclude,
    });
    const giveBack: string[] = [];
    // A destination created or changed in another process since the cache was loaded: look again
    // before treating its rows as orphans.
    let known = destinations;
    if (rows.some((r) => !known.has(r.destination_id)))
      known = await this.#destinations.resolved({ fresh: true });
    for (const row of rows) {
      const destination = known.get(row.destination_id);
      if (!destination) {
        this.#startJob(row, undefined);
        continue;
      }
      const busy = this.#perDestination.get(destination.id) ?? 0;
      if (busy >= destination.concurrency) {
        giveBack.push(row.id);
        continue;
      }
      this.#perDestination.set(destination.id, busy + 1);
      this.#startJob(row, destination);
    }
    await releaseLeases(this.#db, this.id, giveBack, now);
    const full = rows.length === limit;
    // Drained as far as this worker can see: finished pushes need not look again.
    this.#backlog = full || atCapacity || giveBack.length > 0;
    return full && giveBack.length === 0;
  }

  #startJob(row: ClaimedRow, destination: ResolvedDestination | undefined): void {
    const p = this.#process(row, destination)
      .catch((err: unknown) => this.#log.error({ err, delivery: row.id }, "delivery crashed"))
      .finally(() => {
        this.#inflight.delete(row.id);
        if (destination)
          this.#perDestination.set(destination.id, (this.#perDestination.get(destination.id) ?? 1) - 1);
        // A freed slot matters only when rows may be waiting for one; otherwise (the hand-off case)
        // a claim query per finished push would find nothing.
        if (this.#backlog) this.wake();
      });
    this.#inflight.set(row.id, p);
  }

  async #process(row: ClaimedRow, destination: ResolvedDestination | undefined): Promise<void> {
    const started = this.#now();
    const attempt = row.attempts + 1;
    const stored: StoredResult = row.result ? (JSON.parse(row.result) as StoredResult) : {};
    if (!destination) {
      const outcome: Outcome = {
        kind: "failed",
        code: "destination_deleted",
        message: "the destination no longer exists",
      };
      this.#complete(row, undefined, attempt, outcome, [], stored.state ?? {}, stored, started, 0);
      return;
    }
    const r = await runAttempt({
      destination,
      lead: row.lead ?? (JSON.parse(row.lead_data) as Lead),
      leadId: row.lead_id,
      deliveryId: row.id,
      attempt,
      state: stored.state ?? {},
      transport: this.#transport,
      credentials: this.#credentials,
      signal: this.#abort.signal,
    });
    if (this.#abort.signal.aborted && r.exchanges.some((e) => e.error?.code === "aborted")) {
      // Whatever the connector made of the cut-off request: what happened is the shutdown.
      r.outcome = {
        kind: "retry",
        code: SHUTDOWN_ABORTED,
        message: "cut off at the end of the shutdown grace; it may have reached the client",
      };
    }
    if (r.outcome.kind === "retry" && r.outcome.code === "internal_error") {
      this.#log.error(
        { delivery: row.id, destination: destination.name, message: r.outcome.message },
        "connector threw",
      );
    }
    this.#complete(row, destination, attempt, r.outcome, r.exchanges, r.state, stored, started, r.durationMs);
  }

  #complete(
    row: ClaimedRow,
    destination: ResolvedDestination | undefined,
    attempt: number,
    outcome: Outcome,
    exchanges: Exchange[],
    state: Record<string, unknown>,
    stored: StoredResult,
    started: number,
    durationMs: number,
  ): void {
    const now = this.#now();
    const result: StoredResult = { ...stored, ...(Object.keys(state).length > 0 ? { state } : {}) };
    let status: Completion["status"];
    let attempts = attempt;
    let nextAttemptAt: number | null = null;
    let code: string | undefined;
    switch (outcome.kind) {
      case "delivered":
        status = "delivered";
        if (destination) this.#markState(destination, "active");
        if (outcome.result !== undefined) result.response = outcome.result;
        break;
      case "failed":
        status = "failed";
        code = outcome.code;
        break;
      case "retry": {
        code = outcome.code;
        if (code === SHUTDOWN_ABORTED) {
          status = "retrying";
          attempts = row.attempts;
          nextAttemptAt = now;
          break;
        }
        const delay = destination
          ? nextRetryDelay(attempt, destination.retry, outcome.retryAfterMs)
          : undefined;
        if (delay === undefined) status = "failed";
        else {
          status = "retrying";
          nextAttemptAt = now + delay;
        }
        break;
      }
      case "blocked":
        // Waiting for a person (OAuth reconnect): not an attempt that spends a retry.
        status = "retrying";
        code = outcome.code;
        attempts = row.attempts;
        nextAttemptAt = now + this.#opts.blockedRecheckMs;
        if (destination) this.#markState(destination, "needs_reconnect");
        break;
      case "awaiting":
        // Handed to the connector's batching: not claimable (no next_attempt_at) until a batch
        // completes it, or puts it back on its retry schedule.
        status = "awaiting";
        break;
      default: {
        const never: never = outcome;
        throw new Error(`unknown outcome ${JSON.stringify(never)}`);
      }
    }
    const last = exchanges[exchanges.length - 1];
    const lastStatus =
      "status" in outcome && outcome.status !== undefined ? outcome.status : (last?.status ?? null);
    const message = "message" in outcome ? outcome.message : null;
    const completion: Completion = {
      deliveryId: row.id,
      owner: this.id,
      leadId: row.lead_id,
      destinationId: row.destination_id,
      status,
      attempts,
      nextAttemptAt,
      lastError: code ? `${code}: ${message ?? ""}` : null,
      lastStatus,
      externalId: outcome.kind === "delivered" ? (outcome.externalId ?? null) : null,
      result: Object.keys(result).length > 0 ? JSON.stringify(result) : null,
      deliveredAt: status === "delivered" ? now : null,
      attempt: {
        id: newId(),
        delivery_id: row.id,
        lead_id: row.lead_id,
        destination_id: row.destination_id,
        number: attempt,
        started_at: started,
        duration_ms: durationMs,
        outcome: outcome.kind,
        exchanges: JSON.stringify(exchanges),
        response_status: lastStatus,
        error_code: code ?? null,
        error_message: message,
      },
    };
    if (outcome.kind === "delivered" && outcome.enrichment !== undefined && destination) {
      completion.enrichment = { name: destination.name, value: outcome.enrichment };
    }
    this.#completions.push(completion);
    this.#events.emit("delivery:completed", {
      deliveryId: row.id,
      leadId: row.lead_id,
      destinationId: row.destination_id,
      destination: destination?.name ?? "(deleted)",
      status,
      outcome: outcome.kind,
      durationMs,
      attempt,
      ...(code ? { code } : {}),
    });
    if (!this.#writing) {
      const completionWindow = wakeableDelay(this.#opts.completionWindowMs);
      this.#writeNow = completionWindow.wake;
      this.#writing = completionWindow.done.then(() => this.#flushLoop());
    } else if (this.#completions.length >= COMPLETION_BATCH) this.#writeNow?.();
  }

  /**
   * The one place a destination's state follows what its pushes meet: a push blocked for a person
   * marks it `needs_reconnect` (visible in the API and metrics); a delivered push marks it `active`
   * again (heals a blocked attempt that raced with a reconnect).
   */
  #markState(destination: ResolvedDestination, state: "active" | "needs_reconnect"): void {
    if (destination.state === state) return;
    destination.state = state;
    this.#destinations.setState(destination.id, state).catch((err: unknown) => {
      this.#log.error({ err, destination: destination.name }, "recording the destination's state failed");
    });
    if (state === "needs_reconnect") {
      this.#log.warn(
        { destination: destination.name },
        "destination needs an admin to reconnect it; its deliveries wait",
      );
    }
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#completions.length > 0) {
        const batch = this.#completions;
        this.#completions = [];
        try {
          const destinations = await this.#destinations.resolved();
          const byName = new Map([...destinations.values()].map((d) => [d.name, d.id]));
          const upstreamOf = (id: string) =>
            (destinations.get(id)?.after ?? []).flatMap((name) => byName.get(name) ?? []);
          const applied = await completeMany(this.#db, batch, this.#now(), upstreamOf);
          // A retry changes when the next row is due, and a finished row can unblock downstream
          // ones (the loop may have gone to sleep before this write, with the row still leased).
          const upstreamIds = new Set(
            [...destinations.values()].flatMap((d) => d.after.map((n) => byName.get(n))),
          );
          if (applied.some((c) => c.status === "retrying" || upstreamIds.has(c.destinationId))) this.wake();
          const awaiting = applied.filter((c) => c.status === "awaiting").map((c) => c.destinationId);
          if (awaiting.length > 0)
            this.#events.emit("deliveries:awaiting", { destinationIds: [...new Set(awaiting)] });
        } catch (err) {
          // The leases run out and the deliveries are tried again: at-least-once, nothing lost.
          this.#log.error({ err, count: batch.length }, "recording attempt outcomes failed");
        }
      }
    } finally {
      this.#writing = undefined;
      this.#writeNow = undefined;
    }
  }

  async #flush(): Promise<void> {
    this.#writeNow?.();
    while (this.#writing || this.#completions.length > 0) {
      await (this.#writing ?? this.#flushLoop());
    }
  }
}
