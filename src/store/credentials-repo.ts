import type { Kysely } from "kysely";
import type { CredentialStore } from "../auth/runtime.ts";
import type { Database } from "./schema.ts";

/**
 * Credentials shared by every worker: one sealed row per destination, and a lease row while one
 * process fetches a new one (the others wait for it instead of fetching their own).
 */
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
    async save(destinationId, data, expiresAt, ifData) {
      const now = Date.now();
      const values = { data, expires_at: expiresAt ?? null, updated_at: now };
      if (ifData !== undefined) {
        // Compare-and-swap on the sealed text (a new seal is never the same text twice).
        await db
          .updateTable("credentials")
          .set(values)
          .where("destination_id", "=", destinationId)
          .where("data", "=", ifData)
          .execute();
        return;
      }
      await db
        .insertInto("credentials")
        .values({ destination_id: destinationId, ...values })
        .onConflict((oc) => oc.column("destination_id").doUpdateSet(values))
        .execute();
    },
    async remove(destinationId, ifData) {
      let q = db.deleteFrom("credentials").where("destination_id", "=", destinationId);
      if (ifData !== undefined) q = q.where("data", "=", ifData);
      await q.execute();
    },
    async leaseOf(destinationId) {
      const row = await db
        .selectFrom("credential_leases")
        .select(["holder", "held_until", "version", "failure"])
        .where("destination_id", "=", destinationId)
        .executeTakeFirst();
      if (!row) return undefined;
      return {
        holder: row.holder,
        until: row.held_until,
        ...(row.failure !== null && row.version !== null
          ? { failure: { version: row.version, data: row.failure } }
          : {}),
      };
    },
    async takeLease(destinationId, holder, now, until, version) {
      // One statement, atomic on both backends: a conflicting row is taken over only when its lease
      // or hold is over, or it holds the failure of an older version of the destination.
      const taken = await db
        .insertInto("credential_leases")
        .values({ destination_id: destinationId, holder, held_until: until, version: null, failure: null })
        .onConflict((oc) =>
          oc
            .column("destination_id")
            .doUpdateSet({ holder, held_until: until, version: null, failure: null })
            .where((eb) =>
              eb.or([
                eb("credential_leases.held_until", "<=", now),
                eb.and([
                  eb("credential_leases.failure", "is not", null),
                  eb("credential_leases.version", "<>", version),
                ]),
              ]),
            ),
        )
        .returning("holder")
        .executeTakeFirst();
      return taken !== undefined;
    },
    async renewLease(destinationId, holder, until) {
      await db
        .updateTable("credential_leases")
        .set({ held_until: until })
        .where("destination_id", "=", destinationId)
        .where("holder", "=", holder)
        .execute();
    },
    async releaseLease(destinationId, holder, hold) {
      if (hold && holder !== undefined) {
        await db
          .updateTable("credential_leases")
          .set({ holder: "", held_until: hold.until, version: hold.version, failure: hold.failure })
          .where("destination_id", "=", destinationId)
          .where("holder", "=", holder)
          .execute();
        return;
      }
      let q = db.deleteFrom("credential_leases").where("destination_id", "=", destinationId);
      if (holder !== undefined) q = q.where("holder", "=", holder);
      await q.execute();
    },
  };
}
