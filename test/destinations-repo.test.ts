import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseDatabaseUrl } from "../src/config.ts";
import { type Db, openDb } from "../src/store/db.ts";
import { type DestinationsRepo, destinationsRepo } from "../src/store/destinations-repo.ts";
import { insertLeads } from "../src/store/leads-repo.ts";
import { countsByDestinationName, leadDataByEmail } from "../src/store/read-models.ts";
import type { DestinationsTable } from "../src/store/schema.ts";
import { newId } from "../src/util/ids.ts";
import { BACKENDS, type FreshDatabase, freshDatabase } from "./helpers/harness.ts";

// The destinations table's store functions (the destination service holds no SQL), and the two
// reads the demo shows, on both backends.
for (const backend of BACKENDS) {
  describe(`destinations repository (${backend})`, () => {
    let fresh: FreshDatabase;
    let db: Db;
    let repo: DestinationsRepo;
    before(async () => {
      fresh = await freshDatabase(backend);
      db = await openDb(parseDatabaseUrl(fresh.url, fresh.dir));
      repo = destinationsRepo(db.kysely);
    });
    after(async () => {
      await db.close();
      await fresh.drop();
    });

    function row(name: string, set: Partial<DestinationsTable> = {}): DestinationsTable {
      return {
        ...{ id: newId(), name, connector: "http", enabled: 1, config: "{}", secrets: null },
        ...{ state: "active", created_at: 1_000, updated_at: 1_000 },
        ...{ failure_streak: 0, probe_at: null, state_reason: null, ...set },
      };
    }
    /** The row as a plain object (SQLite's rows have a null prototype). */
    const found = async (idOrName: string) => {
      const r = await repo.find(idOrName);
      if (!r) return r;
      // The traffic-control columns (hold, throttle, rate budget) are store/traffic-repo.ts's.
      const copy: Record<string, unknown> = { ...r };
      for (const k of ["hold_until", "hold_reason", "throttle_level", "rate_tat"]) delete copy[k];
      return copy;
    };
    const credential = (destinationId: string) =>
      db.kysely
        .insertInto("credentials")
        .values({ destination_id: destinationId, data: "sealed", expires_at: null, updated_at: 1 })
        .execute();
    const credentialIds = async () =>
      (await db.kysely.selectFrom("credentials").select("destination_id").execute()).map(
        (r) => r.destination_id,
      );

    test("insert, find by id or name, idByName, update, list by name", async () => {
      const b = row(`b-${backend}`);
      const a = row(`a-${backend}`);
      await repo.insert(b);
      await repo.insert(a);
      assert.deepEqual(await found(b.id), b);
      assert.deepEqual(await found(b.name), b);
      assert.equal(await repo.find("nobody"), undefined);
      assert.equal(await repo.idByName(a.name), a.id);
      assert.equal(await repo.idByName("nobody"), undefined);
      const changed = { ...b, config: '{"url":"http://x"}', updated_at: 2_000 };
      await repo.update(changed);
      assert.deepEqual(await found(b.id), changed);
      assert.deepEqual(
        (await repo.all({ ordered: true })).map((r) => r.name),
        [a.name, b.name],
      );
      assert.equal((await repo.all()).length, 2);
    });

    test("setState changes the state and the stamp; states lists name and state", async () => {
      const d = row(`s-${backend}`);
      await repo.insert(d);
      const before = await repo.stamp();
      await repo.setState(d.id, "needs_reconnect");
      assert.notEqual(await repo.stamp(), before);
      assert.equal((await repo.find(d.id))?.state, "needs_reconnect");
      assert.ok((await repo.states()).some((s) => s.name === d.name && s.state === "needs_reconnect"));
    });

    test("remove deletes the destination and its credential only", async () => {
      const gone = row(`gone-${backend}`);
      const kept = row(`kept-${backend}`);
      await repo.insert(gone);
      await repo.insert(kept);
      await credential(gone.id);
      await credential(kept.id);
      const before = await repo.stamp();
      await repo.remove(gone.id, 1_000);
      assert.equal(await repo.find(gone.id), undefined);
      assert.ok(await repo.find(kept.id));
      const left = await credentialIds();
      assert.ok(!left.includes(gone.id), "the removed destination's credential is deleted");
      assert.ok(left.includes(kept.id), "another destination's credential stays");
      assert.notEqual(await repo.stamp(), before);
    });

    test("the demo's reads: deliveries by destination name and status, a lead by email", async () => {
      const d = row(`demo-${backend}`);
      await repo.insert(d);
      const email = `demo-${backend}@example.com`;
      const target = { destinationId: d.id, destinationName: d.name, pushDuplicates: false };
      await insertLeads(
        db.kysely,
        [
          {
            lead: { name: "Demo", email, attributes: {}, enrichment: { x: { y: 1 } } },
            idempotencyKey: undefined,
            targets: [{ ...target, status: "pending" }],
          },
          {
            lead: { name: "Other", email: `other-${email}`, attributes: {}, enrichment: {} },
            idempotencyKey: undefined,
            targets: [{ ...target, status: "pending" }],
          },
        ],
        1_000,
      );
      const mine = (await countsByDestinationName(db.kysely)).filter((r) => r.name === d.name);
      assert.deepEqual(mine, [{ name: d.name, status: "pending", n: 2 }]);
      const data = await leadDataByEmail(db.kysely, email);
      assert.deepEqual((JSON.parse(data ?? "{}") as { enrichment?: unknown }).enrichment, { x: { y: 1 } });
      assert.equal(await leadDataByEmail(db.kysely, "nobody@example.com"), undefined);
    });
  });
}
