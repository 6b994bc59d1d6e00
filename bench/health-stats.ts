// `npm run bench:health`: the destination page's API at 100 000 leads. Fills leadpush (SQLite, a
// child process) with BENCH_HEALTH_LEADS leads through POST /v1/leads/batch, waits until the sink
// has them all, then times GET /v1/destinations/:id/stats (24 h and 7 days: every attempt is in
// the window) and GET /v1/destinations/:id (health) beside GET /v1/stats, the overview's call,
// measured in the same run. Every loop is bounded in count and time and talks to 127.0.0.1 only.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ADMIN, startLeadpush, startSink } from "./leadpush.ts";

const LEADS = Number(process.env.BENCH_HEALTH_LEADS ?? 100_000);
const CALLS = Number(process.env.BENCH_HEALTH_CALLS ?? 30);
const BATCH = 500;
const DEADLINE = Date.now() + 15 * 60_000;
const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
});

const auth = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
async function call(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: auth,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

const lead = (i: number) => ({
  name: `Health ${i}`,
  email: `health${i}@example.com`,
  phone: `+9198${String(10_000_000 + i).slice(-8)}`,
  city: "Pune",
  source: "bench",
});

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
};

async function time(url: string): Promise<{ p50: number; p95: number; bytes: number }> {
  let bytes = 0;
  for (let i = 0; i < 3; i++) await call("GET", url); // warm
  const ms: number[] = [];
  for (let i = 0; i < CALLS && Date.now() < DEADLINE; i++) {
    const t = performance.now();
    bytes = JSON.stringify(await call("GET", url)).length;
    ms.push(performance.now() - t);
  }
  return { p50: pct(ms, 0.5), p95: pct(ms, 0.95), bytes };
}

async function main() {
  const sink = await startSink();
  children.push(sink.proc);
  const dir = mkdtempSync(join(tmpdir(), "leadpush-bench-health-"));
  try {
    const { proc, base } = await startLeadpush({ dir, db: "bench.db" });
    children.push(proc);
    await call("POST", `${base}/v1/destinations`, {
      name: "bench-sink",
      connector: "http",
      url: `${sink.url}/leads`,
      concurrency: 64,
      auth: {
        type: "oauth2",
        tokenUrl: `${sink.url}/token`,
        grantType: "client_credentials",
        clientId: "bench",
        clientSecret: "bench-secret",
      },
    });
    console.log(`health bench — ${LEADS} leads into leadpush (SQLite), one destination`);
    let t = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < LEADS && Date.now() < DEADLINE) {
          const from = next;
          next += BATCH;
          const leads = Array.from({ length: Math.min(BATCH, LEADS - from) }, (_, i) => lead(from + i));
          await call("POST", `${base}/v1/leads/batch`, { leads });
        }
      }),
    );
    for (;;) {
      const s = await call("GET", `${sink.url}/stats`);
      if (Number(s.unique) >= LEADS) break;
      if (Date.now() > DEADLINE) throw new Error(`only ${String(s.unique)} of ${LEADS} leads delivered`);
      await new Promise((r) => setTimeout(r, 500));
    }
    console.log(`filled and delivered in ${((performance.now() - t) / 1000).toFixed(0)} s`);

    t = performance.now();
    const rows: [string, string][] = [
      ["GET /v1/stats (baseline)", `${base}/v1/stats`],
      ["GET /v1/destinations/:id (health)", `${base}/v1/destinations/bench-sink`],
      ["GET /v1/destinations/:id/stats 24h", `${base}/v1/destinations/bench-sink/stats?window=24h`],
      ["GET /v1/destinations/:id/stats 7d", `${base}/v1/destinations/bench-sink/stats?window=7d`],
    ];
    console.log(`${CALLS} calls each, one at a time, ms:`);
    for (const [label, url] of rows) {
      const r = await time(url);
      console.log(
        `  ${label.padEnd(36)} p50 ${r.p50.toFixed(1).padStart(7)}  p95 ${r.p95.toFixed(1).padStart(7)}  (${r.bytes} bytes)`,
      );
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
