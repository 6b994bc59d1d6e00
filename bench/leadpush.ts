// What both benchmarks share: a leadpush server on SQLite in a temporary directory, started as a
// child process on a free 127.0.0.1 port and waited for until it is ready.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const ADMIN = "bench-admin-token-0123456789abcdef";

/** The same V8 flags as `npm start`. */
export const START_FLAGS = ["--max-semi-space-size=16", "--heap-growing-percent=50"];
/**
 * The same environment as `npm start`: at most two glibc malloc arenas. With one per thread (V8's
 * helper threads, the SQLite checkpoint thread), freed memory stays in per-thread arenas: ~20 MB
 * more peak RSS in `npm run bench`, at the same CPU per lead.
 */
export const START_ENV = { MALLOC_ARENA_MAX: "2" };

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

/**
 * `leadpush serve` with its database in `dir`; resolves once `/readyz` answers 200 (60 s at most: a loaded machine).
 * `root`: the leadpush tree to run (this one by default; `bench/ab.ts` runs two). `env`: more
 * environment for the server. `databaseUrl` (a Postgres database several processes share)
 * replaces the SQLite file `db`; `port` keeps a restarted server's address; `worker` starts
 * `leadpush worker` instead (no API: ready once it logs that it started).
 */
export async function startLeadpush(opts: {
  dir: string;
  db: string;
  nodeFlags?: string[];
  root?: string;
  env?: Record<string, string>;
  databaseUrl?: string;
  port?: number;
  worker?: boolean;
}): Promise<{ proc: ChildProcess; base: string; port: number }> {
  const port = opts.port ?? (await freePort());
  const base = `http://127.0.0.1:${port}`;
  const root = opts.root ?? join(import.meta.dirname, "..");
  const proc = spawn(
    process.execPath,
    [...(opts.nodeFlags ?? START_FLAGS), join(root, "src", "cli.ts"), opts.worker ? "worker" : "serve"],
    {
      env: {
        ...process.env,
        ...START_ENV,
        ...opts.env,
        PORT: String(port),
        HOST: "127.0.0.1",
        DATABASE_URL: opts.databaseUrl ?? `file:${join(opts.dir, opts.db)}`,
        LEADPUSH_DATA_DIR: opts.dir,
        LEADPUSH_ADMIN_TOKEN: ADMIN,
        LOG_LEVEL: opts.worker ? "info" : "warn",
      },
      stdio: ["ignore", opts.worker ? "pipe" : "ignore", "inherit"],
    },
  );
  if (opts.worker) {
    const lines = createInterface({ input: proc.stdout! });
    const started = await Promise.race([
      new Promise<boolean>((resolve) =>
        lines.on("line", (l) => l.includes("worker started") && resolve(true)),
      ),
      new Promise<boolean>((resolve) => proc.once("exit", () => resolve(false))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 60_000).unref()),
    ]);
    if (started) return { proc, base, port };
    proc.kill("SIGTERM");
    throw new Error("leadpush worker did not start");
  }
  for (const until = Date.now() + 20_000; Date.now() < until && proc.exitCode === null;) {
    const ready = await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { proc, base, port };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill("SIGTERM");
  throw new Error(`leadpush did not become ready at ${base}`);
}

/** The benchmark's receiving client (`sink.ts`) as a child process, and its URL. */
export async function startSink(): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [join(import.meta.dirname, "sink.ts")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: proc.stdout! }).once("line", resolve),
  );
  return { url: `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`, proc };
}

/** CPU seconds (user + system) in a `/proc/…/stat` file: a process's or one thread's. */
export function statCpu(path: string): number {
  const f = readFileSync(path, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** CPU seconds a process has used so far. */
export const cpuOf = (pid: number) => statCpu(`/proc/${pid}/stat`);
