import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { after, before, describe, test } from "node:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { applyConfigFile } from "../src/app.ts";
import { loadConfigFile } from "../src/config-file.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";
import { FAST_RETRY } from "./helpers/leads.ts";

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real receiver: answers `failFirst` requests with 500, then 204. */
async function receiver() {
  const got: Received[] = [];
  const state = { failFirst: 0 };
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      got.push({ path: req.url ?? "", headers: req.headers, body });
      res.statusCode = state.failFirst-- > 0 ? 500 : 204;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  return { got, state, url, close: () => new Promise((r) => server.close(r)) };
}

const verify = (secret: string, r: Received) =>
  new Webhook(secret).verify(r.body, {
    "webhook-id": String(r.headers["webhook-id"]),
    "webhook-timestamp": String(r.headers["webhook-timestamp"]),
    "webhook-signature": String(r.headers["webhook-signature"]),
  }) as { type: string; data: Record<string, unknown> };

for (const backend of BACKENDS) {
  describe(`alerts (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    let rx: Awaited<ReturnType<typeof receiver>>;
    let secret: string;
    before(async () => {
      sb = await startSandbox();
      rx = await receiver();
      t = await startApp({ backend });
      t.app.alerts.options.retryDelaysMs = [50, 50];
      const res = await t.api("POST", "/v1/alert-targets", { name: "ops", url: `${rx.url}/hooks/ops` });
      assert.equal(res.status, 201, res.text);
      secret = res.body.secret as string;
      assert.match(secret, /^whsec_/);
    });
    after(async () => {
      await t.close();
      await rx.close();
      await sb.close();
    });

    test("the secret is shown once, sealed at rest, redacted in listings", async () => {
      const list = await t.api("GET", "/v1/alert-targets");
      assert.equal(list.status, 200);
      assert.equal(list.body.data[0].secret, "[redacted]");
      assert.ok(!list.text.includes(secret));
      const row = await t.app.kysely.selectFrom("alert_targets").select("secret").executeTakeFirstOrThrow();
      assert.ok(!row.secret.includes(secret.slice(6)), "sealed");
      const bad = await t.api("POST", "/v1/alert-targets", { name: "x", url: "ftp://x", secret: "nope" });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, "invalid_request");
      const openapi = await t.api("GET", "/docs/json");
      assert.ok(openapi.body.paths["/v1/alert-targets"], "in the OpenAPI");
      assert.equal((await t.api("GET", "/v1/alert-targets", undefined, { key: null })).status, 401);
    });

    test("a state change: signed, verified by standardwebhooks; a flapping vendor is debounced", async () => {
      const ev = {
        destinationId: "d-flap",
        destination: "flappy",
        from: "active",
        to: "circuit_open",
        reason: "5 failures",
      };
      const before = rx.got.length;
      for (let i = 0; i < 5; i++) t.app.events.emit("destination:state", ev);
      const first = await eventually(() => rx.got.slice(before).find((r) => r.body.includes("flappy")), 5000);
      const msg = verify(secret, first);
      assert.equal(msg.type, "destination.circuit_opened");
      assert.equal(msg.data.destination, "flappy");
      assert.equal(msg.data.reason, "5 failures");
      assert.throws(
        () => verify(`whsec_${Buffer.alloc(24, 7).toString("base64")}`, first),
        "a wrong secret fails",
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(rx.got.slice(before).filter((r) => r.body.includes("flappy")).length, 1, "debounced");
      // After the window, the next one goes out with the count of those suppressed.
      t.app.alerts.options.debounceMs = 0;
      t.app.events.emit("destination:state", ev);
      const second = await eventually(
        () => rx.got.slice(before).filter((r) => r.body.includes("flappy"))[1],
        5000,
      );
      assert.equal(verify(secret, second).data.suppressed, 4);
      t.app.alerts.options.debounceMs = 600_000;
    });

    test("a delivery failing for good is announced; a failing target is retried and recorded", async () => {
      const dest = await t.api("POST", "/v1/destinations", {
        name: "refuses",
        connector: "http",
        url: `${sb.url}/sink/leads`,
        filter: 'source = "refuses"',
        retry: FAST_RETRY,
      });
      assert.equal(dest.status, 201, dest.text);
      sb.sink.behave({ status: 400, times: 1 });
      rx.state.failFirst = 1;
      const before = rx.got.length;
      const lead = await t.api("POST", "/v1/leads", {
        name: "Asha Private",
        email: "asha@alerts.test",
        source: "refuses",
      });
      assert.equal(lead.status, 201, lead.text);
      const ok = await eventually(
        () => rx.got.slice(before).filter((r) => r.body.includes("delivery.failed"))[1],
        10_000,
        "the retried alert",
      );
      const msg = verify(secret, ok);
      assert.equal(msg.type, "delivery.failed");
      assert.equal(msg.data.leadId, lead.body.id);
      assert.equal(msg.data.destination, "refuses");
      assert.ok(!ok.body.includes("asha@alerts.test") && !ok.body.includes("Asha"), "no personal data");
      const n = await eventually(async () => {
        const r = await t.api("GET", "/v1/notifications");
        const row = r.body.data.find((x: { kind: string }) => x.kind === "delivery.failed");
        return row?.status === "sent" ? row : undefined;
      }, 5000);
      assert.equal(n.attempts, 2);
      assert.equal(n.lastError, "http_500");
    });

    test("a target that never answers well ends failed after its retries, recorded", async () => {
      rx.state.failFirst = 100;
      t.app.events.emit("destination:state", {
        destinationId: "d-auth",
        destination: "keys-wrong",
        from: "active",
        to: "auth_failing",
        reason: "401 on a static key",
      });
      const n = await eventually(async () => {
        const r = await t.api("GET", "/v1/notifications");
        const row = r.body.data.find((x: { kind: string }) => x.kind === "destination.auth_failing");
        return row?.status === "failed" ? row : undefined;
      }, 5000);
      assert.equal(n.attempts, 3);
      assert.equal(n.lastError, "http_500");
      rx.state.failFirst = 0;
    });
  });
}

describe("alerts: Slack format", () => {
  test("a Slack-compatible body, and the webhook URL is not shown", async () => {
    const rx = await receiver();
    const t = await startApp();
    try {
      const res = await t.api("POST", "/v1/alert-targets", {
        name: "slack",
        url: `${rx.url}/services/T000/B000/secretpath`,
        format: "slack",
      });
      assert.equal(res.status, 201, res.text);
      assert.ok(!res.text.includes("secretpath"));
      t.app.events.emit("destination:state", {
        destinationId: "d1",
        destination: "vendor",
        from: "circuit_open",
        to: "active",
        reason: "probe delivered",
      });
      const got = await eventually(() => rx.got[0], 5000);
      const body = JSON.parse(got.body) as { text: string };
      assert.match(body.text, /vendor/);
      assert.match(body.text, /circuit closed/);
      assert.ok(!(await t.api("GET", "/v1/alert-targets")).text.includes("secretpath"));
    } finally {
      await t.close();
      await rx.close();
    }
  });
});

describe("alerts: leadpush.config.yaml", () => {
  test("alertTargets are created by name with a secret from the environment; a bad one names its line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "leadpush-alerts-"));
    const path = join(dir, "leadpush.config.yaml");
    const secret = `whsec_${Buffer.alloc(24, 3).toString("base64")}`;
    writeFileSync(
      path,
      "alertTargets:\n  - name: ops\n    url: https://hooks.example.com/x\n    secret: ${HOOK_SECRET}\n",
    );
    const file = loadConfigFile(path, { HOOK_SECRET: secret });
    assert.ok(file);
    const t = await startApp();
    try {
      await applyConfigFile(t.app, file);
      const list = await t.api("GET", "/v1/alert-targets");
      assert.equal(list.body.data[0].name, "ops");
      assert.ok(!list.text.includes(secret));
      assert.ok(!t.logs.join("").includes(secret), "not logged");
    } finally {
      await t.close();
    }
    writeFileSync(
      path,
      "alertTargets:\n  - name: ops\n    url: https://hooks.example.com/x\n    secret: plain\n",
    );
    assert.throws(() => loadConfigFile(path, {}), /:4: alertTargets\[0\]\.secret/);
  });
});

describe("alerts: the private-address guard", () => {
  test("with LEADPUSH_ALLOW_PRIVATE_NETWORKS=false an alert to loopback is refused and recorded", async () => {
    const rx = await receiver();
    const t = await startApp({ env: { LEADPUSH_ALLOW_PRIVATE_NETWORKS: "false" } });
    try {
      t.app.alerts.options.retryDelaysMs = [20];
      const res = await t.api("POST", "/v1/alert-targets", { name: "inside", url: `${rx.url}/hook` });
      assert.equal(res.status, 201, res.text);
      t.app.events.emit("destination:state", {
        destinationId: "d1",
        destination: "vendor",
        from: "active",
        to: "degraded",
        reason: "failures above the threshold",
      });
      const n = await eventually(async () => {
        const r = await t.api("GET", "/v1/notifications");
        return r.body.data[0]?.status === "failed" ? r.body.data[0] : undefined;
      }, 5000);
      assert.equal(n.lastError, "blocked_address");
      assert.equal(rx.got.length, 0, "nothing reached the loopback receiver");
    } finally {
      await t.close();
      await rx.close();
    }
  });
});
