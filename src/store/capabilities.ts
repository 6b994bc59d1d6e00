import { type Kysely, PostgresAdapter } from "kysely";

/**
 * What differs between backends, in one table (pg-boss's BACKEND_PROFILES). Code asks for a
 * capability, never "is this SQLite?".
 */
export interface Capabilities {
  /** `SELECT … FOR UPDATE SKIP LOCKED` for claiming rows among many workers. */
  readonly skipLocked: boolean;
  /** Cross-process wake-ups through `LISTEN/NOTIFY`; otherwise only in-process signals. */
  readonly listenNotify: boolean;
  /** `ILIKE` exists; otherwise `LIKE` is already case-insensitive for ASCII. */
  readonly ilike: boolean;
  /** Many processes may share the database (so the master key must be given, not generated). */
  readonly shared: boolean;
  /** The byte-order collation the search indexes use (prefix ranges: migration 012). */
  readonly byteCollation: "BINARY" | '"C"';
  /**
   * Many rows are written by one statement: an `UPDATE … FROM unnest(arrays)` instead of one
   * UPDATE per row, and a lead batch's rows in several tables by one `WITH … INSERT` instead of a
   * transaction of one INSERT per table. On Postgres every statement is a round trip, a plan and a
   * wait for the event loop's next turn (per-row completion UPDATEs were the largest share of its
   * CPU per lead); on SQLite prepared per-row statements are cheaper than a bulk one (measured,
   * docs/performance.md).
   */
  readonly bulkWrites: boolean;
}

const PROFILES = {
  sqlite: {
    skipLocked: false,
    listenNotify: false,
    ilike: false,
    shared: false,
    byteCollation: "BINARY",
    bulkWrites: false,
  },
  postgres: {
    skipLocked: true,
    listenNotify: true,
    ilike: true,
    shared: true,
    byteCollation: '"C"',
    bulkWrites: true,
  },
} as const satisfies Record<"sqlite" | "postgres", Capabilities>;

/** The capabilities of a backend by name. */
export const capabilities = (kind: "sqlite" | "postgres"): Capabilities => PROFILES[kind];

/**
 * The capabilities of the backend behind a Kysely instance (or transaction): for store functions
 * that are handed only the Kysely instance.
 */
export function capabilitiesOf(db: Kysely<unknown>): Capabilities {
  return db.getExecutor().adapter instanceof PostgresAdapter ? PROFILES.postgres : PROFILES.sqlite;
}
