import type { Kysely } from "kysely";
import type { CredentialStore } from "../auth/runtime.ts";
import type { Database } from "./schema.ts";

/** Credentials shared by every worker: one sealed row per destination. */
export function credentialStore(db: Kysely<Database>): CredentialStore {
  return {
    async load(destinationId) {
      const row = await db
        .selectFrom("credentials")
        .select(["data", "updated_at"])
        .where("destination_id", "=", destinationId)
        .executeTakeFirst();
      return row ? { data: row.data, version: String(row.updated_at) } : undefined;
    },
    async save(destinationId, data, expiresAt) {
      const now = Date.now();
      await db
        .insertInto("credentials")
        .values({ destination_id: destinationId, data, expires_at: expiresAt ?? null, updated_at: now })
        .onConflict((oc) =>
          oc.column("destination_id").doUpdateSet({ data, expires_at: expiresAt ?? null, updated_at: now }),
        )
        .execute();
    },
    async remove(destinationId) {
      await db.deleteFrom("credentials").where("destination_id", "=", destinationId).execute();
    },
  };
}
