import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Outcome } from "../connectors/connector.ts";
import type { ResolvedDestination } from "../destinations/model.ts";
import type { Events } from "../events.ts";
import { destinationsRepo, type StoredHealth } from "../store/destinations-repo.ts";
import type { Database } from "../store/schema.ts";
import { type Health, HELD_STATES, healthSignal, holdUntil, nextHealth } from "./health.ts";

/** The window of attempts whose failure rate marks a destination `degraded`. */
const RATE_WINDOW_MS = 5 * 60_000;
/** Compare-and-set rounds before giving up on recording one attempt's signal (heavy contention). */
const SWAP_TRIES = 5;

/**
 * Applies what attempts show to their destination's stored health (`health.ts` decides), shared
 * through the database, and hands out the probes of held destinations. A success of a healthy
 * destination writes nothing (the common path costs nothing).
 */
export class HealthTracker {
  readonly #repo: ReturnType<typeof destinationsRepo>;
  readonly #events: Events;
  readonly #log: Logger;
  readonly #now: () => number;
  /** Destinations this process saw fail since their last recorded success. */
  readonly #dirty = new Set<string>();

  constructor(deps: { db: Kysely<Database>; events: Events; log: Logger; now: () => number }) {
    this.#repo = destinationsRepo(deps.db);
    this.#events = deps.events;
    this.#log = deps.log;
    this.#now = deps.now;
  }

  /**
   * Records one attempt's outcome; returns until when the delivery is held with its destination
   * (it then waits without spending its retry schedule), or undefined.
   */
  async observe(d: ResolvedDestination, outcome: Outcome): Promise<number | undefined> {
    const signal = healthSignal(outcome, typeof d.strategy.obtain !== "function");
    if (signal === "neutral") return undefined;
    if (signal === "success" && d.state === "active" && !this.#dirty.has(d.id)) return undefined;
    for (let i = 0; i < SWAP_TRIES; i++) {
      const prev = await this.#repo.health(d.id);
      if (!prev) return undefined;
      const now = this.#now();
      const rateMatters =
        (signal === "failure" && !HELD_STATES.has(prev.state)) ||
        (signal === "success" && prev.state === "degraded");
      const rate = rateMatters ? await this.#repo.failureRate(d.id, now - RATE_WINDOW_MS) : undefined;
      const next = nextHealth(prev, signal, d.circuit, now, rate);
      if (!same(prev, next) && !(await this.#repo.swapHealth(d.id, prev, next))) continue;
      if (signal === "success") this.#dirty.delete(d.id);
      else this.#dirty.add(d.id);
      d.state = next.state;
      d.probeAt = next.probeAt;
      if (prev.state !== next.state) this.#changed(d, prev, next);
      return holdUntil(next, signal);
    }
    return undefined;
  }

  /**
   * Held destinations whose probe is due and taken by this process (no other process probes it
   * at the same time): the worker claims one delivery of each.
   */
  async probes(destinations: Iterable<ResolvedDestination>, now: number): Promise<Set<string>> {
    const won = new Set<string>();
    for (const d of destinations) {
      if (!d.enabled || d.paused || !HELD_STATES.has(d.state) || (d.probeAt ?? 0) > now) continue;
      const taken = await this.#repo.takeProbe(d.id, now, now + d.circuit.cooldownMs);
      d.probeAt = taken.probeAt;
      if (taken.won) won.add(d.id);
    }
    return won;
  }

  /** The earliest probe due among held destinations (undefined: none is held). */
  nextProbeAt(destinations: Iterable<ResolvedDestination>): number | undefined {
    let next: number | undefined;
    for (const d of destinations)
      if (d.enabled && !d.paused && HELD_STATES.has(d.state) && d.probeAt !== null)
        next = Math.min(next ?? d.probeAt, d.probeAt);
    return next;
  }

  #changed(d: ResolvedDestination, prev: Health, next: Health): void {
    const reason = next.reason ?? "recovered";
    this.#events.emit("destination:state", {
      ...{ destinationId: d.id, destination: d.name },
      ...{ from: prev.state, to: next.state, reason },
    });
    const line = { destination: d.name, from: prev.state, to: next.state, reason };
    if (next.state === "active") this.#log.info(line, "destination healthy again");
    else this.#log.warn(line, "destination state changed");
  }
}

function same(a: StoredHealth, b: StoredHealth): boolean {
  return a.state === b.state && a.streak === b.streak && a.probeAt === b.probeAt && a.reason === b.reason;
}
