import assert from "node:assert/strict";
import { lookup } from "node:dns/promises";
import { hostname } from "node:os";
import { after, before, test } from "node:test";
import { createTransport, newRequest } from "../src/http/http-client.ts";
import { blockedHost, isPrivateAddress } from "../src/http/private-address.ts";
import { SANDBOX_ACCOUNTS as A } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { eventually, startApp, type TestApp } from "./helpers/harness.ts";
import { FAST_RETRY } from "./helpers/leads.ts";

let t: TestApp;
let sb: Awaited<ReturnType<typeof startSandbox>>;
before(async () => {
  sb = await startSandbox();
  t = await startApp({ env: { LEADPUSH_ALLOW_PRIVATE_NETWORKS: "false" } });
});
after(async () => {
  await t.close();
  await sb.close();
});

test("LEADPUSH_ALLOW_PRIVATE_NETWORKS=false: pushes to loopback are refused, not retried", async () => {
  const port = new URL(sb.url).port;
  for (const [name, host] of [
    ["by-ip", "127.0.0.1"],
    ["by-name", "localhost"],
    ["ipv4-compatible", "[::127.0.0.1]"],
    ["nat64", "[64:ff9b::7f00:1]"],
    ["decimal", "2130706433"],
  ] as const) {
    await t.api("POST", "/v1/destinations", {
      name,
      connector: "http",
      url: `http://${host}:${port}/sink/x`,
    });
  }
  const res = await t.api("POST", "/v1/leads", { name: "S", email: "s@ssrf.test" });
  const lead = await eventually(async () => {
    const r = await t.api("GET", `/v1/leads/${res.body.id}`);
    return r.body.deliveries.every((d: { status: string }) => d.status === "failed") ? r.body : undefined;
  });
  for (const d of lead.deliveries) {
    assert.equal(d.lastError.code, "blocked_address");
    assert.equal(d.attemptCount, 1);
  }
  assert.equal(sb.sink.counts.total, 0);
});

/** Every spelling of a loopback/private address a URL can carry, and public ones that must pass. */
const BLOCKED_URLS = [
  "http://127.0.0.1/",
  "http://localhost/",
  "http://LOCALHOST./",
  "http://app.localhost/",
  "http://[::1]/",
  "http://[::]/",
  "http://0.0.0.0/",
  "http://0/",
  "http://2130706433/", // decimal
  "http://0x7f.1/", // hex
  "http://0177.0.0.1/", // octal
  "http://127.1/",
  "http://[::127.0.0.1]/", // IPv4-compatible
  "http://[::ffff:127.0.0.1]/", // IPv4-mapped
  "http://[::ffff:0:7f00:1]/", // IPv4-translated
  "http://[64:ff9b::7f00:1]/", // NAT64
  "http://[64:ff9b::a00:1]/", // NAT64 of 10.0.0.1
  "http://[64:ff9b:1::1]/", // local-use NAT64
  "http://[2002:7f00:1::]/", // 6to4 of 127.0.0.1
  "http://[2002:c0a8:101::1]/", // 6to4 of 192.168.1.1
  "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", // Teredo, client 127.0.0.1
  "http://[2001:0:a9fe:a9fe::1]/", // Teredo, server 169.254.169.254
  "http://169.254.169.254/", // cloud metadata
  "http://[fe80::1]/",
  "http://[fd00::1]/",
  "http://[ff02::1]/",
  "http://100.64.0.1/",
  "http://224.0.0.1/",
  "http://255.255.255.255/",
];
const PUBLIC_URLS = [
  "http://8.8.8.8/",
  "http://[2606:4700:4700::1111]/",
  "http://[64:ff9b::808:808]/", // NAT64 of a public address: how IPv6-only networks reach it
  "http://[::ffff:8.8.8.8]/",
  "http://[2002:808:808::1]/",
  "http://example.com/",
  "http://localhost.example.com/",
];

test("the guard sees through every IPv4 embedding and spelling; public addresses pass", () => {
  for (const url of BLOCKED_URLS) {
    assert.ok(blockedHost(new URL(url).hostname), `${url} is blocked`);
  }
  for (const url of PUBLIC_URLS) {
    assert.equal(blockedHost(new URL(url).hostname), undefined, `${url} passes`);
  }
  assert.equal(isPrivateAddress("::ffff:10.1.2.3"), true);
  assert.equal(isPrivateAddress("not an address"), false);
});

test("the transport refuses those forms, and names that resolve to a private address", async () => {
  const transport = createTransport({ allowPrivateNetworks: false });
  const port = new URL(sb.url).port;
  try {
    for (const url of BLOCKED_URLS) {
      const target = new URL(url);
      target.port = port;
      const r = await transport.send(newRequest("GET", target.href), 2000);
      assert.equal(r.ok ? r.response.status : r.error.code, "blocked_address", url);
    }
    // A name (not a literal) that resolves to loopback: refused in the connection's own lookup.
    const name = hostname();
    const resolved = await lookup(name).catch(() => undefined);
    if (resolved && isPrivateAddress(resolved.address) && !blockedHost(name)) {
      const r = await transport.send(newRequest("GET", `http://${name}:${port}/sink/x`), 2000);
      assert.equal(r.ok ? r.response.status : r.error.code, "blocked_address", name);
      const s = await transport.stream(`http://${name}:${port}/sink/x`, 2000);
      assert.equal(s.ok ? s.status : s.error.code, "blocked_address", name);
    }
  } finally {
    await transport.close();
  }
  assert.equal(sb.sink.counts.total, 0);
});

test("an auth handshake to a private address is refused as blocked_address: final, not retried", async () => {
  const port = new URL(sb.url).port;
  const local = `http://127.0.0.1:${port}`;
  const to = "auth-blocked";
  const filter = `attributes.to = '${to}'`;
  const common = { url: "http://push.example.invalid/leads", filter, retry: FAST_RETRY };
  const created = [
    {
      name: "oauth2-private",
      connector: "http",
      ...common,
      auth: { type: "oauth2", tokenUrl: `${local}/oauth2/token`, grantType: "password", ...A.oauth2 },
    },
    {
      name: "csrf-private",
      connector: "http",
      ...common,
      auth: { type: "csrf", tokenUrl: `${local}/csrf/token`, ...A.csrf },
    },
    {
      name: "key-token-private",
      connector: "http",
      ...common,
      auth: { type: "key_token", tokenUrl: `${local}/key-token/token`, ...A.keyToken },
    },
    {
      name: "reworked-private",
      connector: "reworked",
      baseUrl: `${local}/reworked`,
      email: A.reworked.email,
      password: A.reworked.password,
      filter,
      retry: FAST_RETRY,
    },
  ];
  const ids: string[] = [];
  for (const body of created) {
    const res = await t.api("POST", "/v1/destinations", body);
    assert.equal(res.status, 201, res.text);
    ids.push(res.body.id);
  }
  const res = await t.api("POST", "/v1/leads", { name: "T", email: "t@auth-blocked.test", to });
  assert.equal(res.status, 201, res.text);
  let seen: unknown;
  const lead = await eventually(async () => {
    const r = await t.api("GET", `/v1/leads/${res.body.id}`);
    // The first test's destinations (no filter) take this lead too.
    r.body.deliveries = r.body.deliveries.filter((d: { destination: string }) =>
      created.some((c) => c.name === d.destination),
    );
    seen = r.body.deliveries.map((d: { destination: string; status: string; lastError: unknown }) => [
      d.destination,
      d.status,
      d.lastError,
    ]);
    return r.body.deliveries.length === created.length &&
      r.body.deliveries.every((d: { status: string }) => d.status === "failed")
      ? r.body
      : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}; last seen: ${JSON.stringify(seen)}`);
  });
  for (const d of lead.deliveries) {
    assert.equal(d.lastError.code, "blocked_address", d.destination);
    assert.match(d.lastError.message, /127\.0\.0\.1 is a private address/);
    assert.equal(d.attemptCount, 1, d.destination);
  }
  // The destination test says the handshake failed, and why (it did not pretend auth was fine).
  for (const id of ids.slice(0, 2)) {
    const r = await t.api("POST", `/v1/destinations/${id}/test`, {});
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.auth.ok, false, JSON.stringify(r.body));
    assert.equal(r.body.auth.error.code, "blocked_address");
  }
});
