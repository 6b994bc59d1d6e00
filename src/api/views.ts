import type { Exchange } from "../http/http-client.ts";
import type { DeliveryRows } from "../store/read-models.ts";
import type { TimelineEntry } from "../store/timeline.ts";
import type { AttemptsTable, DeliveriesTable, LeadRoutingTable, LeadsTable } from "../store/schema.ts";

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

export function attemptView(a: AttemptsTable) {
  const exchanges = JSON.parse(a.exchanges) as Exchange[];
  const push = exchanges.filter((e) => !e.step.startsWith("auth")).at(-1) ?? exchanges.at(-1);
  return {
    number: a.number,
    at: iso(a.started_at),
    durationMs: a.duration_ms,
    outcome: a.outcome,
    request: push ? { method: push.method, url: push.url, headers: push.requestHeaders } : null,
    responseStatus: a.response_status,
    responseExcerpt: push?.responseBody ?? null,
    error: a.error_code ? { code: a.error_code, message: a.error_message } : null,
    exchanges,
  };
}

export function deliveryView(
  d: DeliveriesTable & { destination_name?: string | null },
  attempts?: AttemptsTable[],
) {
  const stored = d.result
    ? (JSON.parse(d.result) as { response?: unknown; state?: { upstream?: Record<string, string> } })
    : {};
  const upstream = stored.state?.upstream;
  const [code, ...rest] = (d.last_error ?? "").split(": ");
  return {
    id: d.id,
    leadId: d.lead_id,
    destinationId: d.destination_id,
    destination: d.destination_name ?? null,
    status: d.status,
    attemptCount: d.attempts,
    nextAttemptAt: iso(d.next_attempt_at),
    lastError: d.last_error ? { code, message: rest.join(": ") } : null,
    lastStatus: d.last_status,
    externalId: d.external_id,
    response: stored.response ?? null,
    /** Pipelines: how each upstream (`after`) delivery of the lead ended, by destination id. */
    upstream: upstream ?? null,
    /** True when an upstream delivery failed: this one went ahead without that enrichment. */
    enrichmentMissing: upstream ? Object.values(upstream).some((s) => s !== "delivered") : null,
    batchId: d.batch_id ?? null,
    createdAt: iso(d.created_at),
    updatedAt: iso(d.updated_at),
    deliveredAt: iso(d.delivered_at),
    ...(attempts ? { attempts: attempts.map(attemptView) } : {}),
  };
}

export function leadView(l: LeadsTable) {
  return {
    id: l.id,
    createdAt: iso(l.created_at),
    erased: l.erased_at !== null,
    duplicateOf: l.duplicate_of,
    ...(JSON.parse(l.data) as object),
  };
}

export function routingView(r: LeadRoutingTable) {
  return {
    destinationId: r.destination_id,
    destination: r.destination_name,
    decision: r.decision,
    reason: r.reason,
    ...(r.duplicate_of ? { duplicateOf: r.duplicate_of } : {}),
    at: iso(r.created_at),
  };
}

/** Deliveries with destination names and (when read) their attempts. */
export function deliveriesView(d: DeliveryRows, withAttempts: boolean) {
  if (!withAttempts || d.rows.length === 0) return d.rows.map((r) => deliveryView(r));
  return d.rows.map((r) =>
    deliveryView(
      r,
      d.attempts.filter((a) => a.delivery_id === r.id),
    ),
  );
}

/** One entry of a lead's timeline, its time as ISO 8601. */
export function timelineView(e: TimelineEntry) {
  return { ...e, at: iso(e.at) };
}
