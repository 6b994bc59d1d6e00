import { badge, h, table } from "./dom.js";

/** Why a lead did not go to each destination it skipped (filtered, duplicate, disabled, filter error). */
export function routingTable(rows) {
  return table(
    ["Destination", "Decision", "Why"],
    rows.map((r) =>
      h(
        "tr",
        { "data-routing": r.destination, "data-decision": r.decision },
        h("td", {}, r.destination),
        h(
          "td",
          {},
          badge(r.decision.replace("_", " "), r.decision === "filter_error" ? "failed" : "blocked"),
        ),
        h(
          "td",
          { class: "routing-reason" },
          r.duplicateOf
            ? [
                "repeats ",
                h("a", { href: `#/leads/${encodeURIComponent(r.duplicateOf)}` }, r.duplicateOf),
                ", already sent there",
              ]
            : r.reason,
        ),
      ),
    ),
    "Sent to every destination.",
  );
}
