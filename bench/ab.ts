// `npm run bench:ab -- A B`: CPU per lead of two leadpush trees, side by side.
//
// Single benchmark runs of different code cannot be compared on these machines: their speed
// drifts by ±30 % within minutes. Here both trees run at the same time, each on its own SQLite
// database, and get the same open-loop load (AB_RATE leads/s each, well below saturation) pushed
// to one shared sink; the CPU time each process spent is divided by its leads. Whatever the
// machine does meanwhile, it does to both. A and B are directories holding a leadpush tree (a
// `git worktree` of another commit, say; `node_modules` may be a symlink), or the same directory
// twice with `AB_ENV_B` (`NAME=value …`, and `NODE_FLAGS=--flag,--flag`) to compare settings.
// Run it both ways round (A B, then B A): the same tree twice came out up to ~4 % apart.
// Each round is bounded in time; everything talks to 127.0.0.1 only.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Agent, request } from "undici";
import { ADMIN, START_FLAGS, cpuOf, startLeadpush, startSink } from "./leadpush.ts";

const [A, B] = process.argv.slice(2).map((d) => resolve(d));
if (!A || !B) {
  console.error("usage: npm run bench:ab -- <leadpush tree A> <leadpush tree B>");
  process.exit(2);
}
const RATE = Number(process.env.AB_RATE ?? 1800);
const SECONDS = Number(process.env.AB_SECONDS ?? 8);
const ROUNDS = Number(process.env.AB_ROUNDS ?? 4);
const ENV_B: Record<string, string> = Object.fromEntries(
  (process.env.AB_ENV_B ?? "")
    .split(" ")
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);

const children: ChildProcess[] = [];
process.on("exit", () => children.forEach((c) => c.exitCode === null && c.kill("SIGTERM")));
const agent = new Agent({ connections: 256, keepAliveTimeout: 30_000 });
const auth = { authorization: `Bearer ${ADMIN}` };

async function call(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await request(url, {
    method: "POST",
    dispatcher: agent,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  await res.body.text();
  return res.statusCode;
}

const sink = await startSink();
children.push(sink.proc);
const dirs: string[] = [];
async function server(root: string, env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), "leadpush-ab-"));
  dirs.push(dir);
  const { NODE_FLAGS, ...rest } = env;
  const { proc, base } = await startLeadpush({
    dir,
    db: "ab.db",
    root,
    env: rest,
    nodeFlags: NODE_FLAGS ? NODE_FLAGS.split(",") : START_FLAGS,
  });
  children.push(proc);
  const status = await call(
    `${base}/v1/destinations`,
    {
      name: "ab-sink",
      connector: "http",
      url: `${sink.url}/leads`,
      concurrency: 64,
      auth: {
        type: "oauth2",
        tokenUrl: `${sink.url}/token`,
        grantType: "client_credentials",
        clientId: "ab",
        clientSecret: "ab-secret",
      },
    },
    auth,
  );
  if (status !== 201) throw new Error(`${root}: creating the destination answered ${status}`);
  return { proc, base };
}
const servers = [await server(A, {}), await server(B, ENV_B)];

let seq = 0;
const lead = () => {
  const i = seq++;
  return {
    name: `AB ${i}`,
    email: `ab${i}@example.com`,
    phone: `+9197${String(10_000_000 + i).slice(-8)}`,
    city: "Mumbai",
    source: "bench",
  };
};

/** The same leads, at the same moments, to both servers: `rate` each, for `seconds`. */
async function load(rate: number, seconds: number) {
  const tickMs = 5;
  const pending: Promise<number>[] = [];
  let owed = 0;
  for (const end = Date.now() + seconds * 1000; Date.now() < end;) {
    owed += (rate * tickMs) / 1000;
    for (; owed >= 1; owed--) {
      const body = lead();
      // Neither server is always the first to get a lead.
      const order = seq % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) pending.push(call(`${s.base}/v1/leads`, body, auth));
    }
    await new Promise((r) => setTimeout(r, tickMs));
  }
  const statuses = await Promise.all(pending);
  if (statuses.some((s) => s !== 201 && s !== 200)) throw new Error("a lead was refused");
  // Let the last pushes finish inside the round.
  await new Promise((r) => setTimeout(r, 500));
}

console.log(`bench:ab — ${RATE} leads/s to each of A=${A} and B=${B}, ${ROUNDS} rounds of ${SECONDS} s`);
await load(RATE, 6); // warm-up, not counted
const perLead: [number[], number[]] = [[], []];
for (let round = 0; round < ROUNDS; round++) {
  const before = servers.map((s) => cpuOf(s.proc.pid!));
  const first = seq;
  await load(RATE, SECONDS);
  const leads = seq - first;
  const us = servers.map((s, i) => ((cpuOf(s.proc.pid!) - before[i]!) * 1e6) / leads);
  perLead[0].push(us[0]!);
  perLead[1].push(us[1]!);
  console.log(
    `round ${round + 1}: A ${us[0]!.toFixed(0)} µs/lead   B ${us[1]!.toFixed(0)} µs/lead   B/A ${(us[1]! / us[0]!).toFixed(3)}`,
  );
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const [a, b] = [mean(perLead[0]), mean(perLead[1])];
console.log(
  `bench:ab: a_us_per_lead=${a.toFixed(0)} b_us_per_lead=${b.toFixed(0)} ratio=${(b / a).toFixed(3)}`,
);
for (const c of children) c.kill("SIGTERM");
await agent.close();
for (const d of dirs) rmSync(d, { recursive: true, force: true });
