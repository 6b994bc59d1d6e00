// No secret leaves leadpush in clear: not in logs, API answers, attempt records or database rows.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { sql } from "kysely";
import { createCsrfSimulator } from "../src/sandbox/csrf-client.ts";
import { createKeyTokenSimulator } from "../src/sandbox/key-token-client.ts";
import { createOAuth2Simulator } from "../src/sandbox/oauth2-client.ts";
import { createSink } from "../src/sandbox/sink.ts";
import { createStaticKeySimulator } from "../src/sandbox/static-key-client.ts";
import type { Simulator } from "../src/sandbox/simulator.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";
import { createDestination, deliveryOf, postLead, waitStatus } from "./helpers/leads.ts";

// Credentials with the characters that encodings change (space, + / = ! ' ( ) ~ * " & : and non-ASCII),
// so a secret hidden only in its plain form would still be found in a form body, a URL or JSON.
const S = {
  csrf: { username: "crm user", password: "crm pa$$ wörd!(8841)~" },
  keyToken: {
    applicationId: "APP-7788",
    username: "housing",
    password: 'kt "pass" 5521',
    key: "kt+secret/key=0193",
  },
  oauth2: {
    clientId: "leadpush client",
    clientSecret: "oauth sec:ret*7730'",
    username: "oauth-user",
    password: "oauth pass&2291",
  },
  vendoryKey: "static vendor/key+6612 ~!",
  basicPassword: "basic pass 4410",
  headerSecret: "hdr-secret-5150",
};
const WRONG = "wrong pass (9911)";

const csrf = createCsrfSimulator(S.csrf);
const keyToken = createKeyTokenSimulator(S.keyToken);
const oauth = createOAuth2Simulator({ ...S.oauth2, rotateRefreshTokens: true });
const staticKey = createStaticKeySimulator({ vendor: "housing", vendoryKey: S.vendoryKey });
const sink = createSink();
const sims: Simulator[] = [csrf, keyToken, oauth, staticKey, sink];

/** Every token, refresh token and session cookie the simulators handed out. */
const issued = new Set<string>();
let server: FastifyInstance;
let base: string;

before(async () => {
  server = Fastify({ logger: false });
  server.addHook("onSend", async (req, reply, payload) => {
    if (!req.url.endsWith("/token")) return payload;
    const csrfToken = reply.getHeader("x-csrf-token");
    if (typeof csrfToken === "string" && csrfToken !== "Required") issued.add(csrfToken);
    for (const c of [reply.getHeader("set-cookie") ?? []].flat()) {
      const value = /^[^=]+=([^;]*)/.exec(String(c))?.[1];
      if (value && value.length > 16) issued.add(value); // the session id, not `sap-client=100`
    }
    if (typeof payload === "string" && payload.startsWith("{")) {
      const body = JSON.parse(payload) as Record<string, unknown>;
      for (const k of ["access_token", "refresh_token"]) if (typeof body[k] === "string") issued.add(body[k]);
      const ut = (body["UserAuthenticationResult"] as { data?: { UserToken?: string } } | undefined)?.data
        ?.UserToken;
      if (ut) issued.add(ut);
    }
    return payload;
  });
  for (const sim of sims) await server.register(async (s) => sim.register(s), { prefix: sim.prefix });
  base = await server.listen({ host: "127.0.0.1", port: 0 });
});
after(() => server.close());

const basicB64 = (u: string, p: string) => Buffer.from(`${u}:${p}`).toString("base64");

/** The secret strings and the forms they travel in, with a label for failure messages. */
function secretList(): [string, string][] {
  const configured: [string, string][] = [
    ["csrf password", S.csrf.password],
    ["key_token password", S.keyToken.password],
    ["key_token key", S.keyToken.key],
    ["oauth2 client secret", S.oauth2.clientSecret],
    ["oauth2 password", S.oauth2.password],
    ["vendor key", S.vendoryKey],
    ["basic password", S.basicPassword],
    ["connector header secret", S.headerSecret],
    ["wrong password", WRONG],
  ];
  const out: [string, string][] = [];
  for (const [label, v] of configured) {
    out.push(
      [label, v],
      [`${label} (url)`, encodeURIComponent(v)],
      [`${label} (form)`, new URLSearchParams({ v }).toString().slice(2)],
    );
    out.push(
      [`${label} (json)`, JSON.stringify(v).slice(1, -1)],
      [`${label} (base64)`, Buffer.from(v).toString("base64")],
    );
  }
  out.push(["csrf Basic", basicB64(S.csrf.username, S.csrf.password)]);
  out.push(["basic Basic", basicB64("sink-user", S.basicPassword)]);
  for (const tok of issued) out.push([`issued token ${tok.slice(0, 4)}…`, tok]);
  return out;
}

function assertClean(where: string, text: string): void {
  for (const [label, value] of secretList()) {
    assert.ok(!text.includes(value), `${where} contains the ${label}`);
  }
}

for (const backend of BACKENDS) {
  void describe(`secrets (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      for (const sim of sims) sim.reset();
      t = await startApp({ backend });
    });
    after(() => t.close());

    void test("every handler: secrets never appear in logs, API answers or database rows", async () => {
      const n = (s: string) => `${s}-${backend}`;
      const csrfAuth = { type: "csrf", tokenUrl: `${base}/csrf/token`, ...S.csrf };
      const ktAuth = { type: "key_token", tokenUrl: `${base}/key-token/token`, ...S.keyToken };
      const oauthJson = { type: "oauth2", tokenUrl: `${base}/oauth2/token`, bodyFormat: "json", ...S.oauth2 };
      const { username: _u, password: _p, ...client } = S.oauth2;
      const oauthForm = { type: "oauth2", tokenUrl: `${base}/oauth2/token`, clientAuth: "basic", ...client };
      const good: [string, Record<string, unknown>][] = [
        [n("csrf"), { url: `${base}/csrf/leads`, auth: csrfAuth }],
        [n("kt"), { url: `${base}/key-token/leads`, auth: ktAuth }],
        [n("oauth-json"), { url: `${base}/oauth2/leads`, auth: oauthJson }],
        [n("oauth-form"), { url: `${base}/oauth2/leads`, auth: oauthForm }],
        [
          n("static"),
          {
            url: `${base}/static-key/leads`,
            auth: { type: "static_key", fields: { vendor: "housing", vendory_key: S.vendoryKey } },
          },
        ],
        [
          n("basic"),
          {
            url: `${base}/sink/leads`,
            auth: { type: "basic", username: "sink-user", password: S.basicPassword },
            headers: { "x-api-key": S.headerSecret },
          },
        ],
      ];
      const bad: [string, Record<string, unknown>][] = [
        [n("csrf-wrong"), { url: `${base}/csrf/leads`, auth: { ...csrfAuth, password: WRONG } }],
        [n("kt-wrong"), { url: `${base}/key-token/leads`, auth: { ...ktAuth, password: WRONG } }],
        [n("oauth-wrong"), { url: `${base}/oauth2/leads`, auth: { ...oauthJson, password: WRONG } }],
        [
          n("oauth-wrong-client"),
          { url: `${base}/oauth2/leads`, auth: { ...oauthForm, clientSecret: WRONG } },
        ],
      ];
      const responses: [string, string][] = [];
      const ids: Record<string, string> = {};
      for (const [name, spec] of [...good, ...bad]) {
        const d = await createDestination(t, name, spec);
        ids[name] = d.id;
        responses.push([`POST /v1/destinations ${name}`, JSON.stringify(d)]);
      }
      const leads: string[] = [];
      for (const [name] of good) {
        const id = await postLead(t, name);
        leads.push(id);
        await waitStatus(t, id, "delivered");
      }
      for (const [name] of bad) {
        const id = await postLead(t, name);
        leads.push(id);
        const d = await eventually(async () => {
          const v = await deliveryOf(t, id);
          return v.lastError ? v : undefined;
        });
        assert.equal(d.lastError?.code, "auth_rejected", `${name}: ${JSON.stringify(d.lastError)}`);
        assert.notEqual(d.status, "failed");
      }
      // Re-handshakes: stale CSRF session, revoked user token, expired OAuth token (rotating refresh).
      csrf.expireTokens();
      keyToken.revokeTokens();
      oauth.expireTokens();
      for (const name of [n("csrf"), n("kt"), n("oauth-json"), n("oauth-form")]) {
        const id = await postLead(t, name);
        leads.push(id);
        const d = await waitStatus(t, id, "delivered");
        assert.equal(d.attemptCount, 1);
      }
      // Dry runs, and one real send.
      for (const [name] of [...good, ...bad]) {
        const res = await t.api("POST", `/v1/destinations/${ids[name]}/test`, {});
        assert.equal(res.status, 200, res.text);
        responses.push([`dry run ${name}`, res.text]);
      }
      const sent = await t.api("POST", `/v1/destinations/${ids[n("oauth-json")]}/test`, { send: true });
      assert.equal(sent.body.outcome.kind, "delivered", sent.text);
      responses.push(["dry run send", sent.text]);

      assert.ok(issued.size >= 8, `the simulators issued tokens (${issued.size})`);
      // Everything the API says.
      const destinations = await t.api("GET", "/v1/destinations");
      responses.push(["GET /v1/destinations", destinations.text]);
      for (const id of Object.values(ids)) {
        responses.push([`GET /v1/destinations/${id}`, (await t.api("GET", `/v1/destinations/${id}`)).text]);
      }
      for (const id of leads)
        responses.push([`GET /v1/leads/${id}`, (await t.api("GET", `/v1/leads/${id}`)).text]);
      responses.push(["GET /v1/leads", (await t.api("GET", "/v1/leads?limit=100")).text]);
      const deliveries = await t.api("GET", "/v1/deliveries?limit=100");
      responses.push(["GET /v1/deliveries", deliveries.text]);
      for (const d of deliveries.body.data as { id: string }[]) {
        responses.push([`GET /v1/deliveries/${d.id}`, (await t.api("GET", `/v1/deliveries/${d.id}`)).text]);
      }
      for (const [where, text] of responses) assertClean(where, text);

      // Every row of every table.
      const db = t.app.kysely;
      for (const table of [
        "destinations",
        "credentials",
        "attempts",
        "deliveries",
        "leads",
        "api_keys",
      ] as const) {
        const rows = await db.selectFrom(table).selectAll().execute();
        assert.ok(rows.length > 0 || table === "api_keys", `${table} has rows`);
        assertClean(`table ${table}`, JSON.stringify(rows));
      }
      const attempts = await sql<{ n: number }>`select count(*) as n from attempts`.execute(db);
      assert.ok(Number(attempts.rows[0]?.n) >= leads.length);

      // Secrets at rest are sealed (AES-GCM), and the plain config has none.
      const rows = await db.selectFrom("destinations").select(["name", "config", "secrets"]).execute();
      for (const row of rows) {
        assert.match(row.secrets ?? "", /^v1\.[\w-]+\.[\w-]+\.[\w-]+$/, `${row.name} secrets are sealed`);
        assert.doesNotMatch(row.config, /password|clientSecret|vendory_key|"key"/, `${row.name} config`);
      }
      const creds = await db.selectFrom("credentials").select("data").execute();
      assert.ok(creds.length >= 4);
      for (const c of creds) assert.match(c.data, /^v1\./);

      // And everything the app logged.
      assert.ok(t.logs.length > 0);
      assertClean("the logs", t.logs.join(""));
      for (const name of bad.map(([b]) => b)) await t.api("DELETE", `/v1/destinations/${name}`);
    });
  });
}
