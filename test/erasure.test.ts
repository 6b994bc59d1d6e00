// Erasure that sticks: a lead erased while one of its pushes is in flight keeps its deliveries
// final, and nothing written afterwards (attempt, delivery result, lead) carries its data.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { completeMany } from "../src/store/completions.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";

/** A client that answers after `delayMs` with `status`, echoing the request body (as many do). */
function slowEchoClient(delayMs: number) {
  let status = 201;
  const received: string[] = [];
  const answered: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      received.push(body);
      setTimeout(() => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify({ id: `ext-${received.length}`, echo: body }));
        answered.push(body);
      }, delayMs);
    });
  });
  return {
    received,
    answered,
    setStatus: (s: number) => (status = s),
    async listen() {
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Every row of the tables that hold a lead's data or what came back from pushing it, as text. */
async function rawRows(t: TestApp): Promise<string> {
  const db = t.app.kysely;
  const rows = await Promise.all([
    db.selectFrom("leads").selectAll().execute(),
    db.selectFrom("deliveries").selectAll().execute(),
    db.selectFrom("attempts").selectAll().execute(),
  ]);
  return JSON.stringify(rows);
}

for (const backend of BACKENDS) {
  describe(`erasure during a push (${backend})`, () => {
    let t: TestApp;
    const client = slowEchoClient(1200);
    let clientUrl = "";
    let n = 0;
    before(async () => {
      clientUrl = await client.listen();
      t = await startApp({ backend });
    });
    after(async () => {
      await t.close();
      await client.close();
    });

    async function destination() {
      const name = `erase-${++n}`;
      const res = await t.api("POST", "/v1/destinations", {
        name,
        connector: "http",
        url: `${clientUrl}/leads`,
        filter: `source = "${name}"`,
        timeoutMs: 5000,
        retry: { delaysMs: [100, 100, 100], jitter: 0 },
      });
      assert.equal(res.status, 201, res.text);
      return res.body as { id: string; name: string };
    }

    function person() {
      const k = `${Date.now().toString(36)}${++n}`;
      const digits = String(9_000_000_000 + Math.floor(Math.random() * 999_999_999));
      return { name: `Erin Quill ${k}`, email: `erin.${k}@erase.test`, phone: `+91${digits}`, digits };
    }

    for (const answer of [201, 500]) {
      test(`the client answers ${answer} after the erase: the delivery stays failed, no data comes back`, async () => {
        const dest = await destination();
        client.setStatus(answer);
        const p = person();
        const before = client.received.length;
        const posted = await t.api("POST", "/v1/leads", {
          name: p.name,
          email: p.email,
          phone: p.phone,
          source: dest.name,
        });
        assert.equal(posted.status, 201, posted.text);
        const leadId = posted.body.id as string;
        const deliveryId = posted.body.deliveries[0].id as string;
        await eventually(() => client.received.length > before, 5000, "the push to start");
        assert.equal((await t.api("DELETE", `/v1/leads/${leadId}`)).status, 204);
        const answeredBefore = client.answered.length;
        await eventually(() => client.answered.length > answeredBefore, 5000, "the client to answer");
        // The in-flight attempt is recorded (nothing silent), without the lead's data.
        const d = await eventually(
          async () => {
            const r = await t.api("GET", `/v1/deliveries/${deliveryId}`);
            return r.body.attempts?.length > 0 ? r.body : undefined;
          },
          5000,
          "the in-flight attempt to be recorded",
        );
        // Retries would come within ~300 ms: give them time to (not) happen.
        await new Promise((r) => setTimeout(r, 800));
        assert.equal(client.received.length, before + 1, "nothing pushed again after the erase");
        const after = await t.api("GET", `/v1/deliveries/${deliveryId}`);
        assert.equal(after.body.status, "failed");
        assert.equal(after.body.lastError.code, "lead_erased");
        assert.equal(d.attempts[0].exchanges.length, 0);
        const lead = await t.api("GET", `/v1/leads/${leadId}`);
        const seen = JSON.stringify([after.body, lead.body]) + (await rawRows(t));
        for (const secret of [p.name, p.email, p.digits, "ext-"]) {
          assert.ok(!seen.includes(secret), `${secret} written after the erase`);
        }
      });
    }

    test("completions written after the erase (a worker's lease, a batch) change nothing", async () => {
      const dest = await destination();
      const p = person();
      // Parked at the client until the erase: a 500 with the email in the message first.
      client.setStatus(500);
      const posted = await t.api("POST", "/v1/leads", { name: p.name, email: p.email, source: dest.name });
      const leadId = posted.body.id as string;
      const deliveryId = posted.body.deliveries[0].id as string;
      await eventually(
        async () => (await t.api("GET", `/v1/deliveries/${deliveryId}`)).body.attemptCount > 0,
        5000,
        "a first attempt",
      );
      const db = t.app.kysely;
      // Holds the row as a worker (lease) and as a batch (awaiting) would, then erases.
      await db
        .updateTable("deliveries")
        .set({ lease_owner: "w1", lease_until: Date.now() + 60_000, next_attempt_at: null })
        .where("id", "=", deliveryId)
        .execute();
      assert.equal((await t.api("DELETE", `/v1/leads/${leadId}`)).status, 204);
      const attempt = (n: number) => ({
        id: `att-${deliveryId}-${n}`,
        delivery_id: deliveryId,
        lead_id: leadId,
        destination_id: dest.id,
        number: n,
        started_at: Date.now(),
        duration_ms: 1,
        outcome: "delivered",
        exchanges: JSON.stringify([{ step: "push", requestBody: p.email }]),
        response_status: 201,
        error_code: null,
        error_message: `echo ${p.email}`,
      });
      const base = {
        deliveryId,
        leadId,
        destinationId: dest.id,
        status: "delivered" as const,
        attempts: 5,
        nextAttemptAt: null,
        lastError: null,
        lastStatus: 201,
        externalId: "ext-late",
        result: JSON.stringify({ response: { email: p.email } }),
        deliveredAt: Date.now(),
        enrichment: { name: dest.name, value: { email: p.email } },
      };
      const applied = await completeMany(
        db,
        [
          { ...base, owner: "w1", attempt: attempt(8) },
          { ...base, owner: "w1", batchId: "b1", attempt: attempt(9) },
        ],
        Date.now(),
      );
      assert.equal(applied.length, 0);
      const d = (await t.api("GET", `/v1/deliveries/${deliveryId}`)).body;
      assert.equal(d.status, "failed");
      const late = d.attempts.filter((a: { number: number }) => a.number >= 8);
      assert.equal(late.length, 2, "the late attempts are recorded");
      const seen = JSON.stringify(d) + (await rawRows(t));
      for (const secret of [p.name, p.email, "ext-late"]) assert.ok(!seen.includes(secret), secret);
    });

    test("retry and replay of an erased lead's delivery are refused", async () => {
      const dest = await destination();
      client.setStatus(201);
      const p = person();
      const posted = await t.api("POST", "/v1/leads", { name: p.name, email: p.email, source: dest.name });
      const deliveryId = posted.body.deliveries[0].id as string;
      await eventually(
        async () => (await t.api("GET", `/v1/deliveries/${deliveryId}`)).body.status === "delivered",
        5000,
        "delivered",
      );
      assert.equal((await t.api("DELETE", `/v1/leads/${posted.body.id}`)).status, 204);
      const count = client.received.length;
      const retry = await t.api("POST", `/v1/deliveries/${deliveryId}/retry`);
      assert.equal(retry.status, 409, retry.text);
      assert.equal(retry.body.error.code, "lead_erased");
      const replay = await t.api("POST", "/v1/deliveries/replay", {
        destination: dest.name,
        status: ["delivered", "failed"],
      });
      assert.equal(replay.status, 202);
      assert.equal(replay.body.replayed, 0);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(client.received.length, count, "nothing pushed after the erase");
      assert.equal((await t.api("GET", `/v1/deliveries/${deliveryId}`)).body.status, "delivered");
    });
  });
}
