// The leadpush dashboard: hash routes (#/overview, #/deliveries?status=…, #/leads?q=…, #/leads/ID)
// over the JSON API. No build step, no framework; API data is only ever rendered as text.
import { api, ApiError, key, qs } from "./api.js";
import { STATUSES, badge, fill, h, ms, short, table, time } from "./dom.js";
import { routingTable } from "./routing.js";

const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);
const main = $("main");

/** The view on screen: { el, refresh() }. */
let current;
/** Expanded delivery rows stay open across refreshes; their attempts are in `details`. */
const expanded = new Set();
const details = new Map();

// ---------- messages ----------

let bannerKind = "";
let bannerTimer;
function banner(message = "", kind = "error") {
  clearTimeout(bannerTimer);
  bannerKind = message ? kind : "";
  fill($("banner"), message);
  $("banner").className = `banner ${kind}`;
  $("banner").hidden = !message;
  if (message && kind === "info") bannerTimer = setTimeout(() => banner(), 5000);
}

function handle(err) {
  if (!(err instanceof ApiError)) {
    console.error(err);
    return banner(`Something went wrong in the page: ${err}`);
  }
  if (err.status === 401)
    return showLogin(
      "This API key was refused (401 unauthorized). Check it, or create one with `leadpush keys create --scope admin`.",
    );
  if (err.status === 403)
    return showLogin(
      "This key is valid but lacks the admin scope (403 forbidden): the dashboard needs an admin key.",
    );
  if (err.status === 0) return banner(`${err.message} Retrying every ${REFRESH_MS / 1000} s.`);
  banner(`${err.message} (${err.code}, HTTP ${err.status})`);
}

/** Runs an action (retry, replay), reports its error, refreshes the view. */
async function act(fn, done) {
  try {
    const result = await fn();
    if (done) banner(done(result), "info");
  } catch (err) {
    handle(err);
  }
  await refreshNow();
}

// ---------- refresh loop ----------

let running;
let again = false;
function refreshNow() {
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    do {
      again = false;
      const view = current;
      if (!view) return;
      try {
        await view.refresh();
        if (bannerKind === "error") banner();
        $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
      } catch (err) {
        handle(err);
      }
    } while (again);
  })().finally(() => (running = undefined));
  return running;
}

setInterval(() => {
  if (current && $("auto").checked && !document.hidden) void refreshNow();
}, REFRESH_MS);

// ---------- deliveries (shared by the Deliveries view and a lead's page) ----------

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

const replayButton = (name, failed) =>
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
      ["#", "Time", "Duration", "Outcome", "Request", "Response", "Response excerpt", "Error"],
      full.attempts.map((a) =>
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
        ),
      ),
      "No attempt yet.",
    ),
  );
}

function deliveryTable(rows, withLead = true) {
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

// ---------- views ----------

function overview() {
  const el = h("section");
  async function refresh() {
    const s = await api("GET", "/v1/stats");
    fill(
      el,
      h("h1", {}, "Overview"),
      h(
        "div",
        { class: "cards" },
        h(
          "a",
          { class: "card", href: "#/leads" },
          h("span", { class: "n" }, s.leads),
          h("span", {}, "leads"),
        ),
        STATUSES.map((st) =>
          h(
            "a",
            { class: `card c-${st}`, href: `#/deliveries${qs({ status: st })}`, "data-count": st },
            h("span", { class: "n" }, s.deliveries[st]),
            h("span", {}, st),
          ),
        ),
      ),
      h("h2", {}, "Destinations"),
      table(
        ["Destination", "Connector", "Auth", "State", ...STATUSES, ""],
        s.destinations.map((d) =>
          h(
            "tr",
            { "data-destination": d.name },
            h("td", {}, h("a", { href: `#/deliveries${qs({ destination: d.name })}` }, d.name)),
            h("td", {}, d.connector),
            h("td", {}, d.authType),
            h("td", {}, d.enabled ? badge(d.state) : badge("disabled")),
            STATUSES.map((st) =>
              h("td", { class: d.deliveries[st] ? `num c-${st}` : "num muted" }, d.deliveries[st]),
            ),
            h("td", {}, d.deliveries.failed ? replayButton(d.name, d.deliveries.failed) : null),
          ),
        ),
        "No destinations yet: create one with POST /v1/destinations (see /docs).",
      ),
    );
  }
  return { el, refresh };
}

function deliveries(params) {
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

const fullName = (l) => [l.name, l.lastName].filter(Boolean).join(" ");

function leads(params) {
  let q = params.get("q") ?? "";
  let rows = [];
  let cursor = null;
  let timer;
  const search = h("input", {
    type: "search",
    placeholder: "Search name, email or phone",
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
  const el = h("section", {}, h("h1", {}, "Leads"), h("div", { class: "filters" }, search), list, more);

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

function lead(id) {
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
      json("Attributes", l.attributes),
      json("Enrichment", l.enrichment),
      h("h2", {}, "Deliveries"),
      deliveryTable(l.deliveries, false),
      h("h2", {}, "Not sent to"),
      routingTable(l.routing ?? []),
    );
  }
  return { el, refresh };
}

// ---------- routing and session ----------

const VIEWS = { overview, deliveries, leads };

function onRoute() {
  if (!key.get()) return showLogin();
  const [path = "", query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name = "", id] = path.split("/");
  const params = new URLSearchParams(query);
  const view = name === "leads" && id ? "leads" : VIEWS[name] ? name : "overview";
  current = name === "leads" && id ? lead(decodeURIComponent(id)) : VIEWS[view](params);
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === view);
  main.replaceChildren(current.el);
  void refreshNow();
}

function showLogin(message = "") {
  key.clear();
  current = undefined;
  main.replaceChildren();
  banner();
  $("nav").hidden = true;
  $("session").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("key").focus();
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  key.set($("key").value.trim());
  $("key").value = "";
  try {
    await api("GET", "/v1/stats");
  } catch (err) {
    if (err instanceof ApiError && err.status === 0) return showLogin(err.message);
    return handle(err);
  }
  $("login").hidden = true;
  $("nav").hidden = false;
  $("session").hidden = false;
  onRoute();
});

$("logout").addEventListener("click", () => showLogin("Signed out."));
$("auto").checked = sessionStorage.getItem("leadpush.auto") !== "off";
$("auto").addEventListener("change", () => {
  sessionStorage.setItem("leadpush.auto", $("auto").checked ? "on" : "off");
  if ($("auto").checked) void refreshNow();
});
window.addEventListener("hashchange", () => {
  if (current) onRoute();
});

if (key.get()) {
  $("nav").hidden = false;
  $("session").hidden = false;
  onRoute();
} else showLogin();
