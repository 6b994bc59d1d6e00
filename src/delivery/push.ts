import type { CredentialRuntime } from "../auth/runtime.ts";
import type { Outcome } from "../connectors/connector.ts";
import type { ResolvedDestination } from "../destinations/model.ts";
import type { EventMap } from "../events.ts";
import type { Lead } from "../lead/lead.ts";
import type { Completion } from "../store/completions.ts";
import type { ClaimedRow } from "../store/deliveries-repo.ts";
import { newId } from "../util/ids.ts";
import { type AttemptResult, runAttempt } from "./attempt.ts";
import { buildCompletion, decideOutcome, SHUTDOWN_ABORTED, type StoredResult } from "./completion.ts";
import type { Transport } from "../http/http-client.ts";
import { type Hold, holdOf } from "./traffic.ts";

export interface Pushed {
  completion: Completion;
  /** What the attempt showed about its destination (`active`, `needs_reconnect`). */
  destinationState?: "active" | "needs_reconnect";
  outcome: Outcome;
  /** The whole destination is to be held (a Retry-After, a 429's back-off). */
  hold?: Hold;
  event: EventMap["delivery:completed"][0];
}

/**
 * One attempt of a claimed delivery, from the row to its completion: runs the connector (or fails
 * the delivery of a deleted destination) and decides what happens next. Writes nothing.
 */
export async function pushDelivery(
  row: ClaimedRow,
  destination: ResolvedDestination | undefined,
  deps: {
    owner: string;
    transport: Transport;
    credentials: CredentialRuntime;
    /** Aborted at the end of the shutdown grace. */
    signal: AbortSignal;
    now: () => number;
    blockedRecheckMs: number;
    /** Records the outcome in the destination's health; returns until when it is held, if it is. */
    observe?: (destination: ResolvedDestination, outcome: Outcome) => Promise<number | undefined>;
  },
): Promise<Pushed> {
  const started = deps.now();
  const stored: StoredResult = row.result ? (JSON.parse(row.result) as StoredResult) : {};
  let r: AttemptResult;
  if (!destination) {
    const outcome: Outcome = {
      kind: "failed",
      code: "destination_deleted",
      message: "the destination no longer exists",
    };
    r = { outcome, exchanges: [], state: stored.state ?? {}, durationMs: 0 };
  } else {
    r = await runAttempt({
      destination,
      lead: row.lead ?? (JSON.parse(row.lead_data) as Lead),
      leadId: row.lead_id,
      deliveryId: row.id,
      attempt: row.attempts + 1,
      state: stored.state ?? {},
      transport: deps.transport,
      credentials: deps.credentials,
      signal: deps.signal,
    });
    if (deps.signal.aborted && r.exchanges.some((e) => e.error?.code === "aborted")) {
      // Whatever the connector made of the cut-off request: what happened is the shutdown.
      r.outcome = {
        kind: "retry",
        code: SHUTDOWN_ABORTED,
        message: "cut off at the end of the shutdown grace; it may have reached the client",
      };
    }
  }
  const attempt = row.attempts + 1;
  const { outcome, exchanges, durationMs } = r;
  const holdUntil = destination && deps.observe ? await deps.observe(destination, outcome) : undefined;
  const now = deps.now();
  // Two kinds of hold: the destination's health (circuit, refused credentials, token endpoint down)
  // and traffic control (Retry-After, a 429's back-off). Neither spends the delivery's retries.
  const hold = destination ? holdOf(outcome, now) : undefined;
  const { decision, destinationState } = decideOutcome({
    ...{ outcome, previousAttempts: row.attempts, destination, stored, state: r.state, exchanges, now },
    ...{ blockedRecheckMs: deps.blockedRecheckMs, holdUntil },
    held: hold,
  });
  const target = {
    deliveryId: row.id,
    owner: deps.owner,
    leadId: row.lead_id,
    destinationId: row.destination_id,
  };
  const facts = {
    id: newId(),
    number: attempt,
    startedAt: started,
    durationMs,
    outcome: outcome.kind,
    exchanges,
  };
  return {
    completion: buildCompletion(target, decision, facts, now),
    outcome,
    ...(hold ? { hold } : {}),
    ...(destination && destinationState ? { destinationState } : {}),
    event: {
      deliveryId: row.id,
      leadId: row.lead_id,
      destinationId: row.destination_id,
      destination: destination?.name ?? "(deleted)",
      status: decision.status,
      outcome: outcome.kind,
      durationMs,
      attempt,
      ...(decision.code ? { code: decision.code } : {}),
    },
  };
}
