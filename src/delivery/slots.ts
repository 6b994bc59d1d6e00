import type { ResolvedDestination } from "../destinations/model.ts";

/** What a claim may take now (`Slots.plan`). */
export interface ClaimPlan {
  /** Destinations not to claim for (disabled, paused, waiting for a reconnect, at their limit). */
  exclude: string[];
  /** Rows to claim; 0: do not claim now. */
  limit: number;
  /** Some destination is at its concurrency limit (rows may be waiting for one of its slots). */
  atCapacity: boolean;
}

/** The worker's pushes in flight per destination, against each destination's concurrency. */
export class Slots {
  readonly #busy = new Map<string, number>();

  /** Takes a slot of the destination; false (nothing taken) when it is at its limit. */
  take(d: ResolvedDestination): boolean {
    const busy = this.#busy.get(d.id) ?? 0;
    if (busy >= d.concurrency) return false;
    this.#busy.set(d.id, busy + 1);
    return true;
  }

  /** Free slots of the destination (how many rows a rate-limited claim may take for it). */
  room(d: ResolvedDestination): number {
    return Math.max(0, d.concurrency - (this.#busy.get(d.id) ?? 0));
  }

  give(destinationId: string): void {
    this.#busy.set(destinationId, (this.#busy.get(destinationId) ?? 1) - 1);
  }

  /**
   * How much to claim: `free` slots of the worker, `inflight` pushes running. A destination waiting
   * for an OAuth reconnect is not claimed (the reconnect makes its deliveries due and wakes the
   * workers); a paused one likewise until it is resumed.
   */
  plan(
    destinations: Iterable<ResolvedDestination>,
    free: number,
    inflight: number,
    concurrency: number,
  ): ClaimPlan {
    const exclude: string[] = [];
    let destinationSlots = 0;
    let atCapacity = false;
    for (const d of destinations) {
      const busy = this.#busy.get(d.id) ?? 0;
      if (busy >= d.concurrency) atCapacity = true;
      if (!d.enabled || d.paused || d.state === "needs_reconnect" || busy >= d.concurrency)
        exclude.push(d.id);
      else destinationSlots += d.concurrency - busy;
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
