import { CompiledQuery, type Kysely, PostgresAdapter } from "kysely";
import type { Database } from "./schema.ts";

// SQL texts by table, columns, row count and dialect, of INSERTs whose parameters start at $1. The
// hot paths insert batches whose sizes vary between 1 and a few hundred rows, so this stays small
// (and each text is also a prepared statement in the SQLite adapter). A several-table statement's
// later parts (numbered on from the earlier parts' sizes, and possibly large) are not kept.
const texts = new Map<string, string>();

/** Postgres takes at most 65 535 parameters in one statement. */
export const MAX_PARAMETERS = 65_000;

interface Insert {
  text: string;
  params: unknown[];
}

/**
 * `insert into "table" (…) values (…), (…)` for rows that all have the same columns (those of the
 * first row), with parameters numbered from `first` on Postgres. Built as text once per shape
 * instead of through Kysely's builder: ingest and the worker's completions insert every lead,
 * delivery and attempt this way, and building those queries with the builder cost about 5 % of the
 * CPU per lead. `suffix` is appended as written (an ON CONFLICT or RETURNING clause of ours, never
 * input). Values are always bound parameters.
 */
function insertText<T extends keyof Database & string>(
  postgres: boolean,
  table: T,
  rows: readonly Database[T][],
  first = 1,
  suffix = "",
): Insert {
  const columns = Object.keys(rows[0] as object) as (keyof Database[T] & string)[];
  const key = `${table}\u0000${columns.join(",")}\u0000${rows.length}\u0000${postgres}\u0000${suffix}`;
  let text = first === 1 ? texts.get(key) : undefined;
  if (text === undefined) {
    let n = first - 1;
    const tuple = () => `(${columns.map(() => (postgres ? `$${++n}` : "?")).join(", ")})`;
    const values = rows.map(tuple).join(", ");
    text = `insert into "${table}" (${columns.map((c) => `"${c}"`).join(", ")}) values ${values}${suffix ? ` ${suffix}` : ""}`;
    if (first === 1) {
      if (texts.size > 1000) texts.clear();
      texts.set(key, text);
    }
  }
  const params: unknown[] = [];
  for (const row of rows) for (const c of columns) params.push(row[c] ?? null);
  return { text, params };
}

/** A multi-row INSERT (see `insertText`); returns the rows a RETURNING `suffix` gives back. */
export async function insertRows<T extends keyof Database & string, R = never>(
  db: Kysely<Database>,
  table: T,
  rows: readonly Database[T][],
  suffix = "",
): Promise<R[]> {
  if (rows.length === 0) return [];
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const { text, params } = insertText(postgres, table, rows, 1, suffix);
  const result = await db.executeQuery<R>(CompiledQuery.raw(text, params));
  return result.rows as R[];
}

/** Rows for one table, for `insertAllAtOnce`. */
export interface TableRows<T extends keyof Database & string = keyof Database & string> {
  table: T;
  rows: readonly Database[T][];
}

/**
 * Inserts rows into several tables with one statement (Postgres: `with a as (insert …), b as
 * (insert …) select 1`): one round trip, atomic without BEGIN and COMMIT. Only for backends with
 * `bulkWrites`, and only while the parameters fit in one statement (see `fitsOneStatement`).
 */
export async function insertAllAtOnce(db: Kysely<Database>, parts: readonly TableRows[]): Promise<void> {
  const inserts: Insert[] = [];
  let next = 1;
  for (const p of parts) {
    if (p.rows.length === 0) continue;
    const insert = insertText(true, p.table, p.rows, next);
    next += insert.params.length;
    inserts.push(insert);
  }
  if (inserts.length === 0) return;
  const text = `with ${inserts.map((i, n) => `w${n} as (${i.text})`).join(", ")} select 1`;
  await db.executeQuery(
    CompiledQuery.raw(
      text,
      inserts.flatMap((i) => i.params),
    ),
  );
}

/** Whether `insertAllAtOnce` can take these rows in one statement. */
export function fitsOneStatement(parts: readonly TableRows[]): boolean {
  let params = 0;
  for (const p of parts) params += p.rows.length * Object.keys(p.rows[0] ?? {}).length;
  return params <= MAX_PARAMETERS;
}
