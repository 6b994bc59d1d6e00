import { type Kysely, sql } from "kysely";
import type { Capabilities } from "./db.ts";
import { claimDue, type ClaimedRow } from "./deliveries-repo.ts";
import type { Database } from "./schema.ts";

/*
 * Traffic control per destination, shared by every worker process through the destinations row:
 * holds (a Retry-After, or the adaptive back-off after a 429 without one), the adaptive throttle
 * level, and the rate limit's budget as a GCRA theoretical arrival time (`rate_tat`, ms).
 */

/** The highest adaptive throttle level: the rate is divided by 2^level, the back-off is 2^(level-1) s. */
export const MAX_THROTTLE_LEVEL = 6;

export interface RateClaim {
  owner: string;
  now: number;
  leaseUntil: number;
  destinationId: string;
  /** Rows the worker has room for. */
  want: number;
  /** One token every `intervalMs` (before the throttle), at most `burst` at once. */
  intervalMs: number;
  burst: number;
}

/**
 * Claims the deliveries of one rate-limited destination that its shared budget allows now, in one
 * transaction that locks the destination's row (Postgres), so processes claiming at the same time
 * take turns and together never exceed the budget. GCRA: a token is due every `T` ms (the interval
 * times 2^throttle level); `rate_tat` is when the bucket would be empty; up to `burst` tokens may
 * be taken at once. Replayed deliveries get at most half of the tokens while live ones wait (the
 * rest, when no live row is due). `nextAt`: when to claim again (the next token, or the hold's
 * end), undefined when nothing is left waiting.
 */
export async function claimRateLimited(
  db: Kysely<Database>,
  caps: Capabilities,
  c: RateClaim,
): Promise<{ rows: ClaimedRow[]; nextAt?: number }> {
  return db.transaction().execute(async (trx) => {
    let q = trx
      .selectFrom("destinations")
      .select(["rate_tat", "hold_until", "throttle_level"])
      .where("id", "=", c.destinationId);
    if (caps.skipLocked) q = q.forUpdate();
    const d = await q.executeTakeFirst();
    if (!d) return { rows: [] };
    if (d.hold_until !== null && Number(d.hold_until) > c.now)
      return { rows: [], nextAt: Number(d.hold_until) };
    const interval = c.intervalMs * 2 ** Number(d.throttle_level);
    const base = Math.max(d.rate_tat === null ? 0 : Number(d.rate_tat), c.now);
    const tokens = Math.min(c.want, Math.floor((c.now + c.burst * interval - base) / interval + 1e-9));
    const tokenAt = (tat: number) => Math.ceil(tat - (c.burst - 1) * interval);
    if (tokens <= 0) {
      const waiting = await trx
        .selectFrom("deliveries")
        .select("id")
        .where("destination_id", "=", c.destinationId)
        .where("next_attempt_at", "<=", c.now)
        .limit(1)
        .executeTakeFirst();
      return waiting ? { rows: [], nextAt: tokenAt(base) } : { rows: [] };
    }
    const claim = (limit: number, replay: boolean) =>
      claimDue(trx, caps, {
        ...{ owner: c.owner, now: c.now, leaseUntil: c.leaseUntil, limit, excludeDestinations: [] },
        ...{ onlyDestination: c.destinationId, replay },
      });
    const replays = await claim(Math.floor(tokens / 2), true);
    const live = await claim(tokens - replays.length, false);
    const more = await claim(tokens - replays.length - live.length, true);
    const rows = [...replays, ...live, ...more];
    if (rows.length === 0) return { rows };
    const tat = Math.round(base + rows.length * interval);
    await trx.updateTable("destinations").set({ rate_tat: tat }).where("id", "=", c.destinationId).execute();
    return rows.length < tokens ? { rows } : { rows, nextAt: tokenAt(tat) };
  });
}

/** Holds the whole destination until `until` (a later hold already there is kept). */
export async function holdDestination(
  db: Kysely<Database>,
  destinationId: string,
  until: number,
  reason: string,
): Promise<void> {
  await db
    .updateTable("destinations")
    .set({ hold_until: until, hold_reason: reason })
    .where("id", "=", destinationId)
    .where((eb) => eb.or([eb("hold_until", "is", null), eb("hold_until", "<", until)]))
    .execute();
}

/**
 * A 429 without Retry-After: one throttle level up and a hold of 2^(level-1) s, unless the
 * destination is already held (pushes in flight during a hold were sent before it and do not
 * count again). Returns the hold, or undefined when it was already held.
 */
export async function throttleDestination(
  db: Kysely<Database>,
  destinationId: string,
  now: number,
  reason: string,
): Promise<{ level: number; until: number } | undefined> {
  const row = await db
    .updateTable("destinations")
    .set({
      throttle_level: sql<number>`case when throttle_level >= ${MAX_THROTTLE_LEVEL} then ${MAX_THROTTLE_LEVEL} else throttle_level + 1 end`,
    })
    .where("id", "=", destinationId)
    .where((eb) => eb.or([eb("hold_until", "is", null), eb("hold_until", "<=", now)]))
    .returning("throttle_level")
    .executeTakeFirst();
  if (!row) return undefined;
  const level = Number(row.throttle_level);
  const until = now + 1000 * 2 ** (level - 1);
  await holdDestination(db, destinationId, until, `${reason} (throttle level ${level})`);
  return { level, until };
}

/** A success while throttled: one level down (additive recovery); not while a hold runs. */
export async function relaxDestination(
  db: Kysely<Database>,
  destinationId: string,
  now: number,
): Promise<void> {
  await db
    .updateTable("destinations")
    .set({ throttle_level: sql<number>`throttle_level - 1` })
    .where("id", "=", destinationId)
    .where("throttle_level", ">", 0)
    .where((eb) => eb.or([eb("hold_until", "is", null), eb("hold_until", "<=", now)]))
    .execute();
}

/** Destinations held now or throttled: id, hold end (ms, or null) and throttle level. */
export async function trafficStates(
  db: Kysely<Database>,
  now: number,
): Promise<{ id: string; holdUntil: number | null; level: number }[]> {
  const rows = await db
    .selectFrom("destinations")
    .select(["id", "hold_until", "throttle_level"])
    .where((eb) => eb.or([eb("hold_until", ">", now), eb("throttle_level", ">", 0)]))
    .execute();
  return rows.map((r) => ({
    id: r.id,
    holdUntil: r.hold_until === null || Number(r.hold_until) <= now ? null : Number(r.hold_until),
    level: Number(r.throttle_level),
  }));
}
