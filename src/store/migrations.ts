import { type Kysely, PostgresAdapter, sql } from "kysely";
import { leadSearchKeys } from "../lead/search.ts";
import { consoleAt100k } from "./migration-015.ts";
import { type Migration, type MigrationProvider, Migrator } from "kysely/migration";

/**
 * Numbered, forward-only migrations. Never edit one that has shipped: add the next number.
 * Column types are chosen to mean the same on SQLite and Postgres (bigint ms times, text JSON).
 */
const migrations: Record<string, Migration> = {
  "001_initial": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("api_keys")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("prefix", "text", (c) => c.notNull())
        .addColumn("hash", "text", (c) => c.notNull().unique())
        .addColumn("scopes", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("last_used_at", "bigint")
        .addColumn("revoked_at", "bigint")
        .execute();
      await db.schema
        .createTable("destinations")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull().unique())
        .addColumn("connector", "text", (c) => c.notNull())
        .addColumn("enabled", "integer", (c) => c.notNull())
        .addColumn("config", "text", (c) => c.notNull())
        .addColumn("secrets", "text")
        .addColumn("state", "text", (c) => c.notNull().defaultTo("active"))
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("leads")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("source", "text")
        .addColumn("name", "text")
        .addColumn("email", "text")
        .addColumn("phone", "text")
        .addColumn("data", "text", (c) => c.notNull())
        .addColumn("idempotency_key", "text", (c) => c.unique())
        .addColumn("erased_at", "bigint")
        .execute();
      await db.schema.createIndex("leads_source").on("leads").columns(["source", "id"]).execute();
      await db.schema
        .createTable("deliveries")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("lead_id", "text", (c) => c.notNull())
        .addColumn("destination_id", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("next_attempt_at", "bigint")
        .addColumn("lease_owner", "text")
        .addColumn("lease_until", "bigint")
        .addColumn("last_error", "text")
        .addColumn("last_status", "integer")
        .addColumn("external_id", "text")
        .addColumn("result", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addColumn("delivered_at", "bigint")
        .execute();
      // The queue: only claimable rows have a next_attempt_at, so this index holds just the backlog.
      await db.schema
        .createIndex("deliveries_due")
        .on("deliveries")
        .columns(["next_attempt_at"])
        .where(sql.ref("next_attempt_at"), "is not", null)
        .execute();
      await db.schema.createIndex("deliveries_lead").on("deliveries").columns(["lead_id"]).execute();
      await db.schema
        .createIndex("deliveries_destination_status")
        .on("deliveries")
        .columns(["destination_id", "status", "id"])
        .execute();
      await db.schema.createIndex("deliveries_status").on("deliveries").columns(["status", "id"]).execute();
      await db.schema
        .createTable("attempts")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("delivery_id", "text", (c) => c.notNull())
        .addColumn("lead_id", "text", (c) => c.notNull())
        .addColumn("destination_id", "text", (c) => c.notNull())
        .addColumn("number", "integer", (c) => c.notNull())
        .addColumn("started_at", "bigint", (c) => c.notNull())
        .addColumn("duration_ms", "integer", (c) => c.notNull())
        .addColumn("outcome", "text", (c) => c.notNull())
        .addColumn("exchanges", "text", (c) => c.notNull())
        .addColumn("response_status", "integer")
        .addColumn("error_code", "text")
        .addColumn("error_message", "text")
        .execute();
      await db.schema.createIndex("attempts_delivery").on("attempts").columns(["delivery_id"]).execute();
      await db.schema.createIndex("attempts_lead").on("attempts").columns(["lead_id"]).execute();
      await db.schema
        .createTable("credentials")
        .addColumn("destination_id", "text", (c) => c.primaryKey())
        .addColumn("data", "text", (c) => c.notNull())
        .addColumn("expires_at", "bigint")
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  "002_oauth_states": {
    // Pending browser OAuth connects (oauth2_code): one row per `state`, so any API process can
    // handle the callback. The state itself is stored hashed, the PKCE verifier sealed.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("oauth_states")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("destination_id", "text", (c) => c.notNull())
        .addColumn("data", "text", (c) => c.notNull())
        .addColumn("redirect_uri", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("used_at", "bigint")
        .execute();
      await db.schema
        .createIndex("oauth_states_created")
        .on("oauth_states")
        .columns(["created_at"])
        .execute();
    },
  },
  // Batches of asynchronous, file-based connectors (reworked). 002 is taken on another branch.
  "003_batches": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("batches")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("destination_id", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("size", "integer", (c) => c.notNull())
        .addColumn("external_id", "text")
        .addColumn("vendor_status", "text")
        .addColumn("vendor_state", "text")
        .addColumn("callback", "text")
        .addColumn("callback_at", "bigint")
        .addColumn("callbacks", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("checks", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("next_check_at", "bigint")
        .addColumn("deadline_at", "bigint", (c) => c.notNull())
        .addColumn("lease_owner", "text")
        .addColumn("lease_until", "bigint")
        .addColumn("error", "text")
        .addColumn("log", "text", (c) => c.notNull().defaultTo("[]"))
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addColumn("submitted_at", "bigint")
        .addColumn("finished_at", "bigint")
        .execute();
      // Like the deliveries queue: only batches with a step to run carry next_check_at.
      await db.schema
        .createIndex("batches_due")
        .on("batches")
        .columns(["next_check_at"])
        .where(sql.ref("next_check_at"), "is not", null)
        .execute();
      await db.schema
        .createIndex("batches_destination")
        .on("batches")
        .columns(["destination_id", "id"])
        .execute();
      await db.schema
        .createTable("batch_items")
        .addColumn("batch_id", "text", (c) => c.notNull())
        .addColumn("delivery_id", "text", (c) => c.notNull())
        .addColumn("lead_id", "text", (c) => c.notNull())
        .addColumn("attempt", "integer", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("error", "text")
        .addPrimaryKeyConstraint("batch_items_pk", ["batch_id", "delivery_id"])
        .execute();
      await db.schema
        .createIndex("batch_items_delivery")
        .on("batch_items")
        .columns(["delivery_id"])
        .execute();
      // The batch an `awaiting` delivery is in now (null: waiting for the next batch, or not batched).
      await db.schema.alterTable("deliveries").addColumn("batch_id", "text").execute();
    },
  },
  "004_duplicates": {
    // Duplicate detection: the first lead with the same email or phone within the window.
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable("leads").addColumn("duplicate_of", "text").execute();
      await db.schema.createIndex("leads_email").on("leads").columns(["email", "created_at"]).execute();
      await db.schema.createIndex("leads_phone").on("leads").columns(["phone", "created_at"]).execute();
    },
  },
  "005_drop_attempts_lead": {
    // No query needs attempts by lead (erasing a lead finds them through its deliveries), and every
    // attempt paid for the index entry in the worker's commits.
    async up(db: Kysely<unknown>) {
      await db.schema.dropIndex("attempts_lead").ifExists().execute();
    },
  },
  "006_lead_routing": {
    // Routing records: for every lead, each destination it did not go to and why. Read by lead only.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("lead_routing")
        .addColumn("lead_id", "text", (c) => c.notNull())
        .addColumn("destination_id", "text", (c) => c.notNull())
        .addColumn("destination_name", "text", (c) => c.notNull())
        .addColumn("decision", "text", (c) => c.notNull())
        .addColumn("reason", "text", (c) => c.notNull())
        .addColumn("duplicate_of", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("lead_routing_pk", ["lead_id", "destination_id"])
        .execute();
    },
  },
  "007_destination_health": {
    // Circuit breaking shared by every process: the consecutive retryable failures, when the next
    // probe of an open circuit (or refused credentials) is due, and why the state is what it is.
    // Health figures read attempts by destination and time.
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable("destinations")
        .addColumn("failure_streak", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.alterTable("destinations").addColumn("probe_at", "bigint").execute();
      await db.schema.alterTable("destinations").addColumn("state_reason", "text").execute();
      await db.schema
        .createIndex("attempts_destination_started")
        .on("attempts")
        .columns(["destination_id", "started_at"])
        .execute();
    },
  },
  "008_traffic_control": {
    // Traffic control per destination: a hold of the whole destination (a Retry-After, or the
    // adaptive back-off after a 429 without one), the adaptive throttle level, and the rate
    // limit's shared budget as a GCRA theoretical arrival time (ms). Replayed deliveries carry a
    // marker so a rate-limited claim leaves room for live leads.
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable("destinations").addColumn("hold_until", "bigint").execute();
      await db.schema.alterTable("destinations").addColumn("hold_reason", "text").execute();
      await db.schema
        .alterTable("destinations")
        .addColumn("throttle_level", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.alterTable("destinations").addColumn("rate_tat", "bigint").execute();
      await db.schema
        .alterTable("deliveries")
        .addColumn("replay", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
    },
  },
  "009_alert_targets": {
    // Alerts: where to send them (secrets sealed) and every notification sent, with its attempts.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("alert_targets")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull().unique())
        .addColumn("url", "text", (c) => c.notNull())
        .addColumn("format", "text", (c) => c.notNull())
        .addColumn("secret", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("notifications")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("target_id", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("destination_id", "text")
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("last_error", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("notifications_created")
        .on("notifications")
        .columns(["created_at"])
        .execute();
    },
  },
  "010_alerts_shared": {
    // Alerts shared by every process: the debounce decided in the database (one row per target,
    // destination and kind: when the last one was sent, how many were suppressed since), and
    // notifications retried by whichever process is alive (a lease in `next_attempt_at`, like
    // deliveries; NULL unless the notification is pending).
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("alert_debounce")
        .addColumn("target_id", "text", (c) => c.notNull())
        .addColumn("destination_id", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("sent_at", "bigint", (c) => c.notNull())
        .addColumn("notification_id", "text", (c) => c.notNull())
        .addColumn("suppressed", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("carried", "integer", (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint("alert_debounce_pk", ["target_id", "destination_id", "kind"])
        .execute();
      await db.schema
        .alterTable("notifications")
        .addColumn("suppressed", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.alterTable("notifications").addColumn("next_attempt_at", "bigint").execute();
      await db.schema.alterTable("notifications").addColumn("lease_owner", "text").execute();
      await db.schema
        .createIndex("notifications_due")
        .on("notifications")
        .columns(["next_attempt_at"])
        .where(sql.ref("next_attempt_at"), "is not", null)
        .execute();
      // Notifications left pending by an earlier version are due now.
      await sql`UPDATE notifications SET next_attempt_at = ${Date.now()} WHERE status = 'pending'`.execute(
        db,
      );
    },
  },
  "011_attempt_stats_index": {
    // The health panel's figures (attempts per hour by outcome, latency, failures by code) and the
    // health figures read a destination's attempts within a time window: with the columns they
    // group by in the index, the range is read from the index alone (an attempt row's exchanges
    // come before error_code and spill into overflow pages). It replaces 007's index, which is its
    // prefix, so each attempt still writes one index of this kind.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createIndex("attempts_destination_outcomes")
        .on("attempts")
        .columns(["destination_id", "started_at", "outcome", "duration_ms", "error_code"])
        .execute();
      await db.schema.dropIndex("attempts_destination_started").execute();
    },
  },
  "012_lead_search": {
    // Lead search (issue 15): lower-cased name, last name and city keys, and the API key that sent
    // the lead; prefix indexes over them, the email and the phone, and the vendors' ids on
    // deliveries. Prefix ranges compare bytes (`COLLATE "C"` on Postgres, BINARY on SQLite) so a
    // btree serves `key >= 'ash' AND key < 'asi'` whatever the database's collation.
    async up(db: Kysely<unknown>) {
      const collation = db.getExecutor().adapter instanceof PostgresAdapter ? '"C"' : "BINARY";
      for (const column of ["name_key", "last_name_key", "city_key", "api_key_id"])
        await db.schema.alterTable("leads").addColumn(column, "text").execute();
      // Leads stored before: their keys from the stored lead (erased leads keep none).
      let after = "";
      for (;;) {
        const rows = (
          await sql<{ id: string; data: string }>`
          select id, data from leads where id > ${after} and erased_at is null order by id limit 1000`.execute(
            db,
          )
        ).rows;
        if (rows.length === 0) break;
        for (const r of rows) {
          const k = leadSearchKeys(JSON.parse(r.data) as Record<string, unknown>);
          await sql`update leads set name_key = ${k.name_key}, last_name_key = ${k.last_name_key},
            city_key = ${k.city_key} where id = ${r.id}`.execute(db);
        }
        after = rows.at(-1)?.id ?? after;
      }
      const index = async (name: string, table: string, columns: string) =>
        sql`create index ${sql.raw(name)} on ${sql.raw(table)} (${sql.raw(columns)})`.execute(db);
      for (const column of ["name_key", "last_name_key", "city_key", "email", "phone"])
        await index(`leads_search_${column}`, "leads", `${column} collate ${collation}, id`);
      await index("deliveries_external_id", "deliveries", `external_id collate ${collation}, lead_id`);
    },
  },
  "014_credential_leases": {
    // One token handshake per destination across processes: the process fetching a credential holds
    // a lease row (renewed while its handshake runs; a crashed one's expires); the others wait and
    // re-read `credentials`. A failed handshake leaves the row as a hold of its (sealed) failure.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("credential_leases")
        .addColumn("destination_id", "text", (c) => c.primaryKey())
        .addColumn("holder", "text", (c) => c.notNull())
        .addColumn("held_until", "bigint", (c) => c.notNull())
        .addColumn("version", "text")
        .addColumn("failure", "text")
        .execute();
    },
  },
  // The console at 100 000 leads (issue 15): kept hourly attempt figures, erased leads' index.
  "015_attempt_hours": consoleAt100k,
};

const provider: MigrationProvider = { getMigrations: () => Promise.resolve(migrations) };

export async function migrate(db: Kysely<unknown>): Promise<string[]> {
  const migrator = new Migrator({ db, provider, migrationTableName: "leadpush_migrations" });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
