import { CompiledQuery, type Kysely, PostgresAdapter, type Transaction } from "kysely";
import type { Lead } from "../lead/lead.ts";
import { newId } from "../util/ids.ts";
import { insertRows } from "./insert-rows.ts";
import type { Database } from "./schema.ts";

export interface NewLead {
  lead: Lead;
  idempotencyKey: string | undefined;
  /**
   * Destinations this lead goes to, with the initial delivery status (`pending` or `blocked`).
   * `pushDuplicates`: the destination also wants leads recognized as duplicates.
   */
  targets: {
    destinationId: string;
    destinationName: string;
    status: "pending" | "blocked";
    pushDuplicates: boolean;
    /** Leased at once to a worker of this process (ingest's hand-off). */
    lease?: { owner: string; leaseUntil: number };
  }[];
}

/** Leads with the same email or phone created within this window are duplicates (0: off). */
export interface DuplicatePolicy {
  windowMs: number;
}

/** A stored delivery that was leased to this process's worker in the same transaction. */
export interface HandedOff {
  id: string;
  leadId: string;
  destinationId: string;
  /** The lead as stored (JSON), and as an object. */
  data: string;
  lead: Lead;
}

export interface IngestResult {
  /** Deliveries leased to the local worker (internal: not part of the API answer). */
  handedOff?: HandedOff[];
  id: string;
  /** False when an earlier lead with the same idempotency key was returned instead. */
  created: boolean;
  /** The first lead with the same email or phone, when this one is a duplicate. */
  duplicateOf?: string;
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
  duplicates: DuplicatePolicy = { windowMs: 0 },
): Promise<IngestResult[]> {
  return db.transaction().execute(async (trx) => {
    const firstOf = await duplicateFinder(trx, items, now, duplicates.windowMs);
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
        duplicate_of: null,
      });
      rowIndex.push(i);
    });
    // Duplicates: the first lead with the same email or phone, stored earlier or earlier in this batch.
    const seen = new Map<string, string>();
    leadRows.forEach((row) => {
      const keys = [row.email && `e:${row.email}`, row.phone && `p:${row.phone}`].filter(
        (k): k is string => !!k,
      );
      const first =
        firstOf(row.email, row.phone) ?? keys.map((k) => seen.get(k)).find((v) => v !== undefined);
      if (first) row.duplicate_of = first;
      else if (duplicates.windowMs > 0) for (const k of keys) if (!seen.has(k)) seen.set(k, row.id);
    });
    // Only a lead with an idempotency key can meet a conflict (ids are new): without keys in the
    // batch, a plain INSERT (no RETURNING to read back) stores every row.
    const keyed = firstByKey.size > 0;
    const inserted = new Set<string>(keyed ? [] : leadRows.map((r) => r.id));
    for (let c = 0; c < leadRows.length; c += CHUNK) {
      const chunk = leadRows.slice(c, c + CHUNK);
      if (!keyed) {
        await insertRows(trx, "leads", chunk);
        continue;
      }
      const rows = await insertRows<"leads", { id: string }>(
        trx,
        "leads",
        chunk,
        'on conflict ("idempotency_key") do nothing returning "id"',
      );
      for (const r of rows) inserted.add(r.id);
    }
    const deliveryRows: Database["deliveries"][] = [];
    leadRows.forEach((row, j) => {
      const i = rowIndex[j] as number;
      const item = items[i] as NewLead;
      if (!inserted.has(row.id)) return;
      const targets = row.duplicate_of ? item.targets.filter((t) => t.pushDuplicates) : item.targets;
      const mine: HandedOff[] = [];
      const deliveries = targets.map((t) => {
        const d = {
          id: newId(),
          lead_id: row.id,
          destination_id: t.destinationId,
          status: t.status,
          attempts: 0,
          // Handed off: leased to the local worker, due again only if its lease runs out.
          next_attempt_at: t.lease ? t.lease.leaseUntil : t.status === "pending" ? now : null,
          lease_owner: t.lease?.owner ?? null,
          lease_until: t.lease?.leaseUntil ?? null,
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
        if (t.lease)
          mine.push({
            id: d.id,
            leadId: row.id,
            destinationId: t.destinationId,
            data: row.data,
            lead: item.lead,
          });
        return { id: d.id, destination: t.destinationName, status: t.status };
      });
      results[i] = {
        id: row.id,
        created: true,
        deliveries,
        handedOff: mine,
        ...(row.duplicate_of ? { duplicateOf: row.duplicate_of } : {}),
      };
    });
    for (let c = 0; c < deliveryRows.length; c += CHUNK) {
      await insertRows(trx, "deliveries", deliveryRows.slice(c, c + CHUNK));
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

/** SQL texts of the duplicate lookup by number of emails and phones (batches are small). */
const duplicateTexts = new Map<string, string>();

/**
 * One query for the whole batch: the earliest non-erased, non-duplicate lead within the window for
 * each email and phone in it. Built as text once per shape, like `insertRows`: it runs in every
 * ingest transaction, and Kysely's builder cost about as much as the query.
 */
async function duplicateFinder(
  trx: Transaction<Database>,
  items: NewLead[],
  now: number,
  windowMs: number,
): Promise<(email: string | null, phone: string | null) => string | undefined> {
  if (windowMs <= 0) return () => undefined;
  const emails = [...new Set(items.flatMap((i) => (i.lead.email ? [i.lead.email] : [])))];
  const phones = [...new Set(items.flatMap((i) => (i.lead.phone ? [i.lead.phone] : [])))];
  if (emails.length === 0 && phones.length === 0) return () => undefined;
  const postgres = trx.getExecutor().adapter instanceof PostgresAdapter;
  const key = `${emails.length},${phones.length},${postgres}`;
  let text = duplicateTexts.get(key);
  if (text === undefined) {
    let n = 0;
    const list = (k: number) => Array.from({ length: k }, () => (postgres ? `$${++n}` : "?")).join(", ");
    const any = [
      ...(emails.length > 0 ? [`"email" in (${list(emails.length)})`] : []),
      ...(phones.length > 0 ? [`"phone" in (${list(phones.length)})`] : []),
    ].join(" or ");
    text =
      `select "id", "email", "phone", "created_at" from "leads" where (${any})` +
      ` and "created_at" >= ${postgres ? `$${++n}` : "?"} and "erased_at" is null and "duplicate_of" is null` +
      ` order by "created_at", "id"`;
    if (duplicateTexts.size > 1000) duplicateTexts.clear();
    duplicateTexts.set(key, text);
  }
  const { rows } = await trx.executeQuery<{ id: string; email: string | null; phone: string | null }>(
    CompiledQuery.raw(text, [...emails, ...phones, now - windowMs]),
  );
  const byEmail = new Map<string, string>();
  const byPhone = new Map<string, string>();
  for (const r of rows) {
    if (r.email && !byEmail.has(r.email)) byEmail.set(r.email, r.id);
    if (r.phone && !byPhone.has(r.phone)) byPhone.set(r.phone, r.id);
  }
  return (email, phone) =>
    (email ? byEmail.get(email) : undefined) ?? (phone ? byPhone.get(phone) : undefined);
}

async function existingByKey(trx: Transaction<Database>, key: string): Promise<IngestResult> {
  const lead = await trx
    .selectFrom("leads")
    .select(["id", "duplicate_of"])
    .where("idempotency_key", "=", key)
    .executeTakeFirstOrThrow();
  const deliveries = await trx
    .selectFrom("deliveries")
    .innerJoin("destinations", "destinations.id", "deliveries.destination_id")
    .select(["deliveries.id", "destinations.name as destination", "deliveries.status"])
    .where("deliveries.lead_id", "=", lead.id)
    .orderBy("deliveries.id")
    .execute();
  return {
    id: lead.id,
    created: false,
    deliveries,
    ...(lead.duplicate_of ? { duplicateOf: lead.duplicate_of } : {}),
  };
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
