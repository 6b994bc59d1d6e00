// `npm run bench -- --db postgres --processes N [--kill K]`: the bench's load and sink against N
// leadpush processes on one database. With N > 1 two topologies are measured one after the other,
// each on a fresh database: every process `serve` with the load round-robined across them, and one
// `serve` taking all the load with N−1 `leadpush worker`s. `--kill K`: K `kill -9`s of a random
// process during the load (each restarted at once, a server on its own port), then the sink says
// which accepted leads never arrived and which arrived twice (and whether with the same
// Idempotency-Key). Every loop is bounded in count and time; everything talks to 127.0.0.1.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { ADMIN, cpuOf, startLeadpush, startSink } from "./leadpush.ts";
import { DEADLINE, baseline, call, fmt, lead, now, pct, stats, waitFor } from "./load.ts";

const LEADS = Number(process.env.BENCH_LEADS ?? 20_000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const PG_ADMIN_URL = process.env.LEADPUSH_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
/** Every process shares one master key: a token one fetched and sealed, the others can open. */
const SECRET_KEY = "42".repeat(32);

export interface ScaleOptions {
  db: "sqlite" | "postgres";
  processes: number;
  kill: number;
}

type Topology = "single" | "round-robin" | "serve+workers";

interface Member {
  proc: ChildProcess;
  worker: boolean;
  port: number;
  base: string;
  /** CPU seconds of this member's earlier, killed processes. */
  cpuBefore: number;
}

/**
 * CPU seconds used so far by the database server's processes (Postgres: one per connection). A
 * backend that ended (its connection closed: a killed leadpush's) is counted in the CPU of the
 * children its parent reaped (`cutime` + `cstime` of the postmaster).
 */
function postgresCpu(): number {
  let total = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "postgres") continue;
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      total += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
    } catch {
      // Gone meanwhile.
    }
  }
  return total;
}

async function freshDatabase(kind: ScaleOptions["db"], dir: string) {
  if (kind === "sqlite") return { url: `file:${join(dir, "scale.db")}`, drop: async () => {} };
  const name = `lp_bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    url: PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

interface Figures {
  topology: Topology;
  deliveredPerS: number;
  p50: number;
  p99: number;
  tokenRequests: number;
  duplicates: number;
  leadpushUsPerLead: number;
  postgresUsPerLead: number;
  crash?: {
    kills: number;
    accepted: number;
    missing: number;
    repeatedSameKey: number;
    repeatedNewKey: number;
  };
}

async function runTopology(
  o: ScaleOptions,
  topology: Topology,
  sinkUrl: string,
  children: ChildProcess[],
): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), "leadpush-bench-scale-"));
  const db = await freshDatabase(o.db, dir);
  // A killed process's leases end sooner than the default 30 s, so the crash run finishes soon.
  const env = { LEADPUSH_SECRET_KEY: SECRET_KEY, ...(o.kill > 0 ? { LEADPUSH_LEASE_MS: "5000" } : {}) };
  const members: Member[] = [];
  const start = async (worker: boolean, port?: number) => {
    const started = await startLeadpush({
      dir,
      db: "scale.db",
      databaseUrl: db.url,
      env,
      worker,
      ...(port === undefined ? {} : { port }),
    });
    children.push(started.proc);
    return started;
  };
  // The first process migrates the database; the others start after it.
  for (let i = 0; i < o.processes; i++) {
    const worker = topology === "serve+workers" && i > 0;
    const s = await start(worker);
    members.push({ proc: s.proc, worker, port: s.port, base: s.base, cpuBefore: 0 });
  }
  const servers = () => members.filter((m) => !m.worker);
  const auth = { authorization: `Bearer ${ADMIN}` };
  const dest = await call(
    "POST",
    `${servers()[0]!.base}/v1/destinations`,
    {
      name: "bench-sink",
      connector: "http",
      url: `${sinkUrl}/leads`,
      concurrency: 64,
      auth: {
        type: "oauth2",
        tokenUrl: `${sinkUrl}/token`,
        grantType: "client_credentials",
        clientId: "bench",
        clientSecret: "bench-secret",
      },
    },
    auth,
  );
  if (dest.status !== 201) throw new Error(`destination: ${JSON.stringify(dest.json)}`);
  const tokensAtStart = (await stats(sinkUrl)).tokenRequests;

  /** One lead, to the next server round-robin; another server when one is down. True: accepted. */
  let turn = 0;
  const send = async (i: number): Promise<boolean> => {
    for (let tries = 0; tries < 20 && Date.now() < DEADLINE; tries++) {
      const list = servers();
      const m = list[turn++ % list.length]!;
      try {
        const r = await call("POST", `${m.base}/v1/leads`, lead(i), {
          ...auth,
          // A lead sent again after a server died mid-answer is the same lead, not a new one.
          "idempotency-key": `bench-lead-${i}`,
        });
        if (r.status === 201 || r.status === 200) return true;
      } catch {
        // That server is down (killed, restarting): try the next one.
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  };
  const load = async (first: number, n: number, accepted: number[]) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < n && Date.now() < DEADLINE) {
          const i = first + next++;
          if (await send(i)) accepted.push(i);
        }
      }),
    );
  };

  const warm: number[] = [];
  await load(1_000_000, WARMUP, warm);
  await waitFor(async () => (await stats(sinkUrl)).unique >= warm.length, 120_000);
  await call("POST", `${sinkUrl}/reset`);

  const cpu0 = members.reduce((s, m) => s + cpuOf(m.proc.pid!), 0);
  const pg0 = o.db === "postgres" ? postgresCpu() : 0;
  const t0 = now();
  let kills = 0;
  let loading = true;
  const killer = (async () => {
    // K kills spread over the load, one every 1.5 s, each of a random process, restarted at once.
    while (loading && kills < o.kill && Date.now() < DEADLINE) {
      await new Promise((r) => setTimeout(r, 1500));
      if (!loading) break;
      const m = members[Math.floor(Math.random() * members.length)]!;
      m.cpuBefore += cpuOf(m.proc.pid!);
      m.proc.kill("SIGKILL");
      await new Promise((r) => m.proc.once("exit", r));
      kills++;
      const s = await start(m.worker, m.worker ? undefined : m.port);
      m.proc = s.proc;
    }
  })();
  const accepted: number[] = [];
  await load(0, LEADS, accepted);
  loading = false;
  await killer;
  await waitFor(async () => (await stats(sinkUrl)).unique >= accepted.length, 5 * 60_000);
  const s = await stats(sinkUrl);
  const cpu = members.reduce((sum, m) => sum + m.cpuBefore + cpuOf(m.proc.pid!), 0) - cpu0;
  const pgCpu = o.db === "postgres" ? postgresCpu() - pg0 : 0;
  const figures: Figures = {
    topology,
    deliveredPerS: s.unique / ((s.lastAt - t0) / 1000),
    p50: pct(s.latencies, 50),
    p99: pct(s.latencies, 99),
    tokenRequests: s.tokenRequests - tokensAtStart,
    duplicates: s.received - s.unique,
    leadpushUsPerLead: (cpu * 1e6) / accepted.length,
    postgresUsPerLead: (pgCpu * 1e6) / accepted.length,
  };
  if (o.kill > 0) {
    const check = await call("POST", `${sinkUrl}/check`, {
      emails: accepted.map((i) => lead(i).email),
    });
    figures.crash = {
      kills,
      accepted: accepted.length,
      ...(check.json as { missing: number; repeatedSameKey: number; repeatedNewKey: number }),
    };
  }
  for (const m of members) m.proc.kill("SIGTERM");
  await Promise.all(
    members.map((m) => new Promise((r) => (m.proc.exitCode !== null ? r(0) : m.proc.once("exit", r)))),
  );
  await call("POST", `${sinkUrl}/reset`);
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
  return figures;
}

export async function scaleBench(o: ScaleOptions): Promise<void> {
  if (o.db === "sqlite" && o.processes > 1)
    throw new Error("several processes share a database on Postgres: use --db postgres");
  const children: ChildProcess[] = [];
  process.on("exit", () => children.forEach((c) => c.exitCode === null && c.kill("SIGTERM")));
  const sink = await startSink();
  children.push(sink.proc);
  const machine = `${(await import("node:os")).cpus().length} cores, node ${process.version}`;
  console.log(
    `leadpush bench — ${LEADS} leads, ${o.db}, ${o.processes} process(es)${o.kill ? `, ${o.kill} kill -9s` : ""}, ${machine}`,
  );
  const token = (await call("POST", `${sink.url}/token`)).json.access_token as string;
  const before = await baseline(sink.url, token, LEADS);
  console.log(`baseline   raw undici → sink, c=64:   ${fmt(before)} leads/s`);
  // BENCH_TOPOLOGIES=serve+workers (or round-robin) measures only that one, for interleaved runs.
  const only = process.env.BENCH_TOPOLOGIES?.split(",");
  const topologies: Topology[] =
    o.processes > 1
      ? (["round-robin", "serve+workers"] as const).filter((t) => !only || only.includes(t))
      : ["single"];
  const results: Figures[] = [];
  for (const t of topologies) results.push(await runTopology(o, t, sink.url, children));
  const after = await baseline(sink.url, token, LEADS);
  const mean = (before + after) / 2;
  console.log(`baseline   again, after leadpush:       ${fmt(after)} leads/s (mean ${fmt(mean)})`);
  for (const f of results) {
    const label = f.topology === "single" ? "one serve" : f.topology;
    console.log(
      `${label.padEnd(14)} delivered ${fmt(f.deliveredPerS)} leads/s (${fmt((100 * f.deliveredPerS) / mean)}% of the baseline), p50 ${fmt(f.p50)} ms, p99 ${fmt(f.p99)} ms, token requests ${f.tokenRequests}, duplicates at the sink ${f.duplicates}`,
    );
    console.log(
      `${"".padEnd(14)} CPU per lead: leadpush ${fmt(f.leadpushUsPerLead)} µs (all processes)${o.db === "postgres" ? `, Postgres ${fmt(f.postgresUsPerLead)} µs` : ""}`,
    );
    if (f.crash)
      console.log(
        `${"".padEnd(14)} crash run: ${f.crash.kills} kill -9s${f.crash.kills < o.kill ? ` (of ${o.kill}: the load ended first; one every 1.5 s)` : ""}, ${f.crash.accepted} leads accepted, ${f.crash.missing} lost, ${f.crash.repeatedSameKey} pushed again with the same Idempotency-Key, ${f.crash.repeatedNewKey} with another`,
      );
    console.log(
      `bench-scale: db=${o.db} processes=${o.processes} topology=${f.topology} delivered_per_s=${fmt(f.deliveredPerS)} ratio=${(f.deliveredPerS / mean).toFixed(3)} p99_ms=${fmt(f.p99)} token_requests=${f.tokenRequests} duplicates=${f.duplicates}${f.crash ? ` kills=${f.crash.kills} lost=${f.crash.missing} repeated=${f.crash.repeatedSameKey} repeated_new_key=${f.crash.repeatedNewKey}` : ""}`,
    );
  }
  sink.proc.kill("SIGTERM");
}
