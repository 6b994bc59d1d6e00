// GET /v1/destinations/:id/stats (issue 15, the destination page): attempts per hour by outcome,
// latency percentiles and failures by code — the store's hourly buckets on hand-made attempt rows,
// then end to end against the sandbox, on SQLite and Postgres.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startSandbox } from "../src/sandbox/server.ts";
import { destinationStats, HOUR_MS, percentile, SETTLED_AFTER_MS } from "../src/store/destination-stats.ts";
import { destinationHealth } from "../src/store/health-read.ts";
import { newId } from "../src/util/ids.ts";
import { BACKENDS, startApp, type TestApp } from "./helpers/harness.ts";
import { createDestination, deliveryOf, postLead, waitStatus } from "./helpers/leads.ts";
import { insertDestination, useStore } from "./helpers/store.ts";

test("percentile: interpolated within the histogram's bucket, capped by the longest attempt", () => {
  // Buckets: ≤5, ≤10, ≤20 … ≤30 000, above.
  const h = new Array<number>(17).fill(0);
  assert.equal(percentile(h, 0, 0.5), null);
  h[1] = 10; // ten attempts of 5–10 ms
  assert.equal(percentile(h, 10, 0.5), 8); // 5 + 5 × 5/10 → 7.5
  assert.equal(percentile(h, 10, 1), 10);
  assert.equal(percentile(h, 8, 0.95), 8, "never above the longest attempt");
  h[16] = 1; // one above the last bound (30 s): the longest closes the open bucket
  assert.equal(percentile(h, 90_000, 1), 90_000);
});

for (const backend of BACKENDS) {
  describe(`destination stats, store (${backend})`, () => {
    const store = useStore(backend);
    const now = Date.UTC(2026, 0, 10, 12, 30); // 12:30: the current hour is 12:00–12:30
    const hour = (h: number) => Date.UTC(2026, 0, 10, h);

    const attempt = (destinationId: string, at: number, outcome: string, ms: number, code?: string) => ({
      id: newId(),
      delivery_id: newId(),
      lead_id: newId(),
      destination_id: destinationId,
      number: 1,
      started_at: at,
      duration_ms: ms,
      outcome,
      exchanges: "[]",
      response_status: code ? 400 : 201,
      error_code: code ?? null,
      error_message: code ? `${code} at ${new Date(at).toISOString()}` : null,
    });

    test("hourly buckets by outcome within the window, latency, failures by code with the last message", async () => {
      const k = store.db.kysely;
      const id = await insertDestination(store.db);
      const other = await insertDestination(store.db);
      await k
        .insertInto("attempts")
        .values([
          attempt(id, hour(12) + 1000, "delivered", 40),
          attempt(id, hour(12) + 2000, "delivered", 60),
          attempt(id, hour(12) + 3000, "retry", 900, "http_503"),
          attempt(id, hour(11) + 5, "failed", 20, "http_400"),
          attempt(id, hour(11) + 9, "failed", 25, "http_400"),
          attempt(id, hour(11) + 10, "awaiting", 5),
          attempt(id, hour(11) + 11, "blocked", 1, "needs_reconnect"),
          // 23 hours before 12:00 is the first bucket of 24 h; 24 hours before is outside.
          attempt(id, now - 23.5 * HOUR_MS, "delivered", 30),
          attempt(id, hour(12) - 24 * HOUR_MS, "failed", 30, "http_422"),
          // Later than now (another process's clock ahead): not in the window either.
          attempt(id, now + 60_000, "delivered", 30),
          attempt(other, hour(12), "failed", 30, "http_500"),
        ])
        .execute();

      const day = await destinationStats(k, id, now, 24);
      assert.equal(day.buckets.length, 24);
      assert.equal(day.from, hour(12) - 23 * HOUR_MS);
      assert.equal(day.buckets[0]?.hour, day.from);
      const b12 = day.buckets[23]!;
      assert.deepEqual(
        { ...b12, p50Ms: undefined, p95Ms: undefined },
        {
          hour: hour(12),
          attempts: 3,
          delivered: 2,
          failed: 0,
          retrying: 1,
          awaiting: 0,
          blocked: 0,
          p50Ms: undefined,
          p95Ms: undefined,
        },
      );
      assert.ok(b12.p50Ms! >= 40 && b12.p50Ms! <= 75, `p50 ${b12.p50Ms}`);
      assert.ok(b12.p95Ms! > 750 && b12.p95Ms! <= 900, `p95 ${b12.p95Ms}`);
      const b11 = day.buckets[22]!;
      assert.equal(b11.hour, hour(11));
      assert.deepEqual([b11.attempts, b11.failed, b11.awaiting, b11.blocked], [4, 2, 1, 1]);
      assert.equal(day.buckets[0]?.delivered, 1, "the first hour of the window");
      const sum = (f: "attempts" | "delivered" | "failed") => day.buckets.reduce((n, b) => n + b[f], 0);
      assert.deepEqual([sum("attempts"), sum("delivered"), sum("failed")], [8, 3, 2]);
      assert.ok(
        day.buckets.filter((b) => b.attempts === 0).every((b) => b.p50Ms === null && b.p95Ms === null),
      );
      assert.deepEqual(day.failures, [
        {
          code: "http_400",
          count: 2,
          lastSeen: hour(11) + 9,
          lastMessage: `http_400 at ${new Date(hour(11) + 9).toISOString()}`,
        },
        {
          code: "http_503",
          count: 1,
          lastSeen: hour(12) + 3000,
          lastMessage: `http_503 at ${new Date(hour(12) + 3000).toISOString()}`,
        },
        {
          code: "needs_reconnect",
          count: 1,
          lastSeen: hour(11) + 11,
          lastMessage: `needs_reconnect at ${new Date(hour(11) + 11).toISOString()}`,
        },
      ]);

      const week = await destinationStats(k, id, now, 168);
      assert.equal(week.buckets.length, 168);
      assert.equal(
        week.buckets.reduce((n, b) => n + b.failed, 0),
        3,
        "the 422 of yesterday is in 7 days",
      );
      assert.equal(week.failures.find((f) => f.code === "http_422")?.count, 1);

      // The health figures read the same index (replaced by migration 011) and still agree.
      const health = await destinationHealth(k, id, now);
      assert.equal(health?.lastError?.code, "http_503");
    });
  });

  describe(`destination stats, settled hours kept (${backend})`, () => {
    const store = useStore(backend);
    const now = Date.UTC(2026, 0, 11, 12, 30);
    const hour = (h: number) => Date.UTC(2026, 0, 11, h);
    const attempt = (destinationId: string, at: number, outcome: string, ms: number, code?: string) => ({
      id: newId(),
      delivery_id: newId(),
      lead_id: newId(),
      destination_id: destinationId,
      number: 1,
      started_at: at,
      duration_ms: ms,
      outcome,
      exchanges: "[]",
      response_status: code ? 500 : 201,
      error_code: code ?? null,
      error_message: code ? `${code} at ${at}` : null,
    });

    test("an hour is kept once settled, read back the same; later attempts of open hours still count", async () => {
      const k = store.db.kysely;
      const id = await insertDestination(store.db);
      await k
        .insertInto("attempts")
        .values([
          attempt(id, hour(3) + 10, "delivered", 40),
          attempt(id, hour(3) + 20, "failed", 700, "http_500"),
          attempt(id, hour(10) + 5, "retry", 30, "http_503"),
          attempt(id, hour(10) + 6, "delivered", 12),
          attempt(id, hour(11) + 1, "failed", 90, "http_500"),
          attempt(id, hour(12) + 1, "delivered", 8),
        ])
        .execute();
      const day = await destinationStats(k, id, now, 24);
      // Settled: ended at least SETTLED_AFTER_MS before now (up to the 10:00 hour at 12:30).
      const kept = await k
        .selectFrom("attempt_hours")
        .select("hour")
        .where("destination_id", "=", id)
        .orderBy("hour")
        .execute();
      assert.equal(SETTLED_AFTER_MS, HOUR_MS);
      assert.deepEqual(
        kept.map((r) => Number(r.hour)),
        day.buckets.map((b) => b.hour).filter((h) => h <= hour(10)),
      );
      assert.equal(kept.length, 22);

      // Read again (from the kept hours): the same answer.
      assert.deepEqual(await destinationStats(k, id, now, 24), day);
      // A kept hour is not read from the attempts again.
      await k
        .deleteFrom("attempts")
        .where("started_at", "=", hour(3) + 10)
        .execute();
      assert.deepEqual(await destinationStats(k, id, now, 24), day);

      // An attempt written late into an hour that is not settled yet counts.
      await k
        .insertInto("attempts")
        .values(attempt(id, hour(11) + 2, "failed", 95, "http_500"))
        .execute();
      const later = await destinationStats(k, id, now, 24);
      const b11 = later.buckets.find((b) => b.hour === hour(11))!;
      assert.deepEqual([b11.attempts, b11.failed], [2, 2]);
      assert.deepEqual(
        later.buckets.filter((b) => b.hour !== hour(11)),
        day.buckets.filter((b) => b.hour !== hour(11)),
      );
      // Failures add up over kept and read hours: 3 × http_500 (03:00, 11:00, 11:00), 1 × http_503.
      assert.deepEqual(
        later.failures.map((f) => [f.code, f.count, f.lastSeen, f.lastMessage]),
        [
          ["http_500", 3, hour(11) + 2, `http_500 at ${hour(11) + 2}`],
          ["http_503", 1, hour(10) + 5, `http_503 at ${hour(10) + 5}`],
        ],
      );
      // The week reads the day's kept hours and makes the others.
      const week = await destinationStats(k, id, now, 168);
      assert.deepEqual(week.buckets.slice(-24), later.buckets);
      const keptWeek = await k
        .selectFrom("attempt_hours")
        .select((eb) => eb.fn.countAll<number | string>().as("n"))
        .where("destination_id", "=", id)
        .executeTakeFirst();
      assert.equal(Number(keptWeek?.n), 166);
    });
  });

  describe(`GET /v1/destinations/:id/stats (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    before(async () => {
      sb = await startSandbox();
      t = await startApp({ backend });
    });
    after(async () => {
      await t?.close();
      await sb?.close();
    });

    test("buckets add up to what was delivered and failed; failures by code; errors; documented", async () => {
      const name = "stats-mixed";
      await createDestination(t, name, { url: `${sb.url}/sink/stats`, retry: { delaysMs: [50], jitter: 0 } });
      // Two leads refused for good (400), one retried once (503) and then delivered, three delivered.
      sb.sink.behave({ status: 400, times: 2 });
      const refused = [await postLead(t, name), await postLead(t, name)];
      for (const id of refused) await waitStatus(t, id, "failed");
      sb.sink.behave({ status: 503, times: 1 });
      const retried = await postLead(t, name);
      await waitStatus(t, retried, "delivered");
      const ok = [await postLead(t, name), await postLead(t, name), await postLead(t, name)];
      for (const id of ok) await waitStatus(t, id, "delivered");

      const overall = (await t.api("GET", "/v1/stats")).body.destinations.find(
        (d: { name: string }) => d.name === name,
      ).deliveries;
      assert.deepEqual([overall.delivered, overall.failed], [4, 2]);

      for (const window of ["24h", "7d"]) {
        const r = await t.api("GET", `/v1/destinations/${name}/stats?window=${window}`);
        assert.equal(r.status, 200, r.text);
        const s = r.body;
        assert.equal(s.window, window);
        assert.equal(s.buckets.length, window === "24h" ? 24 : 168);
        const sum = (f: string) => s.buckets.reduce((n: number, b: Record<string, number>) => n + b[f]!, 0);
        assert.equal(sum("delivered"), overall.delivered, "delivered attempts = delivered deliveries");
        assert.equal(sum("failed"), overall.failed, "failed attempts = failed deliveries");
        assert.equal(sum("retrying"), 1);
        assert.equal(sum("attempts"), 7);
        assert.deepEqual(s.totals, {
          attempts: 7,
          delivered: 4,
          failed: 2,
          retrying: 1,
          awaiting: 0,
          blocked: 0,
        });
        const last = s.buckets.at(-1);
        assert.ok(
          Date.parse(last.hour) <= Date.parse(s.to) && Date.parse(s.to) - Date.parse(last.hour) < HOUR_MS,
        );
        assert.equal(typeof last.p50Ms, "number");
        assert.ok(last.p95Ms >= last.p50Ms);
        const lastError = (await deliveryOf(t, refused[1]!)).lastError;
        assert.deepEqual(
          s.failures.map((f: { code: string; count: number }) => [f.code, f.count]),
          [
            [lastError?.code, 2],
            ["http_503", 1],
          ],
        );
        assert.ok(s.failures[0].lastMessage, "the newest failure's message");
        assert.ok(!Number.isNaN(Date.parse(s.failures[0].lastSeen)));
      }

      const byId = await t.api(
        "GET",
        `/v1/destinations/${(await t.api("GET", `/v1/destinations/${name}`)).body.id}/stats`,
      );
      assert.equal(byId.status, 200);
      assert.equal(byId.body.window, "24h", "24 h by default");
      assert.equal(byId.body.destination.name, name);

      const missing = await t.api("GET", "/v1/destinations/nope/stats");
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, "not_found");
      const bad = await t.api("GET", `/v1/destinations/${name}/stats?window=1y`);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, "invalid_request");
      assert.equal(
        (await t.api("GET", `/v1/destinations/${name}/stats`, undefined, { key: "" })).status,
        401,
      );
      const spec = (await t.api("GET", "/openapi.json")).body;
      const op = spec.paths["/v1/destinations/{id}/stats"].get;
      assert.ok(op.responses["200"].content["application/json"].schema.properties.buckets);
      assert.ok(op.responses["404"]);
    });
  });
}
