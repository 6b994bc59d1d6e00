import { type Kysely, sql } from "kysely";
import type { Migration } from "kysely/migration";

/** Migration 015 (its own file: migrations.ts is at the 400-line limit). Never edit once shipped. */
export const consoleAt100k: Migration = {
  // The destination page's hourly figures at 100 000 leads (issue 15): an hour's aggregate of
  // attempts (counts by outcome, latency histogram, failures by code) is kept once the hour is
  // settled (no attempt can still be written into it), written by the first read that needs it.
  // Nothing on the delivery path writes here.
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable("attempt_hours")
      .addColumn("destination_id", "text", (c) => c.notNull())
      .addColumn("hour", "bigint", (c) => c.notNull())
      .addColumn("data", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("attempt_hours_pk", ["destination_id", "hour"])
      .execute();
    // "Lead not erased" (replay, its dry count, retry now) probes only the erased leads: without it
    // every matching delivery cost a lookup of its lead (260 ms for 3 400 failed deliveries on
    // Postgres). Leads are stored with erased_at null, so ingest never writes this index.
    await db.schema
      .createIndex("leads_erased")
      .on("leads")
      .column("id")
      .where(sql.ref("erased_at"), "is not", null)
      .execute();
  },
};
