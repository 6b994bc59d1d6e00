import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { createTransport, type Exchange, newRequest, type OutboundRequest } from "../src/http/http-client.ts";
import { recordingClient, redactRecorded } from "../src/http/recording.ts";
import { createRedactor } from "../src/util/redact.ts";

// The push transport against a real server on 127.0.0.1: what a connector gets back for each kind
// of answer, and that the timeout bounds the whole exchange, waiting for a connection included.
let url: string;
const hung: ServerResponse[] = [];
const seen: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[] = [];
const server = createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (c: string) => (body += c));
  req.on("end", () => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
    if (req.url?.startsWith("/hang")) return void hung.push(res);
    if (req.url?.startsWith("/bom")) {
      res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
      res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"access_token":"t-1"}')]));
      return;
    }
    if (req.url?.startsWith("/chunks")) {
      res.writeHead(201, {
        "content-type": "application/json",
        "set-cookie": ["a=1; Path=/", "b=2; Path=/"],
      });
      res.write('{"id":"ext-');
      setTimeout(() => res.end('7","city":"पुणे"}'), 20);
      return;
    }
    res.writeHead(500, { "x-one": "1" });
    res.end("boom");
  });
});

before(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  for (const res of hung) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function post(path: string, body: unknown = { name: "A" }): OutboundRequest {
  const req = newRequest("POST", `${url}${path}`);
  req.body = body;
  req.contentType = "json";
  req.query = { q: "x y" };
  req.headers["idempotency-key"] = "d-1";
  return req;
}

test("a body in several chunks, multi-byte text, repeated Set-Cookie, query and headers sent", async () => {
  const t = createTransport({ allowPrivateNetworks: true });
  try {
    const r = await t.send(post("/chunks"), 2000);
    assert.ok(r.ok);
    assert.equal(r.response.status, 201);
    assert.deepEqual(r.response.json(), { id: "ext-7", city: "पुणे" });
    assert.deepEqual(r.response.setCookies, ["a=1; Path=/", "b=2; Path=/"]);
    assert.equal(r.response.headers["content-type"], "application/json");
    const last = seen.at(-1);
    assert.equal(last?.url, "/chunks?q=x+y");
    assert.equal(last?.headers["content-type"], "application/json");
    assert.equal(last?.headers["idempotency-key"], "d-1");
    assert.deepEqual(JSON.parse(last?.body ?? ""), { name: "A" });
  } finally {
    await t.close();
  }
});

test("an error status is an answer, not a failure; a non-JSON body gives json() undefined", async () => {
  const t = createTransport({ allowPrivateNetworks: true });
  try {
    const r = await t.send(post("/500"), 2000);
    assert.ok(r.ok);
    assert.equal(r.response.status, 500);
    assert.equal(r.response.text, "boom");
    assert.equal(r.response.json(), undefined);
    assert.equal(r.response.headers["x-one"], "1");
  } finally {
    await t.close();
  }
});

test("timeout: a hanging answer, and a request still waiting for a connection", async () => {
  const t = createTransport({ allowPrivateNetworks: true, connectionsPerOrigin: 1 });
  try {
    const started = performance.now();
    const settledAt = (p: Promise<unknown>) => p.then(() => performance.now() - started);
    // The first request holds the only connection; the second never gets one before its deadline.
    const firstP = t.send(post("/hang/1"), 1500);
    const secondP = t.send(post("/hang/2"), 150);
    const [first, second, secondMs] = await Promise.all([firstP, secondP, settledAt(secondP)]);
    assert.equal(first.ok ? undefined : first.error.code, "timeout");
    assert.equal(second.ok ? undefined : second.error.code, "timeout");
    assert.ok(secondMs < 1000, `the waiting request ended at its own deadline (${Math.round(secondMs)} ms)`);
    assert.equal(seen.filter((s) => s.url.startsWith("/hang/2")).length, 0, "the second was never sent");
    // The transport is usable afterwards.
    const r = await t.send(post("/chunks"), 2000);
    assert.equal(r.ok && r.response.status, 201);
  } finally {
    await t.close();
  }
});

test("a JSON answer that starts with a byte-order mark (.NET, IIS) still parses", async () => {
  const t = createTransport({ allowPrivateNetworks: true });
  try {
    const r = await t.send(post("/bom"), 2000);
    assert.ok(r.ok);
    assert.deepEqual(r.response.json(), { access_token: "t-1" });
  } finally {
    await t.close();
  }
});

test("network errors and bad URLs are failures with a code", async () => {
  const t = createTransport({ allowPrivateNetworks: true });
  try {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const refused = await t.send(newRequest("GET", `http://127.0.0.1:${port}/`), 2000);
    assert.equal(refused.ok ? undefined : refused.error.code, "network_error");
    assert.match(refused.ok ? "" : refused.error.message, /ECONNREFUSED/);
    const bad = await t.send(newRequest("GET", "not a url"), 2000);
    assert.equal(bad.ok ? undefined : bad.error.code, "network_error");
    // The same answer (a resolved failure, not a throw) when private networks are refused.
    const strict = createTransport({ allowPrivateNetworks: false });
    const badToo = await strict.send(newRequest("GET", "not a url"), 2000);
    assert.equal(badToo.ok ? undefined : badToo.error.code, "network_error");
    await strict.close();
  } finally {
    await t.close();
  }
});

test("private networks refused when not allowed", async () => {
  const t = createTransport({ allowPrivateNetworks: false });
  try {
    const r = await t.send(post("/chunks"), 2000);
    assert.equal(r.ok ? undefined : r.error.code, "blocked_address");
  } finally {
    await t.close();
  }
});

test("recorded exchanges: redacted when recorded, and again when stored if the redactor learned more", async () => {
  const t = createTransport({ allowPrivateNetworks: true });
  try {
    const redactor = createRedactor(["d-1-secret-header-value"]);
    const exchanges: Exchange[] = [];
    const client = recordingClient(t, redactor, exchanges);
    const req = post("/chunks");
    req.headers["x-trace"] = "d-1-secret-header-value";
    await client.send(req, { timeoutMs: 2000 });
    const [ex] = exchanges;
    assert.ok(ex);
    assert.equal(ex.requestHeaders["x-trace"], "[redacted]");
    assert.equal(redactRecorded(exchanges, redactor)[0], ex, "nothing new learned: stored as recorded");
    const other = createRedactor(["ext-7"]);
    assert.notEqual(redactRecorded(exchanges, other)[0], ex, "another redactor redacts it again");
    // A token learned after the exchange was recorded (as a handshake's answer is): another pass.
    redactor.add("ext-7");
    assert.match(ex.responseBody ?? "", /ext-7/);
    const [stored] = redactRecorded(exchanges, redactor);
    assert.equal(stored?.responseBody, '{"id":"[redacted]","city":"पुणे"}');
    assert.equal(stored?.requestHeaders["x-trace"], "[redacted]");
  } finally {
    await t.close();
  }
});
