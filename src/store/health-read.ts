import type { Kysely } from "kysely";
import type { Database } from "./schema.ts";

const HOUR_MS = 3_600_000;

/** A destination's health figures for the API (`GET /v1/destinations/:id` → `health`). */
export interface HealthFigures {
  successRate: { lastHour: RateFigure; lastDay: RateFigure };
  lastError: { code: string; message: string | null; at: string } | null;
  /** Age of the oldest delivery waiting to be delivered (pending, retrying, blocked), ms. */
  oldestWaitingMs: number | null;
  circuit: { state: string; consecutiveFailures: number; reason: string | null; nextProbeAt: string | null };
  /** The rate-limit hold, when the destination has one now (columns `hold_until`, `hold_reason`). */
  hold?: { until: string; reason: string | null };
}

/** `rate` is null without attempts in the window. */
export interface RateFigure {
  attempts: number;
  delivered: number;
  rate: number | null;
}

/**
 * Reads the figures. Every query is bounded by an index: attempts by (destination, started_at, …)
 * (migration 011), deliveries by (destination, status).
 */
export async function destinationHealth(
  db: Kysely<Database>,
  id: string,
  now: number,
): Promise<HealthFigures | undefined> {
  const row = await db.selectFrom("destinations").selectAll().where("id", "=", id).executeTakeFirst();
  if (!row) return undefined;
  const [lastHour, lastDay] = await Promise.all([
    rate(db, id, now - HOUR_MS),
    rate(db, id, now - 24 * HOUR_MS),
  ]);
  const err = await db
    .selectFrom("attempts")
    .select(["error_code", "error_message", "started_at"])
    .where("destination_id", "=", id)
    .where("error_code", "is not", null)
    .orderBy("started_at", "desc")
    .limit(1)
    .executeTakeFirst();
  const oldest = await db
    .selectFrom("deliveries")
    .select((eb) => eb.fn.min<number | null>("created_at").as("at"))
    .where("destination_id", "=", id)
    .where("status", "in", ["pending", "retrying", "blocked"])
    .executeTakeFirst();
  const oldestAt = oldest?.at === null || oldest?.at === undefined ? null : Number(oldest.at);
  const figures: HealthFigures = {
    successRate: { lastHour, lastDay },
    lastError: err?.error_code
      ? {
          code: err.error_code,
          message: err.error_message,
          at: new Date(Number(err.started_at)).toISOString(),
        }
      : null,
    oldestWaitingMs: oldestAt === null ? null : Math.max(0, now - oldestAt),
    circuit: {
      state: row.state,
      consecutiveFailures: row.failure_streak ?? 0,
      reason: row.state_reason ?? null,
      nextProbeAt: row.probe_at ? new Date(Number(row.probe_at)).toISOString() : null,
    },
  };
  // Added by the rate-limit work (migration 008); absent before it.
  const hold = row as unknown as { hold_until?: number | string | null; hold_reason?: string | null };
  if (hold.hold_until !== undefined && hold.hold_until !== null && Number(hold.hold_until) > now)
    figures.hold = {
      until: new Date(Number(hold.hold_until)).toISOString(),
      reason: hold.hold_reason ?? null,
    };
  return figures;
}

async function rate(db: Kysely<Database>, id: string, since: number): Promise<RateFigure> {
  const r = await db
    .selectFrom("attempts")
    .select((eb) => [
      eb.fn.countAll<number | string>().as("n"),
      eb.fn
        .sum<number | string | null>(eb.case().when("outcome", "=", "delivered").then(1).else(0).end())
        .as("ok"),
    ])
    .where("destination_id", "=", id)
    .where("started_at", ">=", since)
    .executeTakeFirst();
  const attempts = Number(r?.n ?? 0);
  const delivered = Number(r?.ok ?? 0);
  return { attempts, delivered, rate: attempts === 0 ? null : delivered / attempts };
}
