// The browser connect flow of `oauth2_code` against a real OAuth 2.0 / OpenID Connect server from
// npm (oidc-provider), so the hosted-UI simulator is not the only judge: authorization code with
// PKCE S256 (required), client_secret_basic, RFC 9207 `iss` in the authorization response, RS256
// ID tokens, refresh_token grant. The login and consent interactions are answered by a tiny
// handler that signs the one account in, and the "browser" (fetch, redirects and cookies by hand)
// walks through every redirect.
import assert from "node:assert/strict";
import { createVerify, generateKeyPairSync, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { after, before, test } from "node:test";
import Provider from "oidc-provider";
import { createDestination, delivered, freePort, postLead } from "./helpers/connect.ts";
import { ADMIN_TOKEN, startApp, type TestApp } from "./helpers/harness.ts";

const CLIENT = { id: "leadpush-eminence", secret: "oidc secret+/: 8842" };
const ACCOUNT = "user-42";

let provider: Provider;
let idp: Server;
let issuer = "";
let publicKey: KeyObject;
let api: Server;
let apiUrl = "";
let t: TestApp;
let publicUrl = "";
const grants: string[] = [];
const received: { claims: Record<string, unknown>; body: unknown }[] = [];

async function listen(server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** The protected API: 201 for a valid RS256 ID token of this issuer and client, else 401. */
function verifyIdToken(token: string): Record<string, unknown> | undefined {
  const [h, p, s] = token.split(".");
  if (!h || !p || !s) return undefined;
  const ok = createVerify("RSA-SHA256").update(`${h}.${p}`).verify(publicKey, Buffer.from(s, "base64url"));
  if (!ok) return undefined;
  const claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as Record<string, unknown>;
  if (claims["iss"] !== issuer || claims["aud"] !== CLIENT.id) return undefined;
  return Number(claims["exp"]) * 1000 > Date.now() ? claims : undefined;
}

async function leads(req: IncomingMessage, res: ServerResponse) {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
  const claims = token ? verifyIdToken(token) : undefined;
  if (!claims)
    return void res.writeHead(401, { "content-type": "application/json" }).end('{"message":"Unauthorized"}');
  received.push({ claims, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
  res.writeHead(201, { "content-type": "application/json" });
  res.end(JSON.stringify({ id: 9000 + received.length, state: "Cold", subState: "Followup", followup: 1 }));
}

/** Login and consent, answered at once for ACCOUNT (what a person clicking "Sign in" and "Allow" does). */
async function interaction(req: IncomingMessage, res: ServerResponse) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === "login") {
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: ACCOUNT } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  const grant = new provider.Grant({ accountId: ACCOUNT, clientId: CLIENT.id });
  grant.addOIDCScope(String(details.params["scope"]));
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

before(async () => {
  const port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  idp = createServer();
  issuer = await listen(idp);
  const keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
  publicKey = keys.publicKey;
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT.id,
        client_secret: CLIENT.secret,
        redirect_uris: [`${publicUrl}/v1/oauth/callback`],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    pkce: { required: () => true },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub, email: "leads@example.com" }) }),
    claims: { openid: ["sub"], email: ["email"] },
    interactions: { url: (_ctx, i) => `/interaction/${i.uid}` },
    features: { devInteractions: { enabled: false } },
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    jwks: { keys: [{ ...keys.privateKey.export({ format: "jwk" }), kid: "k1", use: "sig", alg: "RS256" }] },
    ttl: { AccessToken: 3, IdToken: 3, RefreshToken: 3600, Grant: 3600, Session: 3600, Interaction: 600 },
  });
  provider.on("grant.success", (ctx) => grants.push(String(ctx.oidc.params?.["grant_type"] ?? "")));
  const handle = provider.callback();
  idp.on("request", (req, res) => {
    if (req.url?.startsWith("/interaction/")) void interaction(req, res);
    else void handle(req, res);
  });
  api = createServer((req, res) => void leads(req, res));
  apiUrl = await listen(api);
  t = await startApp({
    env: { PORT: String(port), LEADPUSH_PUBLIC_URL: publicUrl, LEADPUSH_DUPLICATE_WINDOW_DAYS: "0" },
  });
});

// Each part only if it started: a failed `before` must not leave servers keeping the file alive.
after(async () => {
  await t?.close();
  await new Promise((r) => (api ? api.close(r) : r(undefined)));
  idp?.closeAllConnections();
  await new Promise((r) => (idp ? idp.close(r) : r(undefined)));
});

/** A browser: follows redirects by hand, keeps cookies (every cookie to every path of the IdP: enough here). */
async function walk(url: string, headers: Record<string, string>, stopAt: string) {
  const jar = new Map<string, string>();
  let next = url;
  const seen: string[] = [];
  for (let i = 0; i < 12; i++) {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    const res = await fetch(next, {
      redirect: "manual",
      headers: { ...(next.startsWith(publicUrl) ? headers : {}), ...(cookie ? { cookie } : {}) },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const at = pair!.indexOf("=");
      jar.set(pair!.slice(0, at), pair!.slice(at + 1));
    }
    seen.push(`${res.status} ${new URL(next).pathname}`);
    const location = res.headers.get("location");
    if (next.startsWith(stopAt)) return { status: res.status, text: await res.text(), seen };
    await res.arrayBuffer();
    assert.ok(location, `${res.status} without a location at ${next}: ${seen.join(" → ")}`);
    next = new URL(location, next).href;
  }
  throw new Error(`too many redirects: ${seen.join(" → ")}`);
}

test("connect against oidc-provider, push with its RS256 id_token, refresh before expiry", async () => {
  const dest = await createDestination(t, {
    name: "oidc-eminence",
    connector: "eminence",
    url: `${apiUrl}/leads`,
    auth: {
      type: "oauth2_code",
      authorizeUrl: `${issuer}/auth`,
      tokenUrl: `${issuer}/token`,
      clientId: CLIENT.id,
      clientSecret: CLIENT.secret,
    },
  });
  const page = await walk(
    `${publicUrl}/v1/destinations/${dest.id}/connect`,
    { authorization: `Bearer ${ADMIN_TOKEN}` },
    `${publicUrl}/v1/oauth/callback`,
  );
  assert.equal(page.status, 200, `${page.text}\n${page.seen.join(" → ")}`);
  assert.match(page.text, /<h1>Connected<\/h1>/);
  assert.deepEqual(grants, ["authorization_code"]);

  const first = await delivered(t, await postLead(t, { name: "Ravi", email: "ravi@example.com" }));
  assert.equal(first.externalId, "9001");
  assert.equal(received[0]!.claims["sub"], ACCOUNT);
  assert.equal(received[0]!.claims["aud"], CLIENT.id);

  // The ID token lives 3 s: the runtime refreshes it (refresh_token grant) 1 s before it ends.
  await new Promise((r) => setTimeout(r, 2200));
  const second = await delivered(t, await postLead(t, { name: "Meera", email: "meera@example.com" }));
  assert.deepEqual(
    second.attempts[0]!.exchanges.map((e) => [e.step, e.status]),
    [
      ["auth:refresh", 200],
      ["push", 201],
    ],
  );
  assert.deepEqual(grants, ["authorization_code", "refresh_token"]);
  assert.equal(received.length, 2);
});
