import type { Kysely, Transaction } from "kysely";
import type { Lead } from "../lead/lead.ts";
import { newId } from "../util/ids.ts";
import type { Database } from "./schema.ts";

export interface NewLead {
  lead: Lead;
  idempotencyKey: string | undefined;
  /** Destinations this lead goes to, with the initial delivery status (`pending` or `blocked`). */
  targets: { destinationId: string; destinationName: string; status: "pending" | "blocked" }[];
}

export interface IngestResult {
  id: string;
  /** False when an earlier lead with the same idempotency key was returned instead. */
  created: boolean;
  deliveries: { id: string; destination: string; status: string }[];
}

const CHUNK = 400;

/**
 * Writes many leads and their deliveries in one transaction (group commit). Leads whose
 * idempotency key already exists are not written; the earlier lead is returned for them.
 */
export async function insertLeads(
  db: Kysely<Database>,
  items: NewLead[],
  now: number,
): Promise<IngestResult[]> {
  return db.transaction().execute(async (trx) => {
    const results: (IngestResult | undefined)[] = new Array(items.length);
    const firstByKey = new Map<string, number>();
    const leadRows: Database["leads"][] = [];
    const rowIndex: number[] = [];
    items.forEach((item, i) => {
      if (item.idempotencyKey !== undefined) {
        if (firstByKey.has(item.idempotencyKey)) return;
        firstByKey.set(item.idempotencyKey, i);
      }
      leadRows.push({
        id: newId(),
        created_at: now,
        source: item.lead.source ?? null,
        name: item.lead.name,
        email: item.lead.email ?? null,
        phone: item.lead.phone ?? null,
        data: JSON.stringify(item.lead),
        idempotency_key: item.idempotencyKey ?? null,
        erased_at: null,
      });
      rowIndex.push(i);
    });
    const inserted = new Set<string>();
    for (let c = 0; c < leadRows.length; c += CHUNK) {
      const rows = await trx
        .insertInto("leads")
        .values(leadRows.slice(c, c + CHUNK))
        .onConflict((oc) => oc.column("idempotency_key").doNothing())
        .returning("id")
        .execute();
      for (const r of rows) inserted.add(r.id);
    }
    const deliveryRows: Database["deliveries"][] = [];
    leadRows.forEach((row, j) => {
      const i = rowIndex[j] as number;
      const item = items[i] as NewLead;
      if (!inserted.has(row.id)) return;
      const deliveries = item.targets.map((t) => {
        const d = {
          id: newId(),
          lead_id: row.id,
          destination_id: t.destinationId,
          status: t.status,
          attempts: 0,
          next_attempt_at: t.status === "pending" ? now : null,
          lease_owner: null,
          lease_until: null,
          last_error: null,
          last_status: null,
          external_id: null,
          result: null,
          created_at: now,
          updated_at: now,
          delivered_at: null,
          batch_id: null,
        };
        deliveryRows.push(d);
        return { id: d.id, destination: t.destinationName, status: t.status };
      });
      results[i] = { id: row.id, created: true, deliveries };
    });
    for (let c = 0; c < deliveryRows.length; c += CHUNK) {
      await trx
        .insertInto("deliveries")
        .values(deliveryRows.slice(c, c + CHUNK))
        .execute();
    }
    // Repeats (same key earlier in this batch, or already stored): answer with the first lead.
    for (let i = 0; i < items.length; i++) {
      if (results[i]) continue;
      const key = (items[i] as NewLead).idempotencyKey as string;
      results[i] = await existingByKey(trx, key);
    }
    return results as IngestResult[];
  });
}

async function existingByKey(trx: Transaction<Database>, key: string): Promise<IngestResult> {
  const lead = await trx
    .selectFrom("leads")
    .select("id")
    .where("idempotency_key", "=", key)
    .executeTakeFirstOrThrow();
  const deliveries = await trx
    .selectFrom("deliveries")
    .innerJoin("destinations", "destinations.id", "deliveries.destination_id")
    .select(["deliveries.id", "destinations.name as destination", "deliveries.status"])
    .where("deliveries.lead_id", "=", lead.id)
    .orderBy("deliveries.id")
    .execute();
  return { id: lead.id, created: false, deliveries };
}

export async function findLeadIdByKey(db: Kysely<Database>, key: string): Promise<IngestResult | undefined> {
  return db.transaction().execute(async (trx) => {
    const lead = await trx
      .selectFrom("leads")
      .select("id")
      .where("idempotency_key", "=", key)
      .executeTakeFirst();
    return lead ? existingByKey(trx, key) : undefined;
  });
}
