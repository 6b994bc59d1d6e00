import { CompiledQuery, type Kysely, sql } from "kysely";
import type { Capabilities } from "../store/db.ts";
import { insertRows } from "../store/insert-rows.ts";
import type { Lead } from "../lead/lead.ts";
import type { Database, DeliveriesTable } from "../store/schema.ts";
import { type CompletedStatus, FINAL_STATUSES } from "../domain/status.ts";

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
  opts: { owner: string; now: number; leaseUntil: number; limit: number; excludeDestinations: string[] },
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

export interface Completion {
  deliveryId: string;
  owner: string;
  leadId: string;
  destinationId: string;
  status: CompletedStatus;
  attempts: number;
  /** Null when nothing more is due (delivered, failed). */
  nextAttemptAt: number | null;
  lastError: string | null;
  lastStatus: number | null;
  externalId: string | null;
  result: string | null;
  deliveredAt: number | null;
  /** Enrichment to merge into the lead: `lead.enrichment[name] = value`. */
  enrichment?: { name: string; value: unknown };
  /**
   * Completes a delivery waiting (`awaiting`) in this batch instead of one leased by `owner`: the
   * guard is the status and the batch, so a repeated completion (a duplicated callback) is a no-op.
   */
  batchId?: string;
  attempt: Database["attempts"];
}

/**
 * Writes many attempt outcomes in one transaction: the attempt log row and the delivery's next
 * state. A delivery whose lease was taken over by another worker, or that was made final meanwhile
 * (its lead erased, failed by hand), is not overwritten: final is final. Its attempt is still
 * logged (it happened) — without its exchanges and vendor message when the lead was erased.
 */
export async function completeMany(
  db: Kysely<Database>,
  items: Completion[],
  now: number,
  upstreamOf: (destinationId: string) => string[] = () => [],
): Promise<Completion[]> {
  if (items.length === 0) return [];
  return db.transaction().execute((trx) => applyCompletions(trx, items, now, upstreamOf));
}

/**
 * The body of `completeMany`, for callers that need more in the same transaction (the batch
 * service marks its batch finished with it). Enrichment is merged only for applied completions.
 */
export async function applyCompletions(
  trx: Kysely<Database>,
  items: Completion[],
  now: number,
  upstreamOf: (destinationId: string) => string[] = () => [],
): Promise<Completion[]> {
  const applied: Completion[] = [];
  const update = completionUpdate(trx, "lease");
  const updateInBatch = completionUpdate(trx, "batch");
  for (const i of items) {
    const params = [
      i.status,
      i.attempts,
      i.nextAttemptAt,
      i.lastError,
      i.lastStatus,
      i.externalId,
      i.result,
      now,
      i.deliveredAt,
      i.deliveryId,
    ];
    const res = await trx.executeQuery(
      i.batchId === undefined ? update([...params, i.owner]) : updateInBatch([...params, i.batchId]),
    );
    if (Number(res.numAffectedRows ?? 0) === 0) continue;
    applied.push(i);
    if (i.enrichment) {
      const row = await trx.selectFrom("leads").select("data").where("id", "=", i.leadId).executeTakeFirst();
      if (row) {
        const lead = JSON.parse(row.data) as { enrichment?: Record<string, unknown> };
        lead.enrichment = { ...lead.enrichment, [i.enrichment.name]: i.enrichment.value };
        await trx
          .updateTable("leads")
          .set({ data: JSON.stringify(lead) })
          .where("id", "=", i.leadId)
          .execute();
      }
    }
  }
  await insertAttempts(trx, items, applied);
  const finished = applied.filter((i) => i.status === "delivered" || i.status === "failed");
  if (finished.length > 0)
    await unblockDownstream(trx, [...new Set(finished.map((i) => i.leadId))], now, upstreamOf);
  return applied;
}

const FINAL: string[] = [...FINAL_STATUSES];

/** What an attempt of an erased lead keeps instead of its exchanges and the vendor's message. */
export const ERASED_ATTEMPT_MESSAGE =
  "the lead was erased while this attempt was in flight; its record was dropped";

/**
 * The attempt log rows of a completion batch. Written after the deliveries' UPDATEs: on Postgres
 * those wait for an erase holding the same rows, so the erased-lead check below sees an erase that
 * committed first; an erase that comes later scrubs these rows itself (it locks the deliveries
 * first, see DELETE /v1/leads/:id). Only completions that were not applied can belong to an erased
 * lead (the erase made their delivery final), so the check costs a query only then.
 */
async function insertAttempts(trx: Kysely<Database>, items: Completion[], applied: Completion[]) {
  const done = new Set(applied);
  const notApplied = new Set(items.filter((i) => !done.has(i)).map((i) => i.leadId));
  let erased = new Set<string>();
  if (notApplied.size > 0) {
    const rows = await trx
      .selectFrom("leads")
      .select("id")
      .where("id", "in", [...notApplied])
      .where("erased_at", "is not", null)
      .execute();
    erased = new Set(rows.map((r) => r.id));
  }
  const attempts = items.map((i) =>
    erased.has(i.leadId)
      ? { ...i.attempt, exchanges: "[]", error_message: ERASED_ATTEMPT_MESSAGE }
      : i.attempt,
  );
  for (let c = 0; c < attempts.length; c += 400) {
    await insertRows(trx, "attempts", attempts.slice(c, c + 400));
  }
}

/**
 * Pipelines: a delivery waits (`blocked`) until every upstream delivery of the same lead (its
 * destination's `after`) is final. Runs in the transaction that made an upstream final, so no row
 * stays blocked after a crash and nothing polls. What upstream ended as is recorded in the
 * downstream delivery's state (`upstream`), so a connector knows when it proceeds without enrichment.
 */
async function unblockDownstream(
  trx: Kysely<Database>,
  leadIds: string[],
  now: number,
  upstreamOf: (destinationId: string) => string[],
): Promise<void> {
  const blocked = await trx
    .selectFrom("deliveries")
    .select(["id", "lead_id", "destination_id", "result"])
    .where("lead_id", "in", leadIds)
    .where("status", "=", "blocked")
    .execute();
  if (blocked.length === 0) return;
  const siblings = await trx
    .selectFrom("deliveries")
    .select(["lead_id", "destination_id", "status"])
    .where("lead_id", "in", [...new Set(blocked.map((b) => b.lead_id))])
    .execute();
  for (const b of blocked) {
    const upstream = upstreamOf(b.destination_id);
    const rows = siblings.filter((s) => s.lead_id === b.lead_id && upstream.includes(s.destination_id));
    if (!rows.every((r) => FINAL.includes(r.status))) continue;
    const stored = b.result ? (JSON.parse(b.result) as { state?: Record<string, unknown> }) : {};
    stored.state = {
      ...stored.state,
      upstream: Object.fromEntries(rows.map((r) => [r.destination_id, r.status])),
    };
    await trx
      .updateTable("deliveries")
      .set({ status: "pending", next_attempt_at: now, updated_at: now, result: JSON.stringify(stored) })
      .where("id", "=", b.id)
      .where("status", "=", "blocked")
      .execute();
  }
}

/**
 * The per-delivery UPDATE of `completeMany`, compiled once and reused with new parameters: it runs
 * once per attempt, the hottest statement of the worker. Parameter order follows the `sql` below.
 */
function completionUpdate(
  db: Kysely<Database>,
  guard: "lease" | "batch",
): (params: unknown[]) => CompiledQuery {
  const compiled = (
    guard === "lease"
      ? sql`update deliveries set status = ${""}, attempts = ${0}, next_attempt_at = ${0},
    lease_owner = null, lease_until = null, last_error = ${""}, last_status = ${0}, external_id = ${""},
    result = ${""}, updated_at = ${0}, delivered_at = ${0}
    where id = ${""} and lease_owner = ${""} and status not in ('delivered', 'failed')`
      : sql`update deliveries set status = ${""}, attempts = ${0}, next_attempt_at = ${0},
    lease_owner = null, lease_until = null, last_error = ${""}, last_status = ${0}, external_id = ${""},
    result = ${""}, updated_at = ${0}, delivered_at = ${0}, batch_id = null
    where id = ${""} and status = 'awaiting' and batch_id = ${""}`
  ).compile(db);
  return (params) => CompiledQuery.raw(compiled.sql, params);
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
