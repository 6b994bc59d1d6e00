import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { Worker } from "node:worker_threads";
import type { SqliteDatabase, SqliteStatement } from "kysely";

/** How often the checkpoint thread looks for new commits. */
const CHECKPOINT_INTERVAL_MS = 100;
/**
 * The main connection's own automatic checkpoint, kept only as a safety net (a checkpoint thread
 * that cannot keep up): 10 000 pages of log, ~40 MB. SQLite's default is 1 000.
 */
const FALLBACK_AUTOCHECKPOINT_PAGES = 10_000;

/**
 * Checkpoints (copying the write-ahead log into the database file) run on a thread of their own.
 * On the committing connection, SQLite's automatic checkpoint ran inside every ~1 000th page of
 * commits and took ~10 ms each time: over half of all COMMIT time in `npm run bench`, with every
 * request and push of the process waiting behind it.
 */
function startCheckpointer(path: string): () => Promise<void> {
  const worker = new Worker(new URL("./sqlite-checkpoint-worker.ts", import.meta.url), {
    workerData: { path, intervalMs: CHECKPOINT_INTERVAL_MS },
    // It allocates next to nothing: a small heap keeps the thread's memory small.
    resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
  });
  worker.unref();
  // A failing checkpoint thread leaves the fallback automatic checkpoint on the main connection:
  // slower, not wrong; said once on stderr.
  worker.on("error", (err) =>
    process.emitWarning(
      `SQLite checkpoint thread failed (${err.message}); checkpoints run on the main connection`,
    ),
  );
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  // The thread closes its connection and ends; being the last connection, it also runs SQLite's
  // final checkpoint on close. Resolves once it has.
  return () => {
    // Unref'd while it runs (it must not keep a process alive); waited for once asked to stop: a
    // stop right after start (a port in use) has nothing else keeping the event loop alive.
    worker.ref();
    worker.postMessage("stop");
    return exited;
  };
}

/**
 * Kysely's SqliteDialect over Node's built-in `node:sqlite`. Statements are prepared once per SQL
 * text and kept (the set of SQL texts leadpush issues is small and fixed).
 */
export function openSqlite(path: string): {
  kysely: SqliteDatabase;
  raw: DatabaseSync;
  /** After `kysely.close()`: resolves once the checkpoint thread has closed its connection too. */
  closed: () => Promise<void>;
} {
  const raw = new DatabaseSync(path);
  // First: a connection still closing (a checkpoint thread's final checkpoint) must not make the
  // statements below fail with "database is locked".
  raw.exec("PRAGMA busy_timeout = 5000");
  // The page size stays SQLite's 4 KB. 1 KB pages halve the bytes written per lead (22 → 10 KB in
  // `npm run bench`: each commit rewrites the last page of every table and index it touched) but
  // cost more time: SQLite writes each WAL frame with two syscalls, and commits took ~40 % longer.
  raw.exec("PRAGMA journal_mode = WAL");
  raw.exec("PRAGMA synchronous = NORMAL");
  raw.exec("PRAGMA foreign_keys = ON");
  // Temporary files (statement journals of multi-row statements inside a transaction) stay in
  // memory: on disk each one cost an open, an unlink and several writes, dozens of times a second.
  raw.exec("PRAGMA temp_store = MEMORY");
  const stopCheckpointer = path === ":memory:" ? undefined : startCheckpointer(path);
  if (stopCheckpointer) raw.exec(`PRAGMA wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
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
  let closed: Promise<void> = Promise.resolve();
  const kysely: SqliteDatabase = {
    close: () => {
      raw.close();
      if (stopCheckpointer) closed = stopCheckpointer();
    },
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
  return { kysely, raw, closed: () => closed };
}
