import type { EventMap } from "../events.ts";

/** What an alert is about (`type` in the message). */
export type AlertKind =
  | "destination.degraded"
  | "destination.circuit_opened"
  | "destination.circuit_closed"
  | "destination.auth_failing"
  | "destination.needs_reconnect"
  | "destination.recovered"
  | "delivery.failed";

const UNHEALTHY = new Set(["degraded", "circuit_open", "auth_failing", "needs_reconnect"]);

/** The alert a state change is worth, if any (pausing and disabling are a person's own doing). */
export function stateAlertKind(from: string, to: string): AlertKind | undefined {
  if (to === "degraded") return "destination.degraded";
  if (to === "circuit_open") return "destination.circuit_opened";
  if (to === "auth_failing") return "destination.auth_failing";
  if (to === "needs_reconnect") return "destination.needs_reconnect";
  if (from === "circuit_open") return "destination.circuit_closed";
  if (to === "active" && UNHEALTHY.has(from)) return "destination.recovered";
  return undefined;
}

/** An alert before it is addressed: ids, names, states and codes only (no lead data, no secrets). */
export interface Alert {
  kind: AlertKind;
  destinationId: string;
  destination: string;
  data: Record<string, string | number>;
}

export function stateAlert(e: EventMap["destination:state"][0]): Alert | undefined {
  const kind = stateAlertKind(e.from, e.to);
  if (!kind) return undefined;
  return {
    kind,
    destinationId: e.destinationId,
    destination: e.destination,
    data: { from: e.from, to: e.to, reason: e.reason },
  };
}

export function failedAlert(e: EventMap["delivery:completed"][0]): Alert | undefined {
  if (e.status !== "failed") return undefined;
  return {
    kind: "delivery.failed",
    destinationId: e.destinationId,
    destination: e.destination,
    data: { leadId: e.leadId, deliveryId: e.deliveryId, code: e.code ?? "unknown", attempt: e.attempt },
  };
}

/** The body sent: Standard Webhooks' `{type, timestamp, data}`, or a Slack incoming-webhook `{text}`. */
export function alertBody(a: Alert, format: "standard" | "slack", at: number, suppressed: number): string {
  const data = { destination: a.destination, destinationId: a.destinationId, ...a.data, suppressed };
  if (format === "standard")
    return JSON.stringify({ type: a.kind, timestamp: new Date(at).toISOString(), data });
  const what =
    a.kind === "delivery.failed"
      ? `a delivery failed for good (${String(a.data.code)}, lead ${String(a.data.leadId)})`
      : `${a.kind.slice("destination.".length).replace("_", " ")}: ${String(a.data.from)} → ${String(a.data.to)} (${String(a.data.reason)})`;
  const more = suppressed > 0 ? ` — ${suppressed} similar alert(s) suppressed since the last one` : "";
  return JSON.stringify({ text: `leadpush: destination *${a.destination}*: ${what}${more}` });
}
