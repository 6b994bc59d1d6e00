import { type Kysely, sql, type UpdateObject } from "kysely";
import type { Lead } from "../lead/lead.ts";
import { newId } from "../util/ids.ts";
import { applyCompletions, type Completion } from "./completions.ts";
import type { Capabilities } from "./db.ts";
import type { BatchesTable, Database } from "./schema.ts";

/**
 * Batches of batching connectors in the store. Like the deliveries queue: a batch's next step is
 * due at `next_check_at`; workers claim due batches with a lease (`FOR UPDATE SKIP LOCKED` on
 * Postgres), so any number of processes share them and a crashed one's lease runs out.
 */

/** Deliveries waiting for a batch of this destination (oldest first). */
export async function waitingForBatch(db: Kysely<Database>, destinationId: string, limit: number) {
  return db
    .selectFrom("deliveries")
    .select(["id", "updated_at"])
    .where("destination_id", "=", destinationId)
    .where("status", "=", "awaiting")
    .where("batch_id", "is", null)
    .orderBy("id")
    .limit(limit)
    .execute();
}

/**
 * Closes a batch: up to `size` waiting deliveries of the destination get the new batch's id, in
 * one transaction with the batch and its items. Returns the number of deliveries taken (0 when
 * another process took them first).
 */
export async function createBatch(
  db: Kysely<Database>,
  caps: Capabilities,
  opts: {
    destinationId: string;
    size: number;
    /** Fewer lockable rows than this (another process holds some): no batch now. */
    minSize: number;
    now: number;
    deadlineAt: number;
  },
): Promise<{ id: string; size: number } | undefined> {
  return db.transaction().execute(async (trx) => {
    let q = trx
      .selectFrom("deliveries")
      .select("id")
      .where("destination_id", "=", opts.destinationId)
      .where("status", "=", "awaiting")
      .where("batch_id", "is", null)
      .orderBy("id")
      .limit(opts.size);
    if (caps.skipLocked) q = q.forUpdate().skipLocked();
    const ids = (await q.execute()).map((r) => r.id);
    if (ids.length === 0 || ids.length < opts.minSize) return undefined;
    const id = newId();
    const taken = await trx
      .updateTable("deliveries")
      .set({ batch_id: id })
      .where("id", "in", ids)
      .where("status", "=", "awaiting")
      .where("batch_id", "is", null)
      .returning(["id", "lead_id", "attempts"])
      .execute();
    if (taken.length === 0) return undefined;
    await trx
      .insertInto("batches")
      .values({
        id,
        destination_id: opts.destinationId,
        status: "submitting",
        size: taken.length,
        external_id: null,
        vendor_status: null,
        vendor_state: null,
        callback: null,
        callback_at: null,
        callbacks: 0,
        checks: 0,
        next_check_at: opts.now,
        deadline_at: opts.deadlineAt,
        lease_owner: null,
        lease_until: null,
        error: null,
        log: "[]",
        created_at: opts.now,
        updated_at: opts.now,
        submitted_at: null,
        finished_at: null,
      })
      .execute();
    for (let c = 0; c < taken.length; c += 400) {
      await trx
        .insertInto("batch_items")
        .values(
          taken.slice(c, c + 400).map((t) => ({
            batch_id: id,
            delivery_id: t.id,
            lead_id: t.lead_id,
            attempt: t.attempts,
            status: "waiting",
            error: null,
          })),
        )
        .execute();
    }
    return { id, size: taken.length };
  });
}

/** Claims up to `limit` batches whose next step is due. */
export async function claimBatches(
  db: Kysely<Database>,
  caps: Capabilities,
  opts: { owner: string; now: number; leaseUntil: number; limit: number },
): Promise<BatchesTable[]> {
  let candidates = db
    .selectFrom("batches")
    .select("id")
    .where("next_check_at", "<=", opts.now)
    .where((eb) => eb.or([eb("lease_until", "is", null), eb("lease_until", "<", opts.now)]))
    .orderBy("next_check_at")
    .limit(opts.limit);
  if (caps.skipLocked) candidates = candidates.forUpdate().skipLocked();
  return db
    .updateTable("batches")
    .set({ lease_owner: opts.owner, lease_until: opts.leaseUntil })
    .where("id", "in", candidates)
    .returningAll()
    .execute();
}

/** When the next batch step falls due (unleased batches), or undefined. */
export async function nextBatchCheckAt(db: Kysely<Database>, now: number): Promise<number | undefined> {
  const row = await db
    .selectFrom("batches")
    .select("next_check_at")
    .where("next_check_at", "is not", null)
    .where((eb) => eb.or([eb("lease_until", "is", null), eb("lease_until", "<", now)]))
    .orderBy("next_check_at")
    .limit(1)
    .executeTakeFirst();
  return row?.next_check_at == null ? undefined : Number(row.next_check_at);
}

export interface LoadedItem {
  deliveryId: string;
  leadId: string;
  attempt: number;
  lead: Lead;
  /** The delivery's stored `result` (JSON), kept when it is completed. */
  stored: string | null;
}

/** The items of a batch with their leads; `waitingOnly`: only those the batch may still complete. */
export async function batchItems(
  db: Kysely<Database>,
  batchId: string,
  waitingOnly: boolean,
): Promise<LoadedItem[]> {
  let q = db
    .selectFrom("batch_items")
    .innerJoin("leads", "leads.id", "batch_items.lead_id")
    .leftJoin("deliveries", "deliveries.id", "batch_items.delivery_id")
    .select([
      "batch_items.delivery_id",
      "batch_items.lead_id",
      "batch_items.attempt",
      "leads.data",
      "deliveries.result",
    ])
    .where("batch_items.batch_id", "=", batchId)
    // An erased lead left its batch (its erasure failed the delivery): not sent, not completed.
    .where("leads.erased_at", "is", null)
    .orderBy("batch_items.delivery_id");
  if (waitingOnly) q = q.where("batch_items.status", "=", "waiting");
  const rows = await q.execute();
  return rows.map((r) => ({
    deliveryId: r.delivery_id,
    leadId: r.lead_id,
    attempt: Number(r.attempt),
    lead: JSON.parse(r.data) as Lead,
    stored: r.result ?? null,
  }));
}

/**
 * Records a vendor's callback and makes the batch's next check due now. Returns the batch's
 * status, or undefined when there is no such batch. A repeat after completion changes nothing.
 */
export async function recordCallback(
  db: Kysely<Database>,
  batchId: string,
  body: unknown,
  now: number,
): Promise<string | undefined> {
  await db
    .updateTable("batches")
    .set((eb) => ({
      callback: JSON.stringify(body ?? null).slice(0, 65_536),
      callback_at: now,
      callbacks: eb("callbacks", "+", 1),
      next_check_at: now,
      updated_at: now,
    }))
    .where("id", "=", batchId)
    .where("status", "in", ["submitting", "processing"])
    .execute();
  const row = await db.selectFrom("batches").select("status").where("id", "=", batchId).executeTakeFirst();
  return row?.status;
}

/**
 * `next_check_at` for a step's update: now when a callback arrived after the step started
 * (it was recorded while this process held the batch), else `later`.
 */
export function nextCheck(seenCallbackAt: number | null, now: number, later: number) {
  return sql<number>`case when coalesce(callback_at, 0) > cast(${seenCallbackAt ?? 0} as bigint)
    then cast(${now} as bigint) else cast(${later} as bigint) end`;
}

/** Puts `awaiting` deliveries that no batch will take (their destination no longer batches) back in the queue. */
export async function requeueStrays(
  db: Kysely<Database>,
  batchingIds: string[],
  now: number,
): Promise<number> {
  let q = db
    .updateTable("deliveries")
    .set({ status: "pending", next_attempt_at: now, updated_at: now })
    .where("status", "=", "awaiting")
    .where("batch_id", "is", null);
  if (batchingIds.length > 0) q = q.where("destination_id", "not in", batchingIds);
  const res = await q.executeTakeFirst();
  return Number(res.numUpdatedRows);
}

/** A batch by id (the signed file URL serves its file). */
export function batchById(db: Kysely<Database>, id: string): Promise<BatchesTable | undefined> {
  return db.selectFrom("batches").selectAll().where("id", "=", id).executeTakeFirst();
}

/** A step's result for a batch this process holds (`owner`), which also gives the lease back. */
export async function recordBatchStep(
  db: Kysely<Database>,
  batchId: string,
  owner: string,
  values: UpdateObject<Database, "batches">,
): Promise<void> {
  await db
    .updateTable("batches")
    .set({ ...values, lease_owner: null, lease_until: null })
    .where("id", "=", batchId)
    .where("lease_owner", "=", owner)
    .where("status", "in", ["submitting", "processing"])
    .execute();
}

/**
 * Ends a batch held by `owner` (completed or failed) and completes its deliveries in the same
 * transaction (`applyCompletions`, guarded by the batch: a delivery no longer waiting in it is
 * `superseded`). Returns false when the batch was not held by `owner` or already finished.
 */
export async function finishBatch(
  db: Kysely<Database>,
  opts: {
    batchId: string;
    owner: string;
    values: UpdateObject<Database, "batches">;
    completions: Completion[];
    now: number;
    upstreamOf: (destinationId: string) => string[];
  },
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const res = await trx
      .updateTable("batches")
      .set({
        ...opts.values,
        next_check_at: null,
        lease_owner: null,
        lease_until: null,
        finished_at: opts.now,
      })
      .where("id", "=", opts.batchId)
      .where("lease_owner", "=", opts.owner)
      .where("status", "in", ["submitting", "processing"])
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return false;
    const applied = new Set(
      (await applyCompletions(trx, opts.completions, opts.now, opts.upstreamOf)).map((c) => c.deliveryId),
    );
    for (const c of opts.completions) {
      await trx
        .updateTable("batch_items")
        .set({ status: applied.has(c.deliveryId) ? c.status : "superseded", error: c.lastError })
        .where("batch_id", "=", opts.batchId)
        .where("delivery_id", "=", c.deliveryId)
        .execute();
    }
    return true;
  });
}
