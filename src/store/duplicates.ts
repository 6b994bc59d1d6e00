import { CompiledQuery, type Kysely, PostgresAdapter } from "kysely";
import type { Database } from "./schema.ts";

/** A destination's duplicate rule as ingest applies it (parsed from its config in `destinations/model.ts`) (`windowMs` 0: off). */
export interface DedupeRule {
  fields: ("email" | "phone")[];
  project: boolean;
  windowMs: number;
}

/** What a lead is compared by: its person fields and its project (null: no project). */
export interface PersonKey {
  email: string | null;
  phone: string | null;
  project: string | null;
}

/** An earlier lead a new one may repeat (stored, or earlier in the same batch). */
export interface Candidate extends PersonKey {
  id: string;
  createdAt: number;
  /** Not itself a duplicate (by the default rule): the lead a lead-level `duplicateOf` names. */
  original: boolean;
  /** Ids of the destinations it has a delivery for. */
  routed: Set<string>;
}

/** The default rule over `windowMs`: the same email or phone about the same project. */
export const defaultRule = (windowMs: number): DedupeRule => ({
  fields: ["email", "phone"],
  project: true,
  windowMs,
});

/**
 * Earlier leads by email and phone, in arrival order. `find` answers "the earliest lead this one
 * repeats under `rule`", optionally only among leads that pass `accept` (e.g. routed to D).
 */
export class CandidateIndex {
  readonly #byKey = new Map<string, Candidate[]>();
  readonly #order = new Map<Candidate, number>();

  add(c: Candidate): void {
    this.#order.set(c, this.#order.size);
    for (const key of [c.email && `e:${c.email}`, c.phone && `p:${c.phone}`]) {
      if (!key) continue;
      const list = this.#byKey.get(key);
      if (list) list.push(c);
      else this.#byKey.set(key, [c]);
    }
  }

  find(
    lead: PersonKey,
    rule: DedupeRule,
    now: number,
    accept: (c: Candidate) => boolean = () => true,
  ): Candidate | undefined {
    if (rule.windowMs <= 0) return undefined;
    const since = now - rule.windowMs;
    let best: Candidate | undefined;
    for (const field of rule.fields) {
      const value = field === "email" ? lead.email : lead.phone;
      if (!value) continue;
      for (const c of this.#byKey.get(`${field === "email" ? "e" : "p"}:${value}`) ?? []) {
        if (c.createdAt < since || (rule.project && c.project !== lead.project) || !accept(c)) continue;
        if (!best || (this.#order.get(c) as number) < (this.#order.get(best) as number)) best = c;
        break; // lists are in arrival order: the first that fits is the earliest of this list
      }
    }
    return best;
  }
}

/** SQL texts of the candidate lookup by number of emails and phones (batches are small). */
const lookupTexts = new Map<string, string>();

/**
 * One query for the whole batch: every non-erased lead within `windowMs` sharing an email or a
 * phone with a lead of the batch, with its project and the destinations it was routed to. Built
 * as text once per shape, like `insertRows`: it runs in every ingest transaction.
 */
export async function loadCandidates(
  trx: Kysely<Database>,
  leads: PersonKey[],
  now: number,
  windowMs: number,
): Promise<Candidate[]> {
  if (windowMs <= 0) return [];
  const emails = [...new Set(leads.flatMap((l) => (l.email ? [l.email] : [])))];
  const phones = [...new Set(leads.flatMap((l) => (l.phone ? [l.phone] : [])))];
  if (emails.length === 0 && phones.length === 0) return [];
  const postgres = trx.getExecutor().adapter instanceof PostgresAdapter;
  const key = `${emails.length},${phones.length},${postgres}`;
  let text = lookupTexts.get(key);
  if (text === undefined) {
    let n = 0;
    const list = (k: number) => Array.from({ length: k }, () => (postgres ? `$${++n}` : "?")).join(", ");
    const any = [
      ...(emails.length > 0 ? [`l."email" in (${list(emails.length)})`] : []),
      ...(phones.length > 0 ? [`l."phone" in (${list(phones.length)})`] : []),
    ].join(" or ");
    const project = postgres ? `(l."data"::json ->> 'projectId')` : `json_extract(l."data", '$.projectId')`;
    text =
      `select l."id", l."email", l."phone", l."created_at", l."duplicate_of", ${project} as "project",` +
      ` d."destination_id" from "leads" l left join "deliveries" d on d."lead_id" = l."id"` +
      ` where (${any}) and l."created_at" >= ${postgres ? `$${++n}` : "?"} and l."erased_at" is null` +
      ` order by l."created_at", l."id"`;
    if (lookupTexts.size > 1000) lookupTexts.clear();
    lookupTexts.set(key, text);
  }
  const { rows } = await trx.executeQuery<{
    id: string;
    email: string | null;
    phone: string | null;
    created_at: number | string;
    duplicate_of: string | null;
    project: string | number | null;
    destination_id: string | null;
  }>(CompiledQuery.raw(text, [...emails, ...phones, now - windowMs]));
  const byId = new Map<string, Candidate>();
  for (const r of rows) {
    let c = byId.get(r.id);
    if (!c) {
      c = {
        id: r.id,
        email: r.email,
        phone: r.phone,
        project: r.project === null ? null : String(r.project),
        createdAt: Number(r.created_at),
        original: r.duplicate_of === null,
        routed: new Set(),
      };
      byId.set(r.id, c);
    }
    if (r.destination_id) c.routed.add(r.destination_id);
  }
  return [...byId.values()];
}
