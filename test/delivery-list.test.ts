// The delivery list filtered by destination alone (the dashboard's destination filter): read one
// status at a time and merged, it must page exactly like one query over every status — newest
// first, no row twice, none left out — on SQLite and Postgres.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DELIVERY_STATUSES } from "../src/domain/status.ts";
import { parseLead } from "../src/lead/lead.ts";
import { insertLeads } from "../src/store/leads-repo.ts";
import { listDeliveries } from "../src/store/read-models.ts";
import { BACKENDS } from "./helpers/harness.ts";
import { insertDestination, useStore } from "./helpers/store.ts";

for (const backend of BACKENDS) {
  describe(`delivery list by destination (${backend})`, () => {
    const store = useStore(backend);

    test("pages across statuses newest first, with the other filters, like one query", async () => {
      const k = store.db.kysely;
      const mine = await insertDestination(store.db);
      const other = await insertDestination(store.db);
      const leads = Array.from({ length: 30 }, (_, i) => {
        const parsed = parseLead({ name: `List ${i}`, email: `list${i}@example.com` }, "IN");
        if (!parsed.ok) throw new Error("bad lead");
        return {
          lead: parsed.lead,
          idempotencyKey: undefined,
          targets: [mine, other].map((destinationId) => ({
            destinationId,
            destinationName: destinationId,
            status: "pending" as const,
            pushDuplicates: true,
          })),
        };
      });
      const stored = await insertLeads(k, leads, 1_000);
      // Statuses spread so that every page mixes several of them.
      const rows = stored.flatMap((r) => r.deliveries).filter((d) => d.destination === mine);
      for (const [i, d] of rows.entries()) {
        const status = DELIVERY_STATUSES[(i * 5) % DELIVERY_STATUSES.length]!;
        await k
          .updateTable("deliveries")
          .set({ status, last_error: i % 3 === 0 ? "http_500: client answered 500" : null })
          .where("id", "=", d.id)
          .execute();
      }
      const expected = rows.map((d) => d.id).sort((a, b) => (a < b ? 1 : -1));
      assert.equal(expected.length, 30);

      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const got = await listDeliveries(k, { limit: 7, cursor, destinationId: mine });
        assert.ok(got.length <= 8);
        seen.push(...got.slice(0, 7).map((r) => r.id));
        assert.ok(got.every((r) => r.destination_id === mine && r.destination_name === `d-${mine}`));
        if (got.length <= 7) break;
        cursor = got[6]!.id;
      }
      assert.deepEqual(seen, expected);

      // With an error code (and a time range): the same rows one query over every status gives.
      const withCode = await listDeliveries(k, {
        limit: 50,
        destinationId: mine,
        errorCode: "http_500",
        since: 1_000,
      });
      const byQuery = await k
        .selectFrom("deliveries")
        .select("id")
        .where("destination_id", "=", mine)
        .where("last_error", "like", "http_500:%")
        .orderBy("id", "desc")
        .execute();
      assert.deepEqual(
        withCode.map((r) => r.id),
        byQuery.map((r) => r.id),
      );
      assert.equal(withCode.length, 10);
      assert.deepEqual(await listDeliveries(k, { limit: 50, destinationId: mine, until: 1_000 }), []);
    });
  });
}
