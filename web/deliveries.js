// Deliveries: the table shared by the Deliveries view (delivery-list.js) and a lead's page (rows
// expand to their attempts), retry and replay.
import { api } from "./api.js";
import { inspectButton, inspector, isInspected } from "./attempt-inspector.js";
import { badge, destinationLink, h, ms, short, table, time } from "./dom.js";
import { act, refreshNow } from "./page.js";

/** Expanded delivery rows stay open across refreshes; their attempts are in `details`. */
const expanded = new Set();
export const details = new Map();

function toggle(id) {
  if (expanded.has(id)) expanded.delete(id);
  else expanded.add(id);
  void refreshNow();
}

/** Loads the attempts of the expanded rows among `rows`. */
export async function loadDetails(rows) {
  const open = rows.filter((d) => expanded.has(d.id));
  const got = await Promise.all(open.map((d) => api("GET", `/v1/deliveries/${encodeURIComponent(d.id)}`)));
  for (const d of got) details.set(d.id, d);
}

const retryButton = (d) =>
  h(
    "button",
    {
      type: "button",
      class: "small",
      onclick: () => {
        void act(() => api("POST", `/v1/deliveries/${encodeURIComponent(d.id)}/retry`));
        setTimeout(() => void refreshNow(), 1000);
      },
    },
    "Retry",
  );

export const replayButton = (name, failed) =>
  h(
    "button",
    {
      type: "button",
      class: "small secondary",
      disabled: !failed,
      onclick: () => {
        if (!confirm(`Send the ${failed} failed deliveries of ${name} again?`)) return;
        void act(
          () => api("POST", "/v1/deliveries/replay", { destination: name, status: ["failed"] }),
          (r) => `${r.replayed} failed deliveries of ${name} were queued again.`,
        );
      },
    },
    `Replay failed (${failed})`,
  );

function lastResult(d) {
  if (d.lastError) return h("span", { class: "error" }, `${d.lastError.code}: ${d.lastError.message}`);
  if (d.lastStatus) return `HTTP ${d.lastStatus}`;
  return "–";
}

function attempts(d) {
  const full = details.get(d.id);
  if (!full) return h("p", { class: "muted" }, "Loading attempts…");
  const facts = [
    `Delivery ${full.id}`,
    full.externalId && `client id ${full.externalId}`,
    full.deliveredAt && `delivered ${time(full.deliveredAt)}`,
  ].filter(Boolean);
  return h(
    "div",
    { class: "attempts" },
    h("p", { class: "muted" }, facts.join(" · ")),
    table(
      ["#", "Time", "Duration", "Outcome", "Request", "Response", "Response excerpt", "Error", ""],
      full.attempts.flatMap((a) => [
        h(
          "tr",
          { "data-attempt": a.number },
          h("td", { class: "num" }, a.number),
          h("td", { class: "nowrap" }, time(a.at)),
          h("td", { class: "num" }, ms(a.durationMs)),
          h("td", {}, badge(a.outcome)),
          h("td", { class: "url" }, a.request ? `${a.request.method} ${a.request.url}` : "–"),
          h("td", { class: "num response-status" }, a.responseStatus ?? "–"),
          h("td", {}, a.responseExcerpt ? h("pre", { class: "excerpt" }, a.responseExcerpt) : "–"),
          h(
            "td",
            { class: a.error ? "error" : "" },
            a.error ? `${a.error.code}: ${a.error.message ?? ""}` : "–",
          ),
          h(
            "td",
            {},
            inspectButton(full.id, a, () => void refreshNow()),
          ),
        ),
        isInspected(full.id, a) && h("tr", { class: "detail" }, h("td", { colSpan: 9 }, inspector(a))),
      ]),
      "No attempt yet.",
    ),
  );
}

export function deliveryTable(rows, withLead = true) {
  const headers = [
    "",
    "Created",
    withLead && "Lead",
    "Destination",
    "Status",
    "Attempts",
    "Last result",
    "Next try",
    "",
  ];
  const cols = headers.filter((x) => x !== false);
  return table(
    cols,
    rows.flatMap((d) => {
      const open = expanded.has(d.id);
      const row = h(
        "tr",
        { class: open ? "open" : "", "data-delivery": d.id, "data-status": d.status },
        h(
          "td",
          {},
          h(
            "button",
            {
              type: "button",
              class: "toggle",
              title: "Attempts",
              "aria-expanded": String(open),
              onclick: () => toggle(d.id),
            },
            open ? "▾" : "▸",
          ),
        ),
        h("td", { class: "nowrap" }, time(d.createdAt)),
        withLead &&
          h(
            "td",
            {},
            h("a", { href: `#/leads/${encodeURIComponent(d.leadId)}`, class: "mono" }, short(d.leadId)),
          ),
        h("td", {}, destinationLink(d.destinationId, d.destination)),
        h("td", {}, badge(d.status)),
        h("td", { class: "num" }, d.attemptCount),
        h("td", {}, lastResult(d)),
        h("td", { class: "nowrap" }, d.nextAttemptAt ? time(d.nextAttemptAt) : "–"),
        h("td", {}, d.status === "failed" || d.status === "retrying" ? retryButton(d) : null),
      );
      return open
        ? [row, h("tr", { class: "detail" }, h("td", { colSpan: cols.length }, attempts(d)))]
        : [row];
    }),
    "No deliveries match.",
  );
}
