// The `cognito` auth type against cognito-local (npm `cognito-local` 5, a Cognito emulator others
// wrote), so the Cognito simulator is not the only judge: the pool, app client and user are made
// through its admin calls; a `seventargets` destination logs in with USER_PASSWORD_AUTH and
// pushes the RS256 IdToken to an API that verifies it; a refused token is refreshed with
// REFRESH_TOKEN_AUTH.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createPublicKey, createVerify } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { createDestination, delivered, freePort, postLead } from "./helpers/connect.ts";
import { eventually, startApp, type TestApp } from "./helpers/harness.ts";

const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve("cognito-local/package.json"));
const publicJwk = JSON.parse(readFileSync(join(pkgDir, "lib/keys/cognitoLocal.public.json"), "utf8")) as {
  jwk: Record<string, string>;
};
const publicKey = createPublicKey({ key: publicJwk.jwk, format: "jwk" });

const USER = { name: "leads@7targets.test", password: "Local-pass-7t!1" };

let dir = "";
let child: ChildProcess;
let cognitoUrl = "";
let poolId = "";
let clientId = "";
let api: Server;
let apiUrl = "";
let rejectNext = 0;
const received: { sub: unknown; body: unknown }[] = [];
let t: TestApp;

/** An admin call of the Cognito wire API (cognito-local does not check signatures). */
async function cognito(action: string, body: unknown): Promise<Record<string, any>> {
  const res = await fetch(cognitoUrl, {
    method: "POST",
    headers: {
      "x-amz-target": `AWSCognitoIdentityProviderService.${action}`,
      "content-type": "application/x-amz-json-1.1",
    },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, any>;
  assert.equal(res.status, 200, `${action}: ${JSON.stringify(json)}`);
  return json;
}

function verify(token: string): Record<string, unknown> | undefined {
  const [h, p, s] = token.split(".");
  if (!h || !p || !s) return undefined;
  const ok = createVerify("RSA-SHA256").update(`${h}.${p}`).verify(publicKey, Buffer.from(s, "base64url"));
  if (!ok) return undefined;
  const claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8")) as Record<string, unknown>;
  const fresh = Number(claims["exp"]) * 1000 > Date.now();
  const ours = String(claims["iss"]).endsWith(`/${poolId}`) && claims["aud"] === clientId;
  return fresh && ours && claims["token_use"] === "id" ? claims : undefined;
}

async function leads(req: IncomingMessage, res: ServerResponse) {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
  const claims = token ? verify(token) : undefined;
  if (!claims || rejectNext > 0) {
    rejectNext = Math.max(0, rejectNext - 1);
    return void res.writeHead(401, { "content-type": "application/json" }).end('{"message":"Unauthorized"}');
  }
  received.push({ sub: claims["sub"], body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
  res.writeHead(201, { "content-type": "application/json" });
  res.end(JSON.stringify({ id: 100 + received.length, state: "Cold", subState: "Followup_1" }));
}

before(async () => {
  // cognito-local keeps its data in `.cognito` under its working directory: a temp dir per run.
  dir = mkdtempSync(join(tmpdir(), "leadpush-cognito-local-"));
  const port = await freePort();
  cognitoUrl = `http://127.0.0.1:${port}/`;
  child = spawn(process.execPath, [join(pkgDir, "lib/bin/start.js")], {
    cwd: dir,
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", NODE_NO_WARNINGS: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  await eventually(
    () => output.includes("Cognito Local running"),
    20_000,
    `cognito-local to start (${output})`,
  );

  const pool = await cognito("CreateUserPool", { PoolName: "leadpush-test" });
  poolId = pool["UserPool"]["Id"] as string;
  const client = await cognito("CreateUserPoolClient", {
    UserPoolId: poolId,
    ClientName: "leadpush",
    ExplicitAuthFlows: ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
  });
  clientId = client["UserPoolClient"]["ClientId"] as string;
  await cognito("AdminCreateUser", {
    UserPoolId: poolId,
    Username: USER.name,
    TemporaryPassword: "Temp-pass-0!1",
    MessageAction: "SUPPRESS",
  });
  await cognito("AdminSetUserPassword", {
    UserPoolId: poolId,
    Username: USER.name,
    Password: USER.password,
    Permanent: true,
  });

  api = createServer((req, res) => void leads(req, res));
  await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
  t = await startApp({ env: { LEADPUSH_DUPLICATE_WINDOW_DAYS: "0" } });
});

after(async () => {
  await t?.close();
  await new Promise((r) => api?.close(r));
  child?.kill();
  rmSync(dir, { recursive: true, force: true });
});

test("seventargets + cognito against cognito-local: login, reuse, refresh after a refusal", async () => {
  await createDestination(t, {
    name: "seventargets-local",
    connector: "seventargets",
    url: `${apiUrl}/leads`,
    auth: { type: "cognito", endpoint: cognitoUrl, clientId, username: USER.name, password: USER.password },
    options: { assistantId: "assistant-1" },
  });
  const first = await delivered(t, await postLead(t, { name: "Ana", email: "ana@example.com" }));
  assert.equal(first.externalId, "101");
  assert.deepEqual(
    first.attempts[0]!.exchanges.map((e) => [e.step, e.status]),
    [
      ["auth:login", 200],
      ["push", 201],
    ],
  );
  const second = await delivered(t, await postLead(t, { name: "Ben", email: "ben@example.com" }));
  assert.deepEqual(
    second.attempts[0]!.exchanges.map((e) => [e.step, e.status]),
    [["push", 201]],
    "the IdToken is reused",
  );
  // The API refuses the token once: leadpush refreshes it (REFRESH_TOKEN_AUTH) and sends again.
  rejectNext = 1;
  const third = await delivered(t, await postLead(t, { name: "Cy", email: "cy@example.com" }));
  assert.deepEqual(
    third.attempts[0]!.exchanges.map((e) => [e.step, e.status]),
    [
      ["push", 401],
      ["auth:refresh", 200],
      ["push", 201],
    ],
  );
  assert.equal(received.length, 3);
  assert.equal((received[0]!.body as Record<string, unknown>)["assistantId"], "assistant-1");
});
