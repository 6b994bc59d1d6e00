// Destination health end to end (issue 14): the circuit breaker, refused static credentials and a
// token endpoint outage hold a destination without spending its deliveries' retry schedules.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { SANDBOX_ACCOUNTS as A } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import type { EventMap } from "../src/events.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";
import { createDestination, deliveryOf, postLead, waitStatus } from "./helpers/leads.ts";

/** Three attempts: without the hold, an outage of a second fails every lead for good. */
const SHORT_RETRY = { delaysMs: [100, 100], jitter: 0 };

for (const backend of BACKENDS) {
  describe(`destination health (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    const changes: EventMap["destination:state"][0][] = [];
    before(async () => {
      sb = await startSandbox();
      t = await startApp({ backend });
      t.app.events.on("destination:state", (e) => changes.push(e));
    });
    after(async () => {
      await t.close();
      await sb.close();
    });
    beforeEach(() => sb.sink.reset());

    const stateOf = async (name: string) => (await t.api("GET", `/v1/destinations/${name}`)).body;
    const statuses = async (ids: string[]) =>
      Promise.all(ids.map(async (id) => (await deliveryOf(t, id)).status));

    test("a vendor down for a while opens the circuit; leads wait, none fails, all land when it is back", async () => {
      const name = "down-vendor";
      await createDestination(t, name, {
        url: `${sb.url}/sink/down`,
        retry: SHORT_RETRY,
        circuit: { failureThreshold: 3, cooldownMs: 300 },
      });
      sb.sink.behave({ status: 503, times: 100_000 });
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await postLead(t, name));
      const open = await eventually(
        async () => {
          const d = await stateOf(name);
          return d.state === "circuit_open" ? d : undefined;
        },
        10_000,
        "circuit_open",
      );
      assert.ok(open.health.circuit.consecutiveFailures >= 3);
      assert.ok(open.health.circuit.nextProbeAt, "the next probe is shown");
      // While open: about one probe per cool-down, not every delivery's retries.
      const before = sb.sink.received.length;
      await new Promise((r) => setTimeout(r, 1500));
      const during = sb.sink.received.length - before;
      assert.ok(during <= 1500 / 300 + 2, `${during} requests while the circuit was open`);
      assert.ok(!(await statuses(ids)).includes("failed"), "no lead failed for good");
      sb.sink.reset();
      for (const id of ids) await waitStatus(t, id, "delivered", 15_000);
      const healthy = await eventually(
        async () => {
          const d = await stateOf(name);
          return d.state === "active" ? d : undefined;
        },
        5000,
        "active again",
      );
      assert.equal(healthy.health.circuit.nextProbeAt, null);
      assert.ok(changes.some((c) => c.destination === name && c.to === "circuit_open"));
      assert.ok(
        changes.some((c) => c.destination === name && c.from === "circuit_open" && c.to === "active"),
      );
    });

    test("a refused static key shows auth_failing, retries, and fixing it delivers the backlog", async () => {
      const name = "wrong-key";
      sb.sink.behave({ bearer: "right-key" });
      await createDestination(t, name, {
        url: `${sb.url}/sink/key`,
        retry: SHORT_RETRY,
        circuit: { cooldownMs: 300 },
        auth: { type: "static_key", in: "header", fields: { Authorization: "Bearer wrong-key" } },
      });
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await postLead(t, name));
      const failing = await eventually(
        async () => {
          const d = await stateOf(name);
          // The attempt's row is written in the next completion window, maybe after the state.
          return d.state === "auth_failing" && d.health.lastError ? d : undefined;
        },
        10_000,
        "auth_failing",
      );
      assert.equal(failing.health.lastError.code, "http_401");
      // Several probes later still nothing failed for good.
      await new Promise((r) => setTimeout(r, 1000));
      assert.ok(!(await statuses(ids)).includes("failed"), "no lead failed for good");
      assert.ok((await deliveryOf(t, ids[0]!)).attemptCount <= 1, "the retry schedule is not spent");
      const patched = await t.api("PATCH", `/v1/destinations/${name}`, {
        auth: { type: "static_key", in: "header", fields: { Authorization: "Bearer right-key" } },
      });
      assert.equal(patched.status, 200, patched.text);
      for (const id of ids) await waitStatus(t, id, "delivered", 10_000);
      assert.equal((await stateOf(name)).state, "active");
    });

    test("a token endpoint down for a while fails no lead", async () => {
      const name = "token-down";
      sb.oauth2.reset();
      sb.oauth2.control({ tokenEndpoint: "down" });
      const auth = {
        type: "oauth2",
        tokenUrl: `${sb.url}/oauth2/token`,
        bodyFormat: "json",
        grantType: "password",
        ...A.oauth2,
      };
      await createDestination(t, name, {
        url: `${sb.url}/oauth2/leads`,
        retry: SHORT_RETRY,
        auth,
        circuit: { cooldownMs: 300 },
      });
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await postLead(t, name));
      await eventually(async () => (await stateOf(name)).state === "circuit_open", 10_000, "held");
      // Longer than the three-step schedule and the handshake's own failure hold.
      await new Promise((r) => setTimeout(r, 6000));
      assert.ok(!(await statuses(ids)).includes("failed"), "no lead failed for good");
      sb.oauth2.control({ tokenEndpoint: "ok" });
      for (const id of ids) await waitStatus(t, id, "delivered", 15_000);
      assert.equal(sb.oauth2.state.leads.length, 5);
    });

    test("health figures: success rates, last error, oldest waiting, state on the list", async () => {
      const name = "figures";
      await createDestination(t, name, { url: `${sb.url}/sink/figures`, retry: SHORT_RETRY });
      sb.sink.behave({ status: 500, times: 1 });
      const first = await postLead(t, name);
      await waitStatus(t, first, "delivered");
      const d = await stateOf(name);
      assert.equal(d.state, "active");
      assert.deepEqual(d.health.successRate.lastHour, { attempts: 2, delivered: 1, rate: 0.5 });
      assert.equal(d.health.successRate.lastDay.attempts, 2);
      assert.equal(d.health.lastError.code, "http_500");
      assert.ok(Date.parse(d.health.lastError.at) <= Date.now());
      assert.equal(d.health.oldestWaitingMs, null);
      assert.equal(d.health.circuit.state, "active");
      await t.api("PATCH", `/v1/destinations/${name}`, { paused: true });
      const waiting = await postLead(t, name);
      await new Promise((r) => setTimeout(r, 50));
      const paused = await stateOf(name);
      assert.equal(paused.state, "paused");
      assert.ok(paused.health.oldestWaitingMs >= 0);
      await t.api("PATCH", `/v1/destinations/${name}`, { enabled: false });
      const list = (await t.api("GET", "/v1/destinations")).body.data as { name: string; state: string }[];
      assert.equal(list.find((x) => x.name === name)?.state, "disabled");
      await t.api("PATCH", `/v1/destinations/${name}`, { enabled: true, paused: false });
      await waitStatus(t, waiting, "delivered");
    });

    test("a circuit setting out of range is refused with the field named", async () => {
      const res = await t.api("POST", "/v1/destinations", {
        name: "bad-circuit",
        connector: "http",
        url: `${sb.url}/sink/x`,
        circuit: { failureThreshold: 0 },
      });
      assert.equal(res.status, 400, res.text);
      assert.ok(JSON.stringify(res.body.error.details).includes("failureThreshold"));
    });
  });
}
