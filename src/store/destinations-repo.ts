import type { Kysely } from "kysely";
import type { Database, DestinationsTable } from "./schema.ts";

/** What a destination's `state` column holds (`paused` lives in its config, not here). */
export type DestinationState = "active" | "needs_reconnect";

/**
 * The `destinations` table: rows as stored (config JSON, secrets sealed). Validation, sealing and
 * the resolved-destination cache are the destination service's; this only reads and writes rows.
 */
export function destinationsRepo(db: Kysely<Database>) {
  return {
    async insert(row: DestinationsTable): Promise<void> {
      await db.insertInto("destinations").values(row).execute();
    },

    /** Writes every column of `row` to the destination with its id. */
    async update(row: DestinationsTable): Promise<void> {
      await db.updateTable("destinations").set(row).where("id", "=", row.id).execute();
    },

    /** Deletes the destination and its shared credential. */
    /** The destination and its cached credential go together (no orphaned secret after a crash). */
    async remove(id: string): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom("destinations").where("id", "=", id).execute();
        await trx.deleteFrom("credentials").where("destination_id", "=", id).execute();
      });
    },

    async setState(id: string, state: DestinationState): Promise<void> {
      await db.updateTable("destinations").set({ state }).where("id", "=", id).execute();
    },

    /** Every destination's name and state (no config, no secrets). */
    states(): Promise<{ name: string; state: string }[]> {
      return db.selectFrom("destinations").select(["name", "state"]).execute();
    },

    /** Every row, by name when `ordered`. */
    all(opts: { ordered?: boolean } = {}): Promise<DestinationsTable[]> {
      const q = db.selectFrom("destinations").selectAll();
      return (opts.ordered ? q.orderBy("name") : q).execute();
    },

    /** The row whose id or name is `idOrName`. */
    find(idOrName: string): Promise<DestinationsTable | undefined> {
      return db
        .selectFrom("destinations")
        .selectAll()
        .where((eb) => eb.or([eb("id", "=", idOrName), eb("name", "=", idOrName)]))
        .executeTakeFirst();
    },

    /** The id of the destination named `name`. */
    async idByName(name: string): Promise<string | undefined> {
      const row = await db
        .selectFrom("destinations")
        .select("id")
        .where("name", "=", name)
        .executeTakeFirst();
      return row?.id;
    },

    /**
     * A cheap fingerprint of the whole table that changes whenever a destination is created,
     * updated, deleted or changes state: the cache reloads the rows only when it differs.
     */
    async stamp(): Promise<string> {
      const counts = await db
        .selectFrom("destinations")
        .select((eb) => [eb.fn.countAll<number>().as("n"), eb.fn.max("updated_at").as("at")])
        .executeTakeFirst();
      const states = await db.selectFrom("destinations").select(["id", "state"]).execute();
      return `${counts?.n}:${counts?.at}:${states.map((s) => s.state[0]).join("")}`;
    },
  };
}

export type DestinationsRepo = ReturnType<typeof destinationsRepo>;
