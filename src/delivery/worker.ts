import { hostname } from "node:os";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { ResolvedDestination } from "../destinations/model.ts";
import {
  claimDue,
  type ClaimedRow,
  nextDueAt,
  releaseLeases,
  renewLeases,
} from "../store/deliveries-repo.ts";
import type { Database } from "../store/schema.ts";
import { every, settleWithin } from "../util/delay.ts";
import { newId } from "../util/ids.ts";
import { CompletionWriter } from "./completion-writer.ts";
import { handOffAllowed, HELD_STATES } from "./health.ts";
import { HealthTracker } from "./health-tracker.ts";
import { type NextRound, WakeableLoop } from "./loop.ts";
import { pushDelivery } from "./push.ts";
import { Slots } from "./slots.ts";
import { Traffic } from "./traffic.ts";
import type { DeliveryRuntime, WorkerOptions } from "./runtime.ts";

/** Shortest sleep between claims when something is due but not claimable (leased elsewhere). */
const MIN_SLEEP_MS = 20;
/** How long aborted pushes get to settle and be recorded after the grace (a local write). */
const ABORT_SETTLE_MS = 2000;
/** How often the worker re-reads which destinations other processes hold or throttle. */
const TRAFFIC_REFRESH_MS = 500;

/**
 * The delivery loop: claims due deliveries with a lease, runs each through its connector with the
 * destination's auth, records the attempt and decides what happens next. Wakes at once on new work.
 */
export class Worker {
  readonly id = `${hostname()}:${process.pid}:${newId().slice(-8)}`;
  readonly #rt: DeliveryRuntime;
  readonly #db: Kysely<Database>;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #opts: Required<WorkerOptions>;
  readonly #loop: WakeableLoop;
  readonly #writer: CompletionWriter;
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #slots: Slots;
  readonly #health: HealthTracker;
  readonly #traffic: Traffic;
  /** When a rate-limited destination's next token is due (rows wait for it), or undefined. */
  #rateWakeAt: number | undefined;
  #excluded: string[] = [];
  /** The earliest probe of a held destination this worker knows of (its rows are excluded). */
  #nextProbe: number | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #trafficTimer: NodeJS.Timeout | undefined;
  /** Aborts every push in flight when the shutdown grace ends. */
  #abort = new AbortController();
  /** Due rows may be waiting that this worker had no room for (set by claims, cleared when drained). */
  #backlog = true;
  /** Slots promised to ingest's hand-off, not started yet. */
  #reserved = 0;

  constructor(deps: DeliveryRuntime & { options: WorkerOptions }) {
    this.#rt = deps;
    this.#db = deps.db;
    this.#log = deps.log.child({ worker: this.id });
    this.#now = deps.now;
    this.#traffic = new Traffic(deps.db, deps.caps);
    this.#opts = { idleCheckMs: 2000, blockedRecheckMs: 60_000, completionWindowMs: 10, ...deps.options };
    this.#slots = new Slots(this.#opts.concurrency);
    this.#loop = new WakeableLoop({
      ...{ events: deps.events, caps: deps.caps, listen: deps.listen, log: this.#log },
      round: () => this.#round(),
      wakeOn: ["work:available"],
      errorWaitMs: this.#opts.idleCheckMs,
      onWake: () => (this.#backlog = true),
    });
    this.#health =
      deps.health ?? new HealthTracker({ db: deps.db, events: deps.events, log: this.#log, now: deps.now });
    this.#writer = new CompletionWriter({
      ...{ db: deps.db, destinations: deps.destinations, events: deps.events, log: this.#log },
      now: deps.now,
      windowMs: this.#opts.completionWindowMs,
      wake: () => this.wake(),
    });
  }

  async start(): Promise<void> {
    if (this.#loop.running) return;
    if (this.#abort.signal.aborted) this.#abort = new AbortController();
    this.#heartbeat = every(Math.max(100, Math.floor(this.#opts.leaseMs / 3)), () => {
      const ids = [...this.#inflight.keys()];
      if (ids.length === 0) return;
      renewLeases(this.#db, this.id, ids, this.#now() + this.#opts.leaseMs).catch((err: unknown) =>
        this.#log.warn({ err }, "renewing leases failed"),
      );
    });
    // Holds and throttles written by other processes (for the hand-off and the success path);
    // on a timer of its own, not in the claim round.
    this.#trafficTimer = every(TRAFFIC_REFRESH_MS, () => {
      this.#traffic
        .refresh(this.#now())
        .catch((err: unknown) => this.#log.warn({ err }, "reading holds failed"));
    });
    await this.#loop.start();
  }

  /** Look for work now. */
  wake(): void {
    this.#loop.wake();
  }

  /**
   * Stop claiming; wait for in-flight pushes up to `graceMs`, then abort the rest: each is
   * recorded as a `shutdown_aborted` attempt and due again at once. The grace is a hard limit.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.#loop.running) return;
    await this.#loop.stop();
    const settled = (ms: number) => settleWithin(this.#inflight.values(), ms);
    await settled(graceMs);
    if (this.#inflight.size > 0) {
      this.#log.warn({ inflight: this.#inflight.size }, "shutdown grace over: aborting pushes in flight");
      this.#abort.abort(new Error("the shutdown grace (LEADPUSH_SHUTDOWN_GRACE_MS) ended"));
      await settled(ABORT_SETTLE_MS);
    }
    await this.#writer.flush();
    clearInterval(this.#heartbeat);
    clearInterval(this.#trafficTimer);
    await releaseLeases(this.#db, this.id, [...this.#inflight.keys()], this.#now());
    await this.#loop.unlisten();
  }

  async #round(): Promise<NextRound> {
    let full = false;
    try {
      full = await this.#claimOnce();
    } catch (err) {
      this.#log.error({ err }, "claiming deliveries failed; trying again shortly");
    }
    if (full || this.#loop.wakeRequested || !this.#loop.running) return "again";
    return this.#sleepMs();
  }

  /** How long to sleep: until a wake-up (new work, a finished push) or the next delivery falls due. */
  async #sleepMs(): Promise<number> {
    let wait = this.#opts.idleCheckMs;
    // With pushes in flight, their completion wakes the loop; only an idle worker needs a timer.
    if (this.#inflight.size === 0) {
      const due = await nextDueAt(this.#db, this.#excluded).catch(() => undefined);
      if (due !== undefined) wait = Math.min(wait, Math.max(MIN_SLEEP_MS, due - this.#now()));
    }
    // A probe due, rows waiting for a rate limit's next token or a hold's end: no event announces them.
    const now = this.#now();
    for (const at of [this.#nextProbe, this.#rateWakeAt, this.#traffic.nextHoldEnd(now)]) {
      if (at !== undefined) wait = Math.min(wait, Math.max(MIN_SLEEP_MS, at - now));
    }
    return wait;
  }

  /**
   * Hand-off from ingest in this process: a new delivery can be given straight to this worker,
   * leased to it in the very transaction that stores the lead, when the worker has room for it
   * now. It saves a claim query per lead and the wake-up latency. Returns the lease to write, or
   * undefined (then the row waits in the queue for any worker).
   */
  reserve(destination: ResolvedDestination): { owner: string; leaseUntil: number } | undefined {
    const held = this.#traffic.held(destination.id, this.#now());
    if (!this.#loop.running || !handOffAllowed(destination, held)) return undefined;
    if (this.#inflight.size + this.#reserved >= this.#opts.concurrency) {
      // Full: the destination's lead waits in the queue; it counts towards the fair shares.
      this.#slots.want(destination.id);
      return undefined;
    }
    if (!this.#slots.take(destination)) return undefined;
    this.#reserved++;
    return { owner: this.id, leaseUntil: this.#now() + this.#opts.leaseMs };
  }

  /** Gives back a reservation whose row was not stored (a repeated idempotency key, a failed write). */
  unreserve(destinationId: string): void {
    this.#reserved--;
    this.#slots.give(destinationId);
  }

  /** Starts a reserved delivery that is now stored and leased to this worker. */
  adopt(row: ClaimedRow, destination: ResolvedDestination): void {
    this.#reserved--;
    if (!this.#loop.running) {
      // Stopping: the lease will run out and another worker (or the next start) takes the row.
      this.#slots.give(destination.id);
      return;
    }
    this.#startJob(row, destination);
  }

  /** Claims what fits; returns true when it claimed a full batch (more may be waiting). */
  async #claimOnce(): Promise<boolean> {
    // Rows waiting for a rate limit's token are a backlog: a finished push looks again.
    if (this.#rateWakeAt !== undefined) this.#backlog = true;
    this.#rateWakeAt = undefined;
    const free = this.#opts.concurrency - this.#inflight.size - this.#reserved;
    if (free <= 0) return false;
    const destinations = await this.#rt.destinations.resolved();
    const now = this.#now();
    const probing = await this.#health.probes(destinations.values(), now);
    this.#nextProbe = this.#health.nextProbeAt(destinations.values());
    const plan = this.#slots.plan(
      destinations.values(),
      free,
      this.#inflight.size,
      this.#opts.concurrency,
      probing,
    );
    const { exclude, limit } = plan;
    // Rate-limited destinations are claimed through their shared budget, not by the general claim.
    const limited = [...destinations.values()].filter(
      (d) => d.rateLimit !== undefined && !exclude.includes(d.id),
    );
    // Held destinations (a NOT IN subquery on destinations made SQLite's claims stall): from the
    // cache, which has this process's holds at once and other processes' within its refresh.
    this.#excluded = [...exclude, ...limited.map((d) => d.id), ...this.#traffic.heldIds(now)];
    if (limit === 0) return false;
    const rated = await this.#traffic.claimAll(limited, free, (d) => this.#slots.room(d), {
      ...{ owner: this.id, now, leaseUntil: now + this.#opts.leaseMs },
    });
    const rateRows = rated.rows;
    if (rated.nextAt !== undefined) this.#rateWakeAt = Math.min(this.#rateWakeAt ?? Infinity, rated.nextAt);
    const rows = await claimDue(this.#db, this.#rt.caps, {
      owner: this.id,
      now,
      leaseUntil: now + this.#opts.leaseMs,
      limit: Math.min(limit, free - rateRows.length),
      excludeDestinations: this.#excluded,
    });
    rows.push(...rateRows);
    const giveBack: string[] = [];
    // A destination created or changed in another process since the cache was loaded: look again
    // before treating its rows as orphans.
    let known = destinations;
    if (rows.some((r) => !known.has(r.destination_id)))
      known = await this.#rt.destinations.resolved({ fresh: true });
    for (const row of rows) {
      const destination = known.get(row.destination_id);
      if (!destination) {
        this.#startJob(row, undefined);
        continue;
      }
      // A held destination's probe is one delivery; its other rows wait for the probe's answer.
      const probe = HELD_STATES.has(destination.state);
      if (probe && !probing.delete(destination.id)) giveBack.push(row.id);
      else if (this.#slots.take(destination)) this.#startJob(row, destination);
      else giveBack.push(row.id);
    }
    await releaseLeases(this.#db, this.id, giveBack, now);
    const full = rows.length === limit;
    // Drained as far as this worker can see: finished pushes need not look again.
    this.#backlog = full || plan.atCapacity || giveBack.length > 0 || this.#rateWakeAt !== undefined;
    return full && giveBack.length === 0;
  }

  #startJob(row: ClaimedRow, destination: ResolvedDestination | undefined): void {
    const p = this.#process(row, destination)
      .catch((err: unknown) => this.#log.error({ err, delivery: row.id }, "delivery crashed"))
      .finally(() => {
        this.#inflight.delete(row.id);
        if (destination) this.#slots.give(destination.id);
        // A freed slot matters only when rows may be waiting for one; otherwise (the hand-off case)
        // a claim query per finished push would find nothing.
        if (this.#backlog) this.wake();
      });
    this.#inflight.set(row.id, p);
  }

  async #process(row: ClaimedRow, destination: ResolvedDestination | undefined): Promise<void> {
    const pushed = await pushDelivery(row, destination, {
      ...{ owner: this.id, transport: this.#rt.transport, credentials: this.#rt.credentials },
      ...{ signal: this.#abort.signal, now: this.#now, blockedRecheckMs: this.#opts.blockedRecheckMs },
      observe: (d, outcome) =>
        this.#health.observe(d, outcome).catch((err: unknown) => {
          this.#log.error({ err, destination: d.name }, "recording the destination's health failed");
          return undefined;
        }),
    });
    const outcome = pushed.event;
    if (outcome.outcome === "retry" && outcome.code === "internal_error") {
      const message = pushed.completion.attempt.error_message;
      this.#log.error({ delivery: row.id, destination: destination?.name, message }, "connector threw");
    }
    // Before the completion makes the row due again: the hold must already be there.
    if (destination)
      await this.#traffic.apply(destination, pushed.outcome, pushed.hold, {
        ...{ now: this.#now(), events: this.#rt.events, log: this.#log },
      });
    this.#writer.add(pushed.completion);
    this.#rt.events.emit("delivery:completed", pushed.event);
  }
}
