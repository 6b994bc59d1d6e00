import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startSandbox } from "../src/sandbox/server.ts";
import { eventually, startApp, type TestApp } from "./helpers/harness.ts";

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
