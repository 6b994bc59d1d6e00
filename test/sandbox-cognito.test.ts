import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import Fastify, { type FastifyInstance } from "fastify";
import type { Simulator } from "../src/sandbox/simulator.ts";
import { cognitoSecretHash, createCognitoSimulator, INITIATE_AUTH_TARGET } from "../src/sandbox/cognito.ts";
import { createHostedUiSimulator, pkceChallenge } from "../src/sandbox/cognito-hosted-ui.ts";
import { createSevenTargetsSimulator } from "../src/sandbox/seventargets.ts";
import { createEminenceSimulator } from "../src/sandbox/eminence.ts";
import { decodeJwtPayload } from "../src/sandbox/sim-jwt.ts";

const REDIRECT = "http://127.0.0.1:9/v1/oauth/callback";

const cognito = createCognitoSimulator({
  clients: [{ clientId: "public-client" }, { clientId: "secret-client", clientSecret: "s3cret" }],
  users: [
    { username: "alice", password: "Alice-pass1", email: "alice@example.com" },
    { username: "bob", password: "Bob-pass1", status: "FORCE_CHANGE_PASSWORD", email: "bob@example.com" },
    { username: "carol", password: "Carol-pass1", status: "RESET_REQUIRED" },
  ],
  tokenLifetimeSeconds: 60,
});
const hostedUi = createHostedUiSimulator({
  clients: [{ clientId: "em-client", clientSecret: "em-secret", redirectUris: [REDIRECT] }],
  users: [{ username: "dave", password: "Dave-pass1", email: "dave@example.com" }],
  tokenLifetimeSeconds: 120,
});
const sevenTargets = createSevenTargetsSimulator({ verifier: cognito.verifier });
const eminence = createEminenceSimulator({ verifier: hostedUi.verifier });
const sims: Simulator[] = [cognito, hostedUi, sevenTargets, eminence];

let app: FastifyInstance;
let base = "";

before(async () => {
  app = Fastify();
  for (const sim of sims) await app.register(async (s) => sim.register(s), { prefix: sim.prefix });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});
after(async () => {
  await app.close();
});

type Json = Record<string, any>;

async function initiateAuth(body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}/cognito/`, {
    method: "POST",
    headers: {
      "X-Amz-Target": INITIATE_AUTH_TARGET,
      "Content-Type": "application/x-amz-json-1.1",
      ...headers,
    },
    body: JSON.stringify(body),
  });
  return { res, json: (await res.json()) as Json };
}

const passwordAuth = (username: string, password: string, clientId = "public-client", extra = {}) =>
  initiateAuth({
    AuthFlow: "USER_PASSWORD_AUTH",
    ClientId: clientId,
    AuthParameters: { USERNAME: username, PASSWORD: password, ...extra },
  });

function assertCognitoError(res: Response, json: Json, type: string, message?: string) {
  assert.equal(res.status, 400);
  assert.ok(
    res.headers.get("x-amzn-errortype")?.startsWith(`${type}:`),
    res.headers.get("x-amzn-errortype") ?? "",
  );
  assert.equal(json["__type"], type);
  if (message !== undefined) assert.equal(json["message"], message);
}

async function control(prefix: string, body: unknown) {
  const res = await fetch(`${base}${prefix}/_control`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return (await res.json()) as Json;
}

void describe("cognito InitiateAuth", () => {
  void it("answers USER_PASSWORD_AUTH like Cognito", async () => {
    const { res, json } = await passwordAuth("alice", "Alice-pass1");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /application\/x-amz-json-1\.1/);
    assert.deepEqual(json["ChallengeParameters"], {});
    const r = json["AuthenticationResult"];
    assert.equal(r.TokenType, "Bearer");
    assert.equal(r.ExpiresIn, 60);
    assert.equal(typeof r.RefreshToken, "string");
    const id = decodeJwtPayload(r.IdToken);
    const access = decodeJwtPayload(r.AccessToken);
    assert.equal(id?.["token_use"], "id");
    assert.equal(id?.["aud"], "public-client");
    assert.equal(id?.["email"], "alice@example.com");
    assert.equal(access?.["token_use"], "access");
    assert.equal(access?.["client_id"], "public-client");
    assert.equal(id?.["sub"], access?.["sub"]);
    assert.ok(cognito.verifier.verify(r.IdToken, { tokenUse: "id" }).ok);
  });

  void it("accepts the email as USERNAME", async () => {
    const { res } = await passwordAuth("alice@example.com", "Alice-pass1");
    assert.equal(res.status, 200);
  });

  void it("rejects a wrong password, an unknown user, an unknown client, a missing target", async () => {
    const wrong = await passwordAuth("alice", "nope");
    assertCognitoError(wrong.res, wrong.json, "NotAuthorizedException", "Incorrect username or password.");
    const unknown = await passwordAuth("zed", "x");
    assertCognitoError(unknown.res, unknown.json, "UserNotFoundException");
    const client = await passwordAuth("alice", "Alice-pass1", "no-such-client");
    assertCognitoError(client.res, client.json, "ResourceNotFoundException");
    const noTarget = await initiateAuth({ AuthFlow: "USER_PASSWORD_AUTH" }, { "X-Amz-Target": "" });
    assert.equal(noTarget.res.status, 400);
    const missing = await initiateAuth({
      AuthFlow: "USER_PASSWORD_AUTH",
      ClientId: "public-client",
      AuthParameters: { USERNAME: "alice" },
    });
    assertCognitoError(
      missing.res,
      missing.json,
      "InvalidParameterException",
      "Missing required parameter PASSWORD",
    );
  });

  void it("rejects plain JSON content type", async () => {
    const { res, json } = await initiateAuth(
      { AuthFlow: "USER_PASSWORD_AUTH", ClientId: "public-client", AuthParameters: {} },
      { "Content-Type": "application/json" },
    );
    assertCognitoError(res, json, "SerializationException");
  });

  void it("requires and checks SECRET_HASH for a client with a secret", async () => {
    const none = await passwordAuth("alice", "Alice-pass1", "secret-client");
    assertCognitoError(
      none.res,
      none.json,
      "NotAuthorizedException",
      "Client secret-client is configured with secret but SECRET_HASH was not received",
    );
    const bad = await passwordAuth("alice", "Alice-pass1", "secret-client", {
      SECRET_HASH: cognitoSecretHash("alice", "secret-client", "wrong"),
    });
    assertCognitoError(
      bad.res,
      bad.json,
      "NotAuthorizedException",
      "Unable to verify secret hash for client secret-client",
    );
    const good = await passwordAuth("alice", "Alice-pass1", "secret-client", {
      SECRET_HASH: cognitoSecretHash("alice", "secret-client", "s3cret"),
    });
    assert.equal(good.res.status, 200);
    assert.equal(decodeJwtPayload(good.json["AuthenticationResult"].IdToken)?.["aud"], "secret-client");

    const rt = good.json["AuthenticationResult"].RefreshToken as string;
    const noHash = await initiateAuth({
      AuthFlow: "REFRESH_TOKEN_AUTH",
      ClientId: "secret-client",
      AuthParameters: { REFRESH_TOKEN: rt },
    });
    assertCognitoError(noHash.res, noHash.json, "NotAuthorizedException");
    const refreshed = await initiateAuth({
      AuthFlow: "REFRESH_TOKEN_AUTH",
      ClientId: "secret-client",
      AuthParameters: {
        REFRESH_TOKEN: rt,
        SECRET_HASH: cognitoSecretHash("alice", "secret-client", "s3cret"),
      },
    });
    assert.equal(refreshed.res.status, 200);
  });

  void it("refreshes without a new RefreshToken, and refuses a revoked one", async () => {
    const login = await passwordAuth("alice", "Alice-pass1");
    const rt = login.json["AuthenticationResult"].RefreshToken as string;
    const refresh = () =>
      initiateAuth({
        AuthFlow: "REFRESH_TOKEN_AUTH",
        ClientId: "public-client",
        AuthParameters: { REFRESH_TOKEN: rt },
      });
    const ok = await refresh();
    assert.equal(ok.res.status, 200);
    assert.equal(ok.json["AuthenticationResult"].RefreshToken, undefined);
    assert.equal(typeof ok.json["AuthenticationResult"].IdToken, "string");
    assert.equal(ok.json["AuthenticationResult"].ExpiresIn, 60);

    const before = cognito.state.tokenRequests;
    await control("/cognito", { revokeRefreshTokens: true });
    const revoked = await refresh();
    assertCognitoError(revoked.res, revoked.json, "NotAuthorizedException", "Refresh Token has been revoked");
    const unknown = await initiateAuth({
      AuthFlow: "REFRESH_TOKEN_AUTH",
      ClientId: "public-client",
      AuthParameters: { REFRESH_TOKEN: "junk" },
    });
    assertCognitoError(unknown.res, unknown.json, "NotAuthorizedException", "Invalid Refresh Token");
    const state = (await (await fetch(`${base}/cognito/_state`)).json()) as Json;
    assert.equal(state["tokenRequests"], before + 2);
  });

  void it("answers NEW_PASSWORD_REQUIRED and PasswordResetRequiredException", async () => {
    const { res, json } = await passwordAuth("bob", "Bob-pass1");
    assert.equal(res.status, 200);
    assert.equal(json["ChallengeName"], "NEW_PASSWORD_REQUIRED");
    assert.equal(typeof json["Session"], "string");
    assert.equal(json["ChallengeParameters"].USER_ID_FOR_SRP, "bob");
    assert.equal(json["AuthenticationResult"], undefined);
    const reset = await passwordAuth("carol", "Carol-pass1");
    assertCognitoError(reset.res, reset.json, "PasswordResetRequiredException");
  });

  void it("applies tokenLifetimeSeconds and failNext controls, then resets", async () => {
    await control("/cognito", { tokenLifetimeSeconds: 2, failNext: { error: "TooManyRequestsException" } });
    const throttled = await passwordAuth("alice", "Alice-pass1");
    assertCognitoError(throttled.res, throttled.json, "TooManyRequestsException");
    const short = await passwordAuth("alice", "Alice-pass1");
    assert.equal(short.json["AuthenticationResult"].ExpiresIn, 2);
    const bad = await fetch(`${base}/cognito/_control`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ nonsense: 1 }),
    });
    assert.equal(bad.status, 400);
    cognito.reset();
    assert.equal(cognito.state.tokenRequests, 0);
    const normal = await passwordAuth("alice", "Alice-pass1");
    assert.equal(normal.json["AuthenticationResult"].ExpiresIn, 60);
  });
});

// ---------------------------------------------------------------------------------------------

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

async function authorize(verifier: string, extra: Record<string, string> = {}) {
  const url = new URL(`${base}/hosted-ui/oauth2/authorize`);
  const params = {
    response_type: "code",
    client_id: "em-client",
    redirect_uri: REDIRECT,
    state: "st-123",
    scope: "openid email",
    code_challenge: pkceChallenge(verifier),
    code_challenge_method: "S256",
    ...extra,
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const res = await fetch(url, { redirect: "manual" });
  assert.equal(res.status, 302);
  return new URL(res.headers.get("location") ?? "", base);
}

async function token(form: Record<string, string>, auth: string | null = basic("em-client", "em-secret")) {
  const res = await fetch(`${base}/hosted-ui/oauth2/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...(auth ? { authorization: auth } : {}),
    },
    body: new URLSearchParams(form).toString(),
  });
  return { res, json: (await res.json()) as Json };
}

void describe("cognito hosted UI", () => {
  void it("runs the authorization-code flow with PKCE; codes are single-use", async () => {
    const verifier = randomBytes(32).toString("base64url");
    const loc = await authorize(verifier);
    assert.equal(`${loc.origin}${loc.pathname}`, REDIRECT);
    assert.equal(loc.searchParams.get("state"), "st-123");
    const code = loc.searchParams.get("code") ?? "";
    assert.ok(code);
    const form = { grant_type: "authorization_code", code, redirect_uri: REDIRECT, code_verifier: verifier };
    const { res, json } = await token(form);
    assert.equal(res.status, 200);
    assert.equal(json["token_type"], "Bearer");
    assert.equal(json["expires_in"], 120);
    assert.equal(typeof json["refresh_token"], "string");
    assert.equal(decodeJwtPayload(json["id_token"])?.["token_use"], "id");
    assert.equal(decodeJwtPayload(json["id_token"])?.["email"], "dave@example.com");
    assert.ok(hostedUi.verifier.verify(json["id_token"], { tokenUse: "id", audience: "em-client" }).ok);

    const reuse = await token(form);
    assert.equal(reuse.res.status, 400);
    assert.deepEqual(reuse.json, { error: "invalid_grant" });

    const refreshed = await token({ grant_type: "refresh_token", refresh_token: json["refresh_token"] });
    assert.equal(refreshed.res.status, 200);
    assert.equal(refreshed.json["refresh_token"], undefined);
    assert.equal(typeof refreshed.json["id_token"], "string");

    await control("/hosted-ui", { revokeRefreshTokens: true });
    const revoked = await token({ grant_type: "refresh_token", refresh_token: json["refresh_token"] });
    assert.deepEqual([revoked.res.status, revoked.json], [400, { error: "invalid_grant" }]);
  });

  void it("rejects a wrong code_verifier and a wrong redirect_uri with invalid_grant", async () => {
    const verifier = randomBytes(32).toString("base64url");
    const code = (await authorize(verifier)).searchParams.get("code") ?? "";
    const wrong = await token({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      code_verifier: "x".repeat(43),
    });
    assert.deepEqual([wrong.res.status, wrong.json], [400, { error: "invalid_grant" }]);
    const code2 = (await authorize(verifier)).searchParams.get("code") ?? "";
    const redirect = await token({
      grant_type: "authorization_code",
      code: code2,
      redirect_uri: `${REDIRECT}/x`,
      code_verifier: verifier,
    });
    assert.deepEqual([redirect.res.status, redirect.json], [400, { error: "invalid_grant" }]);
  });

  void it("requires HTTP Basic client authentication", async () => {
    const verifier = randomBytes(32).toString("base64url");
    const code = (await authorize(verifier)).searchParams.get("code") ?? "";
    const form = {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id: "em-client",
    };
    const none = await token(form, null);
    assert.deepEqual([none.res.status, none.json], [401, { error: "invalid_client" }]);
    const bad = await token(form, basic("em-client", "nope"));
    assert.deepEqual([bad.res.status, bad.json], [401, { error: "invalid_client" }]);
  });

  void it("refuses a redirect_uri that is not registered and requires PKCE", async () => {
    const res = await fetch(
      `${base}/hosted-ui/oauth2/authorize?response_type=code&client_id=em-client&redirect_uri=${encodeURIComponent("https://evil.example/cb")}`,
      { redirect: "manual" },
    );
    assert.equal(res.status, 400);
    const url = new URL(`${base}/hosted-ui/oauth2/authorize`);
    for (const [k, v] of Object.entries({
      response_type: "code",
      client_id: "em-client",
      redirect_uri: REDIRECT,
      state: "s",
    })) {
      url.searchParams.set(k, v);
    }
    const noPkce = await fetch(url, { redirect: "manual" });
    assert.equal(noPkce.status, 302);
    const loc = new URL(noPkce.headers.get("location") ?? "");
    assert.equal(loc.searchParams.get("error"), "invalid_request");
    assert.equal(loc.searchParams.get("state"), "s");
  });

  void it("shows a login form when autoLogin is off", async () => {
    await control("/hosted-ui", { autoLogin: false });
    try {
      const verifier = randomBytes(32).toString("base64url");
      const loginUrl = await authorize(verifier);
      assert.equal(loginUrl.pathname, "/hosted-ui/login");
      const page = await (await fetch(loginUrl)).text();
      const session = /name="session" value="([^"]+)"/.exec(page)?.[1] ?? "";
      const post = (password: string) =>
        fetch(`${base}/hosted-ui/login`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ session, username: "dave", password }).toString(),
          redirect: "manual",
        });
      const wrong = await post("nope");
      assert.equal(wrong.status, 200);
      assert.match(await wrong.text(), /Incorrect username or password/);
      const ok = await post("Dave-pass1");
      assert.equal(ok.status, 302);
      const loc = new URL(ok.headers.get("location") ?? "");
      assert.equal(loc.searchParams.get("state"), "st-123");
      const code = loc.searchParams.get("code") ?? "";
      const tokens = await token({
        grant_type: "authorization_code",
        code,
        redirect_uri: REDIRECT,
        code_verifier: verifier,
      });
      assert.equal(tokens.res.status, 200);
    } finally {
      await control("/hosted-ui", { autoLogin: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------

async function postLead(prefix: string, body: unknown, headers: Record<string, string>) {
  const res = await fetch(`${base}${prefix}/leads`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { res, json: (await res.json()) as Json };
}

const sevenLead = {
  name: "John",
  lastName: "Doe",
  type: "SALES",
  source: "Website",
  context: "AI Sales Assistant",
  email: "john.doe@gmail.com",
  phone: "+919123456789",
  assistantId: 42,
};

void describe("7targets leads", () => {
  void it("creates a lead with the IdToken as bearer", async () => {
    const login = await passwordAuth("alice", "Alice-pass1");
    const idToken = login.json["AuthenticationResult"].IdToken as string;
    const { res, json } = await postLead("/seventargets", sevenLead, {
      authorization: `Bearer ${idToken}`,
      "idempotency-key": "d-1",
    });
    assert.equal(res.status, 201);
    assert.equal(typeof json["id"], "number");
    assert.equal(json["name"], "John");
    assert.equal(json["assistantId"], 42);
    assert.equal(json["state"], "Cold");
    assert.equal(json["subState"], "Followup_1");
    assert.ok(!Number.isNaN(Date.parse(json["nextScheduleTime"])));
    const last = sevenTargets.state.accepted.at(-1);
    assert.equal(last?.idempotencyKey, "d-1");
    assert.equal(last?.body["email"], "john.doe@gmail.com");
  });

  void it("rejects a missing mandatory field, the AccessToken, a missing and an expired token", async () => {
    const login = await passwordAuth("alice", "Alice-pass1");
    const { IdToken, AccessToken } = login.json["AuthenticationResult"] as {
      IdToken: string;
      AccessToken: string;
    };
    const { assistantId: _, ...noAssistant } = sevenLead;
    const missing = await postLead("/seventargets", noAssistant, { authorization: `Bearer ${IdToken}` });
    assert.equal(missing.res.status, 400);
    assert.equal(missing.json["field"], "assistantId");
    assert.match(missing.json["message"], /assistantId/);
    const empty = await postLead("/seventargets", {}, { authorization: `Bearer ${IdToken}` });
    assert.equal(empty.res.status, 400);

    const access = await postLead("/seventargets", sevenLead, { authorization: `Bearer ${AccessToken}` });
    assert.equal(access.res.status, 401);
    const none = await postLead("/seventargets", sevenLead, {});
    assert.equal(none.res.status, 401);
    const wrongHeader = await postLead("/seventargets", sevenLead, { authentication: `Bearer ${IdToken}` });
    assert.equal(wrongHeader.res.status, 401);

    await control("/cognito", { expireTokens: true });
    const expired = await postLead("/seventargets", sevenLead, { authorization: `Bearer ${IdToken}` });
    assert.equal(expired.res.status, 401);
    assert.deepEqual(expired.json, { message: "The incoming token has expired" });
    const fresh = await passwordAuth("alice", "Alice-pass1");
    const again = await postLead("/seventargets", sevenLead, {
      authorization: `Bearer ${fresh.json["AuthenticationResult"].IdToken}`,
    });
    assert.equal(again.res.status, 201);
  });

  void it("reads the Authentication header when configured so, and injects failures", async () => {
    const login = await passwordAuth("alice", "Alice-pass1");
    const idToken = login.json["AuthenticationResult"].IdToken as string;
    await control("/seventargets", {
      acceptHeader: "Authentication",
      failNext: { status: 503, retryAfterSeconds: 1 },
    });
    const failed = await postLead("/seventargets", sevenLead, { authentication: `Bearer ${idToken}` });
    assert.equal(failed.res.status, 503);
    assert.equal(failed.res.headers.get("retry-after"), "1");
    const ok = await postLead("/seventargets", sevenLead, { authentication: `Bearer ${idToken}` });
    assert.equal(ok.res.status, 201);
    sevenTargets.reset();
    assert.equal(sevenTargets.state.accepted.length, 0);
    const state = (await (await fetch(`${base}/seventargets/_state`)).json()) as Json;
    assert.equal(state["acceptHeader"], "Authorization");
  });
});

void describe("eminence leads", () => {
  async function idToken() {
    const verifier = randomBytes(32).toString("base64url");
    const code = (await authorize(verifier)).searchParams.get("code") ?? "";
    const { json } = await token({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    return json["id_token"] as string;
  }

  void it("creates a lead with defaults", async () => {
    const { res, json } = await postLead(
      "/eminence",
      { name: "John", lastName: "Doe", email: "john.doe@gmail.com", phone: "+919123456789" },
      { authorization: `Bearer ${await idToken()}` },
    );
    assert.equal(res.status, 201);
    assert.equal(typeof json["id"], "number");
    assert.equal(json["type"], "SALES");
    assert.equal(json["source"], "Website");
    assert.equal(json["state"], "Cold");
    assert.equal(json["subState"], "Followup");
    assert.equal(json["followup"], 1);
    assert.ok(!Number.isNaN(Date.parse(json["nextScheduleTime"])));
    assert.equal(eminence.state.accepted.length, 1);
  });

  void it("rejects a missing email, a Cognito InitiateAuth token, and an expired token", async () => {
    const token_ = await idToken();
    const missing = await postLead("/eminence", { name: "John" }, { authorization: `Bearer ${token_}` });
    assert.equal(missing.res.status, 400);
    assert.equal(missing.json["field"], "email");
    const login = await passwordAuth("alice", "Alice-pass1");
    const foreign = await postLead(
      "/eminence",
      { name: "J", email: "j@x.io" },
      { authorization: `Bearer ${login.json["AuthenticationResult"].IdToken}` },
    );
    assert.equal(foreign.res.status, 401);
    hostedUi.expireTokens();
    const expired = await postLead(
      "/eminence",
      { name: "J", email: "j@x.io" },
      { authorization: `Bearer ${token_}` },
    );
    assert.equal(expired.res.status, 401);
    assert.deepEqual(expired.json, { message: "The incoming token has expired" });
  });
});
