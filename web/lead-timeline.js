// A lead's timeline (GET /v1/leads/:id `timeline`): everything that happened to it, oldest first.
import { badge, h, ms, table, time } from "./dom.js";

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

/** The timeline as a table: time, what happened, destination, details. */
export function timelineTable(entries) {
  return table(
    ["Time", "What happened", "Destination", "Details"],
    entries.map((e) =>
      h(
        "tr",
        {
          "data-kind": e.kind,
          // The routing decision of a destination the lead did not go to.
          ...(e.kind === "not_routed" ? { "data-routing": e.destination, "data-decision": e.decision } : {}),
        },
        h("td", { class: "nowrap" }, time(e.at)),
        h("td", {}, badge(e.kind.replace("_", " "), KIND_BADGE[e.kind] ?? "blocked"), " ", e.summary),
        h("td", {}, e.destination ?? ""),
        h("td", { class: "timeline-details" }, details(e)),
      ),
    ),
    "Nothing happened yet.",
  );
}
