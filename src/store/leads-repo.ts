import type { Kysely } from "kysely";
import type { Lead } from "../lead/lead.ts";
import { leadSearchKeys } from "../lead/search.ts";
import { newId } from "../util/ids.ts";
import {
  type Candidate,
  CandidateIndex,
  type DedupeRule,
  defaultRule,
  loadCandidates,
  type PersonKey,
} from "./duplicates.ts";
import { capabilitiesOf } from "./capabilities.ts";
import { fitsOneStatement, insertAllAtOnce, insertRows } from "./insert-rows.ts";
import type { Database } from "./schema.ts";
import type { InitialStatus } from "../domain/status.ts";

export interface NewLead {
  lead: Lead;
  idempotencyKey: string | undefined;
  /** The API key that sent it (`admin-token` for LEADPUSH_ADMIN_TOKEN). */
  apiKeyId?: string;
  /**
   * Destinations this lead goes to, with the initial delivery status (`pending` or `blocked`).
   * `pushDuplicates`: the destination also wants leads recognized as duplicates.
   */
  targets: {
    destinationId: string;
    destinationName: string;
    status: InitialStatus;
    pushDuplicates: boolean;
    /** The destination's duplicate rule; absent: the default rule over the policy's window. */
    dedupe?: DedupeRule;
    /** Names of upstream destinations (`after`): a `blocked` target none of which is routed is `pending`. */
    after?: string[];
    /** Leased at once to a worker of this process (ingest's hand-off). */
    lease?: { owner: string; leaseUntil: number };
  }[];
  /** Destinations this lead does not go to, decided before the transaction (filter, disabled). */
  skipped?: RoutingDecision[];
}

/**
 * Why a lead did not go to a destination (stored in `lead_routing`, shown on the lead): `filtered`
 * (its filter said no; `reason` names the filter), `filter_error` (its filter failed; the message),
 * `disabled`, or `duplicate` (it repeats `duplicateOf`, which that destination already got).
 */
export interface RoutingDecision {
  destinationId: string;
  destinationName: string;
  decision: "filtered" | "filter_error" | "disabled" | "duplicate";
  reason: string;
  duplicateOf?: string;
}

/**
 * The default duplicate rule's window: the same email or phone about the same project within it
 * is a duplicate (0: off). Destinations may have their own rule (`dedupe`).
 */
export interface DuplicatePolicy {
  windowMs: number;
}

/** A stored delivery that was leased to this process's worker in the same write. */
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
 * Writes many leads and their deliveries atomically (group commit): in one transaction, or on a
 * backend with `bulkWrites` in one statement after the lookups (Postgres: 2–3 round trips instead
 * of 5–6, read committed either way). Leads whose idempotency key already exists are not written;
 * the earlier lead is returned for them. Every answer is known before the write, which is the last
 * thing done: nothing can fail after a batch was stored (the caller retries a failed batch). A key
 * stored by another process between the lookup and the write makes the write fail on the unique
 * index, storing nothing; the batch is then planned and written once more.
 */
export async function insertLeads(
  db: Kysely<Database>,
  items: NewLead[],
  now: number,
  duplicates: DuplicatePolicy = { windowMs: 0 },
): Promise<IngestResult[]> {
  try {
    return await writeLeads(db, items, now, duplicates);
  } catch (err) {
    if (!isKeyConflict(err)) throw err;
    return writeLeads(db, items, now, duplicates);
  }
}

async function writeLeads(
  db: Kysely<Database>,
  items: NewLead[],
  now: number,
  duplicates: DuplicatePolicy,
): Promise<IngestResult[]> {
  if (capabilitiesOf(db as Kysely<unknown>).bulkWrites) {
    const plan = await planLeads(db, items, now, duplicates);
    const parts = [
      { table: "leads", rows: plan.leadRows },
      { table: "deliveries", rows: plan.deliveryRows },
      { table: "lead_routing", rows: plan.routingRows },
    ] as const;
    if (fitsOneStatement(parts)) {
      await insertAllAtOnce(db, parts);
      return plan.results;
    }
  }
  return db.transaction().execute(async (trx) => {
    const plan = await planLeads(trx, items, now, duplicates);
    for (let c = 0; c < plan.leadRows.length; c += CHUNK)
      await insertRows(trx, "leads", plan.leadRows.slice(c, c + CHUNK));
    for (let c = 0; c < plan.deliveryRows.length; c += CHUNK)
      await insertRows(trx, "deliveries", plan.deliveryRows.slice(c, c + CHUNK));
    for (let c = 0; c < plan.routingRows.length; c += CHUNK)
      await insertRows(trx, "lead_routing", plan.routingRows.slice(c, c + CHUNK));
    return plan.results;
  });
}

/** A unique-index violation on `leads.idempotency_key` (Postgres's SQLSTATE 23505). */
const isKeyConflict = (err: unknown): boolean =>
  typeof err === "object" &&
  err !== null &&
  (err as { code?: unknown }).code === "23505" &&
  String((err as { constraint?: unknown }).constraint ?? "").includes("idempotency_key");

/** What a batch of leads writes, and the answer for every lead of it. */
interface LeadsPlan {
  leadRows: Database["leads"][];
  deliveryRows: Database["deliveries"][];
  routingRows: Database["lead_routing"][];
  results: IngestResult[];
}

/**
 * Reads what a batch depends on (duplicate candidates, idempotency keys already stored) and
 * decides every row it writes: ids, `duplicate_of`, deliveries per destination rule, routing
 * records. A lead whose key is stored already, or repeats a key earlier in the batch, is a repeat:
 * nothing of it is written, and no other lead of the batch is counted a duplicate of it.
 */
async function planLeads(
  db: Kysely<Database>,
  items: NewLead[],
  now: number,
  duplicates: DuplicatePolicy,
): Promise<LeadsPlan> {
  const keyOf = (lead: Lead): PersonKey => ({
    email: lead.email ?? null,
    phone: lead.phone ?? null,
    project: lead.projectId ?? null,
  });
  let widest = duplicates.windowMs;
  for (const item of items) for (const t of item.targets) widest = Math.max(widest, t.dedupe?.windowMs ?? 0);
  const stored = await loadCandidates(
    db,
    items.map((i) => keyOf(i.lead)),
    now,
    widest,
  );
  const keys = [...new Set(items.flatMap((i) => (i.idempotencyKey === undefined ? [] : [i.idempotencyKey])))];
  /** The stored lead of each key of the batch that is stored already. */
  const storedKeys = new Map<string, { id: string; duplicate_of: string | null }>();
  for (let c = 0; c < keys.length; c += CHUNK) {
    const rows = await db
      .selectFrom("leads")
      .select(["id", "idempotency_key", "duplicate_of"])
      .where("idempotency_key", "in", keys.slice(c, c + CHUNK))
      .execute();
    for (const r of rows) storedKeys.set(r.idempotency_key as string, r);
  }
  const leadLevel = new CandidateIndex();
  for (const c of stored) leadLevel.add(c);
  const results: (IngestResult | undefined)[] = new Array(items.length);
  /** The item that stores each key of the batch. */
  const firstByKey = new Map<string, number>();
  const leadRows: Database["leads"][] = [];
  const rowIndex: number[] = [];
  items.forEach((item, i) => {
    const key = item.idempotencyKey;
    if (key !== undefined) {
      if (storedKeys.has(key) || firstByKey.has(key)) return;
      firstByKey.set(key, i);
    }
    leadRows.push({
      id: newId(),
      created_at: now,
      source: item.lead.source ?? null,
      name: item.lead.name,
      email: item.lead.email ?? null,
      phone: item.lead.phone ?? null,
      data: JSON.stringify(item.lead),
      idempotency_key: key ?? null,
      erased_at: null,
      duplicate_of: null,
      ...leadSearchKeys(item.lead as unknown as Record<string, unknown>),
      api_key_id: item.apiKeyId ?? null,
    });
    rowIndex.push(i);
  });
  // The lead's own `duplicateOf` (default rule): the first lead it repeats that is not itself a
  // duplicate, stored earlier or earlier in this batch.
  const rule = defaultRule(duplicates.windowMs);
  leadRows.forEach((row, j) => {
    const key = keyOf((items[rowIndex[j] as number] as NewLead).lead);
    const first = leadLevel.find(key, rule, now, (c) => c.original);
    if (first) row.duplicate_of = first.id;
    leadLevel.add({ ...key, id: row.id, createdAt: now, original: !first, routed: new Set() });
  });
  const deliveryRows: Database["deliveries"][] = [];
  const routingRows: Database["lead_routing"][] = [];
  const perDestination = new CandidateIndex();
  for (const c of stored) perDestination.add(c);
  leadRows.forEach((row, j) => {
    const i = rowIndex[j] as number;
    const item = items[i] as NewLead;
    const key = keyOf(item.lead);
    const { targets, skipped } = applyDedupe(item, key, perDestination, rule, now);
    perDestination.add({
      ...key,
      id: row.id,
      createdAt: now,
      original: !row.duplicate_of,
      routed: new Set(targets.map((t) => t.destinationId)),
    });
    for (const s of [...(item.skipped ?? []), ...skipped])
      routingRows.push({
        lead_id: row.id,
        destination_id: s.destinationId,
        destination_name: s.destinationName,
        decision: s.decision,
        reason: s.reason.slice(0, 500),
        duplicate_of: s.duplicateOf ?? null,
        created_at: now,
      });
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
        replay: 0,
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
  // Repeats: a key stored already gets its lead as stored (read before the write, one query for
  // all of them); a key earlier in the batch gets that lead's answer, without its hand-off (the
  // rows are the first one's).
  const asStored = await storedAnswers(db, [...storedKeys.values()]);
  for (let i = 0; i < items.length; i++) {
    if (results[i]) continue;
    const key = (items[i] as NewLead).idempotencyKey as string;
    const first = firstByKey.get(key);
    const earlier = first === undefined ? undefined : results[first];
    results[i] = earlier
      ? {
          id: earlier.id,
          created: false,
          deliveries: earlier.deliveries,
          ...(earlier.duplicateOf ? { duplicateOf: earlier.duplicateOf } : {}),
        }
      : (asStored.get(storedKeys.get(key)?.id as string) as IngestResult);
  }
  return { leadRows, deliveryRows, routingRows, results: results as IngestResult[] };
}

/**
 * Per destination: a lead that repeats (by that destination's rule) an earlier lead routed to it
 * is not routed there again, unless it wants duplicates (`pushDuplicates`). A target waiting on
 * upstream destinations (`blocked`) none of which is routed any more goes ahead (`pending`).
 */
function applyDedupe(
  item: NewLead,
  key: PersonKey,
  index: CandidateIndex,
  fallback: DedupeRule,
  now: number,
): { targets: NewLead["targets"]; skipped: RoutingDecision[] } {
  const skipped: RoutingDecision[] = [];
  const targets = item.targets.filter((t) => {
    if (t.pushDuplicates) return true;
    const routedHere = (c: Candidate) => c.routed.has(t.destinationId);
    const first = index.find(key, t.dedupe ?? fallback, now, routedHere);
    if (!first) return true;
    skipped.push({
      destinationId: t.destinationId,
      destinationName: t.destinationName,
      decision: "duplicate",
      reason: `repeats lead ${first.id}, already routed here`,
      duplicateOf: first.id,
    });
    return false;
  });
  if (skipped.length === 0) return { targets, skipped };
  // Copies: the caller's targets stay as routed (a failed batch is planned again from them).
  const names = new Set(targets.map((t) => t.destinationName));
  return {
    targets: targets.map((t) =>
      t.status === "blocked" && !(t.after ?? []).some((a) => names.has(a)) ? { ...t, status: "pending" } : t,
    ),
    skipped,
  };
}

/** The answer for stored leads sent again (`created: false`), by lead id: their deliveries as now. */
async function storedAnswers(
  db: Kysely<Database>,
  leads: { id: string; duplicate_of: string | null }[],
): Promise<Map<string, IngestResult>> {
  const answers = new Map<string, IngestResult>(
    leads.map((l) => [
      l.id,
      {
        id: l.id,
        created: false,
        deliveries: [],
        ...(l.duplicate_of ? { duplicateOf: l.duplicate_of } : {}),
      },
    ]),
  );
  for (let c = 0; c < leads.length; c += CHUNK) {
    const rows = await db
      .selectFrom("deliveries")
      .innerJoin("destinations", "destinations.id", "deliveries.destination_id")
      .select([
        "deliveries.lead_id",
        "deliveries.id",
        "destinations.name as destination",
        "deliveries.status",
      ])
      .where(
        "deliveries.lead_id",
        "in",
        leads.slice(c, c + CHUNK).map((l) => l.id),
      )
      .orderBy("deliveries.id")
      .execute();
    for (const { lead_id, ...d } of rows) answers.get(lead_id)?.deliveries.push(d);
  }
  return answers;
}
