import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Outcome } from "../src/connectors/connector.ts";
import { decideOutcome } from "../src/delivery/completion.ts";
import {
  handOffAllowed,
  type Health,
  healthSignal,
  holdUntil,
  nextHealth,
  UNREACHABLE_PROBE_MS,
} from "../src/delivery/health.ts";
import { DEFAULT_CIRCUIT } from "../src/destinations/circuit.ts";

// The destination state machine and the hold it puts on deliveries: pure, every input given.
const cfg = { ...DEFAULT_CIRCUIT, failureThreshold: 3, cooldownMs: 1000 };
const fresh: Health = { state: "active", streak: 0, probeAt: null, reason: null };
const retry = (code: string): Outcome => ({ kind: "retry", code: code as "http_503", message: code });
const failed = (code: string): Outcome => ({ kind: "failed", code: code as "http_401", message: code });

describe("destination health", () => {
  test("signals: static credentials refused, token endpoint down, retryable, other", () => {
    assert.equal(healthSignal(failed("http_401"), true), "auth_refused");
    assert.equal(healthSignal(failed("http_403"), true), "auth_refused");
    assert.equal(healthSignal(failed("http_401"), true), "auth_refused");
    // A token strategy already re-fetched its token once: its 401 is not the static key's.
    assert.equal(healthSignal(failed("http_401"), false), "neutral");
    assert.equal(healthSignal(retry("auth_rejected"), false), "auth_refused");
    assert.equal(healthSignal(retry("auth_unreachable"), false), "unreachable");
    assert.equal(healthSignal(retry("http_503"), true), "failure");
    assert.equal(healthSignal(retry("shutdown_aborted"), true), "neutral");
    assert.equal(healthSignal(failed("http_400"), true), "neutral");
    assert.equal(healthSignal({ kind: "delivered" }, true), "success");
  });

  test("N consecutive failures open the circuit; a failed probe keeps it open; a success closes it", () => {
    let h = fresh;
    h = nextHealth(h, "failure", cfg, 0);
    h = nextHealth(h, "failure", cfg, 0);
    assert.equal(h.state, "active");
    assert.equal(holdUntil(h, "failure"), undefined, "below the threshold: the schedule applies");
    h = nextHealth(h, "failure", cfg, 5);
    assert.deepEqual([h.state, h.streak, h.probeAt], ["circuit_open", 3, 1005]);
    assert.equal(holdUntil(h, "failure"), 1005);
    h = nextHealth(h, "failure", cfg, 2000);
    assert.deepEqual([h.state, h.probeAt], ["circuit_open", 3000]);
    h = nextHealth(h, "success", cfg, 3000);
    assert.deepEqual(h, fresh);
  });

  test("refused credentials and an unreachable token endpoint hold at once", () => {
    const refused = nextHealth(fresh, "auth_refused", cfg, 0);
    assert.deepEqual([refused.state, holdUntil(refused, "auth_refused")], ["auth_failing", 1000]);
    const long = { ...cfg, cooldownMs: 600_000 };
    const down = nextHealth(fresh, "unreachable", long, 0);
    assert.deepEqual([down.state, down.probeAt], ["circuit_open", UNREACHABLE_PROBE_MS]);
  });

  test("degraded above the failure rate, active again below it", () => {
    const d = nextHealth(fresh, "failure", cfg, 0, 0.6);
    assert.equal(d.state, "degraded");
    assert.equal(nextHealth(d, "success", cfg, 0, 0.6).state, "degraded");
    assert.equal(nextHealth(d, "success", cfg, 0, 0.1).state, "active");
    assert.equal(nextHealth(fresh, "failure", cfg, 0, undefined).state, "active", "too few attempts to tell");
  });

  test("a held delivery keeps its attempt count and waits for the probe, even when final otherwise", () => {
    const destination = { name: "crm", retry: { delaysMs: [], jitter: 0 } };
    const base = { previousAttempts: 4, destination, stored: {}, state: {}, exchanges: [], now: 10 };
    const held = decideOutcome({ ...base, outcome: failed("http_401"), blockedRecheckMs: 0, holdUntil: 500 });
    assert.deepEqual(
      [held.decision.status, held.decision.attempts, held.decision.nextAttemptAt, held.decision.code],
      ["retrying", 4, 500, "http_401"],
    );
    const notHeld = decideOutcome({ ...base, outcome: retry("http_503"), blockedRecheckMs: 0 });
    assert.equal(notHeld.decision.status, "failed", "no delays left and not held: final");
  });
});

describe("hand-off from ingest", () => {
  test("only an enabled, unpaused, healthy, unheld destination without a rate limit takes one", () => {
    const ok = { enabled: true, paused: false, state: "active", rateLimit: undefined };
    assert.equal(handOffAllowed(ok, false), true);
    assert.equal(handOffAllowed({ ...ok, state: "degraded" }, false), true);
    assert.equal(handOffAllowed(ok, true), false, "held by traffic control");
    assert.equal(handOffAllowed({ ...ok, enabled: false }, false), false);
    assert.equal(handOffAllowed({ ...ok, paused: true }, false), false);
    for (const state of ["needs_reconnect", "circuit_open", "auth_failing"])
      assert.equal(handOffAllowed({ ...ok, state }, false), false, state);
    assert.equal(handOffAllowed({ ...ok, rateLimit: { intervalMs: 100, burst: 1 } }, false), false);
  });
});
