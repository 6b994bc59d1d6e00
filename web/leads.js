// The Leads view (search, pages, CSV) and a lead's page (its fields, timeline and deliveries).
import { api, qs } from "./api.js";
import { exportButton } from "./csv-download.js";
import { deliveryTable, details } from "./deliveries.js";
import { badge, fill, h, table, time } from "./dom.js";
import { timelineTable } from "./lead-timeline.js";
import { handle, refreshNow } from "./page.js";

const fullName = (l) => [l.name, l.lastName].filter(Boolean).join(" ");

export function leads(params) {
  let q = params.get("q") ?? "";
  let rows = [];
  let cursor = null;
  let timer;
  const search = h("input", {
    type: "search",
    placeholder: "Search name, email, phone (any format), city, vendor id",
    "aria-label": "Search leads",
    value: q,
    oninput: () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        q = search.value.trim();
        history.replaceState(null, "", `#/leads${qs({ q })}`);
        rows = [];
        void refreshNow();
      }, 250);
    },
  });
  const list = h("div");
  const more = h(
    "button",
    { type: "button", class: "secondary", hidden: true, onclick: () => void loadMore() },
    "More",
  );
  const el = h(
    "section",
    {},
    h("h1", {}, "Leads"),
    h(
      "div",
      { class: "filters" },
      search,
      exportButton(() => `/v1/leads/export${qs({ q })}`, "leads.csv"),
    ),
    list,
    more,
  );

  function render() {
    const link = (l, text) => h("a", { href: `#/leads/${encodeURIComponent(l.id)}` }, text);
    fill(
      list,
      table(
        ["Created", "Name", "Email", "Phone", "City", "Source"],
        rows.map((l) =>
          h(
            "tr",
            { "data-lead": l.id },
            h("td", { class: "nowrap" }, time(l.createdAt)),
            h(
              "td",
              { class: "lead-name" },
              link(l, fullName(l) || "–"),
              l.duplicateOf && badge("duplicate", "blocked"),
              l.erased && badge("erased", "blocked"),
            ),
            h("td", {}, l.email ?? "–"),
            h("td", {}, l.phone ?? "–"),
            h("td", {}, l.city ?? "–"),
            h("td", {}, l.source ?? "–"),
          ),
        ),
        q ? "No lead matches." : "No leads yet.",
      ),
    );
    more.hidden = !cursor;
  }
  async function loadMore() {
    try {
      const page = await api("GET", `/v1/leads${qs({ q, cursor, limit: 50 })}`);
      rows = rows.concat(page.data);
      cursor = page.nextCursor;
      render();
    } catch (err) {
      handle(err);
    }
  }
  async function refresh() {
    const page = await api("GET", `/v1/leads${qs({ q, limit: Math.min(500, Math.max(50, rows.length)) })}`);
    rows = page.data;
    cursor = page.nextCursor;
    render();
  }
  return { el, refresh };
}

const LEAD_FIELDS = [
  "email",
  "phone",
  "city",
  "projectId",
  "source",
  "context",
  "additionalInformation",
  "externalId",
];

export function lead(id) {
  const el = h("section");
  async function refresh() {
    const l = await api("GET", `/v1/leads/${encodeURIComponent(id)}`);
    for (const d of l.deliveries) details.set(d.id, d);
    const facts = [
      ["id", h("span", { class: "mono" }, l.id)],
      ["received", time(l.createdAt)],
      ...LEAD_FIELDS.filter((k) => l[k] !== undefined && l[k] !== null && l[k] !== "").map((k) => [
        k,
        String(l[k]),
      ]),
      l.duplicateOf && [
        "duplicate of",
        h("a", { href: `#/leads/${encodeURIComponent(l.duplicateOf)}` }, l.duplicateOf),
      ],
      l.erased && ["erased", "personal data erased"],
    ].filter(Boolean);
    const json = (title, value) =>
      value && Object.keys(value).length
        ? [h("h2", {}, title), h("pre", { class: "json" }, JSON.stringify(value, null, 2))]
        : null;
    fill(
      el,
      h("p", {}, h("a", { href: "#/leads" }, "← Leads")),
      h("h1", { class: "lead-name" }, fullName(l) || "Lead"),
      h(
        "dl",
        { class: "facts" },
        facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
      ),
      h("h2", {}, "Timeline"),
      timelineTable(l.timeline ?? [], (deliveryId, number) =>
        l.deliveries.find((d) => d.id === deliveryId)?.attempts?.find((a) => a.number === number),
      ),
      h("h2", {}, "Deliveries"),
      deliveryTable(l.deliveries, false),
      json("Attributes", l.attributes),
      json("Enrichment", l.enrichment),
    );
  }
  return { el, refresh };
}
