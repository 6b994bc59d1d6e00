// Too-large bodies get a 413 JSON answer, not a reset connection (issue 12, item 7).
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ADMIN_TOKEN, startApp, type TestApp } from "./helpers/harness.ts";

const IMPORT_LIMIT = 1024 * 1024;

interface Outcome {
  status?: number;
  body?: { error?: { code: string; message: string } };
  /** A socket error while writing or reading (EPIPE, ECONNRESET): what clients saw before. */
  error?: string;
}

/**
 * A real client: writes `size` bytes in 64 KB pieces with a pause between them (as a client on a
 * network does), with Content-Length or chunked, then reads the answer. It succeeds only when
 * the whole body was written and the answer read without a socket error.
 */
function post(
  url: string,
  path: string,
  size: number,
  chunked: boolean,
  contentType: string,
): Promise<Outcome> {
  return new Promise((resolve) => {
    let answer: Outcome | undefined;
    let written = false;
    const finish = () => answer && written && resolve(answer);
    const req = request(new URL(path, url), {
      method: "POST",
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        "content-type": contentType,
        ...(chunked ? {} : { "content-length": String(size) }),
      },
    });
    req.on("error", (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => {
        answer = { status: res.statusCode ?? 0, body: JSON.parse(text) as NonNullable<Outcome["body"]> };
        finish();
      });
    });
    const piece = Buffer.from(("x".repeat(1023) + "\n").repeat(64)); // 64 KB: 64 rows for imports
    void (async () => {
      let sent = 0;
      for (; sent < size && !req.destroyed; sent += piece.length) {
        const ok = req.write(piece.subarray(0, Math.min(piece.length, size - sent)));
        if (!ok) {
          await new Promise<void>((r) => {
            const go = () => (req.off("drain", go), req.off("close", go), r());
            req.on("drain", go).on("close", go);
          });
        }
        await sleep(2);
      }
      if (sent < size) return resolve({ error: `closed after ${sent} of ${size} bytes were written` });
      req.end(() => {
        written = true;
        finish();
      });
    })();
  });
}

describe("bodies over the limit", () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({ worker: false, env: { LEADPUSH_IMPORT_MAX_BYTES: String(IMPORT_LIMIT) } });
  });
  after(async () => t.close());

  const routes: [string, string, string][] = [
    ["/v1/leads", "application/json", "1 MB"],
    ["/v1/leads/batch", "application/json", "1 MB"],
    ["/v1/destinations", "application/json", "1 MB"],
    ["/v1/imports", "text/csv", "1 MB"],
  ];
  for (const [path, contentType, limit] of routes) {
    for (const chunked of [false, true]) {
      test(`${path}: 2 MB ${chunked ? "chunked" : "with Content-Length"} → 413 payload_too_large JSON`, async () => {
        const res = await post(t.url, path, 2 * 1024 * 1024, chunked, contentType);
        assert.equal(res.error, undefined, `the client saw ${res.error}`);
        assert.equal(res.status, 413);
        assert.equal(res.body?.error?.code, "payload_too_large");
        assert.match(res.body?.error?.message ?? "", new RegExp(limit));
      });
    }
  }

  test("the server still answers, and a body within the limit is taken", async () => {
    const ok = await t.api("POST", "/v1/leads", { name: "After", email: "after@limit.test" });
    assert.equal(ok.status, 201, ok.text);
    const csv = await t.api("POST", "/v1/imports", "name,email\nA,a@limit.test\n", {
      headers: { "content-type": "text/csv" },
    });
    assert.equal(csv.status, 201, csv.text);
    assert.equal(csv.body.accepted, 1);
  });
});
