import { type ExpressionBuilder, type Kysely, type SqlBool, sql } from "kysely";
import { FINAL_STATUSES } from "../domain/status.ts";
import type { Lead } from "../lead/lead.ts";
import type { Capabilities } from "./db.ts";
import type { Database, DeliveriesTable } from "./schema.ts";

/*
 * The deliveries' state machine: every change of a delivery's status or lease is one named
 * function here (completions in completions.ts, erasure in erasure.ts, batches in
 * batches-repo.ts). The guards that keep a final state final are in these statements, once, for
 * every caller.
 */

export type ClaimedRow = Pick<
  DeliveriesTable,
  "id" | "lead_id" | "destination_id" | "attempts" | "result" | "status" | "lease_until"
> & {
  lead_data: string;
  /** The lead itself, when the row comes straight from ingest (saves parsing `lead_data`). */
  lead?: Lead;
};

/**
 * Claims up to `limit` due deliveries for `owner` until `leaseUntil`. On Postgres the candidate rows
 * are locked with `FOR UPDATE SKIP LOCKED`, so concurrent workers never claim the same row; SQLite
 * has one writer, so the UPDATE … WHERE id IN (SELECT …) is already atomic.
 */
export async function claimDue(
  db: Kysely<Database>,
  caps: Capabilities,
  opts: {
    owner: string;
    now: number;
    leaseUntil: number;
    limit: number;
    excludeDestinations: string[];
    /** Only this destination's rows (a rate-limited claim, `claimRateLimited`). */
    onlyDestination?: string;
    /** Only replayed rows (true) or only live ones (false); both when undefined. */
    replay?: boolean;
  },
): Promise<ClaimedRow[]> {
  if (opts.limit <= 0) return [];
  let candidates = db
    .selectFrom("deliveries")
    .select("id")
    .where("next_attempt_at", "<=", opts.now)
    .orderBy("next_attempt_at")
    .limit(opts.limit);
  if (opts.excludeDestinations.length > 0) {
    candidates = candidates.where("destination_id", "not in", opts.excludeDestinations);
  }
  if (opts.onlyDestination !== undefined)
    candidates = candidates.where("destination_id", "=", opts.onlyDestination);
  if (opts.replay !== undefined) candidates = candidates.where("replay", "=", opts.replay ? 1 : 0);
  if (caps.skipLocked) candidates = candidates.forUpdate().skipLocked();
  const claimed = await db
    .updateTable("deliveries")
    // A claimed row is due again when its lease runs out (a crashed worker's rows come back by
    // themselves), so the queue index only ever holds rows nobody is working on.
    .set({ lease_owner: opts.owner, lease_until: opts.leaseUntil, next_attempt_at: opts.leaseUntil })
    .where("id", "in", candidates)
    .returning(["id", "lead_id", "destination_id", "attempts", "result", "status", "lease_until"])
    .execute();
  if (claimed.length === 0) return [];
  const leads = await db
    .selectFrom("leads")
    .select(["id", "data", "erased_at"])
    .where("id", "in", [...new Set(claimed.map((c) => c.lead_id))])
    .execute();
  const byId = new Map(leads.map((l) => [l.id, l]));
  // A lead erased between the claim and this read: its erase made the row final and took the
  // lease back, so it is not pushed (its data is gone; a `[erased]` record must not go out).
  return claimed.flatMap((c) => {
    const lead = byId.get(c.lead_id);
    return lead?.erased_at != null ? [] : [{ ...c, lead_data: lead?.data ?? "{}" }];
  });
}

/**
 * The earliest time a delivery this worker could claim becomes due, or undefined. A leased row's
 * next_attempt_at is its lease's end, so a crashed worker's rows fall due by themselves. Walks the
 * due-index in order and stops at the first row, so it stays cheap with a large backlog.
 * Destinations in `exclude` (disabled, or at their concurrency limit, which wake the worker when a
 * slot frees) are left out.
 */
export async function nextDueAt(db: Kysely<Database>, exclude: string[] = []): Promise<number | undefined> {
  let q = db
    .selectFrom("deliveries")
    .select("next_attempt_at")
    .where("next_attempt_at", "is not", null)
    .orderBy("next_attempt_at")
    .limit(1);
  if (exclude.length > 0) q = q.where("destination_id", "not in", exclude);
  const row = await q.executeTakeFirst();
  return row?.next_attempt_at == null ? undefined : Number(row.next_attempt_at);
}

/** Gives claimed rows back (graceful shutdown): due again at once for any worker. */
export async function releaseLeases(
  db: Kysely<Database>,
  owner: string,
  ids: string[],
  now: number,
): Promise<void> {
  if (ids.length === 0) return;
  await db
    .updateTable("deliveries")
    .set({ lease_owner: null, lease_until: null, next_attempt_at: now })
    .where("lease_owner", "=", owner)
    .where("id", "in", ids)
    .where("status", "not in", FINAL_STATUSES)
    .execute();
}

/**
 * Extends the leases of rows this worker is still pushing (a heartbeat), so an attempt that takes
 * longer than the lease — a slow token endpoint, then a slow push, then a re-fetch — is never
 * taken over by another worker while the lease stays short enough for quick crash recovery.
 */
export async function renewLeases(
  db: Kysely<Database>,
  owner: string,
  ids: string[],
  leaseUntil: number,
): Promise<void> {
  for (let c = 0; c < ids.length; c += 500) {
    await db
      .updateTable("deliveries")
      .set({ lease_until: leaseUntil, next_attempt_at: leaseUntil })
      .where("lease_owner", "=", owner)
      .where("id", "in", ids.slice(c, c + 500))
      .where("status", "not in", FINAL_STATUSES)
      .execute();
  }
}

/** Counts by status (for metrics: queue depth). */
export async function countByStatus(db: Kysely<Database>): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom("deliveries")
    .select(["status", sql<number>`count(*)`.as("n")])
    .groupBy("status")
    .execute();
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

/**
 * A delivery whose lead was not erased (the erasure made it final for good). An uncorrelated
 * `NOT IN` over the erased leads (index leads_erased, migration 015: only erased leads are in it),
 * read once per query on both backends; a correlated `NOT EXISTS` looked up the lead of every
 * matching delivery (260 ms for a replay's dry count over 3 400 failed deliveries on Postgres).
 * `leads.id` is the primary key, never null, so `NOT IN` means what it says.
 */
const leadNotErased = (eb: ExpressionBuilder<Database, "deliveries">) =>
  eb(
    "deliveries.lead_id",
    "not in",
    eb.selectFrom("leads").select("leads.id").where("leads.erased_at", "is not", null),
  );

/**
 * Not in flight: no lease, or one that ran out (its worker crashed). A push in flight ends in its
 * own completion; making its row due again would push it twice and drop that completion.
 */
const notInFlight = (now: number) => (eb: ExpressionBuilder<Database, "deliveries">) =>
  eb.or([eb("lease_until", "is", null), eb("lease_until", "<=", now)]);

/** Due now, for any worker, with no lease. */
const dueNow = (now: number) =>
  ({
    status: "pending",
    next_attempt_at: now,
    updated_at: now,
    lease_owner: null,
    lease_until: null,
  }) as const;

/** Statuses a delivery may be sent again from by hand. */
const RETRYABLE = ["failed", "retrying", "delivered", "pending"] as const;

/**
 * One more attempt now (by hand). `unchanged`: the delivery exists but is not retried (it is in
 * flight, waiting for a batch or for an upstream delivery); `erased`: its lead was erased.
 */
export async function retryNow(
  db: Kysely<Database>,
  id: string,
  now: number,
): Promise<"retried" | "unchanged" | "erased" | "not_found"> {
  const res = await db
    .updateTable("deliveries")
    .set(dueNow(now))
    .where("id", "=", id)
    .where("status", "in", RETRYABLE)
    .where(notInFlight(now))
    .where(leadNotErased)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) > 0) return "retried";
  const found = await db
    .selectFrom("deliveries")
    .innerJoin("leads", "leads.id", "deliveries.lead_id")
    .select("leads.erased_at")
    .where("deliveries.id", "=", id)
    .executeTakeFirst();
  if (!found) return "not_found";
  return found.erased_at !== null ? "erased" : "unchanged";
}

export interface ReplayFilter {
  statuses: ("failed" | "retrying" | "delivered")[];
  destinationId?: string | undefined;
  /** Created at or after (ms). */
  since?: number | undefined;
  /** Created before (ms). */
  until?: number | undefined;
  /** The last error's code (`http_500`, `network_error`…). */
  errorCode?: string | undefined;
  /** At most this many rows (oldest first); all when absent. */
  limit?: number | undefined;
}

/**
 * The deliveries a replay with `filter` takes now: matching, not in flight, lead not erased, at
 * most `limit` of them (oldest first). The dry count and the replay use this same query.
 */
function replayable(db: Kysely<Database>, filter: ReplayFilter, now: number) {
  let q = db
    .selectFrom("deliveries")
    .select("id")
    .where("status", "in", filter.statuses)
    .where(notInFlight(now))
    .where(leadNotErased);
  if (filter.destinationId !== undefined) q = q.where("destination_id", "=", filter.destinationId);
  if (filter.since !== undefined) q = q.where("created_at", ">=", filter.since);
  if (filter.until !== undefined) q = q.where("created_at", "<", filter.until);
  if (filter.errorCode !== undefined) q = q.where(errorCodeIs(filter.errorCode));
  q = q.orderBy("id");
  return filter.limit !== undefined ? q.limit(filter.limit) : q;
}

/** `last_error` carries this code (`code: message`, or the code alone). */
export const errorCodeIs = (code: string) => (eb: ExpressionBuilder<Database, "deliveries">) => {
  const pattern = `${code.replace(/[!%_]/g, (c) => `!${c}`)}: %`;
  return eb.or([
    eb("last_error", "=", code),
    sql<SqlBool>`${sql.ref("last_error")} like ${pattern} escape '!'`,
  ]);
};

/** How many deliveries a replay with `filter` would take now (never more than its limit). */
export async function countReplayable(
  db: Kysely<Database>,
  filter: ReplayFilter,
  now: number,
): Promise<number> {
  if (filter.statuses.length === 0) return 0;
  const row = await db
    .selectFrom(replayable(db, filter, now).as("r"))
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * Sends many deliveries again: each matching one is due now. An erased lead's deliveries stay as
 * its erasure left them; a delivery in flight is left to its own completion. Returns the count.
 */
export async function replay(db: Kysely<Database>, filter: ReplayFilter, now: number): Promise<number> {
  if (filter.statuses.length === 0) return 0;
  const res = await db
    .updateTable("deliveries")
    // Marked: a rate-limited destination gives replays at most half its budget while live rows wait.
    .set({ ...dueNow(now), replay: 1 })
    .where("id", "in", replayable(db, filter, now))
    // Checked again on the row itself (Postgres re-reads a row an UPDATE waited for).
    .where("status", "in", filter.statuses)
    .where(notInFlight(now))
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}

/**
 * A destination can be pushed to again (reconnected): its deliveries waiting on their retry
 * schedule are due now. Returns how many were woken and how many wait as `pending` (already due).
 */
export async function wakeDestination(
  db: Kysely<Database>,
  destinationId: string,
  now: number,
): Promise<{ woken: number; pending: number }> {
  const woken = await db
    .updateTable("deliveries")
    .set({ next_attempt_at: now })
    .where("destination_id", "=", destinationId)
    .where("status", "=", "retrying")
    // A retrying row in flight is leased: its lease end stays its next_attempt_at.
    .where("lease_owner", "is", null)
    .executeTakeFirst();
  const pending = await db
    .selectFrom("deliveries")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("destination_id", "=", destinationId)
    .where("status", "=", "pending")
    .executeTakeFirst();
  return { woken: Number(woken.numUpdatedRows), pending: Number(pending?.n ?? 0) };
}
