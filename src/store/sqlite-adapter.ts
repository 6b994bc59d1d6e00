import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import type { SqliteDatabase, SqliteStatement } from "kysely";

/**
 * Kysely's SqliteDialect over Node's built-in `node:sqlite`. Statements are prepared once per SQL
 * text and kept (the set of SQL texts leadpush issues is small and fixed).
 */
export function openSqlite(path: string): { kysely: SqliteDatabase; raw: DatabaseSync } {
  const raw = new DatabaseSync(path);
  // The page size stays SQLite's 4 KB. 1 KB pages halve the bytes written per lead (22 → 10 KB in
  // `npm run bench`: each commit rewrites the last page of every table and index it touched) but
  // cost more time: SQLite writes each WAL frame with two syscalls, and commits took ~40 % longer.
  raw.exec("PRAGMA journal_mode = WAL");
  raw.exec("PRAGMA synchronous = NORMAL");
  raw.exec("PRAGMA busy_timeout = 5000");
  raw.exec("PRAGMA foreign_keys = ON");
  // Temporary files (statement journals of multi-row statements inside a transaction) stay in
  // memory: on disk each one cost an open, an unlink and several writes, dozens of times a second.
  raw.exec("PRAGMA temp_store = MEMORY");
  // One wrapper per SQL text, made once: asking a statement for its columns allocates, and this
  // runs for every query.
  const cache = new Map<string, SqliteStatement>();
  const wrap = (stmt: StatementSync): SqliteStatement => {
    const args = (p: ReadonlyArray<unknown>) => p as SQLInputValue[];
    return {
      reader: stmt.columns().length > 0,
      all: (p) => stmt.all(...args(p)),
      run: (p) => {
        const r = stmt.run(...args(p));
        return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
      },
      iterate: (p) => stmt.iterate(...args(p)),
    };
  };
  const kysely: SqliteDatabase = {
    close: () => raw.close(),
    prepare(text): SqliteStatement {
      let stmt = cache.get(text);
      if (!stmt) {
        stmt = wrap(raw.prepare(text));
        if (cache.size > 500) cache.clear();
        cache.set(text, stmt);
      }
      return stmt;
    },
  };
  return { kysely, raw };
}
