import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pg from "pg";
import { createApp, type App } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";

export type Backend = "sqlite" | "postgres";

/** The backends the store and queue tests run on, from the same test files. */
export const BACKENDS: Backend[] = ["sqlite", "postgres"];

export const PG_ADMIN_URL = process.env.LEADPUSH_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** A fresh database per call: a temp SQLite file, or a new Postgres database (dropped by `drop`). */
export async function freshDatabase(
  backend: Backend,
): Promise<{ url: string; dir: string; drop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "leadpush-test-"));
  if (backend === "sqlite") {
    return {
      url: `file:${join(dir, "test.db")}`,
      dir,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `lp_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  return {
    url,
    dir,
    async drop() {
      rmSync(dir, { recursive: true, force: true });
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export const ADMIN_TOKEN = "test-admin-token-0123456789abcdef";
export const SECRET_KEY = "11".repeat(32);

export interface TestApp {
  /** The database this app uses (another process or worker may share it). */
  databaseUrl: string;
  app: App;
  url: string;
  /** Everything the app logged (JSON lines), for secret scans. */
  logs: string[];
  api(
    method: string,
    path: string,
    body?: unknown,
    opts?: { key?: string | null; headers?: Record<string, string> },
  ): Promise<{
    status: number;
    body: any;
    text: string;
    headers: Headers;
  }>;
  close(): Promise<void>;
}

/** The first port of the kernel's ephemeral range (what `listen(0)` and outgoing connections use). */
function ephemeralStart(): number {
  try {
    const lo = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(lo) && lo > 12_000 ? lo : 32_768;
  } catch {
    return 32_768;
  }
}

async function canListen(port: number): Promise<boolean> {
  const srv = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => resolve(true));
  });
  if (ok) await new Promise((resolve) => srv.close(resolve));
  return ok;
}

/**
 * A free TCP port on 127.0.0.1, for an app that must know its own URL before it listens. It is
 * picked at random below the kernel's ephemeral range: a port from `listen(0)` is released before
 * the app binds it, and in that gap any `listen(0)` or outgoing connection (of this test or of the
 * test file running beside it) could be given the same port — it once was, and the test file hung
 * CI. Below the ephemeral range only another explicit pick can collide (1 in ~20 000).
 */
export async function freePort(): Promise<number> {
  const top = ephemeralStart();
  const bottom = 10_000;
  for (let i = 0; i < 100; i++) {
    const port = bottom + Math.floor(Math.random() * (top - bottom));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port between ${bottom} and ${top}`);
}

export type FreshDatabase = Awaited<ReturnType<typeof freshDatabase>>;

/** Starts leadpush (API + worker) on 127.0.0.1 with a fresh database of the given backend. */
export async function startApp(
  opts: {
    backend?: Backend;
    env?: Record<string, string>;
    worker?: boolean;
    now?: () => number;
    /** Set LEADPUSH_PUBLIC_URL to the app's own URL (vendor simulators fetch files and call back). */
    publicUrl?: boolean;
    /** Share this database (a second process, a restart); the caller drops it. */
    database?: FreshDatabase;
    /** Listen on this port (a restart keeps its public URL). */
    port?: number;
  } = {},
): Promise<TestApp> {
  const db = opts.database ?? (await freshDatabase(opts.backend ?? "sqlite"));
  const port = opts.port ?? (opts.publicUrl ? await freePort() : 0);
  const config = loadConfig({
    PORT: String(port),
    ...(opts.publicUrl ? { LEADPUSH_PUBLIC_URL: `http://127.0.0.1:${port}` } : {}),
    HOST: "127.0.0.1",
    DATABASE_URL: db.url,
    LEADPUSH_DATA_DIR: db.dir,
    LEADPUSH_SECRET_KEY: SECRET_KEY,
    LEADPUSH_ADMIN_TOKEN: ADMIN_TOKEN,
    LOG_LEVEL: "debug",
    LEADPUSH_LEASE_MS: "5000",
    ...opts.env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString("utf8"));
      cb();
    },
  });
  const app = await createApp(config, {
    logger: createLogger("debug", sink),
    ...(opts.worker === false ? { worker: false } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
  const url = (await app.start()) as string;
  return {
    databaseUrl: db.url,
    app,
    url,
    logs,
    async api(method, path, body, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      const key = o.key === undefined ? ADMIN_TOKEN : o.key;
      if (key) headers.authorization = `Bearer ${key}`;
      let payload: string | undefined;
      if (body !== undefined) {
        payload = typeof body === "string" ? body : JSON.stringify(body);
        headers["content-type"] ??= "application/json";
      }
      const res = await fetch(url + path, {
        method,
        headers,
        ...(payload !== undefined ? { body: payload } : {}),
      });
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: res.status, body: parsed, text, headers: res.headers };
    },
    async close() {
      await app.stop();
      if (!opts.database) await db.drop();
    },
  };
}

/** Polls `check` until it returns a truthy value or the time runs out. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  what = "condition",
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}
