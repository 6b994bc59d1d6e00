import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openSqlite } from "../src/store/sqlite-adapter.ts";

// Checkpoints run on a thread of their own (sqlite-adapter.ts): the committing connection's own
// automatic checkpoint only starts at 10 000 pages of log, so pages reach the database file here
// only if the checkpoint thread copies them.
test("the checkpoint thread copies committed pages into the database file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "leadpush-ckpt-"));
  const path = join(dir, "db.sqlite");
  const { raw, kysely, closed } = openSqlite(path);
  try {
    raw.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, data TEXT NOT NULL)");
    const insert = raw.prepare("INSERT INTO t (data) VALUES (?)");
    // ~2 MB in 20 commits: ~500 pages, far below the fallback's 10 000.
    for (let c = 0; c < 20; c++) {
      raw.exec("BEGIN");
      for (let i = 0; i < 50; i++) insert.run("x".repeat(2000));
      raw.exec("COMMIT");
    }
    const initial = statSync(path).size;
    assert.ok(initial < 100_000, `before any checkpoint the data is in the log only (${initial} bytes)`);
    let size = initial;
    for (const until = Date.now() + 5_000; Date.now() < until && size < 2_000_000;) {
      await new Promise((r) => setTimeout(r, 50));
      size = statSync(path).size;
    }
    assert.ok(size >= 2_000_000, `the database file holds the committed pages (${size} bytes)`);
    const { n } = raw.prepare("SELECT count(*) AS n FROM t").get() as { n: number };
    assert.equal(n, 1_000);
    kysely.close();
    await closed();
    // The thread's connection was the last one: its close checkpointed everything and removed the log.
    assert.equal(existsSync(`${path}-wal`), false);
    // Opened again at once (an app restarted in-process), nothing is locked and nothing is lost.
    const again = openSqlite(path);
    assert.equal((again.raw.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n, 1_000);
    again.kysely.close();
    await again.closed();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
