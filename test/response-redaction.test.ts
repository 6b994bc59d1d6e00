// A client that echoes the request in its 2xx answer: what is stored from that answer (the
// delivery's `response`, its external id, the test push's outcome) is redacted like the attempt log.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { SANDBOX_ACCOUNTS as A } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";

/** Header names whose values the echo server reports as secrets it was sent. */
const SECRET_HEADERS = ["authorization", "x-csrf-token", "cookie", "user_token", "x-vendor-key"];

function echoClient() {
  const seen: IncomingHttpHeaders[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      seen.push(req.headers);
      const h = req.headers;
      const ref = h["authorization"] ?? h["x-vendor-key"] ?? h["user_token"] ?? "none";
      res.writeHead(201, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: `ref-${String(ref)}`, echo: { url: req.url, headers: h, body } }));
    });
  });
  return {
    seen,
    /** Every secret value the client was sent, in each form a header carries it. */
    secrets(): string[] {
      const out: string[] = [];
      for (const h of seen) {
        for (const name of SECRET_HEADERS) {
          const v = h[name];
          if (typeof v !== "string") continue;
          out.push(v);
          const credential = /^\S+\s+(\S+)$/.exec(v)?.[1];
          if (credential) out.push(credential);
          if (name === "cookie") for (const pair of v.split(/;\s*/)) out.push(pair.split("=")[1] ?? "");
        }
      }
      return out.filter((s) => s.length >= 6);
    },
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

for (const backend of BACKENDS) {
  describe(`vendor answers are redacted (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    const echo = echoClient();
    let echoUrl = "";
    before(async () => {
      sb = await startSandbox();
      echoUrl = await echo.listen();
      t = await startApp({ backend });
    });
    after(async () => {
      await t.close();
      await sb.close();
      await echo.close();
    });

    const cases: { name: string; auth: () => Record<string, unknown>; secrets: string[] }[] = [
      {
        name: "basic",
        auth: () => ({ type: "basic", username: "echo-user", password: "echo-pass-3141" }),
        secrets: ["echo-pass-3141"],
      },
      {
        name: "static_key-header",
        auth: () => ({ type: "static_key", in: "header", fields: { "x-vendor-key": "static-hdr-key-2718" } }),
        secrets: ["static-hdr-key-2718"],
      },
      {
        name: "static_key-body",
        auth: () => ({ type: "static_key", fields: { vendory_key: "static-body-key-1618" } }),
        secrets: ["static-body-key-1618"],
      },
      {
        name: "csrf",
        auth: () => ({ type: "csrf", tokenUrl: `${sb.url}/csrf/token`, ...A.csrf }),
        secrets: [A.csrf.password],
      },
      {
        name: "key_token",
        auth: () => ({ type: "key_token", tokenUrl: `${sb.url}/key-token/token`, ...A.keyToken }),
        secrets: [A.keyToken.password, A.keyToken.key],
      },
      {
        name: "oauth2",
        auth: () => ({
          type: "oauth2",
          tokenUrl: `${sb.url}/oauth2/token`,
          bodyFormat: "json",
          grantType: "password",
          ...A.oauth2,
        }),
        secrets: [A.oauth2.password, A.oauth2.clientSecret],
      },
    ];

    for (const c of cases) {
      test(`${c.name}: delivery response, lead, test push and database rows hold no secret`, async () => {
        const name = `echo-${c.name}`;
        const created = await t.api("POST", "/v1/destinations", {
          name,
          connector: "http",
          url: `${echoUrl}/leads?dest=${name}`,
          filter: `source = "${name}"`,
          timeoutMs: 3000,
          auth: c.auth(),
        });
        assert.equal(created.status, 201, created.text);
        const seenBefore = echo.seen.length;
        const posted = await t.api("POST", "/v1/leads", {
          name: "Echo",
          email: `${c.name}.${backend}@echo.test`,
          source: name,
        });
        assert.equal(posted.status, 201, posted.text);
        const deliveryId = posted.body.deliveries[0].id as string;
        const delivery = await eventually(
          async () => {
            const r = await t.api("GET", `/v1/deliveries/${deliveryId}`);
            return r.body.status === "delivered" ? r : undefined;
          },
          10_000,
          "delivered",
        );
        // The answer is kept (so the check below is about redaction, not about nothing stored).
        assert.match(JSON.stringify(delivery.body.response), /dest=echo-/);
        const lead = await t.api("GET", `/v1/leads/${posted.body.id}`);
        const testPush = await t.api("POST", `/v1/destinations/${created.body.id}/test`, { send: true });
        assert.equal(testPush.status, 200, testPush.text);
        assert.equal(testPush.body.outcome.kind, "delivered", testPush.text);
        const db = t.app.kysely;
        const rows = await Promise.all([
          db.selectFrom("deliveries").selectAll().where("id", "=", deliveryId).execute(),
          db.selectFrom("attempts").selectAll().where("delivery_id", "=", deliveryId).execute(),
          db.selectFrom("leads").selectAll().where("id", "=", posted.body.id).execute(),
        ]);
        const secrets = [...c.secrets, ...echo.secrets()];
        assert.ok(echo.seen.length > seenBefore, "the client was called");
        const places = {
          delivery: delivery.text,
          lead: lead.text,
          testPush: testPush.text,
          database: JSON.stringify(rows),
          logs: t.logs.join(""),
        };
        for (const [where, text] of Object.entries(places)) {
          for (const s of secrets) assert.ok(!text.includes(s), `${where} holds a secret: ${s}`);
        }
      });
    }
  });
}
