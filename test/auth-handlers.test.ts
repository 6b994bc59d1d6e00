// The Housing lead-push document's auth handlers end to end: leadpush (API + worker) pushing to the strict
// simulators.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { SANDBOX_ACCOUNTS as A } from "../src/sandbox/accounts.ts";
import { createOAuth2Simulator } from "../src/sandbox/oauth2-client.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { eventually, startApp, type TestApp } from "./helpers/harness.ts";
import { createDestination, deliveryOf, postLead, SEED_002_MAPPING, waitStatus } from "./helpers/leads.ts";

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
/** The Housing lead-push document's sample payload for a lead posted by `postLead`. */
async function seedPayload(leadId: string) {
  const lead = (await t.api("GET", `/v1/leads/${leadId}`)).body as { email: string; phone: string };
  return { name: "Asha", email: lead.email, mobile_number: lead.phone, city: "Pune", project_id: "PRJ-7" };
}

let t: TestApp;
let sb: Awaited<ReturnType<typeof startSandbox>>;
// Standard form-encoded OAuth (RFC 6749) and a short-lived-token OAuth, beside the sandbox.
const oauthForm = createOAuth2Simulator({ ...A.oauth2, requireFormat: "form" });
/** The app's and the short-lived OAuth server's clock: tests move it forward instead of sleeping. */
let skew = 0;
const clock = () => Date.now() + skew;
const oauthShort = createOAuth2Simulator({ ...A.oauth2, requireFormat: "json", expiresIn: 2, now: clock });
let extra: FastifyInstance;
let extraUrl: string;

before(async () => {
  sb = await startSandbox();
  extra = Fastify({ logger: false });
  await extra.register(async (s) => oauthForm.register(s), { prefix: "/oauth2-form" });
  await extra.register(async (s) => oauthShort.register(s), { prefix: "/oauth2-short" });
  extraUrl = await extra.listen({ host: "127.0.0.1", port: 0 });
  t = await startApp({ now: clock });
});
after(async () => {
  await t.close();
  await sb.close();
  await extra.close();
});

const csrfAuth = () => ({ type: "csrf", tokenUrl: `${sb.url}/csrf/token`, ...A.csrf });
const keyTokenAuth = () => ({ type: "key_token", tokenUrl: `${sb.url}/key-token/token`, ...A.keyToken });
const oauthJsonAuth = () => ({
  type: "oauth2",
  tokenUrl: `${sb.url}/oauth2/token`,
  bodyFormat: "json",
  grantType: "password",
  ...A.oauth2,
});

void describe("each handler delivers with exactly the document's wire format", () => {
  void test("csrf: Basic + x-csrf-token + every cookie + cache-control, JSON", async () => {
    sb.csrf.reset();
    await createDestination(t, "csrf-1", {
      url: `${sb.url}/csrf/leads`,
      auth: csrfAuth(),
      mapping: SEED_002_MAPPING,
    });
    const id = await postLead(t, "csrf-1");
    const d = await waitStatus(t, id, "delivered");
    assert.equal(d.attemptCount, 1);
    assert.equal(sb.csrf.state.tokenRequests, 1);
    const got = sb.csrf.state.leads[0]!;
    assert.equal(got.headers["authorization"], basic(A.csrf.username, A.csrf.password));
    assert.ok(String(got.headers["x-csrf-token"]).length > 10);
    assert.match(
      String(got.headers["cookie"]),
      /^SAP_SESSIONID_LP1_100=[^;]+; sap-usercontext=sap-client=100$/,
    );
    assert.equal(got.headers["cache-control"], "no-cache");
    assert.equal(got.headers["content-type"], "application/json");
    assert.deepEqual(got.body, await seedPayload(id));
    // The attempt log shows the handshake, redacted.
    const [handshake, push] = d.attempts[0]!.exchanges;
    assert.equal(handshake?.step, "auth:csrf");
    assert.equal(handshake?.requestHeaders["x-csrf-token"], "[redacted]");
    assert.equal(push?.requestHeaders["cookie"], "[redacted]");
  });

  void test("key_token: {username, Password, Key} + APPLICATION_ID; push with APPLICATION_ID + USER_TOKEN", async () => {
    sb.keyToken.reset();
    await createDestination(t, "kt-1", { url: `${sb.url}/key-token/leads`, auth: keyTokenAuth() });
    const d = await waitStatus(t, await postLead(t, "kt-1"), "delivered");
    assert.equal(d.attemptCount, 1);
    assert.equal(sb.keyToken.state.tokenRequests, 1);
    const got = sb.keyToken.state.leads[0]!;
    assert.equal(got.headers["application_id"], A.keyToken.applicationId);
    assert.ok(String(got.headers["user_token"]).length > 10);
    assert.equal(got.headers["content-type"], "application/json");
    assert.equal(d.attempts[0]!.exchanges[0]!.step, "auth:token");
  });

  void test("oauth2 json (Housing lead-push document): password grant, Authorization: Bearer", async () => {
    sb.oauth2.reset();
    await createDestination(t, "oauth-json-1", { url: `${sb.url}/oauth2/leads`, auth: oauthJsonAuth() });
    const d = await waitStatus(t, await postLead(t, "oauth-json-1"), "delivered");
    assert.equal(d.attemptCount, 1);
    assert.equal(sb.oauth2.state.tokenRequests, 1);
    assert.match(String(sb.oauth2.state.leads[0]!.headers["authorization"]), /^Bearer \S{20,}$/);
  });

  for (const [clientAuth, grantType] of [
    ["basic", "client_credentials"],
    ["body", "password"],
  ] as const) {
    void test(`oauth2 form (RFC 6749): ${grantType}, client auth ${clientAuth}`, async () => {
      oauthForm.reset();
      const name = `oauth-form-${clientAuth}`;
      const auth = {
        type: "oauth2",
        tokenUrl: `${extraUrl}/oauth2-form/token`,
        grantType,
        clientAuth,
        ...A.oauth2,
      };
      if (grantType === "client_credentials") {
        delete (auth as Partial<typeof auth>).username;
        delete (auth as Partial<typeof auth>).password;
      }
      await createDestination(t, name, { url: `${extraUrl}/oauth2-form/leads`, auth });
      const d = await waitStatus(t, await postLead(t, name), "delivered");
      assert.equal(d.attemptCount, 1, JSON.stringify(oauthForm.state.rejections));
      assert.equal(oauthForm.state.tokenRequests, 1);
      assert.match(String(oauthForm.state.leads[0]!.headers["authorization"]), /^Bearer \S{20,}$/);
      const tokenReq = d.attempts[0]!.exchanges[0]!;
      assert.equal(tokenReq.requestHeaders["content-type"], undefined); // set by the transport
      assert.equal(
        tokenReq.requestHeaders["authorization"],
        clientAuth === "basic" ? "[redacted]" : undefined,
      );
    });
  }

  void test("oauth2: headerName / headerPrefix move the token", async () => {
    sb.sink.reset();
    sb.oauth2.reset();
    await createDestination(t, "oauth-header", {
      url: `${sb.url}/sink/leads`,
      auth: { ...oauthJsonAuth(), headerName: "Authentication", headerPrefix: "Token " },
    });
    await waitStatus(t, await postLead(t, "oauth-header"), "delivered");
    assert.match(sb.sink.received[0]!.headers["authentication"] ?? "", /^Token \S{20,}$/);
    assert.equal(sb.sink.received[0]!.headers["authorization"], undefined);
  });

  for (const where of ["body", "header", "query"] as const) {
    void test(`static_key in ${where}`, async () => {
      sb.staticKey.reset();
      const path = { body: "/leads", header: "/leads-header", query: "/leads-query" }[where];
      const fields = { vendor: A.staticKey.vendor, vendory_key: A.staticKey.vendoryKey };
      await createDestination(t, `static-${where}`, {
        url: `${sb.url}/static-key${path}`,
        auth: { type: "static_key", fields, in: where },
        mapping: SEED_002_MAPPING,
      });
      const d = await waitStatus(t, await postLead(t, `static-${where}`), "delivered");
      assert.equal(d.attemptCount, 1);
      const got = sb.staticKey.state.leads[0]!;
      if (where === "body") {
        assert.equal(got.headers["content-type"], "application/x-www-form-urlencoded");
        assert.deepEqual(got.body, { ...(await seedPayload(d.leadId)), ...fields });
      } else {
        assert.equal(got.headers["content-type"], "application/json");
        if (where === "header") assert.equal(got.headers["vendory_key"], A.staticKey.vendoryKey);
        else assert.equal(got.query["vendory_key"], A.staticKey.vendoryKey);
      }
    });
  }

  void test("static_key: publicFields are sent like fields but neither sealed nor redacted", async () => {
    sb.staticKey.reset();
    const dest = await createDestination(t, "static-public", {
      url: `${sb.url}/static-key/leads`,
      auth: {
        type: "static_key",
        fields: { vendory_key: A.staticKey.vendoryKey },
        publicFields: { vendor: A.staticKey.vendor },
      },
      mapping: SEED_002_MAPPING,
    });
    const shown = (await t.api("GET", `/v1/destinations/${dest.id}`)).body as {
      auth: { fields: Record<string, string>; publicFields: Record<string, string> };
    };
    assert.deepEqual(shown.auth.fields, { vendory_key: "[redacted]" });
    assert.deepEqual(shown.auth.publicFields, { vendor: A.staticKey.vendor });
    const d = await waitStatus(t, await postLead(t, "static-public"), "delivered");
    const got = sb.staticKey.state.leads[0]!.body as Record<string, string>;
    assert.equal(got.vendor, A.staticKey.vendor);
    assert.equal(got.vendory_key, A.staticKey.vendoryKey);
    // The attempt log: the vendor's name as sent, the key hidden.
    const lead = (await t.api("GET", `/v1/leads/${d.leadId}`)).body as {
      deliveries: { attempts: { exchanges: { requestBody?: string }[] }[] }[];
    };
    const sent = lead.deliveries[0]!.attempts[0]!.exchanges.at(-1)!.requestBody ?? "";
    assert.match(sent, new RegExp(`vendor=${A.staticKey.vendor}&`));
    assert.ok(!sent.includes(A.staticKey.vendoryKey), sent);
  });

  void test("none: a plain JSON POST", async () => {
    sb.none.reset();
    await createDestination(t, "none-1", { url: `${sb.url}/none/leads`, mapping: SEED_002_MAPPING });
    const d = await waitStatus(t, await postLead(t, "none-1"), "delivered");
    assert.equal(d.attemptCount, 1);
    const got = sb.none.state.leads[0]!;
    assert.equal(got.headers["authorization"], undefined);
    assert.equal(got.headers["content-type"], "application/json");
  });
});

void describe("the credential runtime", () => {
  const handlers = [
    ["csrf", () => sb.csrf, () => ({ url: `${sb.url}/csrf/leads`, auth: csrfAuth() })],
    ["key_token", () => sb.keyToken, () => ({ url: `${sb.url}/key-token/leads`, auth: keyTokenAuth() })],
    ["oauth2", () => sb.oauth2, () => ({ url: `${sb.url}/oauth2/leads`, auth: oauthJsonAuth() })],
  ] as const;

  for (const [type, sim, spec] of handlers) {
    void test(`${type}: 20 leads at once share one token request`, async () => {
      sim().reset();
      const name = `reuse-${type}`;
      await createDestination(t, name, spec());
      const res = await t.api("POST", "/v1/leads/batch", {
        leads: Array.from({ length: 20 }, (_, i) => ({
          name: "B",
          email: `b${i}.${name}@reuse.test`,
          source: name,
        })),
      });
      assert.equal(res.body.accepted, 20, res.text);
      await eventually(() => sim().state.leads.length === 20, 8000, "20 leads");
      assert.equal(sim().state.tokenRequests, 1);
      // And later leads reuse it too.
      await waitStatus(t, await postLead(t, name), "delivered");
      assert.equal(sim().state.tokenRequests, 1);
    });
  }

  void test("oauth2: a token near expiry is refreshed ahead of time with the refresh token", async () => {
    oauthShort.reset();
    const auth = { ...oauthJsonAuth(), tokenUrl: `${extraUrl}/oauth2-short/token` };
    await createDestination(t, "expiry", { url: `${extraUrl}/oauth2-short/leads`, auth });
    await waitStatus(t, await postLead(t, "expiry"), "delivered");
    assert.equal(oauthShort.state.tokenRequests, 1);
    skew += 1100; // expires_in 2 s → refreshed 1 s before
    const d = await waitStatus(t, await postLead(t, "expiry"), "delivered");
    assert.equal(oauthShort.state.tokenRequests, 2);
    assert.deepEqual(
      d.attempts[0]!.exchanges.map((e) => [e.step, e.status]),
      [
        ["auth:refresh", 200],
        ["push", 201],
      ],
    );
    assert.equal(oauthShort.state.rejections.length, 0, JSON.stringify(oauthShort.state.rejections));
  });

  void test("ttlSeconds: a token without a lifetime is fetched again after ttlSeconds", async () => {
    sb.keyToken.reset();
    const auth = { ...keyTokenAuth(), ttlSeconds: 2 };
    await createDestination(t, "ttl", { url: `${sb.url}/key-token/leads`, auth });
    await waitStatus(t, await postLead(t, "ttl"), "delivered");
    await waitStatus(t, await postLead(t, "ttl"), "delivered");
    assert.equal(sb.keyToken.state.tokenRequests, 1);
    skew += 1100; // 2 s lifetime, fetched again 1 s ahead
    await waitStatus(t, await postLead(t, "ttl"), "delivered");
    assert.equal(sb.keyToken.state.tokenRequests, 2);
  });

  for (const [type, sim, spec] of handlers) {
    const how = type === "csrf" ? "stale CSRF session (403 + x-csrf-token: Required)" : "revoked token (401)";
    void test(`${type}: ${how} → fresh handshake and delivered in the same attempt`, async () => {
      sim().reset();
      const name = `revoked-${type}`;
      await createDestination(t, name, spec());
      await waitStatus(t, await postLead(t, name), "delivered");
      if (type === "csrf") sim().expireTokens();
      else sim().revokeTokens();
      const d = await waitStatus(t, await postLead(t, name), "delivered");
      assert.equal(d.attemptCount, 1);
      const steps = d.attempts[0]!.exchanges.map((e) => [e.step, e.status]);
      const refused = type === "csrf" ? 403 : 401;
      // oauth2 tries its refresh token first; it was revoked too (400), then a full token request.
      const handshake =
        type === "csrf"
          ? [["auth:csrf", 200]]
          : type === "oauth2"
            ? [
                ["auth:refresh", 400],
                ["auth:token", 200],
              ]
            : [["auth:token", 200]];
      assert.deepEqual(steps, [["push", refused], ...handshake, ["push", 201]]);
    });
  }

  void test("oauth2: an expired access token (401) is renewed with the refresh token", async () => {
    sb.oauth2.reset();
    await createDestination(t, "expired-oauth", { url: `${sb.url}/oauth2/leads`, auth: oauthJsonAuth() });
    await waitStatus(t, await postLead(t, "expired-oauth"), "delivered");
    sb.oauth2.expireTokens();
    const d = await waitStatus(t, await postLead(t, "expired-oauth"), "delivered");
    assert.equal(d.attemptCount, 1);
    assert.deepEqual(
      d.attempts[0]!.exchanges.map((e) => [e.step, e.status]),
      [
        ["push", 401],
        ["auth:refresh", 200],
        ["push", 201],
      ],
    );
  });

  void test("a token endpoint that hangs: the attempt times out (auth_unreachable), a later one lands", async () => {
    sb.keyToken.reset();
    sb.keyToken.control({ tokenEndpoint: "hang" });
    await createDestination(t, "hang", {
      url: `${sb.url}/key-token/leads`,
      auth: keyTokenAuth(),
      timeoutMs: 300,
    });
    const id = await postLead(t, "hang");
    const waiting = await waitStatus(t, id, "retrying");
    assert.equal(waiting.lastError?.code, "auth_unreachable");
    assert.match(waiting.lastError?.message ?? "", /300 ms/);
    sb.keyToken.control({ tokenEndpoint: "ok" });
    const d = await waitStatus(t, id, "delivered");
    // The timed-out attempt held the destination: it is logged but spent no retry.
    assert.ok(d.attempts.length >= 2);
    assert.equal(sb.keyToken.state.leads.length, 1);
  });

  void test("a token endpoint down for a while: deliveries wait, then all land, none lost", async () => {
    sb.oauth2.reset();
    sb.oauth2.control({ tokenEndpoint: "down" });
    // Ten attempts over 2 s: enough that none runs out while the test looks at all five.
    const retry = { delaysMs: Array.from({ length: 10 }, () => 200), jitter: 0 };
    await createDestination(t, "down", { url: `${sb.url}/oauth2/leads`, auth: oauthJsonAuth(), retry });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await postLead(t, "down"));
    // The first attempt holds the destination (circuit_open): the others wait, unspent.
    const d = await waitStatus(t, ids[0]!, "retrying");
    assert.equal(d.lastError?.code, "auth_unreachable");
    assert.match(d.lastError?.message ?? "", /503/);
    for (const id of ids) assert.notEqual((await deliveryOf(t, id)).status, "failed");
    sb.oauth2.control({ tokenEndpoint: "ok" });
    for (const id of ids) await waitStatus(t, id, "delivered");
    assert.equal(sb.oauth2.state.leads.length, 5);
    assert.equal(sb.oauth2.state.tokensIssued, 1);
  });

  void test("garbage from a token endpoint → auth_bad_response; wrong credentials → auth_rejected", async () => {
    sb.keyToken.reset();
    sb.keyToken.control({ tokenEndpoint: "garbage" });
    await createDestination(t, "garbage", { url: `${sb.url}/key-token/leads`, auth: keyTokenAuth() });
    const garbageId = await postLead(t, "garbage");
    const g = await eventually(async () => {
      const d = await deliveryOf(t, garbageId);
      return d.lastError ? d : undefined;
    });
    assert.equal(g.lastError?.code, "auth_bad_response");
    assert.notEqual(g.status, "failed");
    sb.keyToken.control({ tokenEndpoint: "ok" });
    await waitStatus(t, garbageId, "delivered"); // it lands once the endpoint answers properly

    await createDestination(t, "wrong-pass", {
      url: `${sb.url}/key-token/leads`,
      auth: { ...keyTokenAuth(), password: "not-the-password" },
    });
    const id = await postLead(t, "wrong-pass");
    const w = await eventually(async () => {
      const d = await deliveryOf(t, id);
      return d.lastError ? d : undefined;
    });
    assert.equal(w.lastError?.code, "auth_rejected");
    assert.match(w.lastError?.message ?? "", /401/);
    assert.equal(w.status, "retrying"); // a person may fix the password: never failed at once
    // Stop their retries from reaching the simulator in later tests.
    await t.api("DELETE", "/v1/destinations/wrong-pass");
    await waitStatus(t, id, "failed"); // destination_deleted
  });
});

void describe("dry run and validation", () => {
  void test("dry run performs the real handshake and returns the rendered push, redacted", async () => {
    sb.keyToken.reset();
    const dest = await createDestination(t, "dry", {
      url: `${sb.url}/key-token/leads`,
      auth: keyTokenAuth(),
    });
    const res = await t.api("POST", `/v1/destinations/${dest.id}/test`, {});
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.auth.ok, true);
    assert.equal(res.body.outcome.kind, "dry_run");
    assert.equal(sb.keyToken.state.tokenRequests, 1);
    assert.equal(sb.keyToken.state.leads.length, 0);
    const [auth, push] = res.body.requests;
    assert.equal(auth.step, "auth:token");
    assert.equal(auth.status, 200);
    assert.doesNotMatch(auth.responseBody, /UserToken":"[^[]/);
    assert.equal(push.step, "push (dry run: not sent)");
    assert.equal(push.requestHeaders["user_token"], "[redacted]");
    assert.equal(push.requestHeaders["application_id"], A.keyToken.applicationId);
    assert.equal(push.requestHeaders["content-type"], "application/json");
    assert.doesNotMatch(res.text, new RegExp(A.keyToken.password));

    const sent = await t.api("POST", `/v1/destinations/${dest.id}/test`, { send: true });
    assert.equal(sent.body.outcome.kind, "delivered", sent.text);
    assert.equal(sb.keyToken.state.leads.length, 1);
    assert.equal(sb.keyToken.state.tokenRequests, 1); // the dry run's token, reused
  });

  void test("a failed handshake shows in the dry run with its code", async () => {
    const dest = await createDestination(t, "dry-bad", {
      url: `${sb.url}/csrf/leads`,
      auth: { ...csrfAuth(), password: "wrong-password-1" },
    });
    const res = await t.api("POST", `/v1/destinations/${dest.id}/test`, {});
    assert.equal(res.body.auth.ok, false);
    assert.equal(res.body.auth.error.code, "auth_rejected");
    assert.doesNotMatch(res.text, /wrong-password-1/);
  });

  void test("invalid auth configs are refused with invalid_destination", async () => {
    const bad: [string, Record<string, unknown>, string][] = [
      ["json + basic", { ...oauthJsonAuth(), clientAuth: "basic" }, "clientAuth"],
      ["password grant without username", { ...oauthJsonAuth(), username: undefined }, "username"],
      ["csrf without tokenUrl", { type: "csrf", username: "u", password: "p" }, "tokenUrl"],
      ["key_token without key", { ...keyTokenAuth(), key: undefined }, "key"],
      ["unknown field", { ...keyTokenAuth(), Password: "x" }, ""],
    ];
    for (const [what, auth, path] of bad) {
      const res = await t.api("POST", "/v1/destinations", {
        name: "bad",
        connector: "http",
        url: `${sb.url}/x`,
        auth,
      });
      assert.equal(res.status, 400, `${what}: ${res.text}`);
      assert.equal(res.body.error.code, "invalid_destination");
      if (path) assert.ok(res.text.includes(path), `${what}: ${res.text}`);
    }
  });

  void test("secrets are write-only: redacted on read, kept on PATCH", async () => {
    const dest = await createDestination(t, "secret-view", {
      url: `${sb.url}/oauth2/leads`,
      auth: oauthJsonAuth(),
    });
    const got = await t.api("GET", `/v1/destinations/${dest.id}`);
    assert.equal(got.body.auth.clientSecret, "[redacted]");
    assert.equal(got.body.auth.password, "[redacted]");
    assert.equal(got.body.auth.clientId, A.oauth2.clientId);
    const patched = await t.api("PATCH", `/v1/destinations/${dest.id}`, { auth: { scope: "leads" } });
    assert.equal(patched.status, 200, patched.text);
    sb.oauth2.reset();
    await waitStatus(t, await postLead(t, "secret-view"), "delivered");
  });

  void test("refused credentials are held: a backlog of leads costs one login, not one each", async () => {
    sb.keyToken.reset();
    await createDestination(t, "held", {
      url: `${sb.url}/key-token/leads`,
      auth: { ...keyTokenAuth(), password: "still-wrong" },
      retry: { delaysMs: [60_000], jitter: 0 },
    });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await postLead(t, "held"));
    // The first refusal holds the destination (auth_failing): the backlog is not even tried.
    await eventually(async () =>
      (await deliveryOf(t, ids[0]!)).lastError?.code === "auth_rejected" ? true : undefined,
    );
    await eventually(async () => (await t.api("GET", "/v1/destinations/held")).body.state === "auth_failing");
    for (const id of ids) assert.notEqual((await deliveryOf(t, id)).status, "failed");
    assert.equal(sb.keyToken.state.tokenRequests, 1);
    // Fixing the password is a new auth version: the hold does not apply to it.
    await t.api("PATCH", "/v1/destinations/held", { auth: { password: A.keyToken.password } });
    const fresh = await postLead(t, "held");
    await waitStatus(t, fresh, "delivered");
    await t.api("DELETE", "/v1/destinations/held");
  });
});
