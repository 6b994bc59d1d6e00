import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { startSandbox } from "../src/sandbox/server.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";

const FAST_RETRY = { delaysMs: [100, 100, 100], jitter: 0 };

for (const backend of BACKENDS) {
  describe(`delivery (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    let n = 0;
    before(async () => {
      sb = await startSandbox();
      t = await startApp({ backend });
    });
    after(async () => {
      await t.close();
      await sb.close();
    });
    beforeEach(() => sb.sink.reset());

    async function destination(extra: Record<string, unknown> = {}) {
      const name = `sink-${++n}`;
      const res = await t.api("POST", "/v1/destinations", {
        name,
        connector: "http",
        url: `${sb.url}/sink/leads`,
        retry: FAST_RETRY,
        ...extra,
      });
      assert.equal(res.status, 201, res.text);
      return res.body as { id: string; name: string };
    }
    async function lead(email: string) {
      const res = await t.api("POST", "/v1/leads", { name: "Kiran", email, city: "Pune" });
      assert.equal(res.status, 201, res.text);
      return res.body as { id: string; deliveries: { id: string; destination: string; status: string }[] };
    }
    async function settled(leadId: string, status: string) {
      return eventually(
        async () => {
          const r = await t.api("GET", `/v1/leads/${leadId}`);
          const d = r.body.deliveries[0];
          return d && d.status === status ? d : undefined;
        },
        15_000,
        `delivery ${status}`,
      );
    }

    test("success: pushed at once, with Idempotency-Key, attempt recorded", async () => {
      const dest = await destination();
      const started = Date.now();
      const l = await lead("ok@delivery.test");
      await sb.sink.waitFor(1, 5000);
      const latency = Date.now() - started;
      assert.ok(latency < 2000, `pushed within ${latency} ms`);
      const got = sb.sink.received[0]!;
      assert.equal(got.idempotencyKey, l.deliveries[0]!.id);
      assert.equal((got.body as { email: string }).email, "ok@delivery.test");
      assert.equal((got.body as { id: string }).id, l.id);
      const d = await settled(l.id, "delivered");
      assert.equal(d.destination, dest.name);
      assert.equal(d.attemptCount, 1);
      assert.equal(d.externalId, "sink-1");
      assert.equal(d.attempts[0].responseStatus, 201);
      assert.equal(d.attempts[0].request.method, "POST");
      assert.match(d.attempts[0].request.url, /\/sink\/leads$/);
      assert.match(d.attempts[0].responseExcerpt, /sink-1/);
      // The answer's headers, without the connection-level ones (they describe the socket).
      const answer = d.attempts[0].exchanges.at(-1).responseHeaders as Record<string, string>;
      assert.match(answer["content-type"] ?? "", /application\/json/);
      for (const name of ["connection", "keep-alive", "transfer-encoding"])
        assert.ok(!(name in answer), name);
      await t.api("DELETE", `/v1/destinations/${dest.id}`);
    });

    test("500 then success: two attempts", async () => {
      const dest = await destination();
      sb.sink.behave({ status: 500, times: 1 });
      const l = await lead("retry@delivery.test");
      const d = await settled(l.id, "delivered");
      assert.equal(d.attemptCount, 2);
      assert.deepEqual(
        d.attempts.map((a: { responseStatus: number }) => a.responseStatus),
        [500, 201],
      );
      assert.equal(d.attempts[0].error.code, "http_500");
      assert.equal(sb.sink.counts.total, 2);
      await t.api("DELETE", `/v1/destinations/${dest.id}`);
    });

    test("hang: the whole request times out, then it is retried", async () => {
      const dest = await destination({ timeoutMs: 300 });
      sb.sink.behave({ hang: true, times: 1 });
      const l = await lead("hang@delivery.test");
      const d = await settled(l.id, "delivered");
      assert.equal(d.attemptCount, 2);
      assert.equal(d.attempts[0].error.code, "timeout");
      assert.ok(
        d.attempts[0].durationMs >= 290 && d.attempts[0].durationMs < 3000,
        `took ${d.attempts[0].durationMs}`,
      );
      await t.api("DELETE", `/v1/destinations/${dest.id}`);
    });

    test("400: failed at once, no retry", async () => {
      const dest = await destination();
      sb.sink.behave({ status: 400 });
      const l = await lead("bad@delivery.test");
      const d = await settled(l.id, "failed");
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(sb.sink.counts.total, 1);
      assert.equal(d.attemptCount, 1);
      assert.equal(d.lastError.code, "http_400");
      await t.api("DELETE", `/v1/destinations/${dest.id}`);
    });

    test("429 with Retry-After: waits as asked", async () => {
      const dest = await destination();
      sb.sink.behave({ status: 429, times: 1, retryAfter: 1 });
      const l = await lead("slow@delivery.test");
      const d = await settled(l.id, "delivered");
      // The 429 is in the attempt log but held the destination instead of spending a retry.
      assert.equal(d.attempts.length, 2);
      assert.equal(d.attempts[0].error.code, "http_429");
      assert.equal(d.attemptCount, 1);
      const gap = Date.parse(d.attempts[1].at) - Date.parse(d.attempts[0].at);
      assert.ok(gap >= 950, `second attempt ${gap} ms after the first`);
      await t.api("DELETE", `/v1/destinations/${dest.id}`);
    });

    test("retries exhausted → failed; replay sends it again", async () => {
      const dest = await destination();
      sb.sink.behave({ status: 503 });
      const l = await lead("down@delivery.test");
      const d = await settled(l.id, "failed");
      assert.equal(d.attemptCount, FAST_RETRY.delaysMs.length + 1);
      sb.sink.behave({ times: 0 });
      const replay = await t.api("POST", "/v1/deliveries/replay", {
        destination: dest.name,
        status: ["failed"],
      });
      assert.equal(replay.status, 202);
      assert.equal(replay.body.replayed, 1);
      await settled(l.id, "delivered");
      const list = await t.api("GET", `/v1/deliveries?destination=${dest.name}&status=delivered`);
      assert.equal(list.body.data.length, 1);
      await t.api("DELETE", `/v1/destinations/${dest.id}`);
    });

    test("filter and mapping: only matching leads, in the destination's shape", async () => {
      const dest = await destination({
        filter: "city = 'Pune'",
        mapping: { full_name: "name & ' ' & lastName", mobile: "phone", tag: "'from-leadpush'" },
      });
      const other = await t.api("POST", "/v1/leads", { name: "A", email: "a@x.test", city: "Delhi" });
      assert.deepEqual(other.body.deliveries, []);
      const l = await t.api("POST", "/v1/leads", {
        name: "Meera",
        lastName: "Iyer",
        phone: "9876543210",
        city: "Pune",
      });
      assert.equal(l.body.deliveries.length, 1);
      await sb.sink.waitFor(1, 5000);
      assert.deepEqual(sb.sink.received[0]!.body, {
        full_name: "Meera Iyer",
        mobile: "+919876543210",
        tag: "from-leadpush",
      });
      const bad = await t.api("POST", "/v1/destinations", {
        name: "broken",
        connector: "http",
        url: `${sb.url}/x`,
        filter: "city = ",
      });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, "invalid_filter");
      await t.api("DELETE", `/v1/destinations/${dest.id}`);
    });

    test("retry one delivery by hand", async () => {
      const dest = await destination();
      sb.sink.behave({ status: 422 });
      const l = await lead("manual@delivery.test");
      const d = await settled(l.id, "failed");
      sb.sink.behave({ times: 0 });
      const r = await t.api("POST", `/v1/deliveries/${d.id}/retry`);
      assert.equal(r.status, 202);
      const again = await settled(l.id, "delivered");
      assert.equal(again.attemptCount, 2);
      assert.equal((await t.api("POST", "/v1/deliveries/nope/retry")).status, 404);
      await t.api("DELETE", `/v1/destinations/${dest.id}`);
    });

    test("erasing a delivered lead clears its attempt log too; statistics stay", async () => {
      const dest = await destination();
      const l = await lead("erase-me@delivery.test");
      await settled(l.id, "delivered");
      const rawAttempts = () =>
        t.app.kysely
          .selectFrom("attempts")
          .select(["exchanges", "outcome", "response_status"])
          .where("delivery_id", "=", l.deliveries[0]!.id)
          .execute();
      assert.match((await rawAttempts())[0]!.exchanges, /erase-me@delivery\.test/);
      assert.equal((await t.api("DELETE", `/v1/leads/${l.id}`)).status, 204);
      const stored = await rawAttempts();
      assert.deepEqual(
        stored.map((a) => ({ ...a })),
        [{ exchanges: "[]", outcome: "delivered", response_status: 201 }],
      );
      const view = await t.api("GET", `/v1/leads/${l.id}`);
      assert.equal(view.body.erased, true);
      assert.equal(view.body.deliveries[0].status, "delivered");
      assert.doesNotMatch(JSON.stringify(view.body), /erase-me/);
      await t.api("DELETE", `/v1/destinations/${dest.id}`);
    });
  });
}
