// Isolation between destinations: a destination hanging on every push holds neither all of the
// worker's slots nor connections another destination on the same host:port needs.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import { Agent } from "undici";
import { createTransport, newRequest } from "../src/http/http-client.ts";
import { DestinationPools, POOL_IDLE_MS } from "../src/http/pools.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";

/** One host:port: `/hang` never answers (until closed), `/ok` answers 201 at once. */
async function vendor() {
  const hangs: number[] = [];
  const oks: number[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on("end", () => {
      if (req.url?.startsWith("/hang")) return void hangs.push(Date.now());
      oks.push(Date.now());
      res.writeHead(201, { "content-type": "application/json" }).end('{"id":"ok"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  const close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return { url, hangs, oks, close };
}

// Far above what 40 healthy leads need (~0.3 s), so a loaded machine cannot cross it (3 s once was).
const HANG_TIMEOUT_MS = 8000;
const LEADS = 40;

for (const backend of BACKENDS) {
  describe(`isolation between destinations (${backend})`, () => {
    let t: TestApp;
    let v: Awaited<ReturnType<typeof vendor>>;
    before(async () => {
      v = await vendor();
      // 16 worker slots; the hanging destination may run 64 pushes at once.
      t = await startApp({ backend, env: { LEADPUSH_WORKER_CONCURRENCY: "16" } });
    });
    after(async () => {
      await v.close();
      await t.close();
    });

    test("a destination hanging at concurrency >= the worker's slots does not delay another on the same host:port", async () => {
      const retry = { delaysMs: [60_000], jitter: 0 };
      for (const [name, path, extra] of [
        ["hanging", "/hang", { concurrency: 64, timeoutMs: HANG_TIMEOUT_MS }],
        ["healthy", "/ok", { concurrency: 8 }],
      ] as const) {
        const res = await t.api("POST", "/v1/destinations", {
          ...{ name, connector: "http", url: `${v.url}${path}`, retry },
          ...extra,
        });
        assert.equal(res.status, 201, res.text);
      }
      // Every lead goes to both destinations.
      for (let i = 0; i < LEADS; i++) {
        const res = await t.api("POST", "/v1/leads", { name: `Iso ${i}`, email: `iso${i}@example.com` });
        assert.equal(res.status, 201, res.text);
      }
      await eventually(() => v.oks.length >= LEADS, 20_000, "the healthy destination's leads delivered");
      const firstHang = v.hangs[0];
      assert.ok(firstHang !== undefined, "the hanging destination was called");
      const lastOk = Math.max(...v.oks);
      // Before the fix the hanging one took all 16 slots and the healthy leads waited for its timeouts.
      assert.ok(
        lastOk < firstHang + HANG_TIMEOUT_MS,
        `all healthy leads delivered ${lastOk - firstHang} ms after the first hanging push (its timeout: ${HANG_TIMEOUT_MS} ms)`,
      );
      // The hanging one held no more than its fair share of the 16 slots.
      assert.ok(v.hangs.length <= 16, `${v.hangs.length} hanging pushes in flight`);
    });
  });
}

describe("connection pools per destination", () => {
  test("a destination holding every connection of its pool does not block another at the same origin", async () => {
    const v = await vendor();
    const transport = createTransport({ allowPrivateNetworks: true, connectionsPerOrigin: 4 });
    try {
      const hanging = { id: "hanging", connections: 1000 };
      const held = Array.from({ length: 8 }, () =>
        transport.send(newRequest("POST", `${v.url}/hang`), HANG_TIMEOUT_MS, undefined, undefined, hanging),
      );
      await eventually(() => v.hangs.length >= 4, 5000, "the hanging pool's 4 connections busy");
      assert.equal(v.hangs.length, 4, "a pool is at most as wide as connectionsPerOrigin");
      const started = Date.now();
      const ok = await transport.send(
        newRequest("POST", `${v.url}/ok`),
        HANG_TIMEOUT_MS,
        undefined,
        undefined,
        {
          id: "healthy",
          connections: 8,
        },
      );
      assert.ok(ok.ok && ok.response.status === 201, JSON.stringify(ok));
      assert.ok(Date.now() - started < HANG_TIMEOUT_MS, "answered before the hanging requests' timeout");
      assert.equal(transport.pools(), 2);
      await v.close();
      for (const r of await Promise.all(held)) assert.equal(r.ok, false);
    } finally {
      await v.close();
      await transport.destroy();
    }
  });

  test("pools of idle (or deleted) destinations are closed", async () => {
    let now = 1_000_000;
    const made: Agent[] = [];
    const pools = new DestinationPools(
      (connections) => {
        const a = new Agent({ connections });
        made.push(a);
        return a;
      },
      () => now,
    );
    try {
      pools.acquire({ id: "a", connections: 2 }).done();
      const b = pools.acquire({ id: "b", connections: 2 });
      assert.equal(pools.size, 2);
      now += POOL_IDLE_MS + 10_000;
      pools.acquire({ id: "c", connections: 2 }).done();
      // `a` was idle past the window and closed; `b` still has a request running.
      assert.equal(pools.size, 2);
      assert.equal(made[0]?.closed, true);
      assert.equal(made[1]?.closed, false);
      b.done();
      // A changed concurrency gets a new pool of the new width; the old one is closed.
      pools.acquire({ id: "c", connections: 5 }).done();
      assert.equal(made[2]?.closed, true);
      assert.equal(pools.size, 2);
    } finally {
      await pools.destroy();
    }
  });
});
