// SIGTERM with pushes in flight: the grace is a hard limit, pushes still running at its end are
// aborted and recorded, and after a restart no lead whose push finished is pushed again.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import {
  ADMIN_TOKEN,
  BACKENDS,
  eventually,
  type FreshDatabase,
  freePort,
  freshDatabase,
  SECRET_KEY,
} from "./helpers/harness.ts";

const GRACE_MS = 2500;
/** What a stop may take beyond its grace here: recording the aborted pushes, closing the store. */
const MARGIN_MS = 2000;

/** A sink whose answer time depends on the lead: `quick` ones within the grace, `slow` ones not. */
function slowSink() {
  const pushes = new Map<string, { received: number; finished: number; cut: number }>();
  let delays = { quick: 800, slow: 20_000 };
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      const key = String(req.headers["idempotency-key"]);
      const p = pushes.get(key) ?? { received: 0, finished: 0, cut: 0 };
      pushes.set(key, p);
      p.received++;
      res.on("close", () => {
        if (!res.writableFinished) p.cut++;
      });
      const timer = setTimeout(
        () => {
          if (res.destroyed) return;
          res.writeHead(201, { "content-type": "application/json" });
          res.end(JSON.stringify({ id: `ok-${key}` }), () => p.finished++);
        },
        body.includes("slow") ? delays.slow : delays.quick,
      );
      res.on("close", () => clearTimeout(timer));
    });
  });
  return {
    pushes,
    fast: () => (delays = { quick: 0, slow: 0 }),
    async listen() {
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

for (const backend of BACKENDS) {
  describe(`SIGTERM with pushes in flight (${backend})`, () => {
    const sink = slowSink();
    let sinkUrl = "";
    let db: FreshDatabase;
    let child: ChildProcess | undefined;
    before(async () => {
      sinkUrl = await sink.listen();
      db = await freshDatabase(backend);
    });
    after(async () => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await sink.close();
      await db.drop();
    });

    async function serve(port: number): Promise<ChildProcess> {
      const proc = spawn(process.execPath, ["src/cli.ts", "serve"], {
        env: {
          ...process.env,
          PORT: String(port),
          HOST: "127.0.0.1",
          DATABASE_URL: db.url,
          LEADPUSH_DATA_DIR: db.dir,
          LEADPUSH_ADMIN_TOKEN: ADMIN_TOKEN,
          LEADPUSH_SECRET_KEY: SECRET_KEY,
          LEADPUSH_SHUTDOWN_GRACE_MS: String(GRACE_MS),
          LOG_LEVEL: "warn",
        },
        stdio: ["ignore", "ignore", "inherit"],
      });
      await eventually(
        async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok,
        15_000,
        "leadpush to start",
      );
      return proc;
    }

    test("aborted at the grace's end, recorded, pushed again once; finished pushes are not", async () => {
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };
      const api = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(base + path, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: res.status, body: (await res.json()) as any };
      };
      child = await serve(port);
      const dest = await api("POST", "/v1/destinations", {
        name: "slow-sink",
        connector: "http",
        url: `${sinkUrl}/leads`,
        timeoutMs: 60_000,
        concurrency: 16,
        retry: { delaysMs: [100, 100, 100], jitter: 0 },
      });
      assert.equal(dest.status, 201);
      const deliveries: { id: string; slow: boolean }[] = [];
      for (const [kind, count] of [
        ["quick", 4],
        ["slow", 6],
      ] as const) {
        for (let i = 0; i < count; i++) {
          const r = await api("POST", "/v1/leads", {
            name: `Lead ${kind} ${i}`,
            email: `${kind}${i}.${backend}@shutdown.test`,
          });
          assert.equal(r.status, 201);
          deliveries.push({ id: r.body.deliveries[0].id as string, slow: kind === "slow" });
        }
      }
      await eventually(() => sink.pushes.size === deliveries.length, 10_000, "every push in flight");

      const t0 = Date.now();
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const timeout = setTimeout(() => child?.kill("SIGKILL"), GRACE_MS + 10_000);
      const [code] = (await exited) as [number | null];
      clearTimeout(timeout);
      const took = Date.now() - t0;
      assert.ok(took < GRACE_MS + MARGIN_MS, `exited ${took} ms after SIGTERM (grace ${GRACE_MS} ms)`);
      assert.equal(code, 0);
      for (const d of deliveries) {
        const p = sink.pushes.get(d.id)!;
        assert.deepEqual(
          p,
          d.slow ? { received: 1, finished: 0, cut: 1 } : { received: 1, finished: 1, cut: 0 },
        );
      }

      sink.fast();
      child = await serve(port);
      await eventually(
        async () => {
          for (const d of deliveries) {
            if ((await api("GET", `/v1/deliveries/${d.id}`)).body.status !== "delivered") return false;
          }
          return true;
        },
        20_000,
        "every delivery delivered after the restart",
      );
      for (const d of deliveries) {
        const p = sink.pushes.get(d.id)!;
        assert.equal(p.finished, 1, `${d.id}: one finished push`);
        assert.equal(p.received, d.slow ? 2 : 1, `${d.id}: pushed again only when cut off`);
        const view = (await api("GET", `/v1/deliveries/${d.id}`)).body;
        const codes = view.attempts.map((a: { error: { code: string } | null }) => a.error?.code ?? null);
        assert.deepEqual(codes.sort(), d.slow ? [null, "shutdown_aborted"] : [null]);
      }
      const stopped = once(child, "exit");
      child.kill("SIGTERM");
      await stopped;
    });
  });
}

test("a port in use: serve says so and exits; its worker does not keep the process alive", async () => {
  const db = await freshDatabase("sqlite");
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
  const port = (busy.address() as AddressInfo).port;
  const proc = spawn(process.execPath, ["src/cli.ts", "serve"], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      DATABASE_URL: db.url,
      LEADPUSH_DATA_DIR: db.dir,
      LEADPUSH_SECRET_KEY: SECRET_KEY,
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr!.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  try {
    const [code, signal] = (await once(proc, "exit")) as [number | null, string | null];
    assert.equal(signal, null, `killed after 15 s: it did not exit by itself\n${stderr}`);
    assert.equal(code, 2);
    assert.match(stderr, /EADDRINUSE[\s\S]*another program uses this port/);
  } finally {
    clearTimeout(timer);
    busy.close();
    await db.drop();
  }
});
