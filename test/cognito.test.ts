// The `cognito` auth type and the `seventargets` connector (the 7targets API document), over real HTTP
// against the sandbox's Cognito InitiateAuth and 7targets simulators.
import assert from "node:assert/strict";
import Fastify from "fastify";
import { after, before, beforeEach, describe, test } from "node:test";
import { SANDBOX_ACCOUNTS } from "../src/sandbox/accounts.ts";
import { createCognitoSimulator } from "../src/sandbox/cognito.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { createDestination, delivered, deliveryOf, postLead, waitDelivery } from "./helpers/connect.ts";
import { startApp, type TestApp } from "./helpers/harness.ts";

const A = SANDBOX_ACCOUNTS.cognito;
const LEAD = {
  name: "John",
  lastName: "Doe",
  email: "john.doe@example.com",
  phone: "+919123456789",
  context: "AI Sales Assistant",
  additionalInformation: "Wants a call after 6 pm",
};

let sb: Awaited<ReturnType<typeof startSandbox>>;
let t: TestApp;
let n = 0;

before(async () => {
  sb = await startSandbox();
  // Many test leads share an e-mail address: no duplicate detection here.
  t = await startApp({ env: { LEADPUSH_DUPLICATE_WINDOW_DAYS: "0" } });
});
after(async () => {
  await t.close();
  await sb.close();
});
beforeEach(() => {
  sb.cognito.reset();
  sb.sevenTargets.reset();
});

function auth(extra: Record<string, unknown> = {}) {
  return {
    type: "cognito",
    endpoint: `${sb.url}/cognito/`,
    clientId: A.clientId,
    username: A.username,
    password: A.password,
    ...extra,
  };
}

async function sevenTargets(extra: Record<string, unknown> = {}) {
  return createDestination(t, {
    name: `seventargets-${++n}`,
    connector: "seventargets",
    url: `${sb.url}/seventargets/leads`,
    auth: auth(),
    options: { assistantId: A.assistantId },
    retry: { delaysMs: [60_000], jitter: 0 },
    ...extra,
    filter: `attributes.to = 'seventargets-${n}'`,
  });
}

/** A lead for one destination only (each test's destination filters on `attributes.to`). */
const lead = (dest: { name: string }, extra: Record<string, unknown> = {}) =>
  postLead(t, { ...LEAD, ...extra, attributes: { to: dest.name } });

void describe("cognito + seventargets", () => {
  void test("login, push with the IdToken, the vendor's answer kept on the delivery", async () => {
    const dest = await sevenTargets();
    const leadId = await lead(dest);
    const d = await delivered(t, leadId);
    assert.equal(d.attemptCount, 1);
    assert.equal(d.externalId, "2345");
    assert.equal(d.response?.["id"], 2345);
    assert.equal(d.response?.["state"], "Cold");
    assert.equal(d.response?.["subState"], "Followup_1");
    assert.match(String(d.response?.["nextScheduleTime"]), /^\d{4}-\d\d-\d\dT/);
    const got = sb.sevenTargets.state.accepted[0]!;
    assert.deepEqual(got.body, {
      name: "John",
      lastName: "Doe",
      type: "SALES",
      source: "Website",
      context: "AI Sales Assistant",
      additionalInformationLine: "Wants a call after 6 pm",
      email: "john.doe@example.com",
      phone: "+919123456789",
      assistantId: A.assistantId,
    });
    assert.equal(got.idempotencyKey, d.id);
    assert.equal(sb.cognito.state.passwordAuths, 1);
    assert.equal(sb.cognito.state.log[0]!.flow, "USER_PASSWORD_AUTH");
    // The attempt log keeps the exchanges, the token and password redacted.
    const steps = d.attempts[0]!.exchanges.map((e) => [e.step, e.status]);
    assert.deepEqual(steps, [
      ["auth:login", 200],
      ["push", 201],
    ]);
    const full = await t.api("GET", `/v1/leads/${leadId}`);
    assert.ok(!full.text.includes(A.password), "no password in the API");
    const push = d.attempts[0]!.exchanges[1] as unknown as { requestHeaders: Record<string, string> };
    assert.equal(push.requestHeaders["authorization"], "[redacted]");
    const login = d.attempts[0]!.exchanges[0] as unknown as { requestBody: string; responseBody: string };
    assert.deepEqual(JSON.parse(login.responseBody).AuthenticationResult, {
      AccessToken: "[redacted]",
      ExpiresIn: 3600,
      IdToken: "[redacted]",
      TokenType: "Bearer",
      RefreshToken: "[redacted]",
    });
    assert.equal(JSON.parse(login.requestBody).AuthParameters.PASSWORD, "[redacted]");
    assert.ok(!/eyJ[\w-]{20,}\.[\w-]{20,}/.test(full.text), "no JWT anywhere in the lead's record");
    await t.api("DELETE", `/v1/destinations/${dest.id}`);
  });

  void test("one login serves many leads; a secret client sends SECRET_HASH", async () => {
    const dest = await sevenTargets({
      auth: auth({ clientId: A.secretClientId, clientSecret: A.clientSecret }),
      mapping: { source: "'Portal'", scheduleId: "7" },
    });
    const ids = await Promise.all(
      Array.from({ length: 20 }, (_, i) => lead(dest, { email: `many-${i}@example.com` })),
    );
    for (const id of ids) await delivered(t, id);
    assert.equal(sb.cognito.state.tokenRequests, 1, "one InitiateAuth for 20 leads");
    assert.equal(sb.sevenTargets.state.accepted.length, 20);
    // The mapping overrides the preset field by field.
    assert.equal(sb.sevenTargets.state.accepted[0]!.body["source"], "Portal");
    assert.equal(sb.sevenTargets.state.accepted[0]!.body["scheduleId"], 7);
    assert.equal(sb.sevenTargets.state.accepted[0]!.body["type"], "SALES");
    await t.api("DELETE", `/v1/destinations/${dest.id}`);
  });

  void test("before expiry the token is refreshed with REFRESH_TOKEN_AUTH", async () => {
    sb.cognito.control({ tokenLifetimeSeconds: 2 });
    const dest = await sevenTargets({
      auth: auth({ clientId: A.secretClientId, clientSecret: A.clientSecret }),
    });
    await delivered(t, await lead(dest));
    // Refreshed 1 s before the 2 s lifetime ends.
    await new Promise((r) => setTimeout(r, 1200));
    await delivered(t, await lead(dest, { email: "second@example.com" }));
    assert.equal(sb.cognito.state.passwordAuths, 1);
    assert.equal(sb.cognito.state.refreshAuths, 1);
    assert.deepEqual(
      sb.cognito.state.log.map((l) => [l.flow, l.outcome]),
      [
        ["USER_PASSWORD_AUTH", "tokens"],
        ["REFRESH_TOKEN_AUTH", "tokens"],
      ],
    );
    assert.equal(sb.sevenTargets.state.accepted.length, 2);
    await t.api("DELETE", `/v1/destinations/${dest.id}`);
  });

  void test("a revoked refresh token: logs in again with the password, within the same attempt", async () => {
    const dest = await sevenTargets();
    await delivered(t, await lead(dest));
    sb.cognito.control({ revokeRefreshTokens: true, expireTokens: true });
    const d = await delivered(t, await lead(dest, { email: "again@example.com" }));
    assert.equal(d.attemptCount, 1);
    assert.deepEqual(
      d.attempts[0]!.exchanges.map((e) => [e.step, e.status]),
      [
        ["push", 401],
        ["auth:refresh", 400],
        ["auth:login", 200],
        ["push", 201],
      ],
    );
    assert.equal(sb.cognito.state.passwordAuths, 2);
    assert.equal(sb.cognito.state.refreshAuths, 1);
    await t.api("DELETE", `/v1/destinations/${dest.id}`);
  });

  void test("a wrong password: auth_rejected with Cognito's words, on the attempt and in the dry run", async () => {
    const dest = await sevenTargets({ auth: auth({ password: "Wrong-pass-123" }) });
    const leadId = await lead(dest);
    const d = await waitDelivery(t, leadId, (x) => x.lastError !== null, "an error");
    assert.equal(d.status, "retrying");
    assert.equal(d.lastError?.code, "auth_rejected");
    assert.equal(d.lastError?.message, "Cognito: Incorrect username or password (NotAuthorizedException)");
    assert.equal(d.attempts[0]!.error?.code, "auth_rejected");
    const dry = await t.api("POST", `/v1/destinations/${dest.id}/test`, {});
    assert.equal(dry.status, 200, dry.text);
    assert.equal(dry.body.auth.ok, false);
    assert.equal(dry.body.auth.error.code, "auth_rejected");
    assert.match(dry.body.auth.error.message, /Incorrect username or password/);
    assert.ok(!dry.text.includes("Wrong-pass-123"), "the password is not in the answer");
    assert.equal(sb.sevenTargets.state.requests, 0);
    // Fixing the password (an edit of the auth config) lets the delivery through on its next try.
    await t.api("DELETE", `/v1/destinations/${dest.id}`);
  });

  void test("the `Authentication` header the document writes, when a destination asks for it", async () => {
    sb.sevenTargets.control({ acceptHeader: "Authentication" });
    const dest = await sevenTargets({ auth: auth({ headerName: "Authentication" }) });
    const d = await delivered(t, await lead(dest));
    assert.equal(d.attemptCount, 1);
    await t.api("DELETE", `/v1/destinations/${dest.id}`);
  });

  void test("options.assistantId is required: 400 invalid_destination at options.assistantId", async () => {
    for (const body of [{}, { options: { type: "SALES" } }]) {
      const res = await t.api("POST", "/v1/destinations", {
        name: `no-assistant-${++n}`,
        connector: "seventargets",
        auth: auth(),
        ...body,
      });
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error.code, "invalid_destination");
      assert.ok(
        res.body.error.details.some((d: { path: unknown[] }) => d.path.join(".") === "options.assistantId"),
        res.text,
      );
    }
  });

  void test("a lead without email: failed missing_field, not retried, nothing sent", async () => {
    const dest = await sevenTargets();
    const leadId = await postLead(t, {
      name: "Phone Only",
      phone: "+919812345678",
      attributes: { to: dest.name },
    });
    const d = await waitDelivery(t, leadId, (x) => x.status === "failed", "failed");
    assert.equal(d.attemptCount, 1);
    assert.equal(d.lastError?.code, "missing_field");
    assert.match(d.lastError?.message ?? "", /7targets requires email/);
    assert.equal(sb.sevenTargets.state.requests, 0);
    assert.equal(sb.cognito.state.tokenRequests, 0, "no login for a lead that cannot be sent");
    await t.api("DELETE", `/v1/destinations/${dest.id}`);
  });
});

void describe("cognito error codes (dry run)", () => {
  const users = [
    { username: "fresh", password: "Fresh-pass-1", status: "FORCE_CHANGE_PASSWORD" as const },
    { username: "reset", password: "Reset-pass-1", status: "RESET_REQUIRED" as const },
    { username: "unconfirmed", password: "Unconf-pass-1", status: "UNCONFIRMED" as const },
  ];
  const sim = createCognitoSimulator({ clients: [{ clientId: "codes-client" }], users });
  const app = Fastify();
  let url = "";
  before(async () => {
    await app.register(async (s) => sim.register(s), { prefix: "/cognito" });
    url = `${await app.listen({ port: 0, host: "127.0.0.1" })}/cognito/`;
  });
  after(() => app.close());

  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    [
      "a NEW_PASSWORD_REQUIRED challenge",
      { username: "fresh", password: "Fresh-pass-1" },
      "auth_challenge_required",
      /NEW_PASSWORD_REQUIRED/,
    ],
    [
      "a password reset",
      { username: "reset", password: "Reset-pass-1" },
      "auth_password_reset_required",
      /PasswordResetRequiredException/,
    ],
    [
      "an unconfirmed user",
      { username: "unconfirmed", password: "Unconf-pass-1" },
      "auth_user_not_confirmed",
      /UserNotConfirmedException/,
    ],
    [
      "an unknown user",
      { username: "nobody", password: "Nobody-pass-1" },
      "auth_rejected",
      /User does not exist \(UserNotFoundException\)/,
    ],
    [
      "an unknown app client",
      { clientId: "no-such-client" },
      "auth_misconfigured",
      /ResourceNotFoundException/,
    ],
  ];
  for (const [what, extra, code, message] of cases) {
    void test(`${what} → ${code}`, async () => {
      const dest = await createDestination(t, {
        name: `codes-${++n}`,
        connector: "seventargets",
        url: "http://127.0.0.1:9/leads",
        auth: {
          type: "cognito",
          endpoint: url,
          clientId: "codes-client",
          username: "fresh",
          password: "x-pass-1",
          ...extra,
        },
        options: { assistantId: "A-1" },
        enabled: false,
      });
      const dry = await t.api("POST", `/v1/destinations/${dest.id}/test`, {});
      assert.equal(dry.body.auth.ok, false, dry.text);
      assert.equal(dry.body.auth.error.code, code);
      assert.match(dry.body.auth.error.message, message);
      await t.api("DELETE", `/v1/destinations/${dest.id}`);
    });
  }
});

void test("a destination's deliveries list shows the 7targets lead id", async () => {
  const dest = await sevenTargets();
  const leadId = await lead(dest);
  await delivered(t, leadId);
  const d = await deliveryOf(t, leadId);
  assert.equal(typeof d.externalId, "string");
  await t.api("DELETE", `/v1/destinations/${dest.id}`);
});
