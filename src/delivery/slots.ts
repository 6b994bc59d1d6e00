import type { ResolvedDestination } from "../destinations/model.ts";
import { HELD_STATES } from "./health.ts";

/** What a claim may take now (`Slots.plan`). */
export interface ClaimPlan {
  /** Destinations not to claim for (disabled, paused, waiting for a reconnect, at their limit). */
  exclude: string[];
  /** Rows to claim; 0: do not claim now. */
  limit: number;
  /** Some destination is at its concurrency limit (rows may be waiting for one of its slots). */
  atCapacity: boolean;
}

/** A destination refused a slot (or busy) this recently still counts as having work waiting. */
export const DEMAND_WINDOW_MS = 5000;

/**
 * The worker's pushes in flight per destination, against each destination's concurrency and its
 * fair share of the worker's slots: while several destinations have work, none holds more than
 * `max(1, floor(slots / destinations with work))`, so a hanging or slow one cannot take every slot
 * from the others. A destination alone may use all it is configured for.
 */
export class Slots {
  readonly #busy = new Map<string, number>();
  /** When each destination last took or was refused a slot (its work was seen). */
  readonly #seen = new Map<string, number>();
  readonly #slots: number;
  readonly #now: () => number;

  /** `slots`: the worker's pushes in flight at once. */
  constructor(slots: number, now: () => number = Date.now) {
    this.#slots = Math.max(1, slots);
    this.#now = now;
  }

  /** Takes a slot of the destination; false (nothing taken) when it is at its limit or fair share. */
  take(d: ResolvedDestination): boolean {
    this.want(d.id);
    const busy = this.#busy.get(d.id) ?? 0;
    if (busy >= this.limitOf(d)) return false;
    this.#busy.set(d.id, busy + 1);
    return true;
  }

  /** Free slots of the destination (how many rows a rate-limited claim may take for it). */
  room(d: ResolvedDestination): number {
    return Math.max(0, d.concurrency - (this.#busy.get(d.id) ?? 0));
  }

  give(destinationId: string): void {
    const busy = (this.#busy.get(destinationId) ?? 1) - 1;
    if (busy > 0) this.#busy.set(destinationId, busy);
    else this.#busy.delete(destinationId);
  }

  /** Records that the destination has work waiting (e.g. the worker was full when a lead came). */
  want(destinationId: string): void {
    this.#seen.set(destinationId, this.#now());
  }

  /** The most the destination may hold now: its concurrency, capped at its fair share. */
  limitOf(d: ResolvedDestination): number {
    if (d.concurrency === 1) return 1;
    return Math.min(d.concurrency, Math.max(1, Math.floor(this.#slots / (this.#othersWithWork(d.id) + 1))));
  }

  /** Other destinations with work: busy, or seen within the window. Forgets the rest (bounded). */
  #othersWithWork(destinationId: string): number {
    const since = this.#now() - DEMAND_WINDOW_MS;
    let n = this.#busy.size - (this.#busy.has(destinationId) ? 1 : 0);
    for (const [id, at] of this.#seen) {
      if (id === destinationId || this.#busy.has(id)) continue;
      if (at >= since) n++;
      else this.#seen.delete(id);
    }
    return n;
  }

  /**
   * How much to claim: `free` slots of the worker, `inflight` pushes running. A destination waiting
   * for an OAuth reconnect is not claimed (the reconnect makes its deliveries due and wakes the
   * workers); a paused one likewise until it is resumed; one at its limit or fair share likewise.
   */
  plan(
    destinations: Iterable<ResolvedDestination>,
    free: number,
    inflight: number,
    concurrency: number,
    /** Held destinations (circuit open, credentials refused) whose probe this worker took. */
    probing: ReadonlySet<string> = new Set(),
  ): ClaimPlan {
    const exclude: string[] = [];
    let destinationSlots = 0;
    let atCapacity = false;
    for (const d of destinations) {
      const busy = this.#busy.get(d.id) ?? 0;
      const limit = this.limitOf(d);
      if (busy >= limit) atCapacity = true;
      const held = HELD_STATES.has(d.state) && !probing.has(d.id);
      if (!d.enabled || d.paused || d.state === "needs_reconnect" || held || busy >= limit)
        exclude.push(d.id);
      else destinationSlots += limit - busy;
    }
    // Rows of deleted destinations are claimable too (to be failed): allow at least one.
    let limit = Math.min(free, 256, Math.max(destinationSlots, 1));
    // Claim in batches: while pushes are in flight, wait until a quarter of the slots are free
    // instead of running a claim query for every finished push.
    const capacity = Math.min(concurrency, Math.max(destinationSlots + inflight, 1));
    if (inflight > 0 && limit < Math.min(16, capacity / 4)) limit = 0;
    return { exclude, limit, atCapacity };
  }
}
