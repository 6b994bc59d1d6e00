// `npm run bench`'s isolation figure: a healthy destination's accept→delivered p99 alone, then beside
// a destination hanging on every push and one throttled to 1 lead a second (its vendor answers 429),
// in one leadpush process. Bounded: a fixed number of leads at a fixed rate, waits capped in time.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { ADMIN, startLeadpush } from "./leadpush.ts";

const RATE_PER_S = Number(process.env.BENCH_ISOLATION_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_ISOLATION_SECONDS ?? 4);

type Call = (
  method: string,
  url: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<{ status: number; json: Record<string, unknown> }>;

export interface IsolationDeps {
  call: Call;
  sinkUrl: string;
  token: string;
  children: ChildProcess[];
  lead: (i: number) => Record<string, unknown>;
  pct: (xs: number[], p: number) => number;
  stats: () => Promise<{ unique: number; latencies: number[] }>;
}

export interface IsolationFigure {
  alone: number;
  beside: number;
  leads: number;
}

export async function isolationPhase(deps: IsolationDeps): Promise<IsolationFigure> {
  const { call, sinkUrl } = deps;
  const dir = mkdtempSync(join(tmpdir(), "leadpush-bench-iso-"));
  // A short shutdown grace: the hanging destination's pushes are cut off at the end.
  const env = { LEADPUSH_SHUTDOWN_GRACE_MS: "500" };
  const { proc, base } = await startLeadpush({ dir, db: "iso.db", env });
  deps.children.push(proc);
  const auth = { authorization: `Bearer ${ADMIN}` };
  const destination = async (name: string, path: string, extra: Record<string, unknown> = {}) => {
    const body = { name, connector: "http", url: `${sinkUrl}${path}`, ...extra };
    const res = await call("POST", `${base}/v1/destinations`, body, auth);
    if (res.status !== 201) throw new Error(`destination ${name}: ${JSON.stringify(res.json)}`);
  };
  let next = 0;
  /** Leads at a steady rate for `seconds`; returns the healthy destination's p99 for them. */
  const measure = async (seconds: number) => {
    await call("POST", `${sinkUrl}/reset`);
    const n = RATE_PER_S * seconds;
    const start = performance.now();
    const sent: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const due = start + (i * 1000) / RATE_PER_S;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      sent.push(call("POST", `${base}/v1/leads`, deps.lead(1_000_000 + next++), auth));
    }
    await Promise.all(sent);
    for (const until = Date.now() + 30_000; Date.now() < until;) {
      if ((await deps.stats()).unique >= n) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const s = await deps.stats();
    if (s.unique < n) throw new Error(`isolation: ${s.unique} of ${n} healthy leads delivered in time`);
    return deps.pct(s.latencies, 99);
  };
  try {
    await destination("healthy", "/leads", { headers: { authorization: `Bearer ${deps.token}` } });
    // A fresh process: a short warm-up first, so "alone" is not measured cold.
    await measure(2);
    const alone = await measure(SECONDS);
    // Hanging at a concurrency far above the worker's 128 slots; throttled by its vendor to 1/s.
    await destination("hanging", "/hang", { concurrency: 1000, timeoutMs: 5000 });
    await destination("throttled", "/throttled", { retry: { delaysMs: [1000, 2000, 5000], jitter: 0.2 } });
    const beside = await measure(SECONDS);
    return { alone, beside, leads: RATE_PER_S * SECONDS };
  } finally {
    proc.kill("SIGTERM");
    await new Promise((r) => (proc.exitCode === null ? proc.once("exit", r) : r(null)));
    rmSync(dir, { recursive: true, force: true });
  }
}
