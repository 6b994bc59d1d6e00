import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, test } from "node:test";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/logger.ts";
import { ADMIN_TOKEN } from "./helpers/harness.ts";

const root = mkdtempSync(join(tmpdir(), "leadpush-modes-"));
after(() => rmSync(root, { recursive: true, force: true }));

const mode = (p: string) => statSync(p).mode & 0o777;

/** Starts leadpush on the embedded database in `dataDir` (master key generated there), writes leads. */
async function run(dataDir: string): Promise<string[]> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString("utf8"));
      cb();
    },
  });
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    LEADPUSH_DATA_DIR: dataDir,
    LEADPUSH_ADMIN_TOKEN: ADMIN_TOKEN,
    LEADPUSH_CONFIG: join(dataDir, "absent.yaml"),
  });
  const app = await createApp(config, { logger: createLogger("info", sink) });
  try {
    const url = await app.start();
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${url}/v1/leads`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "Mode", email: `m${i}@modes.test` }),
      });
      assert.equal(res.status, 201);
    }
    // Checked while the database is open: the -wal and -shm files exist now.
    const files = readdirSync(dataDir);
    for (const f of ["leadpush.db", "leadpush.db-wal", "leadpush.db-shm", "secret.key"]) {
      assert.ok(files.includes(f), `${f} exists (${files.join(", ")})`);
    }
    assert.equal(mode(dataDir), 0o700, "data directory");
    for (const f of files) assert.equal(mode(join(dataDir, f)), 0o600, f);
  } finally {
    await app.stop();
  }
  return logs;
}

test("a fresh data directory is 0700 and every file leadpush writes in it 0600", async () => {
  const dir = join(root, "fresh", "data");
  await run(dir);
  assert.equal(mode(dir), 0o700);
  for (const f of readdirSync(dir)) assert.equal(mode(join(dir, f)), 0o600, `${f} after close`);
});

test("an existing data directory and files open to others are tightened, and the log says so", async () => {
  const dir = join(root, "loose");
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  const first = await run(dir);
  assert.ok(first.some((l) => l.includes("tightened to mode 0700")));
  // Files left 0644 by an earlier version (database, WAL, key) are tightened at the next start.
  chmodSync(dir, 0o777);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  writeFileSync(join(dir, "leadpush.db-journal"), "");
  chmodSync(join(dir, "leadpush.db-journal"), 0o644);
  await run(dir);
  assert.equal(mode(dir), 0o700);
});
