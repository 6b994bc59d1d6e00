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
import { createDestination, deliveryOf, postLead, waitStatus } from "./helpers/leads.ts";

// Two workers on one Postgres database share one circuit: one probe per cool-down between them.
let t: TestApp;
let second: App;
let sb: Awaited<ReturnType<typeof startSandbox>>;

before(async () => {
  sb = await startSandbox();
  t = await startApp({ backend: "postgres" });
  const config = loadConfig({
    DATABASE_URL: t.databaseUrl,
    LEADPUSH_DATA_DIR: mkdtempSync(join(tmpdir(), "leadpush-h2-")),
    LEADPUSH_SECRET_KEY: SECRET_KEY,
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

test("two workers: the circuit opens for both, probes do not overlap, everything lands afterwards", async () => {
  const name = "shared-circuit";
  const cooldownMs = 400;
  await createDestination(t, name, {
    url: `${sb.url}/sink/shared-circuit`,
    retry: { delaysMs: [100, 100], jitter: 0 },
    circuit: { failureThreshold: 3, cooldownMs },
  });
  sb.sink.reset();
  sb.sink.behave({ status: 503, times: 100_000 });
  const ids: string[] = [];
  for (let i = 0; i < 12; i++) ids.push(await postLead(t, name));
  await eventually(
    async () => (await t.api("GET", `/v1/destinations/${name}`)).body.state === "circuit_open",
    10_000,
    "circuit_open",
  );
  // Both caches have seen it (they reload within a second): from then on only probes go out.
  await new Promise((r) => setTimeout(r, 1200));
  const from = sb.sink.received.length;
  await new Promise((r) => setTimeout(r, 2000));
  const probes = sb.sink.received.slice(from).map((r) => r.at);
  assert.ok(probes.length >= 2, `probes were sent (${probes.length})`);
  for (let i = 1; i < probes.length; i++)
    assert.ok(
      probes[i]! - probes[i - 1]! >= cooldownMs * 0.75,
      `probes ${probes[i]! - probes[i - 1]!} ms apart`,
    );
  for (const id of ids) assert.notEqual((await deliveryOf(t, id)).status, "failed");
  sb.sink.reset();
  for (const id of ids) await waitStatus(t, id, "delivered", 15_000);
  assert.equal(sb.sink.delivered.size, 12);
});
