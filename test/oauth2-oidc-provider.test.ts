// The `oauth2` strategy against a real OAuth 2.0 server (oidc-provider, client_credentials grant),
// pushing to a sink that accepts only access tokens that server issued.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import Provider from "oidc-provider";
import { eventually, startApp, type TestApp } from "./helpers/harness.ts";
import { createDestination, deliveryOf, postLead, waitStatus } from "./helpers/leads.ts";

// Secrets with characters RFC 6749 §2.3.1 form-encodes before Basic (space, +, :, /).
const CLIENTS = {
  basic: { id: "leadpush basic", secret: "cc secret+/:basic 7731" },
  post: { id: "leadpush-post", secret: "cc secret post 7732" },
};

let provider: Provider;
let idp: Server;
let issuer: string;
let tokenRequests = 0;

/** The protected API: 201 for a bearer token the provider issued (to a known client), else 401. */
let api: Server;
let apiUrl: string;
const received: { clientId: string; token: string; body: unknown }[] = [];

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

async function accept(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
  const found = token === undefined ? undefined : await provider.ClientCredentials.find(token);
  if (token === undefined || !found) {
    res.writeHead(401, { "www-authenticate": 'Bearer error="invalid_token"' }).end();
    return;
  }
  const body: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  received.push({ clientId: String(found.clientId), token, body });
  res
    .writeHead(201, { "content-type": "application/json" })
    .end(JSON.stringify({ id: `lead-${received.length}` }));
}

let t: TestApp;

before(async () => {
  idp = createServer();
  issuer = await listen(idp);
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  provider = new Provider(issuer, {
    clients: Object.values(CLIENTS).map((c, i) => ({
      client_id: c.id,
      client_secret: c.secret,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: i === 0 ? "client_secret_basic" : "client_secret_post",
    })),
    features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
    jwks: { keys: [{ ...privateKey.export({ format: "jwk" }), kid: "test", use: "sig" }] },
    ttl: { ClientCredentials: 600 },
  });
  const handle = provider.callback();
  idp.on("request", (req, res) => {
    if (req.url?.startsWith("/token")) tokenRequests++;
    void handle(req, res);
  });

  api = createServer((req, res) => void accept(req, res));
  apiUrl = await listen(api);
  t = await startApp();
});

// Each part only if it started: a failed `before` must not leave servers keeping the file alive.
after(async () => {
  await t?.close();
  await new Promise((r) => (api ? api.close(r) : r(undefined)));
  await new Promise((r) => (idp ? idp.close(r) : r(undefined)));
});

const auth = (which: keyof typeof CLIENTS) => ({
  type: "oauth2",
  tokenUrl: `${issuer}/token`,
  grantType: "client_credentials",
  bodyFormat: "form",
  clientAuth: which === "basic" ? "basic" : "body",
  clientId: CLIENTS[which].id,
  clientSecret: CLIENTS[which].secret,
});

void describe("oauth2 against oidc-provider (client_credentials)", () => {
  for (const which of ["basic", "post"] as const) {
    void test(`client_secret_${which}: delivered, and one token serves many leads`, async () => {
      const name = `idp-${which}`;
      await createDestination(t, name, { url: `${apiUrl}/leads`, auth: auth(which) });
      const before = tokenRequests;
      const first = await waitStatus(t, await postLead(t, name), "delivered");
      assert.equal(first.attemptCount, 1);
      assert.equal(tokenRequests - before, 1);
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push(await postLead(t, name));
      for (const id of ids) await waitStatus(t, id, "delivered");
      assert.equal(tokenRequests - before, 1, "the token is reused");
      assert.equal(received.filter((r) => r.clientId === CLIENTS[which].id).length, 6);
    });
  }

  void test("a token the server revoked: a new one is fetched within the same attempt", async () => {
    const name = "idp-revoked";
    await createDestination(t, name, { url: `${apiUrl}/leads`, auth: auth("basic") });
    await waitStatus(t, await postLead(t, name), "delivered");
    // The server revokes the token in use (as an admin revoking the client's grants would).
    const token = received.at(-1)!.token;
    await (await provider.ClientCredentials.find(token))!.destroy();
    const before = tokenRequests;
    const d = await waitStatus(t, await postLead(t, name), "delivered");
    assert.equal(d.attemptCount, 1);
    assert.deepEqual(
      d.attempts[0]!.exchanges.map((e) => [e.step, e.status]),
      [
        ["push", 401],
        ["auth:token", 200],
        ["push", 201],
      ],
    );
    assert.equal(tokenRequests - before, 1);
  });

  void test("a wrong client secret: auth_rejected, the delivery waits for a fix", async () => {
    const name = "idp-wrong";
    await createDestination(t, name, {
      url: `${apiUrl}/leads`,
      auth: { ...auth("post"), clientSecret: "not the secret" },
    });
    const id = await postLead(t, name);
    const d = await eventually(async () => {
      const v = await deliveryOf(t, id);
      return v.lastError ? v : undefined;
    });
    assert.equal(d.lastError?.code, "auth_rejected");
    assert.match(d.lastError?.message ?? "", /401: invalid_client/);
    assert.notEqual(d.status, "failed");
    await t.api("DELETE", `/v1/destinations/${name}`);
  });
});
