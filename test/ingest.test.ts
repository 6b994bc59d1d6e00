import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BACKENDS, startApp, type TestApp } from "./helpers/harness.ts";

for (const backend of BACKENDS) {
  describe(`ingest (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, worker: false });
    });
    after(async () => t.close());

    const bad: [string, unknown, number, string, string?][] = [
      ["empty body", undefined, 400, "empty_body"],
      ["non-JSON", "{name: nope", 400, "invalid_json"],
      ["an array", [1, 2], 400, "invalid_lead"],
      ["wrong type", { name: 42, email: "a@b.co" }, 400, "invalid_lead", "name"],
      ["missing name", { email: "a@b.co" }, 400, "invalid_lead", "name"],
      ["no email or phone", { name: "Ravi" }, 400, "invalid_lead", "email"],
      ["invalid email", { name: "Ravi", email: "not-an-email" }, 400, "invalid_lead", "email"],
      ["impossible phone", { name: "Ravi", phone: "12" }, 400, "invalid_lead", "phone"],
    ];
    for (const [what, body, status, code, path] of bad) {
      test(`rejects ${what} with ${status} ${code}`, async () => {
        const res = await t.api("POST", "/v1/leads", body);
        assert.equal(res.status, status, res.text);
        assert.equal(res.body.error.code, code);
        assert.equal(typeof res.body.error.message, "string");
        if (path)
          assert.ok(
            res.body.error.details.some((d: { path: string[] }) => d.path[0] === path),
            res.text,
          );
      });
    }

    test("rejects a body over 1 MB with 413", async () => {
      const res = await t.api("POST", "/v1/leads", {
        name: "x",
        email: "a@b.co",
        context: "y".repeat(1_100_000),
      });
      assert.equal(res.status, 413);
      assert.equal(res.body.error.code, "payload_too_large");
    });

    test("rejects a non-JSON content type with 415", async () => {
      const res = await t.api("POST", "/v1/leads", "name=x", { headers: { "content-type": "text/plain" } });
      assert.equal(res.status, 415);
      assert.equal(res.body.error.code, "unsupported_media_type");
    });

    test("normalizes email and phone, maps seed aliases, keeps unknown fields", async () => {
      const res = await t.api("POST", "/v1/leads", {
        name: " Priya ",
        email: "  Priya.K@Example.COM ",
        mobile_number: "91234 56789",
        project_id: 4411,
        additionalInformationLine: "wants a call after 6pm",
        budget: "80L",
      });
      assert.equal(res.status, 201, res.text);
      const lead = await t.api("GET", `/v1/leads/${res.body.id}`);
      assert.equal(lead.body.name, "Priya");
      assert.equal(lead.body.email, "priya.k@example.com");
      assert.equal(lead.body.phone, "+919123456789");
      assert.equal(lead.body.projectId, "4411");
      assert.equal(lead.body.additionalInformation, "wants a call after 6pm");
      assert.deepEqual(lead.body.attributes, { budget: "80L" });
    });

    test("Idempotency-Key: a repeat returns the first result with 200 and creates nothing", async () => {
      await t.api("POST", "/v1/destinations", {
        name: `idem-${backend}`,
        connector: "http",
        url: "http://127.0.0.1:9/x",
      });
      const headers = { "idempotency-key": "form-submit-77" };
      const first = await t.api("POST", "/v1/leads", { name: "A", email: "a@idem.test" }, { headers });
      const again = await t.api("POST", "/v1/leads", { name: "A", email: "a@idem.test" }, { headers });
      assert.equal(first.status, 201);
      assert.equal(again.status, 200);
      assert.equal(again.body.id, first.body.id);
      assert.deepEqual(
        again.body.deliveries.map((d: { id: string }) => d.id),
        first.body.deliveries.map((d: { id: string }) => d.id),
      );
      assert.equal(first.body.deliveries.length, 1);
      const list = await t.api("GET", "/v1/leads?q=a@idem.test");
      assert.equal(list.body.data.length, 1);
      // Concurrent repeats land in the same group commit: still one lead.
      const many = await Promise.all(
        Array.from({ length: 10 }, () =>
          t.api(
            "POST",
            "/v1/leads",
            { name: "B", email: "b@idem.test" },
            { headers: { "idempotency-key": "burst-1" } },
          ),
        ),
      );
      assert.equal(new Set(many.map((r) => r.body.id)).size, 1);
      assert.equal(many.filter((r) => r.status === 201).length, 1);
      await t.api("DELETE", `/v1/destinations/idem-${backend}`);
    });

    test("API keys: missing or wrong key → 401; ingest key cannot administer", async () => {
      assert.equal(
        (await t.api("POST", "/v1/leads", { name: "A", email: "a@b.co" }, { key: null })).status,
        401,
      );
      const wrong = await t.api("POST", "/v1/leads", { name: "A", email: "a@b.co" }, { key: "lp_wrong" });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error.code, "unauthorized");
      const { key } = await t.app.keys.create("form", ["ingest"]);
      assert.equal((await t.api("POST", "/v1/leads", { name: "A", email: "a@b.co" }, { key })).status, 201);
      const forbidden = await t.api("GET", "/v1/destinations", undefined, { key });
      assert.equal(forbidden.status, 403);
      assert.equal(forbidden.body.error.code, "forbidden");
      for (const [m, p] of [
        ["GET", "/v1/leads"],
        ["GET", "/v1/deliveries"],
        ["POST", "/v1/destinations"],
        ["POST", "/v1/deliveries/replay"],
        ["DELETE", "/v1/leads/x"],
      ] as const) {
        assert.equal((await t.api(m, p, undefined, { key: null })).status, 401, `${m} ${p}`);
      }
    });

    test("batch: per-item results in one call", async () => {
      const res = await t.api("POST", "/v1/leads/batch", {
        leads: [
          { name: "One", email: "one@b.co" },
          { name: "Bad" },
          { name: "Three", phone: "+14155550123" },
        ],
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.accepted, 2);
      assert.equal(res.body.results[1].ok, false);
      assert.equal(res.body.results[1].error.code, "invalid_lead");
      assert.ok(res.body.results[2].id);
      const tooMany = await t.api("POST", "/v1/leads/batch", {
        leads: Array.from({ length: 1001 }, () => ({})),
      });
      assert.equal(tooMany.status, 400);
    });

    test("duplicates: same email or phone is linked to the first lead and not pushed again", async () => {
      const plain = await t.api("POST", "/v1/destinations", {
        name: `plain-${backend}`,
        connector: "http",
        url: "http://127.0.0.1:9/a",
      });
      const wants = await t.api("POST", "/v1/destinations", {
        name: `wants-dups-${backend}`,
        connector: "http",
        url: "http://127.0.0.1:9/b",
        pushDuplicates: true,
      });
      const first = await t.api("POST", "/v1/leads", {
        name: "Dup",
        email: "dup@x.test",
        phone: "+919000000001",
      });
      assert.equal(first.body.duplicateOf, undefined);
      assert.equal(first.body.deliveries.length, 2);
      const byEmail = await t.api("POST", "/v1/leads", { name: "Dup again", email: " DUP@x.test " });
      assert.equal(byEmail.body.duplicateOf, first.body.id);
      assert.deepEqual(
        byEmail.body.deliveries.map((d: { destination: string }) => d.destination),
        [`wants-dups-${backend}`],
      );
      const batch = await t.api("POST", "/v1/leads/batch", {
        leads: [
          { name: "By phone", phone: "9000000001" },
          { name: "New", email: "fresh@x.test" },
          { name: "New twice", email: "fresh@x.test" },
        ],
      });
      assert.equal(batch.body.results[0].duplicateOf, first.body.id);
      assert.equal(batch.body.results[1].duplicateOf, undefined);
      assert.equal(batch.body.results[2].duplicateOf, batch.body.results[1].id);
      const lead = await t.api("GET", `/v1/leads/${byEmail.body.id}`);
      assert.equal(lead.body.duplicateOf, first.body.id);
      await t.api("DELETE", `/v1/destinations/${plain.body.id}`);
      await t.api("DELETE", `/v1/destinations/${wants.body.id}`);
    });

    test("list with cursor, and erase", async () => {
      for (let i = 0; i < 5; i++)
        await t.api("POST", "/v1/leads", { name: `Page${i}`, email: `p${i}@page.test`, source: "pager" });
      const p1 = await t.api("GET", "/v1/leads?source=pager&limit=3");
      assert.equal(p1.body.data.length, 3);
      const p2 = await t.api("GET", `/v1/leads?source=pager&limit=3&cursor=${p1.body.nextCursor}`);
      assert.equal(p2.body.data.length, 2);
      assert.equal(p2.body.nextCursor, null);
      const id = p1.body.data[0].id;
      assert.equal((await t.api("DELETE", `/v1/leads/${id}`)).status, 204);
      const erased = await t.api("GET", `/v1/leads/${id}`);
      assert.equal(erased.body.erased, true);
      assert.equal(erased.body.email, undefined);
      assert.equal((await t.api("GET", "/v1/leads/nope")).body.error.code, "not_found");
    });
  });
}
