import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import type { Db } from "../src/store/db.ts";
import { replay } from "../src/store/deliveries-repo.ts";
import { insertLeads } from "../src/store/leads-repo.ts";
import {
  claimRateLimited,
  holdDestination,
  relaxDestination,
  throttleDestination,
} from "../src/store/traffic-repo.ts";
import { BACKENDS } from "./helpers/harness.ts";
import { insertDestination, useStore } from "./helpers/store.ts";

// The store's traffic-control transitions on both backends, with a fixed clock: the GCRA budget of
// a rate-limited claim, holds that every claim skips, the adaptive throttle, the replay share.
for (const backend of BACKENDS) {
  describe(`traffic control in the store (${backend})`, () => {
    const store = useStore(backend);
    let db: Db;
    let n = 0;
    before(() => {
      db = store.db;
    });

    const destination = () => insertDestination(db);

    /** `count` leads with one delivery each to `destinationId`, due at 1 000. */
    async function deliveries(destinationId: string, count: number): Promise<string[]> {
      const leads = Array.from({ length: count }, () => {
        n++;
        return {
          lead: { name: `T ${n}`, email: `t${n}-${backend}@traffic.test`, attributes: {}, enrichment: {} },
          idempotencyKey: undefined,
          targets: [
            { destinationId, destinationName: "d", status: "pending" as const, pushDuplicates: false },
          ],
        };
      });
      const rows = await insertLeads(db.kysely, leads, 1_000);
      return rows.map((r) => r.deliveries[0]!.id);
    }

    const claim = (destinationId: string, now: number, want: number, intervalMs = 100, burst = 3) =>
      claimRateLimited(db.kysely, db.caps, {
        ...{ owner: "w", now, leaseUntil: now + 60_000, destinationId, want, intervalMs, burst },
      });

    test("GCRA: a burst at once, then one token per interval; nextAt is the next token", async () => {
      const d = await destination();
      await deliveries(d, 6);
      const first = await claim(d, 10_000, 10);
      assert.equal(first.rows.length, 3, "the burst");
      assert.equal(first.nextAt, 10_100);
      const early = await claim(d, 10_050, 10);
      assert.equal(early.rows.length, 0);
      assert.equal(early.nextAt, 10_100);
      assert.equal((await claim(d, 10_100, 10)).rows.length, 1);
      // Half a second later the bucket has refilled to at most the burst (2 rows are left).
      const later = await claim(d, 10_600, 10);
      assert.equal(later.rows.length, 2);
      assert.equal(later.nextAt, undefined, "nothing left waiting");
    });

    test("a hold: the rate-limited claim takes none of its rows until it ends", async () => {
      const d = await destination();
      await deliveries(d, 2);
      await holdDestination(db.kysely, d, 20_000, "http_429: Retry-After 10 s");
      await holdDestination(db.kysely, d, 15_000, "an earlier end does not shorten it");
      const held = await claim(d, 12_000, 5);
      assert.deepEqual(held, { rows: [], nextAt: 20_000 });
      const reason = await db.kysely
        .selectFrom("destinations")
        .select(["hold_until", "hold_reason"])
        .where("id", "=", d)
        .executeTakeFirstOrThrow();
      assert.equal(Number(reason.hold_until), 20_000);
      assert.equal(reason.hold_reason, "http_429: Retry-After 10 s");
      assert.equal((await claim(d, 20_000, 5)).rows.length, 2, "claimed when the hold ends");
    });

    test("throttle: each 429 without Retry-After doubles the back-off and halves the rate", async () => {
      const d = await destination();
      await deliveries(d, 4);
      const one = await throttleDestination(db.kysely, d, 30_000, "http_429 without Retry-After");
      assert.deepEqual(one, { level: 1, until: 31_000 });
      assert.equal(
        await throttleDestination(db.kysely, d, 30_500, "x"),
        undefined,
        "already held: no level up",
      );
      const two = await throttleDestination(db.kysely, d, 31_000, "x");
      assert.deepEqual(two, { level: 2, until: 33_000 });
      // Level 2: one token every 400 ms (interval 100 × 2²), burst 1.
      const c = await claim(d, 33_000, 10, 100, 1);
      assert.equal(c.rows.length, 1);
      assert.equal(c.nextAt, 33_400);
      await relaxDestination(db.kysely, d, 34_000);
      const level = await db.kysely
        .selectFrom("destinations")
        .select("throttle_level")
        .where("id", "=", d)
        .executeTakeFirstOrThrow();
      assert.equal(Number(level.throttle_level), 1, "a success recovers one level");
    });

    test("replayed rows get at most half the tokens while live rows wait", async () => {
      const d = await destination();
      const old = await deliveries(d, 4);
      await db.kysely
        .updateTable("deliveries")
        .set({ status: "failed", next_attempt_at: null })
        .where("id", "in", old)
        .execute();
      assert.equal(await replay(db.kysely, { statuses: ["failed"], destinationId: d }, 40_000), 4);
      const live = await deliveries(d, 4);
      const c = await claim(d, 40_000, 4, 100, 4);
      const ids = c.rows.map((r) => r.id);
      assert.equal(ids.filter((id) => old.includes(id)).length, 2, "two replays");
      assert.equal(ids.filter((id) => live.includes(id)).length, 2, "two live");
      // No live row left waiting: replays may take every token.
      const rest = await claim(d, 40_400, 4, 100, 4);
      assert.equal(rest.rows.length, 4);
    });
  });
}
