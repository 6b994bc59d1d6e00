import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Outcome } from "../connectors/connector.ts";
import type { ResolvedDestination } from "../destinations/model.ts";
import type { Events } from "../events.ts";
import type { Capabilities } from "../store/db.ts";
import type { ClaimedRow } from "../store/deliveries-repo.ts";
import type { Database } from "../store/schema.ts";
import {
  claimRateLimited,
  holdDestination,
  relaxDestination,
  throttleDestination,
  trafficStates,
} from "../store/traffic-repo.ts";

/** A 429 without Retry-After: the delivery is looked at again after at least this long. */
const THROTTLE_RECHECK_MS = 1000;

/**
 * What an attempt's outcome asks of its whole destination: a 429 or 503 with Retry-After holds it
 * until then (`retry_after`); a 429 without one slows it adaptively (`throttle`). Either way the
 * delivery does not spend a retry: it is due again when the hold ends (`until`).
 */
export type Hold =
  | { kind: "retry_after"; until: number; reason: string }
  | { kind: "throttle"; until: number; reason: string };

export function holdOf(outcome: Outcome, now: number): Hold | undefined {
  if (outcome.kind !== "retry") return undefined;
  const { status, retryAfterMs } = outcome;
  if ((status === 429 || status === 503) && retryAfterMs !== undefined) {
    const reason = `${outcome.code}: Retry-After ${Math.ceil(retryAfterMs / 1000)} s`;
    return { kind: "retry_after", until: now + retryAfterMs, reason };
  }
  if (status === 429) {
    return {
      kind: "throttle",
      until: now + THROTTLE_RECHECK_MS,
      reason: `${outcome.code} without Retry-After`,
    };
  }
  return undefined;
}

/**
 * The worker's side of traffic control: which destinations are held or throttled (a cache of the
 * destinations rows, refreshed on the worker's timer), the rate-limited claims, and recording holds.
 */
export class Traffic {
  readonly #db: Kysely<Database>;
  readonly #caps: Capabilities;
  #holds = new Map<string, number>();
  #levels = new Map<string, number>();

  constructor(db: Kysely<Database>, caps: Capabilities) {
    this.#db = db;
    this.#caps = caps;
  }

  /** Re-reads the holds and throttle levels of every destination (the worker calls it on a timer). */
  async refresh(now: number): Promise<void> {
    const states = await trafficStates(this.#db, now);
    this.#holds = new Map(states.flatMap((s) => (s.holdUntil !== null ? [[s.id, s.holdUntil]] : [])));
    this.#levels = new Map(states.map((s) => [s.id, s.level]));
  }

  held(destinationId: string, now: number): boolean {
    return (this.#holds.get(destinationId) ?? 0) > now;
  }

  /** The destinations held at `now`: the claims leave them out. */
  heldIds(now: number): string[] {
    return [...this.#holds].flatMap(([id, until]) => (until > now ? [id] : []));
  }

  /** The earliest end of a hold still running, or undefined. */
  nextHoldEnd(now: number): number | undefined {
    const ends = [...this.#holds.values()].filter((t) => t > now);
    return ends.length > 0 ? Math.min(...ends) : undefined;
  }

  /** Claims for one rate-limited destination what its shared budget allows now (at most `want`). */
  claim(
    d: ResolvedDestination & { rateLimit: NonNullable<ResolvedDestination["rateLimit"]> },
    c: { owner: string; now: number; leaseUntil: number; want: number },
  ): Promise<{ rows: ClaimedRow[]; nextAt?: number }> {
    return claimRateLimited(this.#db, this.#caps, {
      ...c,
      destinationId: d.id,
      intervalMs: d.rateLimit.intervalMs,
      burst: d.rateLimit.burst,
    });
  }

  /**
   * Claims for each rate-limited destination what its budget and `room(d)` (its free slots) allow,
   * up to `free` rows in all; `nextAt`: when the earliest next token is due, if rows wait for one.
   */
  async claimAll(
    limited: ResolvedDestination[],
    free: number,
    room: (d: ResolvedDestination) => number,
    lease: { owner: string; now: number; leaseUntil: number },
  ): Promise<{ rows: ClaimedRow[]; nextAt: number | undefined }> {
    const rows: ClaimedRow[] = [];
    let nextAt: number | undefined;
    for (const d of limited) {
      const want = Math.min(free - rows.length, room(d));
      if (want <= 0 || d.rateLimit === undefined) continue;
      const got = await this.claim({ ...d, rateLimit: d.rateLimit }, { ...lease, want });
      rows.push(...got.rows);
      if (got.nextAt !== undefined) nextAt = Math.min(nextAt ?? Infinity, got.nextAt);
    }
    return { rows, nextAt };
  }

  /**
   * `record`, then announces the hold it put in place (`destination:hold`); a failure to record is
   * logged, never thrown (the attempt's completion is written either way).
   */
  async apply(
    destination: { id: string; name: string },
    outcome: Outcome,
    hold: Hold | undefined,
    ctx: { now: number; events: Events; log: Logger },
  ): Promise<void> {
    const held = await this.record(destination.id, outcome, hold, ctx.now).catch((err: unknown) => {
      ctx.log.error({ err, destination: destination.name }, "recording a hold failed");
      return undefined;
    });
    if (held)
      ctx.events.emit("destination:hold", {
        ...{ destinationId: destination.id, destination: destination.name },
        ...held,
      });
  }

  /**
   * Records what an attempt showed about its destination: a hold, or a success while throttled.
   * Returns the hold it put in place (for the `destination:hold` event), if any.
   */
  async record(
    destinationId: string,
    outcome: Outcome,
    hold: Hold | undefined,
    now: number,
  ): Promise<{ until: number; reason: string } | undefined> {
    if (hold?.kind === "retry_after") {
      await holdDestination(this.#db, destinationId, hold.until, hold.reason);
      this.#holds.set(destinationId, Math.max(hold.until, this.#holds.get(destinationId) ?? 0));
      return { until: hold.until, reason: hold.reason };
    } else if (hold?.kind === "throttle") {
      const t = await throttleDestination(this.#db, destinationId, now, hold.reason);
      if (t) {
        this.#holds.set(destinationId, t.until);
        this.#levels.set(destinationId, t.level);
        return { until: t.until, reason: hold.reason };
      }
    } else if (outcome.kind === "delivered" && (this.#levels.get(destinationId) ?? 0) > 0) {
      await relaxDestination(this.#db, destinationId, now);
      this.#levels.set(destinationId, (this.#levels.get(destinationId) ?? 1) - 1);
    }
    return undefined;
  }
}
