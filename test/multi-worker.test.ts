import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createApp, type App } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/logger.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { eventually, SECRET_KEY, startApp, type TestApp } from "./helpers/harness.ts";

// Several workers on one Postgres database: FOR UPDATE SKIP LOCKED claims, LISTEN/NOTIFY wake-ups,
// and lease heartbeats so a slow push is never taken over by another worker.
let t: TestApp;
let second: App;
let sb: Awaited<ReturnType<typeof startSandbox>>;
const LEASE_MS = 600;

before(async () => {
  sb = await startSandbox();
  t = await startApp({
    backend: "postgres",
    env: { LEADPUSH_LEASE_MS: String(LEASE_MS), LEADPUSH_WORKER_CONCURRENCY: "8" },
  });
  const config = loadConfig({
    DATABASE_URL: t.databaseUrl,
    LEADPUSH_DATA_DIR: mkdtempSync(join(tmpdir(), "leadpush-w2-")),
    LEADPUSH_SECRET_KEY: SECRET_KEY,
    LEADPUSH_LEASE_MS: String(LEASE_MS),
    LEADPUSH_WORKER_CONCURRENCY: "8",
    LOG_LEVEL: "warn",
  });
  second = await createApp(config, { api: false, logger: createLogger("warn") });
  await second.start();
});
after(async () => {
  await second.stop();
  await t.close();
  await sb.close();
});

test("two workers share the queue: every lead pushed exactly once, both did work", async () => {
  await t.api("POST", "/v1/destinations", {
    name: "shared",
    connector: "http",
    url: `${sb.url}/sink/shared`,
    concurrency: 4,
  });
  sb.sink.reset();
  sb.sink.behave({ delayMs: 20 });
  const done = { first: 0, second: 0 };
  const off1 = t.app.events.on("delivery:completed", () => done.first++);
  const off2 = second.events.on("delivery:completed", () => done.second++);
  const res = await t.api("POST", "/v1/leads/batch", {
    leads: Array.from({ length: 200 }, (_, i) => ({ name: `W${i}`, email: `w${i}@multi.test` })),
  });
  assert.equal(res.body.accepted, 200);
  await eventually(() => sb.sink.delivered.size >= 200, 30_000, "all delivered");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(sb.sink.counts.total, 200, "no delivery was pushed twice");
  const attempts = await t.app.kysely.selectFrom("attempts").select("id").execute();
  assert.equal(attempts.length, 200);
  off1();
  off2();
  assert.equal(done.first + done.second, 200);
  assert.ok(done.first > 0 && done.second > 0, `both workers pushed: ${JSON.stringify(done)}`);
});

test("a push slower than the lease is not taken over by the other worker", async () => {
  await t.api("POST", "/v1/destinations", {
    name: "slow",
    connector: "http",
    url: `${sb.url}/sink/slow`,
    concurrency: 1,
  });
  sb.sink.reset();
  sb.sink.behave({ delayMs: LEASE_MS * 4 });
  const res = await t.api("POST", "/v1/leads", { name: "Slow", email: "slow@multi.test" });
  const d = await eventually(
    async () => {
      const r = await t.api("GET", `/v1/leads/${res.body.id}`);
      return r.body.deliveries[0]?.status === "delivered" ? r.body.deliveries[0] : undefined;
    },
    20_000,
    "delivered",
  );
  await new Promise((r) => setTimeout(r, LEASE_MS * 2));
  const pushes = sb.sink.received.filter((r) => r.path === "/slow");
  assert.equal(pushes.length, 1, "pushed once, though it took 4 leases");
  assert.equal(d.attemptCount, 1);
});
