import { CompiledQuery, type Kysely, sql } from "kysely";
import { type CompletedStatus, FINAL_STATUSES } from "../domain/status.ts";
import { capabilitiesOf } from "./capabilities.ts";
import { insertRows } from "./insert-rows.ts";
import type { Database } from "./schema.ts";

/*
 * Completing attempts: the transition from "leased (or awaiting a batch)" to the attempt's outcome,
 * with the attempt log row, enrichment and the unblocking of downstream (`after`) deliveries in the
 * same transaction. Final is final: a row made final meanwhile (erasure, a manual fail) is skipped.
 */

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
  const applied = capabilitiesOf(trx as Kysely<unknown>).bulkWrites
    ? await updateAllAtOnce(trx, items, now)
    : await updateOneByOne(trx, items, now);
  for (const i of applied) if (i.enrichment) await mergeEnrichment(trx, i.leadId, i.enrichment);
  await insertAttempts(trx, items, applied);
  const finished = applied.filter((i) => i.status === "delivered" || i.status === "failed");
  if (finished.length > 0)
    await unblockDownstream(trx, [...new Set(finished.map((i) => i.leadId))], now, upstreamOf);
  return applied;
}

/** The per-row path (SQLite): one prepared UPDATE per completion, in order. */
async function updateOneByOne(
  trx: Kysely<Database>,
  items: Completion[],
  now: number,
): Promise<Completion[]> {
  const applied: Completion[] = [];
  const update = completionUpdate(trx, "lease");
  const updateInBatch = completionUpdate(trx, "batch");
  for (const i of items) {
    const params = [...outcomeOf(i, now), i.deliveryId];
    const res = await trx.executeQuery(
      i.batchId === undefined ? update([...params, i.owner]) : updateInBatch([...params, i.batchId]),
    );
    if (Number(res.numAffectedRows ?? 0) > 0) applied.push(i);
  }
  return applied;
}

/** The new state a completion writes, in the order of the UPDATEs' parameters. */
const outcomeOf = (i: Completion, now: number): unknown[] => [
  i.status,
  i.attempts,
  i.nextAttemptAt,
  i.lastError,
  i.lastStatus,
  i.externalId,
  i.result,
  now,
  i.deliveredAt,
];

/**
 * The bulk path (Postgres): one UPDATE for the leased completions and one for the batch ones, each
 * over arrays (`unnest`), with the same guards as the per-row statements. A delivery listed twice
 * would be updated once by a bulk UPDATE where the per-row path applies the first and skips the
 * second (its guard no longer holds): such a list takes the per-row path.
 */
async function updateAllAtOnce(
  trx: Kysely<Database>,
  items: Completion[],
  now: number,
): Promise<Completion[]> {
  if (new Set(items.map((i) => i.deliveryId)).size !== items.length) return updateOneByOne(trx, items, now);
  const done = new Set<string>();
  for (const guard of ["lease", "batch"] as const) {
    const group = items.filter((i) => (i.batchId === undefined) === (guard === "lease"));
    if (group.length === 0) continue;
    const columns: unknown[][] = [[], [], [], [], [], [], [], [], [], []];
    for (const i of group) {
      const guarded = guard === "lease" ? i.owner : i.batchId;
      const values = [
        i.deliveryId,
        i.status,
        i.attempts,
        i.nextAttemptAt,
        i.lastError,
        i.lastStatus,
        i.externalId,
        i.result,
        i.deliveredAt,
        guarded,
      ];
      values.forEach((v, n) => (columns[n] as unknown[]).push(v));
    }
    const res = await trx.executeQuery<{ id: string }>(
      CompiledQuery.raw(guard === "lease" ? BULK_LEASE : BULK_BATCH, [...columns, now]),
    );
    for (const r of res.rows) done.add(r.id);
  }
  return items.filter((i) => done.has(i.deliveryId));
}

const BULK_FROM = `from unnest($1::text[], $2::text[], $3::integer[], $4::bigint[], $5::text[], $6::integer[],
    $7::text[], $8::text[], $9::bigint[], $10::text[])
    as v(id, status, attempts, next_attempt_at, last_error, last_status, external_id, result, delivered_at, guard)`;
const BULK_SET = `status = v.status, attempts = v.attempts, next_attempt_at = v.next_attempt_at,
    lease_owner = null, lease_until = null, last_error = v.last_error, last_status = v.last_status,
    external_id = v.external_id, result = v.result, updated_at = $11, delivered_at = v.delivered_at`;
const BULK_LEASE = `update deliveries as d set ${BULK_SET} ${BULK_FROM}
    where d.id = v.id and d.lease_owner = v.guard and d.status not in ('delivered', 'failed')
    returning d.id`;
const BULK_BATCH = `update deliveries as d set ${BULK_SET}, batch_id = null ${BULK_FROM}
    where d.id = v.id and d.status = 'awaiting' and d.batch_id = v.guard
    returning d.id`;

/** `lead.enrichment[name] = value`, for an applied completion that carries enrichment. */
async function mergeEnrichment(
  trx: Kysely<Database>,
  leadId: string,
  enrichment: NonNullable<Completion["enrichment"]>,
): Promise<void> {
  const row = await trx.selectFrom("leads").select("data").where("id", "=", leadId).executeTakeFirst();
  if (!row) return;
  const lead = JSON.parse(row.data) as { enrichment?: Record<string, unknown> };
  lead.enrichment = { ...lead.enrichment, [enrichment.name]: enrichment.value };
  await trx
    .updateTable("leads")
    .set({ data: JSON.stringify(lead) })
    .where("id", "=", leadId)
    .execute();
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
