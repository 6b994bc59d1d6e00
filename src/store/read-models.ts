import { type BatchStatus, DELIVERY_STATUSES, type DeliveryStatus } from "../domain/status.ts";
import type { Kysely } from "kysely";
import type { Capabilities } from "./db.ts";
import { errorCodeIs } from "./deliveries-repo.ts";
import { searchLeads, type SearchField } from "./lead-search.ts";
import { leadTimeline, type TimelineEntry } from "./timeline.ts";
import type {
  AttemptsTable,
  BatchesTable,
  BatchItemsTable,
  Database,
  DeliveriesTable,
  LeadRoutingTable,
  LeadsTable,
} from "./schema.ts";

/** What the API reads (the views in src/api/ shape these rows); nothing here writes. */

export type DeliveryRow = DeliveriesTable & { destination_name: string | null };
export type BatchRow = BatchesTable & { destination_name: string | null };
export interface DeliveryRows {
  rows: DeliveryRow[];
  /** The rows' attempts (number order) when asked for, else empty. */
  attempts: AttemptsTable[];
}
/** A page of a list: `limit` + 1 rows are read, so a longer answer means there is a next page. */
export interface PageQuery {
  limit: number;
  cursor?: string | undefined;
}

/**
 * Runs reads that must agree with each other in one snapshot: a lead and its deliveries and
 * attempts, say. Read one after the other, a delivery could be seen `delivered` while the lead was
 * read before the same commit wrote its enrichment. Repeatable read on Postgres; on SQLite any
 * transaction reads one snapshot.
 */
export function snapshot<T>(db: Kysely<Database>, read: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.transaction().setIsolationLevel("repeatable read").setAccessMode("read only").execute(read);
}

const deliveriesWithNames = (db: Kysely<Database>) =>
  db
    .selectFrom("deliveries")
    .leftJoin("destinations", "destinations.id", "deliveries.destination_id")
    .selectAll("deliveries")
    .select("destinations.name as destination_name");

/** Deliveries with destination names and (optionally) their attempts. */
export async function deliveryRows(
  db: Kysely<Database>,
  where: { leadId?: string; id?: string },
  withAttempts: boolean,
): Promise<DeliveryRows> {
  let q = deliveriesWithNames(db);
  if (where.leadId) q = q.where("deliveries.lead_id", "=", where.leadId);
  if (where.id) q = q.where("deliveries.id", "=", where.id);
  const rows = await q.orderBy("deliveries.id").execute();
  if (!withAttempts || rows.length === 0) return { rows, attempts: [] };
  const attempts = await db
    .selectFrom("attempts")
    .selectAll()
    .where(
      "delivery_id",
      "in",
      rows.map((r) => r.id),
    )
    .orderBy("number")
    .orderBy("id")
    .execute();
  return { rows, attempts };
}

/** The filters of the delivery list (and of its CSV export). */
export interface DeliveryListQuery extends PageQuery {
  status?: DeliveryStatus | undefined;
  leadId?: string | undefined;
  destinationId?: string | undefined;
  /** The last error's code. */
  errorCode?: string | undefined;
  /** Created at or after / before (ms). */
  since?: number | undefined;
  until?: number | undefined;
}

/**
 * Deliveries, newest first. A destination without a status is read one status at a time, each a
 * range of deliveries(destination_id, status, id) in id order, and merged (in one snapshot): as
 * one query, SQLite read every delivery of the destination through that index and sorted them
 * (~100 ms for a destination of 20 000 deliveries on a loaded machine, more for a larger one).
 */
export async function listDeliveries(db: Kysely<Database>, q: DeliveryListQuery): Promise<DeliveryRow[]> {
  if (q.destinationId !== undefined && q.status === undefined && q.leadId === undefined) {
    // One snapshot: a delivery changing status between two of the reads is seen once.
    const parts = await snapshot(db, (trx) =>
      Promise.all(DELIVERY_STATUSES.map((status) => deliveryPage(trx, { ...q, status }))),
    );
    return parts
      .flat()
      .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
      .slice(0, q.limit + 1);
  }
  return deliveryPage(db, q);
}

function deliveryPage(db: Kysely<Database>, q: DeliveryListQuery): Promise<DeliveryRow[]> {
  let query = deliveriesWithNames(db)
    .orderBy("deliveries.id", "desc")
    .limit(q.limit + 1);
  if (q.cursor) query = query.where("deliveries.id", "<", q.cursor);
  if (q.status) query = query.where("deliveries.status", "=", q.status);
  if (q.leadId) query = query.where("deliveries.lead_id", "=", q.leadId);
  if (q.destinationId !== undefined) query = query.where("deliveries.destination_id", "=", q.destinationId);
  if (q.errorCode !== undefined) query = query.where(errorCodeIs(q.errorCode));
  if (q.since !== undefined) query = query.where("deliveries.created_at", ">=", q.since);
  if (q.until !== undefined) query = query.where("deliveries.created_at", "<", q.until);
  return query.execute();
}

/** A lead's routing records (each destination it did not go to), by destination name. */
export function routingRows(db: Kysely<Database>, leadId: string): Promise<LeadRoutingTable[]> {
  return db
    .selectFrom("lead_routing")
    .selectAll()
    .where("lead_id", "=", leadId)
    .orderBy("destination_name")
    .execute();
}

/** A lead with its deliveries, attempts, routing records and timeline, read in one snapshot. */
export function leadDetail(
  db: Kysely<Database>,
  id: string,
): Promise<
  | { lead: LeadsTable; deliveries: DeliveryRows; routing: LeadRoutingTable[]; timeline: TimelineEntry[] }
  | undefined
> {
  return snapshot(db, async (trx) => {
    const lead = await trx.selectFrom("leads").selectAll().where("id", "=", id).executeTakeFirst();
    if (!lead) return undefined;
    const deliveries = await deliveryRows(trx, { leadId: id }, true);
    const routing = await routingRows(trx, id);
    const key = lead.api_key_id
      ? await trx.selectFrom("api_keys").select("name").where("id", "=", lead.api_key_id).executeTakeFirst()
      : undefined;
    // `paused` lives in the destination's config: read for the few destinations this lead has.
    const destinationIds = [...new Set(deliveries.rows.map((d) => d.destination_id))];
    const configs = destinationIds.length
      ? await trx
          .selectFrom("destinations")
          .select(["id", "config"])
          .where("id", "in", destinationIds)
          .execute()
      : [];
    const paused = new Set(
      configs.filter((c) => (JSON.parse(c.config) as { paused?: boolean }).paused === true).map((c) => c.id),
    );
    const timeline = leadTimeline({ lead, deliveries, routing, apiKeyName: key?.name ?? null, paused });
    return { lead, deliveries, routing, timeline };
  });
}

/**
 * Leads, newest first; `text` searches name, last name, email, phone (any spelling), city and the
 * vendors' ids on deliveries (store/lead-search.ts).
 */
export async function listLeads(
  db: Kysely<Database>,
  caps: Capabilities,
  q: PageQuery & {
    source?: string | undefined;
    text?: string | undefined;
    field?: SearchField | undefined;
    region?: string | undefined;
  },
): Promise<LeadsTable[]> {
  if (q.text !== undefined && q.text.trim() !== "")
    return searchLeads(db, caps, { ...q, text: q.text, region: q.region ?? "IN" });
  let query = db
    .selectFrom("leads")
    .selectAll()
    .orderBy("id", "desc")
    .limit(q.limit + 1);
  if (q.cursor) query = query.where("id", "<", q.cursor);
  if (q.source) query = query.where("source", "=", q.source);
  return query.execute();
}

/** Counts for the overview: deliveries by destination and status, and leads stored. */
export async function counts(
  db: Kysely<Database>,
): Promise<{ leads: number; deliveries: { destination_id: string; status: string; n: number }[] }> {
  const [groups, leads] = await Promise.all([
    db
      .selectFrom("deliveries")
      .select(["destination_id", "status", (eb) => eb.fn.countAll<number | string>().as("n")])
      .groupBy(["destination_id", "status"])
      .execute(),
    db
      .selectFrom("leads")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .executeTakeFirst(),
  ]);
  return {
    leads: Number(leads?.n ?? 0),
    deliveries: groups.map((g) => ({ destination_id: g.destination_id, status: g.status, n: Number(g.n) })),
  };
}

/** Deliveries counted by destination name and status (the demo's live table). */
export async function countsByDestinationName(
  db: Kysely<Database>,
): Promise<{ name: string; status: DeliveryStatus; n: number }[]> {
  const rows = await db
    .selectFrom("deliveries")
    .innerJoin("destinations", "destinations.id", "deliveries.destination_id")
    .select(["destinations.name as name", "deliveries.status as status"])
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .groupBy(["destinations.name", "deliveries.status"])
    .execute();
  return rows.map((r) => ({ name: r.name, status: r.status, n: Number(r.n) }));
}

/** The stored lead JSON of a lead with this email (any one of them), if there is one. */
export async function leadDataByEmail(db: Kysely<Database>, email: string): Promise<string | undefined> {
  const row = await db.selectFrom("leads").select("data").where("email", "=", email).executeTakeFirst();
  return row?.data;
}

const batchesWithNames = (db: Kysely<Database>) =>
  db
    .selectFrom("batches")
    .leftJoin("destinations", "destinations.id", "batches.destination_id")
    .selectAll("batches")
    .select("destinations.name as destination_name");

/** Batches, newest first. */
export async function listBatches(
  db: Kysely<Database>,
  q: PageQuery & { status?: BatchStatus | undefined; destinationId?: string | undefined },
): Promise<BatchRow[]> {
  let query = batchesWithNames(db)
    .orderBy("batches.id", "desc")
    .limit(q.limit + 1);
  if (q.cursor) query = query.where("batches.id", "<", q.cursor);
  if (q.status) query = query.where("batches.status", "=", q.status);
  if (q.destinationId !== undefined) query = query.where("batches.destination_id", "=", q.destinationId);
  return query.execute();
}

/** One batch with its destination's name. */
export function batchRow(db: Kysely<Database>, id: string): Promise<BatchRow | undefined> {
  return batchesWithNames(db).where("batches.id", "=", id).executeTakeFirst();
}

/** The items of these batches, by delivery id. */
export async function batchItemRows(db: Kysely<Database>, batchIds: string[]): Promise<BatchItemsTable[]> {
  if (batchIds.length === 0) return [];
  return db
    .selectFrom("batch_items")
    .selectAll()
    .where("batch_id", "in", batchIds)
    .orderBy("delivery_id")
    .execute();
}
