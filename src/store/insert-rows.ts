import { CompiledQuery, type Kysely, PostgresAdapter } from "kysely";
import type { Database } from "./schema.ts";

// SQL texts by table, columns, row count and dialect. The hot paths insert batches whose sizes
// vary between 1 and a few hundred rows, so this stays small (and each text is also a prepared
// statement in the SQLite adapter).
const texts = new Map<string, string>();

/**
 * A multi-row INSERT of rows that all have the same columns (those of the first row), built as
 * text once per shape instead of through Kysely's builder: ingest and the worker's completions
 * insert every lead, delivery and attempt this way, and building those queries with the builder
 * cost about 5 % of the CPU per lead. `suffix` is appended as written (an ON CONFLICT or
 * RETURNING clause of ours, never input). Values are always bound parameters.
 */
export async function insertRows<T extends keyof Database & string, R = never>(
  db: Kysely<Database>,
  table: T,
  rows: readonly Database[T][],
  suffix = "",
): Promise<R[]> {
  const first = rows[0];
  if (first === undefined) return [];
  const columns = Object.keys(first) as (keyof Database[T] & string)[];
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  const key = `${table}\u0000${columns.join(",")}\u0000${rows.length}\u0000${postgres}\u0000${suffix}`;
  let text = texts.get(key);
  if (text === undefined) {
    let n = 0;
    const tuple = () => `(${columns.map(() => (postgres ? `$${++n}` : "?")).join(", ")})`;
    const values = rows.map(tuple).join(", ");
    text = `insert into "${table}" (${columns.map((c) => `"${c}"`).join(", ")}) values ${values}${suffix ? ` ${suffix}` : ""}`;
    if (texts.size > 1000) texts.clear();
    texts.set(key, text);
  }
  const params: unknown[] = [];
  for (const row of rows) for (const c of columns) params.push(row[c] ?? null);
  const result = await db.executeQuery<R>(CompiledQuery.raw(text, params));
  return result.rows as R[];
}
