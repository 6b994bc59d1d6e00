// The body of the checkpoint thread (see `startCheckpointer` in sqlite-adapter.ts): its own
// connection to the database, copying the write-ahead log back into the database file while the
// main thread goes on writing. Nothing here touches rows.
import { DatabaseSync } from "node:sqlite";
import { parentPort, workerData } from "node:worker_threads";

const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const db = new DatabaseSync(path);
db.exec("PRAGMA busy_timeout = 1000");
// A checkpoint copies log frames to the database file; it needs no page cache of its own.
db.exec("PRAGMA cache_size = 16");
const version = db.prepare("PRAGMA data_version");
const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");

// `data_version` changes when another connection has committed since the last look: an idle
// database costs one cheap read per interval and no checkpoint.
let seen: unknown;
const timer = setInterval(() => {
  try {
    const v = (version.get() as { data_version: number }).data_version;
    if (v === seen) return;
    seen = v;
    // PASSIVE never waits for the writer: it copies what is committed and returns.
    checkpoint.get();
  } catch {
    // SQLITE_BUSY (another checkpoint is running): the next commit's interval tries again. The
    // main connection's close stops this thread ("stop" below).
  }
}, intervalMs);

parentPort?.on("message", (m) => {
  if (m === "stop") {
    clearInterval(timer);
    db.close();
    parentPort?.close();
  }
});
