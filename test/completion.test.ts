import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Outcome } from "../src/connectors/connector.ts";
import {
  buildCompletion,
  decideOutcome,
  type OutcomeInput,
  SHUTDOWN_ABORTED,
  upstreamLookup,
} from "../src/delivery/completion.ts";

// The pure outcome → completion functions: no database, no clock; every input is given.
const destination = { name: "crm", retry: { delaysMs: [1_000, 5_000], jitter: 0 } };
const decide = (outcome: Outcome, over: Partial<OutcomeInput> = {}) =>
  decideOutcome({
    ...{ outcome, previousAttempts: 0, destination, stored: {}, state: {}, exchanges: [] },
    ...{ now: 10_000, blockedRecheckMs: 60_000, random: () => 0.5 },
    ...over,
  });

describe("outcome → completion", () => {
  test("delivered: the answer kept, enrichment named after the destination, destination active", () => {
    const { decision, destinationState } = decide({
      ...{ kind: "delivered", externalId: "x-1", result: { ok: true }, enrichment: { score: 3 } },
      status: 201,
    });
    assert.equal(decision.status, "delivered");
    assert.equal(decision.attempts, 1);
    assert.equal(decision.nextAttemptAt, null);
    assert.equal(decision.externalId, "x-1");
    assert.equal(decision.lastStatus, 201);
    assert.deepEqual(decision.result, { response: { ok: true } });
    assert.deepEqual(decision.enrichment, { name: "crm", value: { score: 3 } });
    assert.equal(destinationState, "active");
  });

  test("retry: on the schedule while delays remain, then failed", () => {
    const first = decide({ kind: "retry", code: "http_503", message: "busy" }).decision;
    assert.deepEqual([first.status, first.nextAttemptAt, first.attempts], ["retrying", 11_000, 1]);
    const later = decide(
      { kind: "retry", code: "http_503", message: "busy", retryAfterMs: 30_000 },
      {
        previousAttempts: 1,
      },
    ).decision;
    assert.deepEqual(
      [later.status, later.nextAttemptAt],
      ["retrying", 40_000],
      "Retry-After wins when longer",
    );
    const last = decide(
      { kind: "retry", code: "http_503", message: "busy" },
      { previousAttempts: 2 },
    ).decision;
    assert.deepEqual([last.status, last.nextAttemptAt, last.attempts], ["failed", null, 3]);
  });

  test("shutdown abort and blocked spend no attempt; blocked marks the destination", () => {
    const aborted = decide(
      { kind: "retry", code: SHUTDOWN_ABORTED, message: "cut" },
      { previousAttempts: 2 },
    );
    assert.deepEqual(
      [aborted.decision.status, aborted.decision.attempts, aborted.decision.nextAttemptAt],
      ["retrying", 2, 10_000],
    );
    const blocked = decide({ kind: "blocked", code: "needs_reconnect", message: "reconnect" });
    assert.deepEqual([blocked.decision.attempts, blocked.decision.nextAttemptAt], [0, 70_000]);
    assert.equal(blocked.destinationState, "needs_reconnect");
  });

  test("a deleted destination: failed, no retry, no destination state", () => {
    const r = decide({ kind: "retry", code: "http_500", message: "x" }, { destination: undefined });
    assert.equal(r.decision.status, "failed");
    assert.equal(r.destinationState, undefined);
  });

  test("the connector's state is kept with the stored answer; the last exchange's status when none given", () => {
    const { decision } = decide(
      { kind: "awaiting", reason: "batched" },
      {
        stored: { response: { earlier: true } },
        state: { step: 2 },
        exchanges: [
          { step: "push", method: "POST", url: "u", requestHeaders: {}, durationMs: 1, status: 202 },
        ],
      },
    );
    assert.equal(decision.status, "awaiting");
    assert.deepEqual(decision.result, { response: { earlier: true }, state: { step: 2 } });
    assert.equal(decision.lastStatus, 202);
  });

  test("buildCompletion: the row changes and the attempt row, with a batch's suffix", () => {
    const { decision } = decide({ kind: "failed", code: "http_422", message: "bad email", status: 422 });
    const c = buildCompletion(
      { deliveryId: "d1", leadId: "l1", destinationId: "x", owner: "w", batchId: "b1" },
      decision,
      {
        ...{ id: "a1", number: 1, startedAt: 9_000, durationMs: 5, outcome: "failed", exchanges: [] },
        errorSuffix: " (batch b1)",
      },
      10_000,
    );
    assert.equal(c.lastError, "http_422: bad email (batch b1)");
    assert.equal(c.batchId, "b1");
    assert.equal(c.result, null);
    assert.equal(c.deliveredAt, null);
    assert.deepEqual(
      [c.attempt.error_code, c.attempt.error_message, c.attempt.response_status, c.attempt.exchanges],
      ["http_422", "bad email (batch b1)", 422, "[]"],
    );
  });

  test("upstreamLookup: `after` names resolved to ids; unknown names ignored", () => {
    const ds = new Map([
      ["a", { id: "a", name: "first", after: [] }],
      ["b", { id: "b", name: "second", after: ["first", "gone"] }],
    ]);
    const { upstreamOf, isUpstream } = upstreamLookup(ds);
    assert.deepEqual(upstreamOf("b"), ["a"]);
    assert.deepEqual(upstreamOf("a"), []);
    assert.equal(isUpstream("a"), true);
    assert.equal(isUpstream("b"), false);
  });
});
