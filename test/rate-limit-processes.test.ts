import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, test } from "node:test";
import pg from "pg";
import { startSandbox } from "../src/sandbox/server.ts";
import { ADMIN_TOKEN, eventually, freePort, freshDatabase, SECRET_KEY } from "./helpers/harness.ts";
import { maxInWindow } from "./helpers/rate.ts";

// The rate limit is shared by every worker process: three leadpush processes on one Postgres
// database push to one rate-limited destination, and together stay within its budget.

const PER_SECOND = 10;
const BURST = 3;
const LEADS = 45;

let sb: Awaited<ReturnType<typeof startSandbox>>;
let db: Awaited<ReturnType<typeof freshDatabase>>;
const children: ChildProcess[] = [];
const bases: string[] = [];
const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };

async function startProcess(): Promise<string> {
  const port = await freePort();
  const proc = spawn(process.execPath, ["src/cli.ts", "serve"], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      DATABASE_URL: db.url,
      LEADPUSH_DATA_DIR: db.dir,
      LEADPUSH_ADMIN_TOKEN: ADMIN_TOKEN,
      LEADPUSH_SECRET_KEY: SECRET_KEY,
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(proc);
  const base = `http://127.0.0.1:${port}`;
  await eventually(async () => (await fetch(`${base}/readyz`)).ok, 20_000, "leadpush to start");
  return base;
}

before(async () => {
  sb = await startSandbox();
  db = await freshDatabase("postgres");
  // One after the other: the first one runs the migrations.
  for (let i = 0; i < 3; i++) bases.push(await startProcess());
});
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  await Promise.all(
    children.map((c) => new Promise<void>((r) => (c.exitCode === null ? c.once("exit", () => r()) : r()))),
  );
  await sb.close();
  await db.drop();
});

test(
  "3 processes on Postgres share one rate limit: overshoot stays within the burst",
  { timeout: 60_000 },
  async () => {
    const created = await fetch(`${bases[0]}/v1/destinations`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        name: "shared-rate",
        connector: "http",
        url: `${sb.url}/sink/shared-rate`,
        rateLimit: { perSecond: PER_SECOND, burst: BURST },
      }),
    });
    assert.equal(created.status, 201, await created.text());
    // Every process ingests a third of the leads (once its destination cache has the new one).
    await new Promise((r) => setTimeout(r, 1500));
    await Promise.all(
      bases.map(async (base, p) => {
        const leads = Array.from({ length: LEADS / 3 }, (_, i) => ({
          name: `R${p}-${i}`,
          email: `rate.${p}.${i}@processes.test`,
        }));
        const res = await fetch(`${base}/v1/leads/batch`, {
          method: "POST",
          headers,
          body: JSON.stringify({ leads }),
        });
        const body = (await res.json()) as { accepted: number };
        assert.equal(body.accepted, LEADS / 3, JSON.stringify(body));
      }),
    );
    await sb.sink.waitFor(LEADS, 30_000);
    await new Promise((r) => setTimeout(r, 500));
    const pushes = sb.sink.received.filter((r) => r.path === "/shared-rate");
    assert.equal(pushes.length, LEADS, "every lead pushed once");
    // When each push started, as its worker recorded it: what the shared budget controls. (The
    // sink's receipt times also carry the machine's scheduling delays: a process stalled by other
    // load sends what it claimed late, all at once.)
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const attempts = await client.query<{ started_at: string }>("SELECT started_at FROM attempts");
    await client.end();
    assert.equal(attempts.rows.length, LEADS, "one attempt per lead");
    const started = attempts.rows.map((r) => Number(r.started_at));
    // A push starts a little after its token was taken, and on this shared 2-core machine a process
    // can stall a few hundred ms between the two (seen: 15 in one second under a loaded suite).
    // With stalls up to STALL_MS, pushes started within 1000 − STALL_MS ms had their tokens taken
    // within one second: at most perSecond + burst of them. A limiter letting everything through
    // starts all 45 at once; the span below checks the pace as a whole.
    const STALL_MS = 500;
    const most = maxInWindow(started, 1000 - STALL_MS);
    const atSink = maxInWindow(
      pushes.map((r) => r.at),
      1000,
    );
    assert.ok(
      most <= PER_SECOND + BURST,
      `${most} pushes started within ${1000 - STALL_MS} ms (limit ${PER_SECOND}/s, burst ${BURST}); ${atSink} at the sink within 1 s`,
    );
    const span = Math.max(...started) - Math.min(...started);
    const least = ((LEADS - BURST) / PER_SECOND) * 1000;
    assert.ok(
      span >= least - 300,
      `${LEADS} pushes took ${span} ms; the budget allows no less than ${least}`,
    );
  },
);
