import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CompiledQuery, sql } from "kysely";
import { parseDatabaseUrl } from "../src/config.ts";
import { type Completion, completeMany } from "../src/store/completions.ts";
import { type Db, openDb } from "../src/store/db.ts";
import { loadCandidates, POSTGRES_LOOKUP } from "../src/store/duplicates.ts";
import { insertLeads, type NewLead } from "../src/store/leads-repo.ts";
import { newId } from "../src/util/ids.ts";
import { BACKENDS, type FreshDatabase, freshDatabase } from "./helpers/harness.ts";

// The store-level write path on both backends: multi-row inserts (insertRows) and the bulk
// completion UPDATEs with their lease guard.
for (const backend of BACKENDS) {
  describe(`queue store (${backend})`, () => {
    let fresh: FreshDatabase;
    let db: Db;
    const destinationId = newId();
    before(async () => {
      fresh = await freshDatabase(backend);
      db = await openDb(parseDatabaseUrl(fresh.url, fresh.dir));
      await db.kysely
        .insertInto("destinations")
        .values({
          id: destinationId,
          name: "d",
          connector: "http",
          enabled: 1,
          config: "{}",
          secrets: null,
          state: "active",
          created_at: 0,
          updated_at: 0,
        })
        .execute();
    });
    after(async () => {
      await db.close();
      await fresh.drop();
    });

    const item = (n: number, key?: string): NewLead => ({
      lead: { name: `Q ${n}`, email: `q${n}-${backend}@example.com`, attributes: { n }, enrichment: {} },
      idempotencyKey: key,
      targets: [
        {
          destinationId,
          destinationName: "d",
          status: "pending",
          pushDuplicates: false,
          lease: { owner: "worker-a", leaseUntil: 5_000 },
        },
      ],
    });

    const completion = (deliveryId: string, leadId: string, owner: string, n: number): Completion => ({
      deliveryId,
      owner,
      leadId,
      destinationId,
      status: n % 2 === 0 ? "delivered" : "retrying",
      attempts: 1,
      nextAttemptAt: n % 2 === 0 ? null : 9_000 + n,
      lastError: n % 2 === 0 ? null : `http_500: try ${n}`,
      lastStatus: n % 2 === 0 ? 201 : 500,
      externalId: n % 2 === 0 ? `ext-${n}` : null,
      result: JSON.stringify({ n }),
      deliveredAt: n % 2 === 0 ? 7_000 : null,
      attempt: {
        id: newId(),
        delivery_id: deliveryId,
        lead_id: leadId,
        destination_id: destinationId,
        number: 1,
        started_at: 6_000,
        duration_ms: 3,
        outcome: n % 2 === 0 ? "delivered" : "retry",
        exchanges: "[]",
        response_status: n % 2 === 0 ? 201 : 500,
        error_code: n % 2 === 0 ? null : "http_500",
        error_message: null,
      },
    });

    test("leads and deliveries in one insert; repeated keys answered with the first lead", async () => {
      const results = await insertLeads(db.kysely, [item(1, "k1"), item(2), item(3, "k1")], 1_000);
      assert.equal(results.length, 3);
      assert.equal(results[0]!.created, true);
      assert.equal(results[2]!.created, false);
      assert.equal(results[2]!.id, results[0]!.id);
      const again = await insertLeads(db.kysely, [item(4, "k1")], 1_001);
      assert.equal(again[0]!.id, results[0]!.id);
      const row = await db.kysely
        .selectFrom("deliveries")
        .selectAll()
        .where("id", "=", results[1]!.deliveries[0]!.id)
        .executeTakeFirstOrThrow();
      assert.equal(row.lease_owner, "worker-a");
      assert.equal(Number(row.next_attempt_at), 5_000, "a handed-off row is due at its lease's end");
      assert.equal(row.status, "pending");
    });

    test("a repeated key in a batch is answered with the stored lead, and no later lead is its duplicate", async () => {
      // The batch: a lead repeating a stored key (with another email than the stored lead's), then
      // a lead with that other email. Before, the repeat was counted in the batch's duplicate index
      // before the write skipped it, so the second lead got a duplicate_of naming a lead that was
      // never stored.
      const email = `repeat-${backend}@example.com`;
      const withEmail = (n: number, key?: string): NewLead => ({
        ...item(n, key),
        lead: { ...item(n).lead, email },
      });
      const [first] = await insertLeads(db.kysely, [item(300, `k-300-${backend}`)], 1_000);
      const [repeat, next] = await insertLeads(
        db.kysely,
        [withEmail(301, `k-300-${backend}`), withEmail(302)],
        2_000,
        { windowMs: 60_000 },
      );
      assert.equal(repeat!.created, false);
      assert.equal(repeat!.id, first!.id);
      assert.equal(next!.created, true);
      assert.equal(next!.duplicateOf, undefined, "no stored lead has that email");
      const row = await db.kysely
        .selectFrom("leads")
        .select("duplicate_of")
        .where("id", "=", next!.id)
        .executeTakeFirstOrThrow();
      assert.equal(row.duplicate_of, null);
    });

    if (backend === "postgres")
      test("a key stored by another process while this batch is written: answered with that lead", async () => {
        // The other process's lead is inserted and not yet committed: the lookup does not see it,
        // the write waits on the unique index, fails once that commits, and is made again.
        const key = `race-${backend}`;
        const other = await db.kysely.connection().execute(async (conn) => {
          await conn.executeQuery(CompiledQuery.raw("begin"));
          const id = newId();
          await conn
            .insertInto("leads")
            .values({ id, created_at: 1, name: "other", data: "{}", idempotency_key: key })
            .execute();
          const mine = insertLeads(db.kysely, [item(400, key), item(401)], 3_000);
          await new Promise((r) => setTimeout(r, 300));
          await conn.executeQuery(CompiledQuery.raw("commit"));
          return { id, mine: await mine };
        });
        assert.equal(other.mine[0]!.created, false);
        assert.equal(other.mine[0]!.id, other.id);
        assert.equal(other.mine[1]!.created, true, "the other lead of the batch is stored");
      });

    if (backend === "postgres")
      test("the duplicate lookup reads indexes, also before the table has statistics", async () => {
        // With `email IN (…) OR phone IN (…)` Postgres scanned every lead (or every delivery)
        // until autovacuum had analyzed the tables, and planned the lookup in parallel: a cost
        // per batch that grew with the tables.
        for (let b = 0; b < 100; b++)
          await insertLeads(
            db.kysely,
            Array.from({ length: 100 }, (_, n) => item(10_000 + b * 100 + n)),
            4_000,
          );
        // A batch's worth: 16 emails and 16 phones.
        const emails = Array.from({ length: 16 }, (_, n) => `q${10_005 + n}-${backend}@example.com`);
        const phones = Array.from({ length: 16 }, (_, n) => `'+9198765${String(n).padStart(5, "0")}'`);
        const plan = await sql<{ "QUERY PLAN": string }>`explain ${sql.raw(
          POSTGRES_LOOKUP.replace(/\$1/g, "ARRAY[" + emails.map((e) => `'${e}'`).join(",") + "]")
            .replace(/\$2/g, `ARRAY[${phones.join(",")}]`)
            .replace(/\$3/g, "0"),
        )}`.execute(db.kysely);
        const text = plan.rows.map((r) => r["QUERY PLAN"]).join("\n");
        // No scan of all leads or all deliveries, and no parallel plan: at 30 000 unanalyzed
        // leads the lookup was planned in parallel, ~50 ms of worker start-up each batch.
        assert.doesNotMatch(text, /Seq Scan on (leads|deliveries)|Gather/, text);
        const setting = await sql<{
          max_parallel_workers_per_gather: string;
        }>`show max_parallel_workers_per_gather`.execute(db.kysely);
        assert.equal(setting.rows[0]!.max_parallel_workers_per_gather, "0");
        const found = await loadCandidates(
          db.kysely,
          [{ email: emails[0]!, phone: null, project: null }],
          5_000,
          10_000,
        );
        assert.deepEqual(
          found.map((c) => c.email),
          [emails[0]],
        );
      });

    test("a pipeline step goes ahead when its upstream skips a duplicate, and the caller's targets stay as routed", async () => {
      // A failed batch is planned again from the same items: planning must not change them.
      const email = `pipeline-${backend}@example.com`;
      const downstream = newId();
      const lead = (n: number): NewLead => ({
        lead: { name: `P ${n}`, email, attributes: {}, enrichment: {} },
        idempotencyKey: undefined,
        targets: [
          { destinationId, destinationName: "d", status: "pending", pushDuplicates: false },
          {
            destinationId: downstream,
            destinationName: "down",
            status: "blocked",
            pushDuplicates: true,
            after: ["d"],
          },
        ],
      });
      await insertLeads(db.kysely, [lead(500)], 1_000, { windowMs: 60_000 });
      const repeat = lead(501);
      const [r] = await insertLeads(db.kysely, [repeat], 2_000, { windowMs: 60_000 });
      assert.deepEqual(
        r!.deliveries.map((d) => [d.destination, d.status]),
        [["down", "pending"]],
      );
      assert.equal(repeat.targets[1]!.status, "blocked");
    });

    test("completions: applied only where the owner still holds the lease", async () => {
      const leads = await insertLeads(
        db.kysely,
        Array.from({ length: 7 }, (_, n) => item(100 + n)),
        2_000,
      );
      const rows = leads.map((l) => ({ leadId: l.id, deliveryId: l.deliveries[0]!.id }));
      // Another worker took over the last row's lease.
      await db.kysely
        .updateTable("deliveries")
        .set({ lease_owner: "worker-b" })
        .where("id", "=", rows[6]!.deliveryId)
        .execute();
      const applied = await completeMany(
        db.kysely,
        rows.map((r, n) => completion(r.deliveryId, r.leadId, "worker-a", n)),
        8_000,
      );
      assert.deepEqual(
        applied.map((a) => a.deliveryId).sort(),
        rows
          .slice(0, 6)
          .map((r) => r.deliveryId)
          .sort(),
      );
      const stored = await db.kysely
        .selectFrom("deliveries")
        .selectAll()
        .where(
          "id",
          "in",
          rows.map((r) => r.deliveryId),
        )
        .execute();
      const byId = new Map(stored.map((s) => [s.id, s]));
      for (const [n, r] of rows.slice(0, 6).entries()) {
        const s = byId.get(r.deliveryId)!;
        assert.equal(s.status, n % 2 === 0 ? "delivered" : "retrying");
        assert.equal(s.lease_owner, null);
        assert.equal(
          s.next_attempt_at === null ? null : Number(s.next_attempt_at),
          n % 2 === 0 ? null : 9_000 + n,
        );
        assert.equal(s.last_status, n % 2 === 0 ? 201 : 500);
        assert.equal(s.external_id, n % 2 === 0 ? `ext-${n}` : null);
        assert.equal(s.result, JSON.stringify({ n }));
        assert.equal(Number(s.updated_at), 8_000);
        assert.equal(s.delivered_at === null ? null : Number(s.delivered_at), n % 2 === 0 ? 7_000 : null);
      }
      const taken = byId.get(rows[6]!.deliveryId)!;
      assert.equal(taken.status, "pending", "a row leased by another worker keeps its state");
      assert.equal(taken.lease_owner, "worker-b");
      // Every attempt is logged, also the one whose outcome was not applied: it happened.
      const attempts = await db.kysely
        .selectFrom("attempts")
        .select("delivery_id")
        .where(
          "delivery_id",
          "in",
          rows.map((r) => r.deliveryId),
        )
        .execute();
      assert.equal(attempts.length, 7);
    });
  });
}
