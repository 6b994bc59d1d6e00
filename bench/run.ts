// `npm run bench`: leadpush against a plain-HTTP baseline, measured in the same run.
// Every loop here is bounded in count and time and talks to 127.0.0.1 only.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { isolationPhase } from "./isolation.ts";
import { ADMIN, START_FLAGS, cpuOf, startLeadpush, startSink, statCpu } from "./leadpush.ts";
import { scaleBench } from "./scale.ts";
import { agent, baseline as rawBaseline, call, fmt, lead, now, pct, pool, stats, waitFor } from "./load.ts";

const LEADS = Number(process.env.BENCH_LEADS ?? 20_000);
const SERIAL_LEADS = Number(process.env.BENCH_SERIAL_LEADS ?? 500);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 10_000);
const children: ChildProcess[] = [];

function stopAll() {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
}
process.on("exit", stopAll);

const clientSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

/** CPU seconds by thread name (V8's helper threads share one name). */
function threadCpu(pid: number): Record<string, number> {
  const by: Record<string, number> = {};
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim();
      by[comm] = (by[comm] ?? 0) + statCpu(`/proc/${pid}/task/${t}/stat`);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return by;
}

async function startSinkChild(): Promise<{ url: string; proc: ChildProcess }> {
  const sink = await startSink();
  children.push(sink.proc);
  return sink;
}

async function main() {
  const sink = await startSinkChild();
  const machine = `${(await import("node:os")).cpus().length} cores, node ${process.version}`;
  console.log(`leadpush bench — ${LEADS} leads, ${machine}`);

  // (1) Baseline: plain undici POSTs straight to the sink, concurrency 64, token fetched once.
  // Measured before leadpush and again after it (the machine's speed drifts within a run); the
  // ratio uses the mean of the two.
  const token = (await call("POST", `${sink.url}/token`)).json.access_token as string;
  const baseline = () => rawBaseline(sink.url, token, LEADS);
  const baselineBefore = await baseline();
  console.log(`baseline   raw undici → sink, c=64:   ${fmt(baselineBefore)} leads/s`);

  // (2) leadpush on SQLite.
  const dir = mkdtempSync(join(tmpdir(), "leadpush-bench-"));
  const profile = process.env.BENCH_CPU_PROFILE
    ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE}`]
    : [];
  // The same V8 flags as `npm start`: a 16 MB young generation and an old generation that grows by
  // half rather than up to 4x after each full GC (~80 MB less peak RSS here, CPU about the same).
  const flags = process.env.BENCH_LEADPUSH_NODE_FLAGS?.split(" ").filter(Boolean) ?? START_FLAGS;
  const { proc: lp, base } = await startLeadpush({ dir, db: "bench.db", nodeFlags: [...flags, ...profile] });
  children.push(lp);
  const auth = { authorization: `Bearer ${ADMIN}` };
  const dest = await call(
    "POST",
    `${base}/v1/destinations`,
    {
      name: "bench-sink",
      connector: "http",
      url: `${sink.url}/leads`,
      concurrency: 64,
      ...(process.env.BENCH_STATIC_BEARER
        ? { headers: { authorization: `Bearer ${token}` } }
        : {
            auth: {
              type: "oauth2",
              tokenUrl: `${sink.url}/token`,
              grantType: "client_credentials",
              clientId: "bench",
              clientSecret: "bench-secret",
            },
          }),
    },
    auth,
  );
  if (dest.status !== 201) throw new Error(`destination: ${JSON.stringify(dest.json)}`);
  const tokenBefore = (await stats(sink.url)).tokenRequests;

  // Warm-up (not counted): a gateway runs for days, so the figures below are for a process whose
  // code the JIT has compiled. V8 keeps compiling hot code for the first ~10 000 requests (with
  // 2 000, leadpush's helper threads still spent ~2 s on TurboFan during the measured phase, and the
  // baseline measured after leadpush came out 10-50 % faster than the one before it). The warm-up's
  // rate is printed so the cold figure stays visible.
  if (WARMUP > 0) {
    const w0 = now();
    await pool(WARMUP, 32, async (i) => {
      await call("POST", `${base}/v1/leads`, lead(LEADS + SERIAL_LEADS + i), auth);
    });
    const warmSeconds = (now() - w0) / 1000;
    await waitFor(async () => (await stats(sink.url)).unique >= WARMUP, 60_000);
    await call("POST", `${sink.url}/reset`);
    console.log(
      `leadpush   warm-up, c=32 (not counted): ${WARMUP} leads accepted at ${fmt(WARMUP / warmSeconds)} leads/s`,
    );
  }

  const threads0 = threadCpu(lp.pid!);
  const phase = { lp: cpuOf(lp.pid!), sink: cpuOf(sink.proc.pid!), client: process.cpuUsage() };
  let t0 = now();
  let rejected = 0;
  await pool(LEADS, Number(process.env.BENCH_CONCURRENCY ?? 32), async (i) => {
    const r = await call("POST", `${base}/v1/leads`, lead(i), auth);
    if (r.status !== 201) rejected++;
  });
  const acceptSeconds = (now() - t0) / 1000;
  await waitFor(async () => (await stats(sink.url)).unique >= LEADS - rejected, 5 * 60_000);
  const s32 = await stats(sink.url);
  const threads1 = threadCpu(lp.pid!);
  const byThread = Object.entries(threads1)
    .map(([name, s]) => [name, ((s - (threads0[name] ?? 0)) * 1e6) / LEADS] as const)
    .filter(([, us]) => us >= 1)
    .map(([name, us]) => `${name} ${fmt(us)}`)
    .join(", ");
  // CPU per lead of each process during the concurrency-32 phase (they share the machine's cores).
  const perLead = (s: number) => fmt((s * 1e6) / LEADS);
  const phaseCpu = {
    lp: perLead(cpuOf(lp.pid!) - phase.lp),
    sink: perLead(cpuOf(sink.proc.pid!) - phase.sink),
    client: perLead(clientSeconds(process.cpuUsage(phase.client))),
  };
  const deliveredPerS = s32.unique / ((s32.lastAt - t0) / 1000);
  const p50c32 = pct(s32.latencies, 50);
  const p99c32 = pct(s32.latencies, 99);
  await call("POST", `${sink.url}/reset`);

  // Concurrency 1: the latency of one lead on an idle system.
  await pool(SERIAL_LEADS, 1, async (i) => {
    await call("POST", `${base}/v1/leads`, lead(LEADS + i), auth);
  });
  await waitFor(async () => (await stats(sink.url)).unique >= SERIAL_LEADS, 60_000);
  const s1 = await stats(sink.url);
  const status = readFileSync(`/proc/${lp.pid}/status`, "utf8");
  const rssMb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  const cpuSeconds = cpuOf(lp.pid!);
  // What leadpush handed to write calls (files and sockets), and what reached the storage layer.
  const io = Object.fromEntries(
    readFileSync(`/proc/${lp.pid}/io`, "utf8")
      .trim()
      .split("\n")
      .map((l) => l.split(": ") as [string, string]),
  );
  const mb = (k: string) => Number(io[k] ?? 0) / 1e6;
  const tokenRequests = s1.tokenRequests - tokenBefore;
  const ALL_LEADS = WARMUP + LEADS + SERIAL_LEADS;
  lp.kill("SIGTERM");
  await new Promise((r) => lp.once("exit", r));
  await call("POST", `${sink.url}/reset`);
  const baselineAfter = await baseline();
  const baselinePerS = (baselineBefore + baselineAfter) / 2;
  const iso = await isolationPhase({
    ...{ call, sinkUrl: sink.url, token, children, lead, pct },
    stats: () => stats(sink.url),
  });

  console.log(
    `baseline   again, after leadpush:       ${fmt(baselineAfter)} leads/s (mean ${fmt(baselinePerS)})`,
  );
  console.log(
    `leadpush   accepted, c=32:              ${fmt(LEADS / acceptSeconds)} leads/s (${rejected} rejected)`,
  );
  console.log(
    `leadpush   delivered, c=32:             ${fmt(deliveredPerS)} leads/s  (${fmt((100 * deliveredPerS) / baselinePerS)}% of the mean baseline)`,
  );
  console.log(`leadpush   accept→delivered, c=32:      p50 ${fmt(p50c32)} ms   p99 ${fmt(p99c32)} ms`);
  console.log(
    `leadpush   accept→delivered, c=1:       p50 ${fmt(pct(s1.latencies, 50))} ms   p99 ${fmt(pct(s1.latencies, 99))} ms`,
  );
  console.log(`leadpush   peak RSS:                    ${fmt(rssMb)} MB`);
  console.log(`leadpush   token requests:              ${tokenRequests}`);
  console.log(
    `leadpush   CPU time:                    ${fmt((cpuSeconds * 1000) / ALL_LEADS)} ms per lead (accept + deliver; whole run, start-up and warm-up included)`,
  );
  console.log(
    `leadpush   disk writes:                 ${fmt((mb("write_bytes") * 1e3) / ALL_LEADS)} KB per lead (database and WAL; ${fmt((mb("wchar") * 1e3) / ALL_LEADS)} KB per lead in all write calls, sockets included)`,
  );
  console.log(`leadpush   CPU by thread, c=32 (µs/lead): ${byThread} (V8Worker: JIT and GC helpers)`);
  console.log(
    `CPU per lead at c=32 (µs):              leadpush ${phaseCpu.lp}, load client ${phaseCpu.client}, sink ${phaseCpu.sink}`,
  );
  console.log(
    `bench: delivered_per_s=${fmt(deliveredPerS)} baseline_per_s=${fmt(baselinePerS)} ratio=${(deliveredPerS / baselinePerS).toFixed(3)} p99_ms=${fmt(p99c32)} rss_mb=${fmt(rssMb)}`,
  );
  console.log(
    `isolation  healthy accept→delivered p99: alone ${fmt(iso.alone)} ms, beside a hanging and a 1/s-throttled destination ${fmt(iso.beside)} ms (${(iso.beside / iso.alone).toFixed(2)}×; ${iso.leads} leads each)`,
  );
  console.log(
    `bench-isolation: p99_alone_ms=${fmt(iso.alone)} p99_beside_ms=${fmt(iso.beside)} ratio=${(iso.beside / iso.alone).toFixed(3)}`,
  );
  sink.proc.kill("SIGTERM");
  await agent.close();
  rmSync(dir, { recursive: true, force: true });
}

// `--db postgres`, `--processes N`, `--kill K`, `--scale`: the scale-out bench (bench/scale.ts) instead.
const { values: opts } = parseArgs({
  options: {
    db: { type: "string", default: "sqlite" },
    processes: { type: "string", default: "1" },
    kill: { type: "string", default: "0" },
    // The scale bench's load (every lead with an Idempotency-Key, the figures of bench/scale.ts)
    // for one SQLite process too: the backends compared under the same load.
    scale: { type: "boolean", default: false },
  },
});
const scale = {
  db: opts.db === "postgres" ? ("postgres" as const) : ("sqlite" as const),
  processes: Math.max(1, Number(opts.processes)),
  kill: Math.max(0, Number(opts.kill)),
};
if (opts.db !== "sqlite" && opts.db !== "postgres") throw new Error("--db is sqlite or postgres");
const run =
  opts.scale || scale.db === "postgres" || scale.processes > 1 || scale.kill > 0
    ? () => scaleBench(scale).finally(() => agent.close())
    : main;
run().catch((err: unknown) => {
  console.error(err);
  stopAll();
  process.exit(1);
});
