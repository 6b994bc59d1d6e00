import assert from "node:assert/strict";
import { test } from "node:test";
import { createRedactor, redactValue } from "../src/util/redact.ts";

test("redactor: every encoded form of a secret, headers, and tokens learned later", () => {
  const secret = "s3cr et/+!";
  const r = createRedactor([secret, "ab"]);
  const forms = [
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ v: secret }).toString().slice(2),
    JSON.stringify(secret).slice(1, -1),
    Buffer.from(secret).toString("base64"),
  ];
  for (const f of forms) assert.equal(r.text(`x=${f};`), "x=[redacted];", f);
  assert.equal(r.text("ab stays"), "ab stays", "values under 4 characters are not searched for");
  assert.deepEqual(r.headers({ Authorization: "Bearer zz", "x-other": `v ${secret}` }), {
    Authorization: "[redacted]",
    "x-other": "v [redacted]",
  });

  // A second redactor with the same secrets, then a token added to only one of them.
  const other = createRedactor([secret]);
  r.add("token-123456");
  assert.equal(r.text("Bearer token-123456"), "Bearer [redacted]");
  assert.equal(other.text("Bearer token-123456"), "Bearer token-123456");
  assert.equal(other.text(secret), "[redacted]");
  // Adding what is already known changes nothing (not even the generation, which tells the
  // attempt log whether text redacted earlier needs another pass); a fresh redactor starts from
  // its own secrets.
  const generation = r.generation;
  r.add(secret, undefined, "ab");
  assert.equal(r.generation, generation);
  r.add("another-token");
  assert.equal(r.generation, generation + 1);
  assert.equal(r.text(`${secret} token-123456`), "[redacted] [redacted]");
  assert.equal(createRedactor().text(secret), secret);

  // Redactors that learn the same token share what was compiled for it, not what they know.
  const a = createRedactor([secret]);
  const b = createRedactor([secret]);
  a.add("token-123456");
  b.add("token-123456");
  b.add("token-abcdef");
  assert.equal(a.text("token-abcdef token-123456"), "token-abcdef [redacted]");
  assert.equal(b.text("token-abcdef token-123456"), "[redacted] [redacted]");
  assert.equal(createRedactor([secret]).text("token-123456"), "token-123456");
  assert.deepEqual(a.headers({ Connection: "keep-alive", "x-id": "token-123456" }, new Set(["connection"])), {
    "x-id": "[redacted]",
  });
});

test("redactor: secret headers' values are learned (Basic pair, bearer token, cookies)", () => {
  const r = createRedactor();
  const basic = Buffer.from("user:pa55word").toString("base64");
  r.headers({
    authorization: `Basic ${basic}`,
    cookie: "sid=abcdef123456; lang=en",
    "set-cookie": "tok=zyxwvu987654; Path=/; HttpOnly",
  });
  const echoed = JSON.stringify({
    auth: `Basic ${basic}`,
    b: basic,
    c: "sid=abcdef123456",
    t: "zyxwvu987654",
  });
  assert.equal(
    r.text(echoed),
    JSON.stringify({ auth: "[redacted]", b: "[redacted]", c: "sid=[redacted]", t: "[redacted]" }),
  );
  assert.equal(r.text("lang=en Path=/"), "lang=en Path=/", "short cookie values and attributes stay");
});

test("redactValue: every string of a vendor's answer, keys included", () => {
  const r = createRedactor(["hunter2-secret"]);
  const value = { id: "x-hunter2-secret", list: [{ "hunter2-secret": 1 }, 2, null], n: 3 };
  assert.deepEqual(redactValue(value, r), { id: "x-[redacted]", list: [{ "[redacted]": 1 }, 2, null], n: 3 });
});
