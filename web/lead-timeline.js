// A lead's timeline (GET /v1/leads/:id `timeline`): everything that happened to it, oldest first.
// An attempt opens in the attempt inspector right there (Inspect), without leaving the timeline.
import { inspectButton, inspector, isInspected } from "./attempt-inspector.js";
import { badge, destinationLink, h, ms, table, time } from "./dom.js";
import { refreshNow } from "./page.js";

const KIND_BADGE = {
  accepted: "pending",
  routed: "pending",
  not_routed: "blocked",
  attempt: "retrying",
  enrichment: "awaiting",
  delivered: "delivered",
  failed: "failed",
  erased: "blocked",
};

const leadLink = (id) => h("a", { href: `#/leads/${encodeURIComponent(id)}` }, id);

function details(e) {
  switch (e.kind) {
    case "not_routed":
      return e.duplicateOf ? ["repeats ", leadLink(e.duplicateOf), ", already sent there"] : e.reason;
    case "attempt":
      return [
        e.responseStatus ? `HTTP ${e.responseStatus} · ` : "",
        ms(e.durationMs),
        e.error ? h("span", { class: "error" }, ` · ${e.error.code}: ${e.error.message ?? ""}`) : "",
      ];
    case "failed":
      return e.error ? h("span", { class: "error" }, `${e.error.code}: ${e.error.message ?? ""}`) : "";
    case "accepted":
      return e.duplicateOf ? ["duplicate of ", leadLink(e.duplicateOf)] : "";
    default:
      return "";
  }
}

/** The inspector's open/closed state of the timeline's attempts, apart from the deliveries table's. */
const key = (deliveryId) => `timeline:${deliveryId}`;

/**
 * The timeline as a table: time, what happened, destination, details. `attemptOf(deliveryId,
 * number)` gives an attempt as GET /v1/leads/:id has it (with its exchanges) for Inspect.
 */
export function timelineTable(entries, attemptOf = () => undefined) {
  return table(
    ["Time", "What happened", "Destination", "Details", ""],
    entries.flatMap((e) => {
      const a = e.kind === "attempt" && e.deliveryId ? attemptOf(e.deliveryId, e.attempt) : undefined;
      const row = h(
        "tr",
        {
          "data-kind": e.kind,
          // The routing decision of a destination the lead did not go to.
          ...(e.kind === "not_routed" ? { "data-routing": e.destination, "data-decision": e.decision } : {}),
        },
        h("td", { class: "nowrap" }, time(e.at)),
        h("td", {}, badge(e.kind.replace("_", " "), KIND_BADGE[e.kind] ?? "blocked"), " ", e.summary),
        h("td", {}, e.destination ? destinationLink(e.destinationId, e.destination) : ""),
        h("td", { class: "timeline-details" }, details(e)),
        h("td", {}, a ? inspectButton(key(e.deliveryId), a, () => void refreshNow()) : null),
      );
      return a && isInspected(key(e.deliveryId), a)
        ? [row, h("tr", { class: "detail" }, h("td", { colSpan: 5 }, inspector(a)))]
        : [row];
    }),
    "Nothing happened yet.",
  );
}
