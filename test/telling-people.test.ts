import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { startNotices } from "../src/alerts/notices.ts";
import { Events } from "../src/events.ts";
import { createLogger } from "../src/logger.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";
import { FAST_RETRY } from "./helpers/leads.ts";

const EMAIL = "priya.secret@people.test";
const PASSWORD = "pw-never-in-logs-42";

for (const backend of BACKENDS) {
  describe(`metrics and log lines about destinations (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    before(async () => {
      sb = await startSandbox();
      t = await startApp({ backend });
    });
    after(async () => {
      await t.close();
      await sb.close();
    });

    test("a delivery failed for good: a warn line with lead id and code, error_code on the counter", async () => {
      const dest = await t.api("POST", "/v1/destinations", {
        name: "refuses",
        connector: "http",
        url: `${sb.url}/sink/leads`,
        filter: 'source = "refuses"',
        auth: { type: "basic", username: "u", password: PASSWORD },
        retry: FAST_RETRY,
      });
      assert.equal(dest.status, 201, dest.text);
      sb.sink.behave({ status: 400, times: 1 });
      const lead = await t.api("POST", "/v1/leads", {
        name: "Priya Secret",
        email: EMAIL,
        source: "refuses",
      });
      assert.equal(lead.status, 201, lead.text);
      const leadId = lead.body.id as string;
      const line = await eventually(
        () =>
          t.logs
            .map((l) => JSON.parse(l) as Record<string, unknown>)
            .find((l) => l.leadId === leadId && l.level === 40),
        15_000,
        "the warn line",
      );
      assert.equal(line.destination, "refuses");
      assert.equal(line.destinationId, dest.body.id);
      assert.equal(typeof line.code, "string");
      assert.notEqual(line.code, "unknown");
      assert.match(String(line.msg), /failed for good/);
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      assert.match(
        metrics,
        new RegExp(
          `leadpush_delivery_attempts_total\\{destination="refuses",outcome="failed",error_code="${String(line.code)}"\\} 1`,
        ),
      );
      const all = t.logs.join("\n");
      assert.ok(!all.includes(EMAIL), "no email in the logs");
      assert.ok(!all.includes("Priya Secret"), "no name in the logs");
      assert.ok(!all.includes(PASSWORD), "no password in the logs");
    });

    test("queue depth, oldest waiting age and state per destination; state changes and holds counted", async () => {
      const dest = await t.api("POST", "/v1/destinations", {
        name: "waits",
        connector: "http",
        url: `${sb.url}/sink/leads`,
        filter: 'source = "waits"',
        paused: true,
      });
      assert.equal(dest.status, 201, dest.text);
      for (let i = 0; i < 3; i++) {
        const r = await t.api("POST", "/v1/leads", {
          name: "W",
          email: `w${i}@people.test`,
          source: "waits",
        });
        assert.equal(r.status, 201, r.text);
      }
      const ev = {
        destinationId: dest.body.id as string,
        destination: "waits",
        from: "active",
        to: "circuit_open",
        reason: "5 retryable failures in a row",
      };
      t.app.events.emit("destination:state", ev);
      t.app.events.emit("destination:state", {
        ...ev,
        from: "circuit_open",
        to: "active",
        reason: "probe delivered",
      });
      t.app.events.emit("destination:hold", { ...ev, until: Date.now() + 5000, reason: "retry_after" });
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      assert.match(metrics, /leadpush_destination_queue_depth\{destination="waits"\} 3/);
      const age = /leadpush_destination_oldest_waiting_seconds\{destination="waits"\} ([\d.e-]+)/.exec(
        metrics,
      );
      assert.ok(age && Number(age[1]) >= 0 && Number(age[1]) < 600, metrics);
      assert.match(metrics, /leadpush_destination_state\{destination="refuses",state="active"\} 1/);
      assert.match(metrics, /leadpush_destination_state\{destination="refuses",state="circuit_open"\} 0/);
      assert.match(
        metrics,
        /leadpush_destination_state_changes_total\{destination="waits",from="active",to="circuit_open"\} 1/,
      );
      assert.match(
        metrics,
        /leadpush_circuit_transitions_total\{destination="waits",transition="opened"\} 1/,
      );
      assert.match(
        metrics,
        /leadpush_circuit_transitions_total\{destination="waits",transition="closed"\} 1/,
      );
      assert.match(metrics, /leadpush_rate_limit_holds_total\{destination="waits",reason="retry_after"\} 1/);
      const warn = t.logs
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.level === 40 && l.to === "circuit_open");
      assert.ok(warn, "a warn line for the state change");
      assert.equal(warn.destination, "waits");
      assert.equal(warn.reason, ev.reason);
    });
  });
}

describe("the per-minute summary while a destination is unhealthy", () => {
  test("counts by code while unhealthy, nothing once it recovered", async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(JSON.parse(chunk.toString("utf8")) as Record<string, unknown>);
        cb();
      },
    });
    const events = new Events();
    const stop = startNotices(events, createLogger("info", sink), { summaryEveryMs: 50 });
    try {
      const base = { destinationId: "d1", destination: "vendor", reason: "test" };
      events.emit("destination:state", { ...base, from: "active", to: "degraded" });
      const done = { deliveryId: "x", leadId: "l1", destinationId: "d1", destination: "vendor" };
      for (const code of ["http_5xx", "http_5xx", "timeout"])
        events.emit("delivery:completed", {
          ...done,
          status: "retrying",
          outcome: "retry",
          durationMs: 1,
          attempt: 1,
          code,
        });
      const summary = await eventually(
        () => lines.find((l) => l.level === 30 && l.state === "degraded"),
        5000,
      );
      assert.deepEqual(summary.attempts, { http_5xx: 2, timeout: 1 });
      assert.equal(summary.destination, "vendor");
      events.emit("destination:state", { ...base, from: "degraded", to: "active" });
      const count = lines.length;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(
        lines.filter((l) => l.level === 30).length,
        lines.slice(0, count).filter((l) => l.level === 30).length,
      );
    } finally {
      stop();
    }
  });
});
