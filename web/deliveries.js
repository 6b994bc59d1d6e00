// Deliveries: the table shared by the Deliveries view and a lead's page (rows expand to their
// attempts), retry and replay, and the Deliveries view.
import { api, qs } from "./api.js";
import { inspectButton, inspector, isInspected } from "./attempt-inspector.js";
import { STATUSES, badge, fill, h, ms, short, table, time } from "./dom.js";
import { act, handle, refreshNow } from "./page.js";

/** Expanded delivery rows stay open across refreshes; their attempts are in `details`. */
const expanded = new Set();
export const details = new Map();

function toggle(id) {
  if (expanded.has(id)) expanded.delete(id);
  else expanded.add(id);
  void refreshNow();
}

/** Loads the attempts of the expanded rows among `rows`. */
async function loadDetails(rows) {
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
        h("td", {}, d.destination ?? "(deleted)"),
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

export function deliveries(params) {
  const f = { status: params.get("status") ?? "", destination: params.get("destination") ?? "" };
  let rows = [];
  let cursor = null;
  let names = "";
  const changed = () => {
    f.status = status.value;
    f.destination = destination.value;
    history.replaceState(null, "", `#/deliveries${qs(f)}`);
    rows = [];
    void refreshNow();
  };
  const status = h(
    "select",
    { "aria-label": "Status", onchange: changed },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s, selected: s === f.status }, s)),
  );
  const destination = h("select", { "aria-label": "Destination", onchange: changed });
  const replay = h("span");
  const list = h("div");
  const more = h(
    "button",
    { type: "button", class: "secondary", hidden: true, onclick: () => void loadMore() },
    "More",
  );
  const el = h(
    "section",
    {},
    h("h1", {}, "Deliveries"),
    h("div", { class: "filters" }, status, destination, replay),
    list,
    more,
  );

  function render() {
    fill(list, deliveryTable(rows));
    more.hidden = !cursor;
  }
  async function loadMore() {
    try {
      const page = await api("GET", `/v1/deliveries${qs({ ...f, cursor, limit: 50 })}`);
      rows = rows.concat(page.data);
      cursor = page.nextCursor;
      render();
    } catch (err) {
      handle(err);
    }
  }
  async function refresh() {
    const limit = Math.min(500, Math.max(50, rows.length));
    const [page, stats] = await Promise.all([
      api("GET", `/v1/deliveries${qs({ ...f, limit })}`),
      api("GET", "/v1/stats"),
    ]);
    const known = stats.destinations.map((d) => d.name);
    if (known.join("\n") !== names) {
      names = known.join("\n");
      fill(
        destination,
        h("option", { value: "" }, "All destinations"),
        known.map((n) => h("option", { value: n, selected: n === f.destination }, n)),
      );
    }
    const chosen = stats.destinations.find((d) => d.name === f.destination);
    fill(replay, chosen ? replayButton(chosen.name, chosen.deliveries.failed) : null);
    await loadDetails(page.data);
    rows = page.data;
    cursor = page.nextCursor;
    render();
  }
  return { el, refresh };
}
