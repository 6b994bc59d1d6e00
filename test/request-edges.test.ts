import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { ADMIN_TOKEN, BACKENDS, startApp, type TestApp } from "./helpers/harness.ts";

/** A raw request (fetch refuses some of these URLs and headers itself). */
function raw(
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        hostname,
        port,
        path,
        method: "GET",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...headers },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const codeOf = (body: string) =>
  (JSON.parse(body) as { error: { code: string; message: string } }).error.code;

// Requests refused before any route runs still get the API's error shape, and a NUL character that
// Postgres cannot store or compare is a 400, never a 500 (found by the fuzz test).
for (const backend of BACKENDS) {
  describe(`requests refused early keep the error shape (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ backend, worker: false, env: { LOG_LEVEL: "warn" } });
    });
    after(async () => t.close());

    test("headers over 16 KB: 431 with {error: {code, message}}", async () => {
      const res = await raw(t.url, "/v1/leads", { "x-padding": "a".repeat(20_000) });
      assert.equal(res.status, 431);
      assert.equal(codeOf(res.body), "headers_too_large");
    });

    test("a path that is not valid percent-encoding: 400 invalid_url", async () => {
      const res = await raw(t.url, "/v1/leads/%ff%fe");
      assert.equal(res.status, 400, res.body);
      assert.equal(codeOf(res.body), "invalid_url");
    });

    test("a NUL character in the path, the query or a JSON body: 400, not 500", async () => {
      for (const path of ["/v1/leads/%00", "/v1/deliveries?destination=%00", "/v1/leads?q=a%00b"]) {
        const res = await raw(t.url, path);
        assert.equal(res.status, 400, `${path}: ${res.body}`);
        assert.equal(codeOf(res.body), "invalid_url");
        assert.match(res.body, /"code":"nul_character"/);
      }
      const del = await t.api("DELETE", "/v1/leads/%00");
      assert.equal(del.status, 400, del.text);
      const replay = await t.api("POST", "/v1/deliveries/replay", { destination: "\u0000" });
      assert.equal(replay.status, 400, replay.text);
      assert.equal(replay.body.error.details[0].code, "nul_character");
      const dest = await t.api("POST", "/v1/destinations", {
        name: "nul\u0000name",
        connector: "http",
        url: "http://127.0.0.1:9/x",
      });
      assert.equal(dest.status, 400, dest.text);
      assert.deepEqual(dest.body.error.details[0].path, ["name"]);
    });
  });
}
