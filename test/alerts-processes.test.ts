import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import { after, before, describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { startSandbox } from "../src/sandbox/server.ts";
import {
  BACKENDS,
  eventually,
  freshDatabase,
  type FreshDatabase,
  startApp,
  type TestApp,
} from "./helpers/harness.ts";
import { createDestination, postLead, waitStatus } from "./helpers/leads.ts";

// Alerts with several processes on one database (two apps, as `serve` + `worker`): the debounce
// and the retries are the database's, not each process's. SQLite is one process's database
// (`caps.shared` is false): there the same cases run in one app, concurrent raises and all, and
// "the other process" is the next one started on the file. (Two apps on one SQLite file inside one
// test process also deadlock each other: node:sqlite waits for a lock synchronously, on the thread
// the other app needs to commit.)

interface Received {
  at: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real receiver: `/down/…` always answers 503; others answer 204, or hang the next `hang`. */
async function receiver() {
  const got: Received[] = [];
  const state = { hang: 0 };
  const hanging: ServerResponse[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      const path = req.url ?? "";
      got.push({ at: Date.now(), path, headers: req.headers, body });
      if (!path.startsWith("/down") && state.hang-- > 0) return void hanging.push(res);
      res.statusCode = path.startsWith("/down") ? 503 : 204;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  return {
    got,
    state,
    url,
    close: () => {
      for (const r of hanging) r.destroy();
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

const verify = (secret: string, r: Received) =>
  new Webhook(secret).verify(r.body, {
    "webhook-id": String(r.headers["webhook-id"]),
    "webhook-timestamp": String(r.headers["webhook-timestamp"]),
    "webhook-signature": String(r.headers["webhook-signature"]),
  }) as { type: string; data: Record<string, unknown> };

interface NotificationView {
  id: string;
  targetId: string;
  kind: string;
  destinationId: string;
  status: string;
  attempts: number;
  lastError: string | null;
  suppressed: number;
}

const notifications = async (t: TestApp): Promise<NotificationView[]> =>
  (await t.api("GET", "/v1/notifications?limit=200")).body.data as NotificationView[];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const backend of BACKENDS) {
  describe(`alerts across processes (${backend}${backend === "sqlite" ? ": one at a time" : ""})`, () => {
    let db: FreshDatabase;
    let a: TestApp;
    let b: TestApp;
    let rx: Awaited<ReturnType<typeof receiver>>;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    let secret: string;
    let targetId: string;
    /** Sets the same alert options on both processes (each retries with its own). */
    const options = (o: Partial<TestApp["app"]["alerts"]["options"]>) => {
      Object.assign(a.app.alerts.options, o);
      Object.assign(b.app.alerts.options, o);
    };

    before(async () => {
      sb = await startSandbox();
      rx = await receiver();
      db = await freshDatabase(backend);
      a = await startApp({ database: db });
      b = backend === "postgres" ? await startApp({ database: db }) : a;
      options({ retryDelaysMs: [50, 50], pollMs: 200 });
      const res = await a.api("POST", "/v1/alert-targets", { name: "ops", url: `${rx.url}/hooks/ops` });
      assert.equal(res.status, 201, res.text);
      secret = res.body.secret as string;
      targetId = res.body.id as string;
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await rx?.close();
      await sb?.close();
      await db?.drop();
    });

    test("both processes see the same state change: one alert per window reaches the receiver, the rest are recorded", async () => {
      const ev = {
        destinationId: "d-flap",
        destination: "flappy",
        from: "active",
        to: "circuit_open",
        reason: "5 consecutive retryable failures",
      };
      for (let i = 0; i < 5; i++) {
        a.app.events.emit("destination:state", ev);
        b.app.events.emit("destination:state", ev);
      }
      const mine = () => rx.got.filter((r) => r.body.includes("flappy"));
      const first = await eventually(() => mine()[0], 5000, "the alert");
      assert.equal(verify(secret, first).type, "destination.circuit_opened");
      const sent = await eventually(
        async () => {
          const n = (await notifications(b)).filter((x) => x.destinationId === "d-flap");
          return n.length === 1 && n[0]!.status === "sent" && n[0]!.suppressed === 9 ? n[0] : undefined;
        },
        5000,
        "one notification, nine suppressed",
      );
      assert.equal(sent.kind, "destination.circuit_opened");
      assert.equal(sent.id, first.headers["webhook-id"]);
      await sleep(500); // both processes poll every 200 ms: nothing else goes out
      assert.equal(mine().length, 1, "exactly one alert reached the receiver");
      // The window is over: the next one goes out and says how many were suppressed before it.
      options({ debounceMs: 0 });
      try {
        b.app.events.emit("destination:state", ev);
        const second = await eventually(() => mine()[1], 5000, "the next alert");
        assert.equal(verify(secret, second).data.suppressed, 9);
      } finally {
        options({ debounceMs: 600_000 });
      }
    });

    test("deliveries failing for good in both processes: one delivery.failed alert, the others counted", async () => {
      const name = "refuses-both";
      const dest = await createDestination(a, name, { url: `${sb.url}/sink/${name}` });
      await sleep(1100); // the other process's destination cache
      sb.sink.behave({ status: 400, times: 6 });
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await postLead(i % 2 ? b : a, name));
      for (const id of ids) await waitStatus(a, id, "failed");
      const n = await eventually(
        async () => {
          const all = (await notifications(a)).filter((x) => x.destinationId === dest.id);
          const sum = all.reduce((s, x) => s + 1 + x.suppressed, 0);
          return sum === 6 ? all : undefined;
        },
        5000,
        "six alerts accounted for",
      );
      assert.equal(n.length, 1);
      assert.equal(n[0]!.kind, "delivery.failed");
      assert.equal(n[0]!.suppressed, 5);
      await eventually(
        async () => (await notifications(a)).find((x) => x.id === n[0]!.id)?.status === "sent",
      );
      const got = rx.got.filter((r) => r.headers["webhook-id"] === n[0]!.id);
      assert.equal(got.length, 1);
      assert.equal(verify(secret, got[0]!).type, "delivery.failed");
    });

    test("a notification whose process died mid-send is sent by another once the lease ends", async () => {
      const leaseEnd = Date.now() + 600;
      await a.app.kysely
        .insertInto("notifications")
        .values({
          id: "msg_orphan",
          target_id: targetId,
          kind: "destination.degraded",
          destination_id: "d-orphan",
          payload: JSON.stringify({ type: "destination.degraded", timestamp: "x", data: { orphan: 1 } }),
          status: "pending",
          attempts: 1,
          last_error: null,
          created_at: Date.now(),
          updated_at: Date.now(),
          suppressed: 0,
          next_attempt_at: leaseEnd,
          lease_owner: "a-process-that-died",
        })
        .execute();
      const got = await eventually(
        () => rx.got.find((r) => r.headers["webhook-id"] === "msg_orphan"),
        5000,
        "the orphan sent",
      );
      assert.ok(got.at >= leaseEnd, "not before its lease ended");
      assert.equal(verify(secret, got).data.orphan, 1);
      const n = await eventually(async () => {
        const x = (await notifications(b)).find((y) => y.id === "msg_orphan");
        return x?.status === "sent" ? x : undefined;
      });
      assert.equal(n.attempts, 2, "the dead process's attempt counts");
      assert.equal(rx.got.filter((r) => r.headers["webhook-id"] === "msg_orphan").length, 1);
    });

    test("an endpoint failing forever ends failed after the attempt cap, and after the age cap", async () => {
      const down = await a.api("POST", "/v1/alert-targets", { name: "down", url: `${rx.url}/down/x` });
      assert.equal(down.status, 201, down.text);
      try {
        a.app.events.emit("destination:state", {
          destinationId: "d-cap",
          destination: "capped",
          from: "active",
          to: "auth_failing",
          reason: "credentials refused",
        });
        const failed = await eventually(async () => {
          const x = (await notifications(b)).find(
            (y) => y.destinationId === "d-cap" && y.targetId === down.body.id,
          );
          return x?.status === "failed" ? x : undefined;
        }, 5000);
        assert.equal(failed.attempts, 3, "one more than the retry delays");
        assert.equal(failed.lastError, "http_503", "a code, never the URL");
        await sleep(300);
        assert.equal(
          rx.got.filter((r) => r.headers["webhook-id"] === failed.id).length,
          3,
          "each attempt sent once, by one process",
        );
        // Bounded by age too: with many retries left, it still ends when it is too old.
        options({ retryDelaysMs: Array.from({ length: 200 }, () => 40), maxAgeMs: 1000 });
        b.app.events.emit("destination:state", {
          destinationId: "d-age",
          destination: "aged",
          from: "active",
          to: "degraded",
          reason: "failures above the threshold",
        });
        const aged = await eventually(async () => {
          const x = (await notifications(a)).find(
            (y) => y.destinationId === "d-age" && y.targetId === down.body.id,
          );
          return x?.status === "failed" ? x : undefined;
        }, 5000);
        assert.ok(aged.attempts < 200, `stopped by its age (${aged.attempts} attempts)`);
        assert.equal(aged.lastError, "http_503");
      } finally {
        options({ retryDelaysMs: [50, 50], maxAgeMs: 6 * 3600_000 });
        await a.api("DELETE", `/v1/alert-targets/down`);
      }
    });

    test("a notification left pending by a stopped process is sent by the other one", async () => {
      // Should the other process claim it first, its own timeout cuts the hanging request off.
      options({ timeoutMs: 2000 });
      rx.state.hang = 1;
      a.app.events.emit("destination:state", {
        destinationId: "d-stop",
        destination: "stopping",
        from: "degraded",
        to: "active",
        reason: "recovered",
      });
      const mine = () => rx.got.filter((r) => r.body.includes("stopping"));
      await eventually(() => mine()[0], 5000, "the first attempt (hanging)");
      await a.close(); // cuts the hanging request off at the end of its grace
      if (backend === "sqlite") b = await startApp({ database: db }); // the next process on the file
      options({ retryDelaysMs: [50, 50], pollMs: 200, timeoutMs: 2000 });
      const again = await eventually(() => mine()[1], 10_000, "sent again by the other process");
      assert.equal(again.headers["webhook-id"], mine()[0]!.headers["webhook-id"], "the same message id");
      assert.equal(verify(secret, again).type, "destination.recovered");
      const n = await eventually(async () => {
        const x = (await notifications(b)).find((y) => y.destinationId === "d-stop");
        return x?.status === "sent" ? x : undefined;
      });
      assert.equal(n.attempts, 2);
      assert.ok(n.lastError, "the cut-off attempt is recorded");
    });
  });
}
