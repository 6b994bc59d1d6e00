// Plumbing for the hostile-input fuzz test: a seeded PRNG, a raw HTTP client that tolerates early
// answers, leadpush in a child process (a frozen server must not freeze the test) and a /healthz
// poller.
import { type ChildProcess, spawn } from "node:child_process";
import { request } from "node:http";
import { ADMIN_TOKEN, SECRET_KEY, freePort } from "./harness.ts";

/** mulberry32: a tiny seeded PRNG; `next()` is in [0, 1). */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** One independent stream per (seed, stream, case): a case is reproducible on its own. */
export function caseRng(seed: number, stream: number, index: number): Rng {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [stream, index]) h = Math.imul(h ^ (v + 0x7f4a7c15), 0x85ebca6b) >>> 0;
  return new Rng(h ^ (h >>> 13));
}

export interface Req {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The API key sent as `Authorization: Bearer`; null: none. Default: the admin token. */
  key?: string | null;
  /** Send the body chunked (no Content-Length). */
  chunked?: boolean;
}

export interface Answer {
  status?: number;
  text: string;
  json?: unknown;
  ms: number;
  /** Set when no complete answer arrived (reset, timeout, refused). */
  error?: string;
}

const KEEP = 64 * 1024;

/**
 * Sends one request on a fresh connection and reads the answer. An answer that arrives before
 * the body is written (413 for a large body) counts: errors writing after it are ignored.
 */
export function send(port: number, r: Req, timeoutMs: number): Promise<Answer> {
  const started = performance.now();
  const headers: Record<string, string> = { ...r.headers };
  const key = r.key === undefined ? ADMIN_TOKEN : r.key;
  if (key !== null && headers.authorization === undefined) headers.authorization = `Bearer ${key}`;
  if (r.body !== undefined && !r.chunked) headers["content-length"] = String(Buffer.byteLength(r.body));
  if (r.chunked) headers["transfer-encoding"] = "chunked";
  return new Promise((resolve) => {
    let done = false;
    let status: number | undefined;
    const chunks: Buffer[] = [];
    let kept = 0;
    const finish = (error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("utf8");
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      const ms = performance.now() - started;
      resolve({ ...(status !== undefined ? { status } : {}), text, json, ms, ...(error ? { error } : {}) });
    };
    let req: ReturnType<typeof request>;
    try {
      req = request({ host: "127.0.0.1", port, method: r.method, path: r.path, headers, agent: false });
    } catch (err) {
      // The client refused to send it (an invalid header character): not the server's doing.
      resolve({ text: "", ms: 0, error: `client_refused: ${(err as Error).message}` });
      return;
    }
    const timer = setTimeout(() => {
      req.destroy();
      finish(`no answer within ${timeoutMs} ms`);
    }, timeoutMs);
    req.on("response", (res) => {
      status = res.statusCode;
      res.on("data", (c: Buffer) => {
        if (kept < KEEP) chunks.push(c);
        kept += c.length;
      });
      res.on("end", () => finish());
      res.on("error", (e) => finish(`response broken: ${e.message}`));
    });
    req.on("error", (e) => {
      // After a complete answer a write error (EPIPE) is the server closing early: fine.
      if (status === undefined) finish(`${(e as NodeJS.ErrnoException).code ?? "error"}: ${e.message}`);
    });
    if (r.body === undefined) req.end();
    else if (!r.chunked) req.end(r.body);
    else {
      const buf = Buffer.from(r.body);
      for (let i = 0; i < buf.length; i += 64 * 1024) req.write(buf.subarray(i, i + 64 * 1024));
      req.end();
    }
  });
}

/** leadpush (`serve`: API + worker) in a child process, so a freeze can be seen and killed. */
export interface ChildServer {
  port: number;
  /** The last lines the process wrote, and how it ended (for failure messages). */
  tail(): string[];
  kill(): Promise<void>;
}

export async function startChild(database: { url: string; dir: string }): Promise<ChildServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    // A heap cap: a runaway expression that grows memory kills the child, not the machine.
    ["--max-old-space-size=1024", "src/cli.ts", "serve"],
    {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: "127.0.0.1",
        DATABASE_URL: database.url,
        LEADPUSH_DATA_DIR: database.dir,
        LEADPUSH_ADMIN_TOKEN: ADMIN_TOKEN,
        LEADPUSH_SECRET_KEY: SECRET_KEY,
        LEADPUSH_LEASE_MS: "3000",
        LOG_LEVEL: "error",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const lines: string[] = [];
  let fatal: string | undefined;
  const keep = (b: Buffer) => {
    for (const l of b.toString("utf8").split("\n")) {
      if (l.includes("FATAL ERROR")) fatal ??= l.slice(0, 300);
      if (l.trim() && !/^\s*\d+: 0x/.test(l)) lines.push(l.slice(0, 300));
    }
    if (lines.length > 20) lines.splice(0, lines.length - 20);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  // A frozen child cannot notice that the test died: a watchdog kills it when this process is
  // gone (a runner's SIGKILL included), and an exit hook when this process exits normally.
  const watchdog = spawn(
    "sh",
    ["-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${child.pid} 2>/dev/null`],
    { detached: true, stdio: "ignore" },
  );
  watchdog.unref();
  const onExit = () => child.kill("SIGKILL");
  process.once("exit", onExit);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      process.off("exit", onExit);
      watchdog.kill("SIGKILL");
      resolve();
    }),
  );
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  };
  const until = Date.now() + 20_000;
  for (;;) {
    const res = await send(port, { method: "GET", path: "/readyz", key: null }, 1000);
    if (res.status === 200) break;
    if (Date.now() > until || child.exitCode !== null) {
      await kill();
      throw new Error(`leadpush did not start: ${lines.slice(-5).join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = () => [
    ...lines,
    ...(fatal ? [fatal] : []),
    ...(child.exitCode !== null || child.signalCode !== null
      ? [`(exited: ${child.exitCode ?? child.signalCode})`]
      : []),
  ];
  return { port, tail, kill };
}

export interface HealthLog {
  polls: number;
  failures: { at: number; error: string }[];
  /** Consecutive failures right now (2 or more: the server is frozen). */
  streak: number;
  stop(): Promise<void>;
}

/** Polls `/healthz` one request at a time (every 100 ms, 2 s timeout) until stopped. */
/** A health poll slower than this is a failure (see SLOW_MS in fuzz.test.ts for why not less). */
const HEALTH_TIMEOUT_MS = 4000;

export function pollHealth(port: number, onFrozen: () => void): HealthLog {
  let running = true;
  const log: HealthLog = {
    polls: 0,
    failures: [],
    streak: 0,
    stop: async () => {
      running = false;
      await loop;
    },
  };
  const started = Date.now();
  const loop = (async () => {
    while (running) {
      const res = await send(port, { method: "GET", path: "/healthz", key: null }, HEALTH_TIMEOUT_MS);
      log.polls++;
      if (res.status === 200 && res.ms <= HEALTH_TIMEOUT_MS) log.streak = 0;
      else {
        log.streak++;
        const error = res.error ?? `status ${res.status} in ${Math.round(res.ms)} ms`;
        log.failures.push({ at: Date.now() - started, error });
        if (log.streak >= 2) onFrozen();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return log;
}
