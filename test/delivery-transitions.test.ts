import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { createBatch, finishBatch, requeueStrays } from "../src/store/batches-repo.ts";
import { type Completion, completeMany, ERASED_ATTEMPT_MESSAGE } from "../src/store/completions.ts";
import type { Db } from "../src/store/db.ts";
import {
  claimDue,
  releaseLeases,
  renewLeases,
  replay,
  retryNow,
  wakeDestination,
} from "../src/store/deliveries-repo.ts";
import { destinationsRepo } from "../src/store/destinations-repo.ts";
import { eraseLeadData } from "../src/store/erasure.ts";
import { insertLeads } from "../src/store/leads-repo.ts";
import type { DeliveriesTable } from "../src/store/schema.ts";
import { newId } from "../src/util/ids.ts";
import { BACKENDS } from "./helpers/harness.ts";
import { insertDestination, useStore } from "./helpers/store.ts";

// Every delivery transition of the store, on both backends: what it changes, and the guards that
// keep a final state final whoever calls it (erasure, a manual fail, a replay racing a completion).
for (const backend of BACKENDS) {
  describe(`delivery transitions (${backend})`, () => {
    const store = useStore(backend);
    let db: Db;
    let n = 0;
    before(() => {
      db = store.db;
    });

    const destination = () => insertDestination(db);

    /** One lead with one delivery to `destinationId`, then the given columns set. */
    async function delivery(destinationId: string, set: Partial<DeliveriesTable> = {}) {
      n++;
      const [r] = await insertLeads(
        db.kysely,
        [
          {
            lead: { name: `T ${n}`, email: `t${n}-${backend}@example.com`, attributes: {}, enrichment: {} },
            idempotencyKey: undefined,
            targets: [{ destinationId, destinationName: "d", status: "pending", pushDuplicates: false }],
          },
        ],
        1_000,
      );
      const id = r!.deliveries[0]!.id;
      if (Object.keys(set).length > 0)
        await db.kysely.updateTable("deliveries").set(set).where("id", "=", id).execute();
      return { id, leadId: r!.id, destinationId };
    }
    const row = (id: string) =>
      db.kysely.selectFrom("deliveries").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    const leased = (owner: string, until: number) =>
      ({ lease_owner: owner, lease_until: until, next_attempt_at: until }) as const;

    function completion(d: { id: string; leadId: string; destinationId: string }, owner: string): Completion {
      return {
        ...{ deliveryId: d.id, owner, leadId: d.leadId, destinationId: d.destinationId, status: "delivered" },
        ...{ attempts: 1, nextAttemptAt: null, lastError: null, lastStatus: 201, externalId: "x" },
        ...{ result: null, deliveredAt: 9_000 },
        attempt: {
          ...{ id: newId(), delivery_id: d.id, lead_id: d.leadId, destination_id: d.destinationId },
          ...{ number: 1, started_at: 8_000, duration_ms: 1, outcome: "delivered", exchanges: "[]" },
          ...{ response_status: 201, error_code: null, error_message: null },
        },
      };
    }

    test("claim: due rows get a lease (due again at its end); leased, excluded and erased rows do not", async () => {
      const dest = await destination();
      const other = await destination();
      const due = await delivery(dest);
      const held = await delivery(dest, leased("w-b", 50_000));
      await delivery(other);
      const erased = await delivery(dest);
      await eraseLeadData(db.kysely, erased.leadId, 1_500);
      const opts = { owner: "w-a", now: 2_000, leaseUntil: 30_000, limit: 10, excludeDestinations: [other] };
      const claimed = await claimDue(db.kysely, db.caps, opts);
      assert.deepEqual(
        claimed.map((c) => c.id),
        [due.id],
      );
      const r = await row(due.id);
      assert.deepEqual(
        [r.lease_owner, Number(r.lease_until), Number(r.next_attempt_at)],
        ["w-a", 30_000, 30_000],
      );
      assert.equal((await row(held.id)).lease_owner, "w-b");
      assert.equal((await claimDue(db.kysely, db.caps, opts)).length, 0, "a leased row is not claimed twice");
    });

    test("complete: applied for the lease holder; a manually failed row stays failed, its attempt logged", async () => {
      const dest = await destination();
      const mine = await delivery(dest, leased("w-a", 30_000));
      const failedByHand = await delivery(dest, { ...leased("w-a", 30_000), status: "failed" });
      const applied = await completeMany(
        db.kysely,
        [completion(mine, "w-a"), completion(failedByHand, "w-a")],
        9_000,
      );
      assert.deepEqual(
        applied.map((a) => a.deliveryId),
        [mine.id],
      );
      const r = await row(mine.id);
      assert.deepEqual([r.status, r.lease_owner, r.next_attempt_at], ["delivered", null, null]);
      assert.equal((await row(failedByHand.id)).status, "failed");
      const logged = await db.kysely
        .selectFrom("attempts")
        .select("delivery_id")
        .where("delivery_id", "=", failedByHand.id)
        .execute();
      assert.equal(logged.length, 1);
    });

    test("complete many at once: each row's own outcome and guard; a row listed twice is applied once", async () => {
      // Postgres writes a batch with one UPDATE over arrays: values that need quoting in an array
      // literal, nulls, another owner's row and a repeated row must come out as one by one would.
      const dest = await destination();
      const rows = await Promise.all([1, 2, 3].map(() => delivery(dest, leased("w-a", 30_000))));
      const [a, b, c] = rows as [(typeof rows)[number], (typeof rows)[number], (typeof rows)[number]];
      const theirs = await delivery(dest, leased("w-b", 30_000));
      const odd = 'quote " comma , brace { } backslash \\ NULL';
      const retrying: Completion = {
        ...completion(b, "w-a"),
        ...{ status: "retrying", nextAttemptAt: 12_345, lastError: odd, lastStatus: null, externalId: null },
        ...{ result: JSON.stringify({ state: { note: odd } }), deliveredAt: null },
      };
      const first = await completeMany(
        db.kysely,
        [completion(a, "w-a"), retrying, completion(theirs, "w-a"), completion(c, "w-a")],
        9_000,
      );
      assert.deepEqual(
        first.map((x) => x.deliveryId),
        [a.id, b.id, c.id],
      );
      const rb = await row(b.id);
      assert.deepEqual(
        [
          rb.status,
          Number(rb.next_attempt_at),
          rb.last_error,
          rb.last_status,
          rb.external_id,
          rb.lease_owner,
        ],
        ["retrying", 12_345, odd, null, null, null],
      );
      assert.equal(JSON.parse(rb.result!).state.note, odd);
      assert.deepEqual(
        [(await row(a.id)).status, Number((await row(a.id)).delivered_at)],
        ["delivered", 9_000],
      );
      assert.equal((await row(theirs.id)).lease_owner, "w-b", "another owner's lease is not completed");
      // The same delivery twice in one batch: the first completion holds the lease, the second
      // finds it gone.
      const d = await delivery(dest, leased("w-a", 30_000));
      const failed: Completion = { ...completion(d, "w-a"), status: "failed", deliveredAt: null };
      const twice = await completeMany(db.kysely, [completion(d, "w-a"), failed], 9_500);
      assert.equal(twice.length, 1);
      assert.equal(twice[0]!.status, "delivered");
      assert.equal((await row(d.id)).status, "delivered");
    });

    test("complete many: an erased lead's late attempt is logged without its record, the others as they are", async () => {
      const dest = await destination();
      const kept = await delivery(dest, leased("w-a", 30_000));
      const gone = await delivery(dest, leased("w-a", 30_000));
      await eraseLeadData(db.kysely, gone.leadId, 8_500);
      const withRecord = (d: typeof kept): Completion => {
        const c = completion(d, "w-a");
        return {
          ...c,
          attempt: { ...c.attempt, exchanges: '[{"request":"secret"}]', error_message: "echo" },
        };
      };
      const applied = await completeMany(db.kysely, [withRecord(kept), withRecord(gone)], 9_000);
      assert.deepEqual(
        applied.map((a) => a.deliveryId),
        [kept.id],
      );
      const logged = async (deliveryId: string) =>
        db.kysely
          .selectFrom("attempts")
          .select(["exchanges", "error_message"])
          .where("delivery_id", "=", deliveryId)
          .executeTakeFirstOrThrow();
      assert.deepEqual(
        { ...(await logged(kept.id)) },
        { exchanges: '[{"request":"secret"}]', error_message: "echo" },
      );
      assert.deepEqual(
        { ...(await logged(gone.id)) },
        { exchanges: "[]", error_message: ERASED_ATTEMPT_MESSAGE },
      );
    });

    test("release and renew: only the owner's rows that are not final", async () => {
      const dest = await destination();
      const a = await delivery(dest, leased("w-a", 30_000));
      const b = await delivery(dest, leased("w-b", 30_000));
      const final = await delivery(dest, { ...leased("w-a", 30_000), status: "delivered" });
      await renewLeases(db.kysely, "w-a", [a.id, b.id, final.id], 60_000);
      assert.equal(Number((await row(a.id)).lease_until), 60_000);
      assert.equal(Number((await row(b.id)).lease_until), 30_000);
      assert.equal(Number((await row(final.id)).lease_until), 30_000);
      await releaseLeases(db.kysely, "w-a", [a.id, b.id, final.id], 3_000);
      const r = await row(a.id);
      assert.deepEqual([r.lease_owner, Number(r.next_attempt_at)], [null, 3_000]);
      assert.equal((await row(b.id)).lease_owner, "w-b");
      assert.equal((await row(final.id)).lease_owner, "w-a");
    });

    test("retry now: a failed row is due now; in flight, erased or missing say so and change nothing", async () => {
      const dest = await destination();
      const failed = await delivery(dest, { status: "failed", next_attempt_at: null });
      assert.equal(await retryNow(db.kysely, failed.id, 4_000), "retried");
      const r = await row(failed.id);
      assert.deepEqual([r.status, Number(r.next_attempt_at)], ["pending", 4_000]);
      const inFlight = await delivery(dest, leased("w-a", 30_000));
      assert.equal(await retryNow(db.kysely, inFlight.id, 4_000), "unchanged");
      assert.equal((await row(inFlight.id)).lease_owner, "w-a");
      const crashed = await delivery(dest, { ...leased("w-gone", 3_000), status: "retrying" });
      assert.equal(await retryNow(db.kysely, crashed.id, 4_000), "retried", "an expired lease is no flight");
      const erased = await delivery(dest);
      await eraseLeadData(db.kysely, erased.leadId, 4_000);
      assert.equal(await retryNow(db.kysely, erased.id, 4_000), "erased");
      assert.equal((await row(erased.id)).status, "failed");
      assert.equal(await retryNow(db.kysely, "nope", 4_000), "not_found");
    });

    test("replay racing a completion: the push in flight keeps its lease and its completion applies", async () => {
      const dest = await destination();
      const failed = await delivery(dest, { status: "failed", next_attempt_at: null, created_at: 5_000 });
      const old = await delivery(dest, { status: "failed", next_attempt_at: null, created_at: 500 });
      const inFlight = await delivery(dest, { ...leased("w-a", 30_000), status: "retrying" });
      const erased = await delivery(dest, { status: "failed" });
      await eraseLeadData(db.kysely, erased.leadId, 4_000);
      const filter = { statuses: ["failed", "retrying"] as ("failed" | "retrying")[], destinationId: dest };
      assert.equal(await replay(db.kysely, { ...filter, since: 1_000 }, 6_000), 1);
      assert.equal((await row(failed.id)).status, "pending");
      assert.equal((await row(old.id)).status, "failed", "outside the time range");
      assert.equal((await row(erased.id)).status, "failed", "an erased lead's delivery stays failed");
      assert.equal((await row(inFlight.id)).lease_owner, "w-a");
      const applied = await completeMany(db.kysely, [completion(inFlight, "w-a")], 7_000);
      assert.equal(applied.length, 1);
      assert.equal((await row(inFlight.id)).status, "delivered");
    });

    test("wake a destination: retrying rows due now (not those in flight); pending ones counted", async () => {
      const dest = await destination();
      const waiting = await delivery(dest, { status: "retrying", next_attempt_at: 90_000 });
      const inFlight = await delivery(dest, { ...leased("w-a", 30_000), status: "retrying" });
      await delivery(dest);
      assert.deepEqual(await wakeDestination(db.kysely, dest, 5_000), { woken: 1, pending: 1 });
      assert.equal(Number((await row(waiting.id)).next_attempt_at), 5_000);
      assert.equal(Number((await row(inFlight.id)).next_attempt_at), 30_000);
    });

    test("fail for erasure: final, lease gone; a later completion does not bring it back", async () => {
      const dest = await destination();
      const d = await delivery(dest, leased("w-a", 30_000));
      assert.equal(await eraseLeadData(db.kysely, d.leadId, 5_000), true);
      const r = await row(d.id);
      assert.deepEqual([r.status, r.lease_owner, r.next_attempt_at], ["failed", null, null]);
      assert.equal((await completeMany(db.kysely, [completion(d, "w-a")], 6_000)).length, 0);
      assert.equal((await row(d.id)).status, "failed");
      const attempt = await db.kysely
        .selectFrom("attempts")
        .select(["exchanges", "error_message"])
        .where("delivery_id", "=", d.id)
        .executeTakeFirstOrThrow();
      assert.equal(attempt.exchanges, "[]");
      assert.match(attempt.error_message ?? "", /erased/);
    });

    test("unblock `after`: a blocked downstream row is due when its upstream row is final", async () => {
      const up = await destination();
      const down = await destination();
      const u = await delivery(up, leased("w-a", 30_000));
      const blocked = await delivery(down, { status: "blocked", next_attempt_at: null });
      await db.kysely
        .updateTable("deliveries")
        .set({ lead_id: u.leadId })
        .where("id", "=", blocked.id)
        .execute();
      await completeMany(db.kysely, [completion(u, "w-a")], 8_000, (id) => (id === down ? [up] : []));
      const r = await row(blocked.id);
      assert.deepEqual([r.status, Number(r.next_attempt_at)], ["pending", 8_000]);
      assert.deepEqual((JSON.parse(r.result ?? "{}") as { state: unknown }).state, {
        upstream: { [up]: "delivered" },
      });
    });

    test("park for a batch, unpark strays, finish a batch (once, by its holder)", async () => {
      const dest = await destination();
      const parked = await delivery(dest, { status: "awaiting", next_attempt_at: null });
      const stray = await delivery(await destination(), { status: "awaiting", next_attempt_at: null });
      const made = await createBatch(db.kysely, db.caps, {
        ...{ destinationId: dest, size: 10, minSize: 1, now: 2_000, deadlineAt: 99_000 },
      });
      assert.equal(made?.size, 1);
      assert.equal((await row(parked.id)).batch_id, made!.id);
      assert.equal(await requeueStrays(db.kysely, [dest], 3_000), 1);
      const s = await row(stray.id);
      assert.deepEqual([s.status, Number(s.next_attempt_at)], ["pending", 3_000]);
      await db.kysely.updateTable("batches").set({ lease_owner: "b-1" }).where("id", "=", made!.id).execute();
      const finish = (owner: string) =>
        finishBatch(db.kysely, {
          ...{ batchId: made!.id, owner, values: { status: "completed", updated_at: 4_000 } },
          ...{ completions: [{ ...completion(parked, owner), batchId: made!.id }], now: 4_000 },
          upstreamOf: () => [],
        });
      assert.equal(await finish("b-2"), false, "not the holder");
      assert.equal(await finish("b-1"), true);
      assert.equal(await finish("b-1"), false, "a finished batch is final");
      const r = await row(parked.id);
      assert.deepEqual([r.status, r.batch_id], ["delivered", null]);
      const item = await db.kysely
        .selectFrom("batch_items")
        .selectAll()
        .where("delivery_id", "=", parked.id)
        .executeTakeFirstOrThrow();
      assert.equal(item.status, "delivered");
    });

    test("destination health: new credentials wake held rows, a deletion makes waiting rows due", async () => {
      const repo = destinationsRepo(db.kysely);
      const dest = await destination();
      const held = await delivery(dest, { status: "retrying", next_attempt_at: 90_000 });
      const inFlight = await delivery(dest, { status: "retrying", ...leased("w-1", 90_000) });
      await repo.swapHealth(
        dest,
        { state: "active", streak: 0, probeAt: null, reason: null },
        { state: "auth_failing", streak: 1, probeAt: 90_000, reason: "credentials refused" },
      );
      const stored = await db.kysely
        .selectFrom("destinations")
        .selectAll()
        .where("id", "=", dest)
        .executeTakeFirstOrThrow();
      await repo.update({ ...stored, updated_at: 5_000 }, { resetHealth: true });
      assert.deepEqual(await repo.health(dest), {
        state: "auth_failing",
        streak: 0,
        probeAt: null,
        reason: null,
      });
      assert.equal(Number((await row(held.id)).next_attempt_at), 5_000, "held row due now");
      assert.equal(Number((await row(inFlight.id)).next_attempt_at), 90_000, "a leased row is left alone");
      const other = await destination();
      const waiting = await delivery(other, { status: "retrying", next_attempt_at: 90_000 });
      await repo.remove(other, 6_000);
      assert.equal(
        Number((await row(waiting.id)).next_attempt_at),
        6_000,
        "fails as destination_deleted now",
      );
    });

    test("destination health: compare-and-set loses no failure; one process wins a due probe", async () => {
      const repo = destinationsRepo(db.kysely);
      const dest = await destination();
      const prev = (await repo.health(dest))!;
      const one = { ...prev, streak: 1 };
      assert.equal(await repo.swapHealth(dest, prev, one), true);
      assert.equal(await repo.swapHealth(dest, prev, one), false, "a stale read does not overwrite");
      const open = {
        state: "circuit_open",
        streak: 5,
        probeAt: 1_000,
        reason: "5 consecutive retryable failures",
      };
      assert.equal(await repo.swapHealth(dest, one, open), true);
      assert.deepEqual(await repo.takeProbe(dest, 999, 2_000), { won: false, probeAt: 1_000 }, "not due yet");
      const takes = await Promise.all([
        repo.takeProbe(dest, 1_500, 2_500),
        repo.takeProbe(dest, 1_500, 2_500),
      ]);
      assert.equal(takes.filter((t) => t.won).length, 1);
      assert.equal((await repo.health(dest))!.probeAt, 2_500);
    });
  });
}
