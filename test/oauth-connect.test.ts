// The `oauth2_code` auth type, the browser connect flow and the `eminence` connector (the Eminence API
// document), driven like a browser (redirects followed by hand) against the sandbox's Cognito hosted UI.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SANDBOX_ACCOUNTS } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import {
  browse,
  createDestination,
  delivered,
  deliveryOf,
  freePort,
  postLead,
  waitDelivery,
} from "./helpers/connect.ts";
import { ADMIN_TOKEN, startApp, type TestApp } from "./helpers/harness.ts";

const E = SANDBOX_ACCOUNTS.eminence;
const LEAD = { name: "Asha", lastName: "Rao", email: "asha@example.com", phone: "+919123456789" };

let sb: Awaited<ReturnType<typeof startSandbox>>;
let t: TestApp;
let publicUrl = "";
/** Added to the app's clock (state expiry). */
let skewMs = 0;

before(async () => {
  const port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  sb = await startSandbox({ redirectUris: [`${publicUrl}/v1/oauth/callback`] });
  t = await startApp({
    env: { PORT: String(port), LEADPUSH_PUBLIC_URL: publicUrl, LEADPUSH_DUPLICATE_WINDOW_DAYS: "0" },
    now: () => Date.now() + skewMs,
  });
});
after(async () => {
  await t.close();
  await sb.close();
});

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** Admin opens the connect link; the browser follows the provider's redirects back to leadpush. */
async function connect(destinationId: string) {
  const start = await browse(`${publicUrl}/v1/destinations/${destinationId}/connect`, admin);
  assert.equal(start.status, 302, start.text);
  const authorize = await browse(start.location!);
  assert.equal(authorize.status, 302, authorize.text);
  assert.ok(authorize.location!.startsWith(`${publicUrl}/v1/oauth/callback?`), authorize.location!);
  const callback = await browse(authorize.location!);
  return { start, authorize, callback };
}

async function metric(name: string): Promise<number | undefined> {
  const res = await fetch(`${publicUrl}/metrics`);
  const line = (await res.text())
    .split("\n")
    .find((l) => l.startsWith(`leadpush_destination_needs_reconnect{destination="${name}"}`));
  return line === undefined ? undefined : Number(line.split(" ").pop());
}

void describe("oauth2_code + eminence", () => {
  let dest: Awaited<ReturnType<typeof createDestination>>;
  const lead = (extra: Record<string, unknown> = {}) =>
    postLead(t, { ...LEAD, ...extra, attributes: { to: "eminence" } });

  before(async () => {
    dest = await createDestination(t, {
      name: "eminence",
      connector: "eminence",
      url: `${sb.url}/eminence/leads`,
      filter: "attributes.to = 'eminence'",
      auth: {
        type: "oauth2_code",
        authorizeUrl: `${sb.url}/hosted-ui/oauth2/authorize`,
        tokenUrl: `${sb.url}/hosted-ui/oauth2/token`,
        clientId: E.clientId,
        clientSecret: E.clientSecret,
      },
      options: { assistantId: 7 },
    });
  });

  void test("the API shows the redirect URL to register and where to connect", () => {
    assert.equal(dest["redirectUrl"], `${publicUrl}/v1/oauth/callback`);
    assert.equal(dest["connectUrl"], `${publicUrl}/v1/destinations/${dest.id}/connect`);
    assert.equal((dest["auth"] as Record<string, unknown>)["clientSecret"], "[redacted]");
  });

  void test("connect needs an admin key", async () => {
    assert.equal((await browse(`${publicUrl}/v1/destinations/${dest.id}/connect`)).status, 401);
    const post = await t.api("POST", `/v1/destinations/${dest.id}/connect`, undefined, { key: null });
    assert.equal(post.status, 401);
  });

  void test("not connected yet: the destination says so and its deliveries wait unclaimed", async () => {
    // A new oauth2_code destination starts as needs_reconnect: nothing is tried before the connect.
    assert.equal(dest["state"], "needs_reconnect");
    const leadId = await lead();
    await new Promise((r) => setTimeout(r, 300));
    const d = await deliveryOf(t, leadId);
    assert.equal(d.status, "pending");
    assert.equal(d.attemptCount, 0);
    assert.equal(sb.hostedUi.state.tokenRequests, 0, "no token request before the connect");
    const view = await t.api("GET", `/v1/destinations/${dest.id}`);
    assert.equal(view.body.state, "needs_reconnect");
    assert.equal(await metric("eminence"), 1);
    const dry = await t.api("POST", `/v1/destinations/${dest.id}/test`, {});
    assert.equal(dry.body.auth.ok, false);
    assert.equal(dry.body.auth.error.code, "needs_reconnect");

    // Connect: PKCE S256, state, nonce; the callback shows "Connected"; the waiting lead lands.
    const { start, authorize, callback } = await connect(dest.id);
    const url = new URL(start.location!);
    assert.equal(url.origin + url.pathname, `${sb.url}/hosted-ui/oauth2/authorize`);
    assert.equal(url.searchParams.get("code_challenge_method"), "S256");
    assert.equal(url.searchParams.get("redirect_uri"), `${publicUrl}/v1/oauth/callback`);
    assert.equal(url.searchParams.get("scope"), "openid email");
    assert.ok(url.searchParams.get("state")!.length >= 32);
    assert.ok(url.searchParams.get("nonce"));
    assert.equal(callback.status, 200, callback.text);
    assert.match(callback.text, /<h1>Connected<\/h1>/);
    assert.match(callback.text, /1 waiting deliveries/);
    assert.equal(sb.hostedUi.state.authorizationCodeGrants, 1);

    const done = await delivered(t, leadId);
    assert.equal(done.attemptCount, 1);
    assert.equal(done.externalId, String(sb.eminence.state.accepted[0]!.id));
    assert.deepEqual(Object.keys(done.response!).sort(), [
      "followup",
      "id",
      "nextScheduleTime",
      "state",
      "subState",
    ]);
    assert.equal(done.response!["subState"], "Followup");
    const got = sb.eminence.state.accepted[0]!;
    assert.equal(got.body["source"], "Website");
    assert.equal(got.body["assistantId"], 7);
    assert.equal(got.idempotencyKey, done.id);
    assert.equal((await t.api("GET", `/v1/destinations/${dest.id}`)).body.state, "active");
    assert.equal(await metric("eminence"), 0);

    // The state was good once.
    const again = await browse(authorize.location!);
    assert.equal(again.status, 400);
    assert.match(again.text, /oauth_state_used/);
  });

  void test("many leads: one connection, no further token requests", async () => {
    const before = sb.hostedUi.state.tokenRequests;
    const ids = await Promise.all(
      Array.from({ length: 10 }, (_, i) => lead({ email: `em-${i}@example.com` })),
    );
    for (const id of ids) await delivered(t, id);
    assert.equal(sb.hostedUi.state.tokenRequests, before);
  });

  void test("an expired id_token is refreshed with the refresh token", async () => {
    sb.hostedUi.control({ expireTokens: true });
    const d = await delivered(t, await lead({ email: "refresh@example.com" }));
    assert.deepEqual(
      d.attempts[0]!.exchanges.map((e) => [e.step, e.status]),
      [
        ["push", 401],
        ["auth:refresh", 200],
        ["push", 201],
      ],
    );
    assert.equal(sb.hostedUi.state.refreshGrants, 1);
  });

  void test("refresh refused: needs_reconnect, deliveries wait; a reconnect sends them", async () => {
    sb.hostedUi.control({ revokeRefreshTokens: true, expireTokens: true });
    const ids = [await lead({ email: "wait-1@example.com" }), await lead({ email: "wait-2@example.com" })];
    for (const id of ids) {
      const d = await waitDelivery(t, id, (x) => x.lastError?.code === "needs_reconnect", "needs_reconnect");
      assert.equal(d.status, "retrying");
      assert.equal(d.attemptCount, 0);
    }
    const view = await t.api("GET", `/v1/destinations/${dest.id}`);
    assert.equal(view.body.state, "needs_reconnect");
    assert.equal(await metric("eminence"), 1);
    // While it waits nothing is attempted.
    const accepted = sb.eminence.state.accepted.length;
    await new Promise((r) => setTimeout(r, 400));
    for (const id of ids) {
      const d = await deliveryOf(t, id);
      assert.equal(d.status, "retrying");
      assert.equal(d.attemptCount, 0);
    }
    assert.equal(sb.eminence.state.accepted.length, accepted);

    const started = Date.now();
    const { callback } = await connect(dest.id);
    assert.equal(callback.status, 200, callback.text);
    assert.match(callback.text, /2 waiting deliveries/);
    for (const id of ids) await delivered(t, id);
    assert.ok(Date.now() - started < 3000, "sent promptly after the reconnect");
    assert.equal((await t.api("GET", `/v1/destinations/${dest.id}`)).body.state, "active");
    assert.equal(await metric("eminence"), 0);
  });

  void test("an edit that does not touch auth keeps the connection", async () => {
    const before = sb.hostedUi.state.tokenRequests;
    const res = await t.api("PATCH", `/v1/destinations/${dest.id}`, { options: { assistantId: 8 } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.state, "active");
    await delivered(t, await lead({ email: "edited@example.com" }));
    assert.equal(sb.eminence.state.accepted.at(-1)!.body["assistantId"], 8);
    assert.equal(sb.hostedUi.state.tokenRequests, before);
  });

  void test("a lead without email fails with missing_field", async () => {
    const leadId = await postLead(t, {
      name: "No Mail",
      phone: "+919812345670",
      attributes: { to: "eminence" },
    });
    const d = await waitDelivery(t, leadId, (x) => x.status === "failed", "failed");
    assert.equal(d.lastError?.code, "missing_field");
  });

  void test("an edit of the auth settings needs a new connect; leads wait for it", async () => {
    const res = await t.api("PATCH", `/v1/destinations/${dest.id}`, { auth: { scope: "openid" } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.state, "needs_reconnect");
    const leadId = await lead({ email: "after-edit@example.com" });
    const accepted = sb.eminence.state.accepted.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await deliveryOf(t, leadId)).status, "pending");
    assert.equal(sb.eminence.state.accepted.length, accepted);
    const { start, callback } = await connect(dest.id);
    assert.equal(new URL(start.location!).searchParams.get("scope"), "openid");
    assert.match(callback.text, /1 waiting deliveries/);
    await delivered(t, leadId);
    assert.equal((await t.api("GET", `/v1/destinations/${dest.id}`)).body.state, "active");
  });
});

void describe("callback errors", () => {
  let destId = "";
  before(async () => {
    const d = await createDestination(t, {
      name: "eminence-errors",
      connector: "eminence",
      url: `${sb.url}/eminence/leads`,
      filter: "false",
      auth: {
        type: "oauth2_code",
        authorizeUrl: `${sb.url}/hosted-ui/oauth2/authorize`,
        tokenUrl: `${sb.url}/hosted-ui/oauth2/token`,
        clientId: E.clientId,
        clientSecret: E.clientSecret,
      },
    });
    destId = d.id;
  });

  const startState = async () => {
    const res = await t.api("POST", `/v1/destinations/${destId}/connect`);
    assert.equal(res.status, 200, res.text);
    return {
      authorizeUrl: res.body.authorizeUrl as string,
      state: new URL(res.body.authorizeUrl).searchParams.get("state")!,
    };
  };

  void test("unknown or missing state", async () => {
    const unknown = await browse(`${publicUrl}/v1/oauth/callback?code=x&state=not-a-state`);
    assert.equal(unknown.status, 400);
    assert.match(unknown.text, /oauth_state_unknown/);
    const missing = await browse(`${publicUrl}/v1/oauth/callback?code=x`);
    assert.equal(missing.status, 400);
    assert.match(missing.text, /oauth_state_missing/);
  });

  void test("expired state (after 10 minutes)", async () => {
    const { authorizeUrl } = await startState();
    const back = await browse(authorizeUrl);
    skewMs = 11 * 60 * 1000;
    try {
      const res = await browse(back.location!);
      assert.equal(res.status, 400);
      assert.match(res.text, /oauth_state_expired/);
    } finally {
      skewMs = 0;
    }
  });

  void test("the provider's error= is shown with a stable code", async () => {
    const { state } = await startState();
    const res = await browse(
      `${publicUrl}/v1/oauth/callback?error=access_denied&error_description=${encodeURIComponent("User <b>cancelled</b>")}&state=${state}`,
    );
    assert.equal(res.status, 400);
    assert.match(res.text, /oauth_provider_error/);
    assert.match(res.text, /access_denied: User &#60;b&#62;cancelled/);
  });

  void test("a code the provider refuses: oauth_exchange_failed", async () => {
    const { state } = await startState();
    const res = await browse(`${publicUrl}/v1/oauth/callback?code=forged-code&state=${state}`);
    assert.equal(res.status, 502);
    assert.match(res.text, /oauth_exchange_failed/);
    assert.match(res.text, /invalid_grant/);
  });

  void test("connect is for oauth2_code destinations only", async () => {
    const other = await createDestination(t, {
      name: "plain-http",
      connector: "http",
      url: `${sb.url}/sink/leads`,
      filter: "false",
    });
    const res = await t.api("POST", `/v1/destinations/${other.id}/connect`);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, "connect_not_supported");
    assert.equal((await t.api("POST", "/v1/destinations/nope/connect")).status, 404);
  });
});
