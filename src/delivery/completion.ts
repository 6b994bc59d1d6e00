import type { Outcome } from "../connectors/connector.ts";
import type { Completion } from "../store/completions.ts";
import type { Exchange } from "../http/http-client.ts";
import { nextRetryDelay } from "./schedule.ts";

/*
 * Turning what an attempt (or a batch) ended with into the store's `Completion`: pure functions,
 * no database, no clock, no ids of their own — everything comes in as input.
 */

/**
 * The outcome of a push cut off at the end of the shutdown grace. Not an attempt that spends a
 * retry, and due again at once: the next worker (or the restart) pushes it again with the same
 * Idempotency-Key — it may have reached the client before it was cut off.
 */
export const SHUTDOWN_ABORTED = "shutdown_aborted";

/** Keeps the `result` column: the client's answer and a connector's state between attempts. */
export interface StoredResult {
  response?: unknown;
  state?: Record<string, unknown>;
}

/** Which delivery a completion is for, and who may complete it (a lease owner, or a batch). */
export interface CompletionTarget {
  deliveryId: string;
  leadId: string;
  destinationId: string;
  owner: string;
  batchId?: string;
}

/** What was decided for the delivery; `buildCompletion` turns it into the row changes. */
export interface Decision {
  status: Completion["status"];
  /** The delivery's attempt count after this one (unchanged when the attempt spent no retry). */
  attempts: number;
  nextAttemptAt: number | null;
  code: string | undefined;
  message: string | null;
  lastStatus: number | null;
  externalId: string | null;
  /** The delivery's `result` column as it is to be stored. */
  result: StoredResult;
  /** `lead.enrichment[name] = value`, when delivered with enrichment. */
  enrichment?: { name: string; value: unknown } | undefined;
}

/** The attempt log row's own facts. */
export interface AttemptFacts {
  id: string;
  number: number;
  startedAt: number;
  durationMs: number;
  /** `delivered`, `retry`, `failed`, `blocked`, `awaiting`. */
  outcome: string;
  exchanges: Exchange[];
  /** Appended to the stored error message and `last_error` (a batch names itself). */
  errorSuffix?: string;
}

/** The one place a completion and its attempt row are built, for single pushes and batches alike. */
export function buildCompletion(
  target: CompletionTarget,
  d: Decision,
  a: AttemptFacts,
  now: number,
): Completion {
  const suffix = a.errorSuffix ?? "";
  const completion: Completion = {
    deliveryId: target.deliveryId,
    owner: target.owner,
    ...(target.batchId !== undefined ? { batchId: target.batchId } : {}),
    leadId: target.leadId,
    destinationId: target.destinationId,
    status: d.status,
    attempts: d.attempts,
    nextAttemptAt: d.nextAttemptAt,
    lastError: d.code ? `${d.code}: ${d.message ?? ""}${suffix}` : null,
    lastStatus: d.lastStatus,
    externalId: d.externalId,
    result: Object.keys(d.result).length > 0 ? JSON.stringify(d.result) : null,
    deliveredAt: d.status === "delivered" ? now : null,
    attempt: {
      id: a.id,
      delivery_id: target.deliveryId,
      lead_id: target.leadId,
      destination_id: target.destinationId,
      number: a.number,
      started_at: a.startedAt,
      duration_ms: a.durationMs,
      outcome: a.outcome,
      exchanges: JSON.stringify(a.exchanges),
      response_status: d.lastStatus,
      error_code: d.code ?? null,
      error_message: d.message === null ? null : `${d.message}${suffix}`,
    },
  };
  if (d.enrichment) completion.enrichment = d.enrichment;
  return completion;
}

export interface OutcomeInput {
  outcome: Outcome;
  /** The delivery's attempt count before this attempt. */
  previousAttempts: number;
  /** The destination, or undefined when it was deleted (nothing more is tried). */
  destination: { name: string; retry: { delaysMs: number[]; jitter: number } } | undefined;
  /** The delivery's stored `result` before the attempt, and the connector's state after it. */
  stored: StoredResult;
  state: Record<string, unknown>;
  exchanges: Exchange[];
  now: number;
  /** A delivery blocked for a person (OAuth reconnect) is looked at again this long after. */
  blockedRecheckMs: number;
  /** Jitter source for the retry schedule. */
  random?: () => number;
  /**
   * The destination is held until then (circuit open, credentials refused, token endpoint down):
   * a delivery that did not get through waits until then without spending its retry schedule.
   */
  holdUntil?: number | undefined;
  /**
   * The destination is held (a Retry-After, a 429's back-off): a retry outcome does not spend a
   * retry and is due again when the hold ends.
   */
  held?: { until: number } | undefined;
}

/**
 * What one attempt's outcome means for its delivery: the decision, and the state its destination
 * is now known to be in (`active` after a delivery, `needs_reconnect` when blocked for a person).
 */
export function decideOutcome(input: OutcomeInput): {
  decision: Decision;
  destinationState?: "active" | "needs_reconnect";
} {
  const { outcome, destination, now } = input;
  const attempt = input.previousAttempts + 1;
  const state = input.state;
  const result: StoredResult = { ...input.stored, ...(Object.keys(state).length > 0 ? { state } : {}) };
  let status: Completion["status"];
  let attempts = attempt;
  let nextAttemptAt: number | null = null;
  let code: string | undefined;
  let destinationState: "active" | "needs_reconnect" | undefined;
  switch (outcome.kind) {
    case "delivered":
      status = "delivered";
      if (destination) destinationState = "active";
      if (outcome.result !== undefined) result.response = outcome.result;
      break;
    case "failed":
      status = "failed";
      code = outcome.code;
      break;
    case "retry": {
      code = outcome.code;
      if (code === SHUTDOWN_ABORTED || (input.held && destination)) {
        status = "retrying";
        attempts = input.previousAttempts;
        nextAttemptAt = code === SHUTDOWN_ABORTED ? now : (input.held?.until ?? now);
        break;
      }
      const delay = destination
        ? nextRetryDelay(attempt, destination.retry, outcome.retryAfterMs, input.random)
        : undefined;
      if (delay === undefined) status = "failed";
      else {
        status = "retrying";
        nextAttemptAt = now + delay;
      }
      break;
    }
    case "blocked":
      // Waiting for a person (OAuth reconnect): not an attempt that spends a retry.
      status = "retrying";
      code = outcome.code;
      attempts = input.previousAttempts;
      nextAttemptAt = now + input.blockedRecheckMs;
      if (destination) destinationState = "needs_reconnect";
      break;
    case "awaiting":
      // Handed to the connector's batching: not claimable (no next_attempt_at) until a batch
      // completes it, or puts it back on its retry schedule.
      status = "awaiting";
      break;
    default: {
      const never: never = outcome;
      throw new Error(`unknown outcome ${JSON.stringify(never)}`);
    }
  }
  if (input.holdUntil !== undefined && (outcome.kind === "retry" || outcome.kind === "failed")) {
    // Held with its destination: not an attempt that spends a retry.
    status = "retrying";
    attempts = input.previousAttempts;
    nextAttemptAt = Math.max(now, input.holdUntil);
  }
  const last = input.exchanges[input.exchanges.length - 1];
  const lastStatus =
    "status" in outcome && outcome.status !== undefined ? outcome.status : (last?.status ?? null);
  const delivered = outcome.kind === "delivered" ? outcome : undefined;
  const decision: Decision = {
    status,
    attempts,
    nextAttemptAt,
    code,
    message: "message" in outcome ? outcome.message : null,
    lastStatus,
    externalId: delivered?.externalId ?? null,
    result,
    enrichment:
      delivered?.enrichment !== undefined && destination
        ? { name: destination.name, value: delivered.enrichment }
        : undefined,
  };
  return destinationState ? { decision, destinationState } : { decision };
}

/**
 * Pipelines: the ids of the destinations a destination waits for (its `after`, by name), and
 * whether a destination is anyone's upstream. From one snapshot of the destinations.
 */
export function upstreamLookup(destinations: Map<string, { id: string; name: string; after: string[] }>) {
  const byName = new Map([...destinations.values()].map((d) => [d.name, d.id]));
  const upstreamIds = new Set([...destinations.values()].flatMap((d) => d.after.map((n) => byName.get(n))));
  return {
    upstreamOf: (id: string) => (destinations.get(id)?.after ?? []).flatMap((name) => byName.get(name) ?? []),
    isUpstream: (id: string) => upstreamIds.has(id),
  };
}
