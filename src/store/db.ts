import { dirname } from "node:path";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import type { DatabaseTarget } from "../config.ts";
import { createPrivateDir, createPrivateFile, restrictFiles } from "../util/private-files.ts";
import { migrate } from "./migrations.ts";
import type { Database } from "./schema.ts";
import { openSqlite } from "./sqlite-adapter.ts";
import { type Capabilities, capabilities } from "./capabilities.ts";

export type { Capabilities } from "./capabilities.ts";

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly caps: Capabilities;
  readonly target: DatabaseTarget;
  /** Wake other processes' workers (no-op without LISTEN/NOTIFY). */
  notifyWork(): Promise<void>;
  /** Subscribe to other processes' wake-ups; returns an unsubscribe function. */
  listenWork(onWake: () => void): Promise<() => Promise<void>>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

const CHANNEL = "leadpush_work";

export async function openDb(target: DatabaseTarget, opts: { migrate?: boolean } = {}): Promise<Db> {
  const db = target.kind === "sqlite" ? openSqliteDb(target.path) : openPostgresDb(target.url);
  if (opts.migrate !== false) await migrate(db.kysely as Kysely<unknown>);
  return db;
}

function openSqliteDb(path: string): Db {
  if (path !== ":memory:") {
    // Owner-only from the first byte: SQLite gives the -wal and -shm files the database file's mode.
    createPrivateDir(dirname(path));
    createPrivateFile(path);
  }
  const { kysely: database, closed } = openSqlite(path);
  // Files left by an earlier version (created 0644) are tightened too.
  if (path !== ":memory:") restrictFiles(sqliteFiles(path));
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
  return {
    kysely,
    caps: capabilities("sqlite"),
    target: { kind: "sqlite", path },
    notifyWork: () => Promise.resolve(),
    listenWork: () => Promise.resolve(() => Promise.resolve()),
    ping: async () => {
      await kysely
        .selectFrom("leadpush_migrations" as never)
        .select((eb) => eb.lit(1).as("one"))
        .limit(1)
        .execute();
    },
    close: async () => {
      await kysely.destroy();
      await closed();
    },
  };
}

/** The database file and the files SQLite keeps beside it. */
export function sqliteFiles(path: string): string[] {
  return [path, `${path}-wal`, `${path}-shm`, `${path}-journal`];
}

function openPostgresDb(url: string): Db {
  const types = {
    getTypeParser: (oid: number, format?: "text" | "binary") =>
      oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text"),
  };
  const pool = new pg.Pool({ connectionString: url, max: 10, types });
  // No parallel query plans: leadpush's queries are small index reads, and without statistics (a
  // fresh or fast-growing table, before autovacuum's first ANALYZE) the planner parallelized
  // them — ~50 ms of worker start-up for a lookup that takes 0.5 ms alone; on a loaded machine
  // the console's counts were slower in parallel too (docs/performance.md). A SET on each new
  // connection (queued before the pool hands it out), not the `options` startup parameter, which
  // connection poolers such as PgBouncer refuse.
  pool.on("connect", (client) => {
    client.query("SET max_parallel_workers_per_gather = 0").catch(() => undefined);
  });
  // An idle connection that drops (server restart, admin termination, closing while the pool ends)
  // is removed by the pool, which then emits `error`: unhandled, that would crash the process.
  // The next query simply opens a new connection.
  pool.on("error", () => undefined);
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kysely,
    caps: capabilities("postgres"),
    target: { kind: "postgres", url },
    notifyWork: async () => {
      await pool.query(`NOTIFY ${CHANNEL}`);
    },
    listenWork: async (onWake) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      client.on("notification", () => onWake());
      client.on("error", () => undefined);
      await client.query(`LISTEN ${CHANNEL}`);
      return async () => {
        await client.end().catch(() => undefined);
      };
    },
    ping: async () => {
      await pool.query("SELECT 1");
    },
    close: () => kysely.destroy(),
  };
}
