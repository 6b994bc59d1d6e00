// What a token endpoint's answer means (pure functions of src/auth/token-response.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { httpResponse, type HttpResult } from "../src/http/http-client.ts";
import { excerpt, expiresAtFrom, stringAt, tokenResponse } from "../src/auth/token-response.ts";

function answer(status: number, text: string, headers: Record<string, string> = {}): HttpResult {
  return { ok: true, response: httpResponse(status, headers, [], text) };
}

void test("statuses map to auth codes", () => {
  const code = (r: HttpResult) => {
    const got = tokenResponse(r);
    return got.ok ? "ok" : got.code;
  };
  assert.equal(code(answer(200, "{}")), "ok");
  assert.equal(code(answer(401, "")), "auth_rejected");
  assert.equal(code(answer(403, "")), "auth_rejected");
  assert.equal(code(answer(400, '{"error":"invalid_grant"}')), "auth_rejected");
  for (const s of [500, 502, 503, 408, 429]) assert.equal(code(answer(s, "")), "auth_unreachable");
  assert.equal(
    code({ ok: false, error: { code: "timeout", message: "no complete answer within 10 ms" } }),
    "auth_unreachable",
  );
});

void test("messages: the OAuth error code, or a short excerpt with token-like strings blanked", () => {
  const oauth = tokenResponse(answer(400, '{"error":"invalid_grant","error_description":"user x pass y"}'));
  assert.ok(!oauth.ok && oauth.message === "token endpoint answered 400: invalid_grant");
  const echoed = tokenResponse(
    answer(
      401,
      `Logon failed for Basic ${Buffer.from("user:s3cret-password").toString("base64")}\n${"x".repeat(500)}`,
    ),
  );
  assert.ok(!echoed.ok);
  assert.doesNotMatch(echoed.message, /dXNlcjpzM2NyZXQtcGFzc3dvcmQ/);
  assert.ok(echoed.message.length < 160, echoed.message);
  assert.equal(
    excerpt("  <html>\n <body>Gateway maintenance</body></html> "),
    "<html> <body>Gateway maintenance</body></html>",
  );
});

void test("stringAt and expiresAtFrom", () => {
  const body = { UserAuthenticationResult: { data: { UserToken: "t0k" } }, n: 1 };
  assert.equal(stringAt(body, "UserAuthenticationResult.data.UserToken"), "t0k");
  assert.equal(stringAt(body, "UserAuthenticationResult.data.Missing"), undefined);
  assert.equal(stringAt(body, "n"), undefined);
  assert.equal(stringAt({ a: "" }, "a"), undefined);
  assert.equal(stringAt({}, "constructor"), undefined);
  assert.equal(expiresAtFrom(60, 1000), 61_000);
  assert.equal(expiresAtFrom("60", 1000), 61_000);
  for (const bad of [undefined, null, 0, -5, "soon", ""]) assert.equal(expiresAtFrom(bad, 1000), undefined);
});
