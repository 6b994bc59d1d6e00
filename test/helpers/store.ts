import { after, before } from "node:test";
import { parseDatabaseUrl } from "../../src/config.ts";
import { type Db, openDb } from "../../src/store/db.ts";
import { newId } from "../../src/util/ids.ts";
import { type Backend, type FreshDatabase, freshDatabase } from "./harness.ts";

/**
 * A fresh, migrated database of `backend` for the enclosing `describe` (opened before its tests,
 * closed and dropped after): store-level tests that need no app. Read `db` inside a test or hook.
 */
export function useStore(backend: Backend): { readonly db: Db } {
  let fresh: FreshDatabase | undefined;
  let db: Db | undefined;
  before(async () => {
    fresh = await freshDatabase(backend);
    db = await openDb(parseDatabaseUrl(fresh.url, fresh.dir));
  });
  after(async () => {
    await db?.close();
    await fresh?.drop();
  });
  return {
    get db(): Db {
      if (!db) throw new Error("useStore: the database is opened in a before hook");
      return db;
    },
  };
}

/** A bare `http` destination row of its own (so due-row scans see only one test's rows); its id. */
export async function insertDestination(db: Db): Promise<string> {
  const id = newId();
  await db.kysely
    .insertInto("destinations")
    .values({
      ...{ id, name: `d-${id}`, connector: "http", enabled: 1, config: "{}", secrets: null },
      ...{ state: "active", created_at: 0, updated_at: 0 },
    })
    .execute();
  return id;
}
