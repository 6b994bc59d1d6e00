// The Housing lead-push document's auth-client simulators, over real HTTP: happy paths, strict rejections,
// test controls.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import Fastify, { type FastifyInstance } from "fastify";
import { createCsrfSimulator } from "../src/sandbox/csrf-client.ts";
import { createKeyTokenSimulator } from "../src/sandbox/key-token-client.ts";
import { createOAuth2Simulator } from "../src/sandbox/oauth2-client.ts";
import { createStaticKeySimulator } from "../src/sandbox/static-key-client.ts";
import { createNoneSimulator } from "../src/sandbox/none-client.ts";
import type { ControllableSimulator } from "../src/sandbox/sim-common.ts";

let clock = 1_000_000;
const now = () => clock;
const csrf = createCsrfSimulator({ username: "lp", password: "s3cret", tokenTtlMs: 60_000, now });
const keyToken = createKeyTokenSimulator({
  applicationId: "app-42",
  username: "lp",
  password: "pw",
  key: "k3y",
  tokenTtlMs: 60_000,
  now,
});
const oauth = createOAuth2Simulator({
  clientId: "cid",
  clientSecret: "csec",
  username: "u",
  password: "p",
  now,
});
const oauthJson = createOAuth2Simulator({ clientId: "cid", clientSecret: "csec", requireFormat: "json" });
const staticKey = createStaticKeySimulator({ vendor: "housing", vendoryKey: "vk-1" });
const none = createNoneSimulator();
const sims: ControllableSimulator[] = [csrf, keyToken, oauth, oauthJson, staticKey, none];

const lead = {
  name: "Asha",
  email: "asha@example.com",
  mobile_number: "+919800000000",
  city: "Pune",
  project_id: 7,
};
const json = { "content-type": "application/json" };
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

async function startServer(
  list: ControllableSimulator[],
  prefixes: string[] = [],
): Promise<[FastifyInstance, string]> {
  const app = Fastify({ logger: false });
  list.forEach(
    (sim, i) => void app.register(async (s) => sim.register(s), { prefix: prefixes[i] ?? sim.prefix }),
  );
  const address = await app.listen({ host: "127.0.0.1", port: 0 });
  return [app, address];
}

let app: FastifyInstance;
let base: string;
before(async () => {
  [app, base] = await startServer(sims, ["/csrf", "/key-token", "/oauth2", "/oauth2-json"]);
});
after(() => app.close());
beforeEach(() => {
  clock = 1_000_000;
  for (const s of sims) s.reset();
});

const post = (path: string, body: unknown, headers: Record<string, string> = json) =>
  fetch(base + path, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

void describe("csrf", () => {
  const auth = basic("lp", "s3cret");
  async function fetchToken() {
    const res = await fetch(`${base}/csrf/token`, {
      headers: { authorization: auth, "x-csrf-token": "Fetch" },
    });
    assert.equal(res.status, 200);
    const cookies = res.headers.getSetCookie();
    assert.equal(cookies.length, 2);
    return {
      token: res.headers.get("x-csrf-token")!,
      cookie: cookies.map((c) => c.split(";")[0]).join("; "),
    };
  }
  const push = (t: { token: string; cookie: string }, extra: Record<string, string> = {}) =>
    post("/csrf/leads", lead, {
      authorization: auth,
      "x-csrf-token": t.token,
      cookie: t.cookie,
      "cache-control": "no-cache",
      "content-type": "application/json",
      ...extra,
    });

  void test("token fetch then push", async () => {
    const t = await fetchToken();
    assert.ok(t.token.length > 10);
    const res = await push(t);
    assert.equal(res.status, 201);
    assert.ok(((await res.json()) as { id: string }).id);
    assert.equal(csrf.state.tokenRequests, 1);
    assert.deepEqual(csrf.state.leads[0]?.body, lead);
  });

  void test("token fetch needs Basic and x-csrf-token: Fetch", async () => {
    let res = await fetch(`${base}/csrf/token`, { headers: { "x-csrf-token": "fetch" } });
    assert.equal(res.status, 401);
    assert.match(res.headers.get("www-authenticate") ?? "", /^Basic /);
    res = await fetch(`${base}/csrf/token`, {
      headers: { authorization: basic("lp", "nope"), "x-csrf-token": "Fetch" },
    });
    assert.equal(res.status, 401);
    res = await fetch(`${base}/csrf/token`, { headers: { authorization: auth } });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get("x-csrf-token"), null);
  });

  void test("stale, wrong or cookie-less token → 403 x-csrf-token: Required", async () => {
    const t = await fetchToken();
    for (const res of [
      await push({ ...t, token: "forged" }),
      await push({ ...t, cookie: t.cookie.split("; ")[0]! }), // only the first Set-Cookie forwarded
      await push({ ...t, cookie: "" }),
    ]) {
      assert.equal(res.status, 403);
      assert.equal(res.headers.get("x-csrf-token"), "Required");
    }
    csrf.expireTokens();
    const res = await push(t);
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("x-csrf-token"), "Required");
    assert.equal((await push(await fetchToken())).status, 201);
  });

  void test("token lifetime", async () => {
    const t = await fetchToken();
    clock += 60_001;
    const res = await push(t);
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("x-csrf-token"), "Required");
  });

  void test("push needs Basic, cache-control: no-cache and JSON", async () => {
    const t = await fetchToken();
    assert.equal((await push(t, { authorization: basic("lp", "x") })).status, 401);
    assert.equal((await push(t, { "cache-control": "max-age=0" })).status, 400);
    assert.equal((await push(t, { "content-type": "text/plain" })).status, 415);
    assert.equal(csrf.state.leads.length, 0);
  });
});

void describe("key token", () => {
  const hdr = { APPLICATION_ID: "app-42", "content-type": "application/json" };
  const creds = { username: "lp", Password: "pw", Key: "k3y" };
  async function userToken(): Promise<string> {
    const res = await post("/key-token/token", creds, hdr);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { UserAuthenticationResult: { data: { UserToken: string } } };
    return body.UserAuthenticationResult.data.UserToken;
  }

  void test("token then push", async () => {
    const token = await userToken();
    const res = await post("/key-token/leads", lead, { ...hdr, USER_TOKEN: token });
    assert.equal(res.status, 201);
    assert.equal(keyToken.state.leads.length, 1);
    assert.equal(keyToken.state.leads[0]?.headers["user_token"], token);
  });

  void test("token request is strict about case, header, content type and credentials", async () => {
    const wrongCase = await post("/key-token/token", { username: "lp", password: "pw", Key: "k3y" }, hdr);
    assert.equal(wrongCase.status, 400);
    assert.equal((await post("/key-token/token", creds, json)).status, 400);
    assert.equal((await post("/key-token/token", creds, { ...hdr, APPLICATION_ID: "other" })).status, 401);
    assert.equal((await post("/key-token/token", { ...creds, Key: "bad" }, hdr)).status, 401);
    const form = { ...hdr, "content-type": "application/x-www-form-urlencoded" };
    assert.equal((await post("/key-token/token", new URLSearchParams(creds).toString(), form)).status, 415);
    assert.equal(keyToken.state.tokenRequests, 5);
    assert.equal(keyToken.state.tokensIssued, 0);
  });

  void test("expired, revoked or unknown USER_TOKEN → 401", async () => {
    const token = await userToken();
    assert.equal((await post("/key-token/leads", lead, { ...hdr, USER_TOKEN: "nope" })).status, 401);
    assert.equal((await post("/key-token/leads", lead, hdr)).status, 401);
    clock += 60_001;
    assert.equal((await post("/key-token/leads", lead, { ...hdr, USER_TOKEN: token })).status, 401);
    const fresh = await userToken();
    keyToken.revokeTokens();
    assert.equal((await post("/key-token/leads", lead, { ...hdr, USER_TOKEN: fresh })).status, 401);
    const { APPLICATION_ID: _, ...noApp } = hdr;
    assert.equal(
      (await post("/key-token/leads", lead, { ...noApp, USER_TOKEN: await userToken() })).status,
      400,
    );
  });
});

void describe("oauth2", () => {
  const docBody = {
    username: "u",
    password: "p",
    client_id: "cid",
    client_secret: "csec",
    grant_type: "password",
  };
  const form = { "content-type": "application/x-www-form-urlencoded" };
  const bearer = (t: string) => ({ ...json, authorization: `Bearer ${t}` });
  type Tok = { access_token: string; token_type: string; expires_in: number; refresh_token?: string };

  void test("JSON password grant (the document's shape), push, refresh", async () => {
    const res = await post("/oauth2/token", docBody);
    assert.equal(res.status, 200);
    const tok = (await res.json()) as Tok;
    assert.equal(tok.token_type, "Bearer");
    assert.equal(tok.expires_in, 3600);
    assert.ok(tok.refresh_token);
    assert.equal((await post("/oauth2/leads", lead, bearer(tok.access_token))).status, 201);
    oauth.expireTokens();
    const expired = await post("/oauth2/leads", lead, bearer(tok.access_token));
    assert.equal(expired.status, 401);
    assert.match(expired.headers.get("www-authenticate") ?? "", /invalid_token/);
    const body = new URLSearchParams({ grant_type: "refresh_token", refresh_token: tok.refresh_token });
    const refreshed = await post("/oauth2/token", body.toString(), {
      ...form,
      authorization: basic("cid", "csec"),
    });
    assert.equal(refreshed.status, 200);
    const tok2 = (await refreshed.json()) as Tok;
    assert.equal((await post("/oauth2/leads", lead, bearer(tok2.access_token))).status, 201);
    assert.equal(oauth.state.tokenRequests, 2);
    assert.equal(oauth.state.leads.length, 2);
  });

  void test("form client_credentials with client auth in the body", async () => {
    const body = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: "cid",
      client_secret: "csec",
    });
    const res = await post("/oauth2/token", body.toString(), form);
    assert.equal(res.status, 200);
    const tok = (await res.json()) as Tok;
    assert.equal(tok.refresh_token, undefined);
    assert.equal((await post("/oauth2/leads", lead, bearer(tok.access_token))).status, 201);
  });

  void test("RFC 6749 errors", async () => {
    const err = async (r: Response) => ((await r.json()) as { error: string }).error;
    let res = await post("/oauth2/token", { ...docBody, client_secret: "bad" });
    assert.equal(res.status, 401);
    assert.equal(await err(res), "invalid_client");
    res = await post("/oauth2/token", { ...docBody, password: "bad" });
    assert.equal(res.status, 400);
    assert.equal(await err(res), "invalid_grant");
    res = await post("/oauth2/token", { ...docBody, grant_type: "implicit" });
    assert.equal(res.status, 400);
    assert.equal(await err(res), "unsupported_grant_type");
    res = await post("/oauth2/token", { ...docBody, grant_type: "refresh_token", refresh_token: "nope" });
    assert.equal(await err(res), "invalid_grant");
  });

  void test("leads need a valid bearer and JSON", async () => {
    assert.equal((await post("/oauth2/leads", lead)).status, 401);
    assert.equal((await post("/oauth2/leads", lead, bearer("made-up"))).status, 401);
    const tok = (await (await post("/oauth2/token", docBody)).json()) as Tok;
    const asForm = { ...form, authorization: `Bearer ${tok.access_token}` };
    assert.equal((await post("/oauth2/leads", "name=x", asForm)).status, 415);
  });

  void test("requireFormat: json rejects a form token request", async () => {
    const body = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: "cid",
      client_secret: "csec",
    });
    assert.equal((await post("/oauth2-json/token", body.toString(), form)).status, 415);
    const res = await post("/oauth2-json/token", {
      grant_type: "client_credentials",
      client_id: "cid",
      client_secret: "csec",
    });
    assert.equal(res.status, 200);
  });
});

void describe("static key", () => {
  const form = { "content-type": "application/x-www-form-urlencoded" };
  const fields = { name: "Asha", city: "Pune" };

  void test("form body with vendor and vendory_key", async () => {
    const body = new URLSearchParams({ ...fields, vendor: "housing", vendory_key: "vk-1" });
    assert.equal((await post("/static-key/leads", body.toString(), form)).status, 201);
    assert.deepEqual(staticKey.state.leads[0]?.body, { ...fields, vendor: "housing", vendory_key: "vk-1" });
  });

  void test("wrong spelling, wrong key, JSON body → 401 / 415", async () => {
    const correctSpelling = new URLSearchParams({ ...fields, vendor: "housing", vendor_key: "vk-1" });
    assert.equal((await post("/static-key/leads", correctSpelling.toString(), form)).status, 401);
    const wrong = new URLSearchParams({ ...fields, vendor: "housing", vendory_key: "vk-2" });
    assert.equal((await post("/static-key/leads", wrong.toString(), form)).status, 401);
    assert.equal(
      (await post("/static-key/leads", { ...fields, vendor: "housing", vendory_key: "vk-1" })).status,
      415,
    );
    assert.equal(staticKey.state.leads.length, 0);
  });

  void test("header and query variants", async () => {
    const keys = { vendor: "housing", vendory_key: "vk-1" };
    assert.equal((await post("/static-key/leads-header", lead, { ...json, ...keys })).status, 201);
    assert.equal((await post("/static-key/leads-header", lead, { ...json, vendor: "housing" })).status, 401);
    const q = new URLSearchParams(keys).toString();
    assert.equal((await post(`/static-key/leads-query?${q}`, lead)).status, 201);
    assert.equal((await post("/static-key/leads-query?vendor=housing&vendory_key=x", lead)).status, 401);
    assert.equal(staticKey.state.leads.length, 2);
  });
});

void describe("none", () => {
  void test("JSON lead recorded, other content types refused", async () => {
    const res = await post("/none/leads", lead);
    assert.equal(res.status, 201);
    assert.equal(typeof ((await res.json()) as { id: unknown }).id, "string");
    assert.equal((await post("/none/leads", "hello", { "content-type": "text/plain" })).status, 415);
    assert.equal((await post("/none/leads", "[1]")).status, 400);
    const state = (await (await fetch(`${base}/none/_state`)).json()) as { leads: unknown[] };
    assert.equal(state.leads.length, 1);
  });
});

void describe("controls", () => {
  const control = (prefix: string, body: unknown) => post(`${prefix}/_control`, body);
  const tokenReq = () =>
    post("/oauth2/token", { grant_type: "client_credentials", client_id: "cid", client_secret: "csec" });

  void test("tokenEndpoint down / garbage / hang, released by control", async () => {
    assert.equal((await control("/oauth2", { tokenEndpoint: "down" })).status, 200);
    assert.equal((await tokenReq()).status, 503);
    await control("/oauth2", { tokenEndpoint: "garbage" });
    const garbage = await tokenReq();
    assert.equal(garbage.status, 200);
    await assert.rejects(garbage.json());
    await control("/oauth2", { tokenEndpoint: "hang" });
    let settled = false;
    const pending = tokenReq().then((r) => ((settled = true), r));
    while (oauth.state.hanging === 0) await new Promise((r) => setTimeout(r, 5));
    assert.equal(settled, false);
    // A client that gave up (timeout) must not break anything when released later.
    await assert.rejects(fetch(`${base}/oauth2/token`, { method: "POST", signal: AbortSignal.timeout(50) }));
    assert.equal(oauth.state.hanging, 2);
    await control("/oauth2", { tokenEndpoint: "ok" });
    assert.equal((await pending).status, 503);
    assert.equal((await tokenReq()).status, 200);
    assert.equal(oauth.state.tokenRequests, 5);
    assert.equal(oauth.state.hanging, 0);
  });

  void test("leadsEndpoint fail, expire/revoke over HTTP, _state, bad control", async () => {
    await control("/none", { leadsEndpoint: "fail" });
    assert.equal((await post("/none/leads", lead)).status, 500);
    await control("/none", { leadsEndpoint: "ok" });
    assert.equal((await post("/none/leads", lead)).status, 201);
    assert.equal(none.state.leads.length, 1);
    assert.equal((await control("/none", { explode: true })).status, 400);
    assert.equal((await control("/none", { tokenEndpoint: "sideways" })).status, 400);

    const hdr = { APPLICATION_ID: "app-42", ...json };
    const tok = await post("/key-token/token", { username: "lp", Password: "pw", Key: "k3y" }, hdr);
    const token = ((await tok.json()) as { UserAuthenticationResult: { data: { UserToken: string } } })
      .UserAuthenticationResult.data.UserToken;
    await control("/key-token", { expireTokens: true });
    assert.equal((await post("/key-token/leads", lead, { ...hdr, USER_TOKEN: token })).status, 401);
    const state = (await (await fetch(`${base}/key-token/_state`)).json()) as { tokenRequests: number };
    assert.equal(state.tokenRequests, 1);
    await control("/key-token", { reset: true });
    assert.equal(keyToken.state.tokenRequests, 0);
  });

  void test("a hanging request is released when the server closes", async () => {
    const sim = createNoneSimulator();
    const [own, url] = await startServer([sim]);
    sim.control({ leadsEndpoint: "hang" });
    const pending = fetch(`${url}/none/leads`, { method: "POST", headers: json, body: "{}" }).then(
      (r) => r.status,
      () => "error",
    );
    while (sim.state.hanging === 0) await new Promise((r) => setTimeout(r, 5));
    await own.close();
    assert.equal(await pending, 503);
    assert.equal(sim.state.hanging, 0);
  });
});
