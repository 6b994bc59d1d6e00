// Hostile input and a lead the store refuses: each hurts only itself (issue 12, items 5 and 10).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startSandbox } from "../src/sandbox/server.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";

/** `{"a":{"a":…"x"…}}` nested `levels` objects deep, built as text (no recursion anywhere). */
function nested(levels: number): string {
  return '{"a":'.repeat(levels) + '"x"' + "}".repeat(levels);
}

type Detail = { path: (string | number)[]; code: string };

for (const backend of BACKENDS) {
  describe(`input limits (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    before(async () => {
      sb = await startSandbox();
      t = await startApp({ backend });
    });
    after(async () => {
      await t.close();
      await sb.close();
    });

    test("a lead nested 20 000 levels deep is 400 invalid_lead too_deep, alone", async () => {
      const body = `{"name":"Deep","email":"deep@limits.test","attributes":${nested(20_000)}}`;
      const res = await t.api("POST", "/v1/leads", body);
      assert.equal(res.status, 400, res.text.slice(0, 300));
      assert.equal(res.body.error.code, "invalid_lead");
      const detail = res.body.error.details[0] as Detail;
      assert.equal(detail.code, "too_deep");
      assert.deepEqual(detail.path.slice(0, 3), ["attributes", "a", "a"]);
      // attributes, its 32 levels, and the first object past them
      assert.equal(detail.path.length, 34);
      // An unknown top-level field lands in attributes: the same bound.
      const top = await t.api(
        "POST",
        "/v1/leads",
        `{"name":"T","email":"t@limits.test","x":${nested(20_000)}}`,
      );
      assert.equal(top.body.error.details[0].code, "too_deep");
      // In a batch only that item is refused.
      const batch = await t.api(
        "POST",
        "/v1/leads/batch",
        `{"leads":[{"name":"Ok","email":"ok-deep@limits.test"},${body}]}`,
      );
      assert.equal(batch.status, 200, batch.text.slice(0, 300));
      assert.equal(batch.body.results[0].ok, true);
      assert.equal(batch.body.results[1].error.details[0].code, "too_deep");
    });

    test("32 levels of objects inside attributes are stored; 33 are not", async () => {
      const ok = await t.api(
        "POST",
        "/v1/leads",
        `{"name":"D32","email":"d32@limits.test","attributes":${nested(33)}}`,
      );
      assert.equal(ok.status, 201, ok.text);
      const stored = await t.api("GET", `/v1/leads/${ok.body.id}`);
      assert.equal(JSON.stringify(stored.body.attributes), nested(33));
      const over = await t.api(
        "POST",
        "/v1/leads",
        `{"name":"D33","email":"d33@limits.test","attributes":${nested(34)}}`,
      );
      assert.equal(over.status, 400, over.text);
      assert.equal(over.body.error.details[0].code, "too_deep");
    });

    test("a NUL character in any text or key is 400 nul_character with its path", async () => {
      const cases: [unknown, (string | number)[]][] = [
        [{ name: "A\u0000b", email: "nul1@limits.test" }, ["name"]],
        [
          { name: "A", email: "nul2@limits.test", attributes: { notes: ["ok", "x\u0000"] } },
          ["attributes", "notes", 1],
        ],
        [{ name: "A", email: "nul3@limits.test", attributes: { "k\u0000": 1 } }, ["attributes", "k\u0000"]],
        [{ name: "A", email: "nul4@limits.test", "extra\u0000": "v" }, ["extra\u0000"]],
      ];
      for (const [body, path] of cases) {
        const res = await t.api("POST", "/v1/leads", body);
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.error.code, "invalid_lead");
        assert.deepEqual(res.body.error.details[0], {
          path,
          code: "nul_character",
          message: res.body.error.details[0].message,
        });
      }
      // Search is by prefix (of a name, an email…): every refused lead's email starts with "nul".
      const list = await t.api("GET", "/v1/leads?q=nul&limit=100");
      assert.deepEqual(list.body.data, []);
    });

    test("a lead the store refuses fails alone: the rest of its group commit is stored", async () => {
      await t.api("POST", "/v1/destinations", {
        name: `sink-${backend}`,
        connector: "http",
        url: `${sb.url}/sink/leads`,
        filter: "source = 'isolation'",
      });
      // Passes validation but cannot be serialized when the transaction writes it (a BigInt: the
      // same failure as a serializer overflow or a text Postgres refuses).
      const poison = (n: number) => ({
        name: "Poison",
        email: `poison${n}@iso.test`,
        attributes: { n: BigInt(n) },
      });
      const good = (n: number) => ({ name: `Good${n}`, email: `good${n}@iso.test`, source: "isolation" });

      // One transaction for sure: a batch of 40 good leads with a poisoned one in the middle.
      const batch = await t.app.ingest.acceptMany([
        ...Array.from({ length: 20 }, (_, i) => good(i)),
        poison(0),
        ...Array.from({ length: 20 }, (_, i) => good(20 + i)),
      ]);
      assert.equal(batch.filter((r) => r.ok).length, 40);
      const failed = batch[20]!;
      assert.ok(!failed.ok && failed.code === "internal_error", JSON.stringify(failed));

      // accept() calls made in one tick share one group commit (the #drain path): same outcome.
      const burst = await Promise.allSettled([
        ...Array.from({ length: 20 }, (_, i) => t.app.ingest.accept(good(200 + i))),
        t.app.ingest.accept(poison(100)),
        ...Array.from({ length: 20 }, (_, i) => t.app.ingest.accept(good(220 + i))),
      ]);
      assert.deepEqual(
        burst.map((r) => r.status),
        burst.map((_, i) => (i === 20 ? "rejected" : "fulfilled")),
      );

      // Concurrent requests share group commits with poisoned leads: every good one gets 201.
      const posts: Promise<{ status: number; body: { id: string } }>[] = [];
      const poisoned: Promise<unknown>[] = [];
      for (let i = 0; i < 40; i++) {
        posts.push(t.api("POST", "/v1/leads", good(100 + i)));
        if (i % 5 === 2)
          poisoned.push(
            t.app.ingest.accept(poison(i + 1)).then(
              () => "stored",
              () => "refused",
            ),
          );
      }
      const answers = await Promise.all(posts);
      assert.deepEqual(
        answers.map((a) => a.status),
        answers.map(() => 201),
      );
      assert.deepEqual(
        await Promise.all(poisoned),
        poisoned.map(() => "refused"),
      );
      for (const a of answers) assert.equal((await t.api("GET", `/v1/leads/${a.body.id}`)).status, 200);
      // The hand-off to the local worker survived the retries: every good lead is pushed.
      await sb.sink.waitFor(120, 20_000);
      const emails = sb.sink.received.map((r) => (r.body as { email: string }).email);
      assert.equal(new Set(emails).size, 120);
      const poisonLeads = await t.api("GET", "/v1/leads?q=poison&limit=100");
      assert.equal(poisonLeads.body.data.length, 0);
    });

    test("Idempotency-Key is scoped to the API key that sent it", async () => {
      const a = (await t.app.keys.create("source-a", ["ingest"])).key;
      const b = (await t.app.keys.create("source-b", ["ingest"])).key;
      const headers = { "idempotency-key": "order-1" };
      const fromA = await t.api(
        "POST",
        "/v1/leads",
        { name: "A", email: "a@scope.test" },
        { key: a, headers },
      );
      const fromB = await t.api(
        "POST",
        "/v1/leads",
        { name: "B", email: "b@scope.test" },
        { key: b, headers },
      );
      assert.equal(fromA.status, 201, fromA.text);
      assert.equal(fromB.status, 201, fromB.text);
      assert.notEqual(fromB.body.id, fromA.body.id);
      const againA = await t.api(
        "POST",
        "/v1/leads",
        { name: "A", email: "a@scope.test" },
        { key: a, headers },
      );
      assert.equal(againA.status, 200);
      assert.equal(againA.body.id, fromA.body.id);
      // The batch call's per-lead keys: the same scope.
      const batchB = await t.api(
        "POST",
        "/v1/leads/batch",
        {
          leads: [
            { name: "B", email: "b@scope.test" },
            { name: "C", email: "c@scope.test" },
          ],
          idempotencyKeys: ["order-1", null],
        },
        { key: b },
      );
      assert.equal(batchB.body.results[0].id, fromB.body.id);
      assert.equal(batchB.body.results[0].repeated, true);
      assert.equal(batchB.body.results[1].repeated, undefined);
      const batchA = await t.api(
        "POST",
        "/v1/leads/batch",
        { leads: [{ name: "A", email: "a@scope.test" }], idempotencyKeys: ["order-1"] },
        { key: a },
      );
      assert.equal(batchA.body.results[0].id, fromA.body.id);
      const wrongLength = await t.api(
        "POST",
        "/v1/leads/batch",
        { leads: [{}], idempotencyKeys: [] },
        { key: a },
      );
      assert.equal(wrongLength.status, 400);
      const long = await t.api(
        "POST",
        "/v1/leads",
        { name: "L", email: "l@scope.test" },
        { key: a, headers: { "idempotency-key": "k".repeat(201) } },
      );
      assert.equal(long.status, 400);
      assert.equal(long.body.error.code, "invalid_idempotency_key");
      const stored = await eventually(async () => {
        const r = await t.api("GET", "/v1/leads?limit=100");
        const mine = r.body.data.filter((l: { email: string }) => l.email.endsWith("@scope.test"));
        return mine.length === 3 ? mine : undefined;
      });
      assert.equal(stored.length, 3);
    });
  });
}
