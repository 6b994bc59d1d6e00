import type { Kysely } from "kysely";
import { wakeDestination } from "./deliveries-repo.ts";
import type { Database, DestinationsTable } from "./schema.ts";

/** What a destination's `state` column holds (`paused` lives in its config, not here). */
export type DestinationState = "active" | "degraded" | "circuit_open" | "auth_failing" | "needs_reconnect";

/** A destination's health as stored (`delivery/health.ts` decides it). */
export interface StoredHealth {
  state: string;
  streak: number;
  probeAt: number | null;
  reason: string | null;
}

/**
 * The `destinations` table: rows as stored (config JSON, secrets sealed). Validation, sealing and
 * the resolved-destination cache are the destination service's; this only reads and writes rows.
 */
export function destinationsRepo(db: Kysely<Database>) {
  return {
    async insert(row: DestinationsTable): Promise<void> {
      await db.insertInto("destinations").values(row).execute();
    },

    /**
     * Writes the columns of `row` to the destination with its id, except its health (the workers'),
     * which starts over when `resetHealth` (new credentials get a fresh try).
     */
    async update(row: DestinationsTable, opts: { resetHealth?: boolean } = {}): Promise<void> {
      const { failure_streak: _s, probe_at: _p, state_reason: _r, ...columns } = row;
      const reset = opts.resetHealth ? { failure_streak: 0, probe_at: null, state_reason: null } : {};
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable("destinations")
          .set({ ...columns, ...reset })
          .where("id", "=", row.id)
          .execute();
        // Deliveries held while the old credentials were refused are tried with the new ones now.
        if (opts.resetHealth) await wakeDestination(trx, row.id, row.updated_at);
      });
    },

    /** Deletes the destination and its shared credential. */
    /** The destination and its cached credential go together (no orphaned secret after a crash). */
    async remove(id: string, now: number): Promise<void> {
      await db.transaction().execute(async (trx) => {
        // Its deliveries waiting on a retry or a hold fail now (destination_deleted), not then.
        await wakeDestination(trx, id, now);
        await trx.deleteFrom("destinations").where("id", "=", id).execute();
        await trx.deleteFrom("credentials").where("destination_id", "=", id).execute();
      });
    },

    /** Sets the state by hand (a reconnect): the circuit's count and probe start over. */
    async setState(id: string, state: DestinationState): Promise<void> {
      await db
        .updateTable("destinations")
        .set({ state, failure_streak: 0, probe_at: null, state_reason: null })
        .where("id", "=", id)
        .execute();
    },

    async health(id: string): Promise<StoredHealth | undefined> {
      const r = await db
        .selectFrom("destinations")
        .select(["state", "failure_streak", "probe_at", "state_reason"])
        .where("id", "=", id)
        .executeTakeFirst();
      if (!r) return undefined;
      return {
        state: r.state,
        streak: r.failure_streak ?? 0,
        probeAt: r.probe_at ?? null,
        reason: r.state_reason ?? null,
      };
    },

    /**
     * Writes `next` only if the stored health is still `prev` (compare and set: processes sharing
     * the database never lose each other's failures). False: someone else changed it first.
     */
    async swapHealth(id: string, prev: StoredHealth, next: StoredHealth): Promise<boolean> {
      let q = db
        .updateTable("destinations")
        .set({
          state: next.state,
          failure_streak: next.streak,
          probe_at: next.probeAt,
          state_reason: next.reason,
        })
        .where("id", "=", id)
        .where("state", "=", prev.state)
        .where("failure_streak", "=", prev.streak);
      q = prev.probeAt === null ? q.where("probe_at", "is", null) : q.where("probe_at", "=", prev.probeAt);
      const res = await q.executeTakeFirst();
      return Number(res.numUpdatedRows) > 0;
    },

    /**
     * Takes the probe of a held destination when it is due: moves `probe_at` to `next` so that no
     * other process probes too. Returns whether this caller won, and the probe time now stored.
     */
    async takeProbe(
      id: string,
      now: number,
      next: number,
    ): Promise<{ won: boolean; probeAt: number | null }> {
      const res = await db
        .updateTable("destinations")
        .set({ probe_at: next })
        .where("id", "=", id)
        .where("probe_at", "<=", now)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) > 0) return { won: true, probeAt: next };
      const r = await db
        .selectFrom("destinations")
        .select("probe_at")
        .where("id", "=", id)
        .executeTakeFirst();
      return { won: false, probeAt: r?.probe_at ?? null };
    },

    /** Share of failed attempts of the destination since `since`; undefined with fewer than `min`. */
    async failureRate(id: string, since: number, min = 10): Promise<number | undefined> {
      const r = await db
        .selectFrom("attempts")
        .select((eb) => [
          eb.fn.countAll<number | string>().as("n"),
          eb.fn
            .sum<number | string | null>(eb.case().when("outcome", "=", "delivered").then(0).else(1).end())
            .as("bad"),
        ])
        .where("destination_id", "=", id)
        .where("started_at", ">=", since)
        .executeTakeFirst();
      const n = Number(r?.n ?? 0);
      return n < min ? undefined : Number(r?.bad ?? 0) / n;
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
      return `${counts?.n}:${counts?.at}:${states.map((s) => s.state).join(",")}`;
    },
  };
}

export type DestinationsRepo = ReturnType<typeof destinationsRepo>;
