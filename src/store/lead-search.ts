import {
  type Expression,
  type ExpressionBuilder,
  type Kysely,
  type SelectQueryBuilder,
  type SqlBool,
  sql,
} from "kysely";
import { phoneQuery, prefixEnd, searchKey } from "../lead/search.ts";
import type { Capabilities } from "./db.ts";
import type { PageQuery } from "./read-models.ts";
import type { Database, LeadsTable } from "./schema.ts";

/** The fields a lead search may be limited to (`field`); all of them when absent. */
export const SEARCH_FIELDS = ["name", "lastName", "email", "phone", "city", "externalId"] as const;
export type SearchField = (typeof SEARCH_FIELDS)[number];

export interface LeadSearchQuery extends PageQuery {
  text: string;
  field?: SearchField | undefined;
  source?: string | undefined;
  /** Phone numbers without a country code are read in this region (LEADPUSH_DEFAULT_REGION). */
  region: string;
}

type LeadColumn = "name_key" | "last_name_key" | "city_key" | "email" | "phone";
type Term =
  | { table: "leads"; where: (eb: ExpressionBuilder<Database, "leads">) => Expression<SqlBool> }
  | { table: "deliveries"; prefix: string };

/**
 * Leads matching a search, newest first, keyset-paged. Each term (name prefix, email prefix, the
 * phone in E.164, a vendor's id on a delivery…) is one query on its own index (migration 012)
 * reading at most `limit + 1` ids below the cursor; the ids are merged here and only that page's
 * rows are read. A prefix is a byte-order range (`>= p AND < next(p)`), which a btree serves on
 * SQLite and on Postgres whatever the database's collation.
 */
export async function searchLeads(
  db: Kysely<Database>,
  caps: Capabilities,
  q: LeadSearchQuery,
): Promise<LeadsTable[]> {
  const terms = searchTerms(caps, q);
  const lists = await Promise.all(
    terms.map((t) => {
      if (t.table === "leads") {
        let query = db.selectFrom("leads").select("id").where(t.where);
        if (q.cursor) query = query.where("id", "<", q.cursor);
        if (q.source) query = query.where("source", "=", q.source);
        return query
          .orderBy("id", "desc")
          .limit(q.limit + 1)
          .execute();
      }
      let query: SelectQueryBuilder<Database, "deliveries" | "leads", { id: string }> = db
        .selectFrom("deliveries")
        .innerJoin("leads", "leads.id", "deliveries.lead_id")
        .select("deliveries.lead_id as id")
        .distinct()
        .where((eb) => range(eb, caps, "deliveries.external_id", t.prefix));
      if (q.cursor) query = query.where("deliveries.lead_id", "<", q.cursor);
      if (q.source) query = query.where("leads.source", "=", q.source);
      return query
        .orderBy("deliveries.lead_id", "desc")
        .limit(q.limit + 1)
        .execute();
    }),
  );
  const ids = [...new Set(lists.flat().map((r) => r.id))]
    .sort()
    .reverse()
    .slice(0, q.limit + 1);
  if (ids.length === 0) return [];
  return db.selectFrom("leads").selectAll().where("id", "in", ids).orderBy("id", "desc").execute();
}

/** `column` starts with `prefix`, compared byte by byte (the collation of the search indexes). */
function range<DB, TB extends keyof DB>(
  eb: ExpressionBuilder<DB, TB>,
  caps: Capabilities,
  column: string,
  prefix: string,
) {
  const col = sql<string>`${sql.ref(column)} collate ${sql.raw(caps.byteCollation)}`;
  return eb.and([eb(col, ">=", prefix), eb(col, "<", prefixEnd(prefix))]);
}

function searchTerms(caps: Capabilities, q: LeadSearchQuery): Term[] {
  const text = q.text.trim().slice(0, 200);
  const key = searchKey(text);
  if (key === null) return [];
  const on = (field: SearchField) => q.field === undefined || q.field === field;
  const prefix = (column: LeadColumn, p: string): Term => ({
    table: "leads",
    where: (eb) => range(eb, caps, column, p),
  });
  const terms: Term[] = [];
  const phone = on("phone") ? phoneQuery(text, q.region) : undefined;
  if (phone?.exact) terms.push({ table: "leads", where: (eb) => eb("phone", "=", phone.exact as string) });
  for (const p of phone?.prefixes ?? []) terms.push(prefix("phone", p));
  // Words: a phone-like query is not also a name or a city.
  if (!phone) {
    if (on("name")) terms.push(prefix("name_key", key));
    if (on("lastName")) terms.push(prefix("last_name_key", key));
    if (on("email")) terms.push(prefix("email", key));
    if (on("city")) terms.push(prefix("city_key", key));
    // "asha sha": first name asha, last name starting with sha.
    const space = key.indexOf(" ");
    if (q.field === undefined && space > 0) {
      const [first, rest] = [key.slice(0, space), key.slice(space + 1)];
      terms.push({
        table: "leads",
        where: (eb) => eb.and([eb("name_key", "=", first), range(eb, caps, "last_name_key", rest)]),
      });
    }
  }
  // Vendors' ids are kept as they sent them: matched as typed.
  if (on("externalId")) terms.push({ table: "deliveries", prefix: text });
  return terms;
}
