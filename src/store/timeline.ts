import type { DeliveryRows } from "./read-models.ts";
import type { LeadRoutingTable, LeadsTable } from "./schema.ts";

/**
 * One thing that happened to a lead (`timeline` on GET /v1/leads/:id), oldest first:
 * - `accepted`: stored, with its source and the API key that sent it;
 * - `routed`: a delivery to a destination was created (`waiting` says why it has not gone yet:
 *   the destination is paused, or it waits for an upstream destination);
 * - `not_routed`: the destination did not get it (`decision` filtered, duplicate, disabled,
 *   filter_error, as in `routing`);
 * - `attempt`: one attempt, with its outcome, HTTP status, duration and error;
 * - `enrichment`: the destination's enrichment was merged into the lead;
 * - `delivered`, `failed`: the delivery's final state; `erased`: the lead's personal data was erased.
 */
export interface TimelineEntry {
  at: number;
  kind: "accepted" | "routed" | "not_routed" | "attempt" | "enrichment" | "delivered" | "failed" | "erased";
  /** One line a person reads. */
  summary: string;
  destination?: string | null;
  destinationId?: string;
  deliveryId?: string;
  source?: string | null;
  apiKey?: { id: string; name: string | null } | null;
  decision?: string;
  reason?: string;
  duplicateOf?: string;
  waiting?: "paused" | "upstream";
  attempt?: number;
  outcome?: string;
  responseStatus?: number | null;
  durationMs?: number;
  error?: { code: string; message: string | null } | null;
  externalId?: string | null;
}

const ORDER: Record<TimelineEntry["kind"], number> = {
  accepted: 0,
  not_routed: 1,
  routed: 1,
  attempt: 2,
  enrichment: 3,
  delivered: 4,
  failed: 4,
  erased: 5,
};

/** The lead's timeline from what the store keeps about it (read in one snapshot). */
export function leadTimeline(input: {
  lead: LeadsTable;
  deliveries: DeliveryRows;
  routing: LeadRoutingTable[];
  /** The name of the API key that sent the lead (null: deleted, or the admin token). */
  apiKeyName: string | null;
  /** Destinations that are paused now. */
  paused: ReadonlySet<string>;
}): TimelineEntry[] {
  const { lead, deliveries, routing } = input;
  const data = JSON.parse(lead.data) as { source?: string; enrichment?: Record<string, unknown> };
  const keyId = lead.api_key_id;
  const keyName = keyId === "admin-token" ? "admin token" : input.apiKeyName;
  const by = [data.source && `from ${data.source}`, keyId && `with API key ${keyName ?? keyId}`];
  const out: TimelineEntry[] = [
    {
      at: lead.created_at,
      kind: "accepted",
      summary: ["accepted", ...by].filter(Boolean).join(" "),
      source: data.source ?? null,
      apiKey: keyId ? { id: keyId, name: keyName } : null,
      ...(lead.duplicate_of ? { duplicateOf: lead.duplicate_of } : {}),
    },
  ];
  for (const r of routing) {
    out.push({
      at: r.created_at,
      kind: "not_routed",
      summary: `not sent to ${r.destination_name}: ${r.decision.replace("_", " ")}`,
      destination: r.destination_name,
      destinationId: r.destination_id,
      decision: r.decision,
      reason: r.reason,
      ...(r.duplicate_of ? { duplicateOf: r.duplicate_of } : {}),
    });
  }
  const attemptsOf = Map.groupBy(deliveries.attempts, (a) => a.delivery_id);
  for (const d of deliveries.rows) {
    const name = d.destination_name;
    const where = { destination: name, destinationId: d.destination_id, deliveryId: d.id };
    const waitingNow = d.attempts === 0 && (d.status === "pending" || d.status === "blocked");
    const waiting = !waitingNow
      ? undefined
      : input.paused.has(d.destination_id)
        ? ("paused" as const)
        : d.status === "blocked"
          ? ("upstream" as const)
          : undefined;
    const why =
      waiting === "paused" ? " (destination paused: waits)" : waiting ? " (waits for upstream)" : "";
    out.push({
      at: d.created_at,
      kind: "routed",
      summary: `routed to ${name ?? "(deleted destination)"}${why}`,
      ...where,
      ...(waiting ? { waiting } : {}),
    });
    for (const a of attemptsOf.get(d.id) ?? []) {
      const status = a.response_status === null ? "" : ` HTTP ${a.response_status}`;
      const error = a.error_code ? `: ${a.error_code}` : "";
      out.push({
        at: a.started_at,
        kind: "attempt",
        summary: `attempt ${a.number} to ${name ?? "(deleted destination)"}: ${a.outcome}${status}${error}`,
        ...where,
        attempt: a.number,
        outcome: a.outcome,
        responseStatus: a.response_status,
        durationMs: a.duration_ms,
        error: a.error_code ? { code: a.error_code, message: a.error_message } : null,
      });
    }
    if (d.status === "delivered") {
      const at = d.delivered_at ?? d.updated_at;
      if (name && data.enrichment && Object.hasOwn(data.enrichment, name))
        out.push({ at, kind: "enrichment", summary: `enrichment received from ${name}`, ...where });
      out.push({
        at,
        kind: "delivered",
        summary: `delivered to ${name ?? "(deleted destination)"}${d.external_id ? ` (their id ${d.external_id})` : ""}`,
        ...where,
        externalId: d.external_id,
      });
    } else if (d.status === "failed") {
      const [code = "", ...rest] = (d.last_error ?? "").split(": ");
      out.push({
        at: d.updated_at,
        kind: "failed",
        summary: `failed for ${name ?? "(deleted destination)"}${code ? `: ${code}` : ""}`,
        ...where,
        error: code ? { code, message: rest.join(": ") || null } : null,
      });
    }
  }
  if (lead.erased_at !== null)
    out.push({ at: lead.erased_at, kind: "erased", summary: "personal data erased" });
  // Stable: entries at the same millisecond keep the order above (accepted first, final last).
  return out
    .map((e, i) => ({ e, i }))
    .sort((x, y) => x.e.at - y.e.at || ORDER[x.e.kind] - ORDER[y.e.kind] || x.i - y.i)
    .map((x) => x.e);
}
