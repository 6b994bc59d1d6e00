// The leadpush dashboard: hash routes (#/overview, #/deliveries?status=…, #/leads?q=…, #/leads/ID,
// #/destinations, #/destinations/new, #/destinations/ID, #/keys)
// over the JSON API. No build step, no framework; API data is only ever rendered as text.
import { api, ApiError, key, qs } from "./api.js";
import { connectButton, connectedNotice } from "./connect.js";
import { replayButton } from "./deliveries.js";
import { deliveries } from "./delivery-list.js";
import { destination, destinations } from "./destinations.js";
import { STATUSES, badge, fill, h, table } from "./dom.js";
import { keys } from "./keys.js";
import { lead, leads } from "./leads.js";
import { $, currentView, handle, refreshNow, show, showLogin } from "./page.js";

// ---------- overview ----------

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
            h(
              "td",
              {},
              h(
                "a",
                { href: `#/destinations/${encodeURIComponent(d.id)}`, "data-destination-link": "" },
                d.name,
              ),
            ),
            h("td", {}, d.connector),
            h("td", {}, d.authType),
            h("td", {}, d.enabled ? badge(d.state) : badge("disabled")),
            STATUSES.map((st) =>
              h("td", { class: d.deliveries[st] ? `num c-${st}` : "num muted" }, d.deliveries[st]),
            ),
            h(
              "td",
              { class: "nowrap" },
              h(
                "a",
                { href: `#/deliveries${qs({ destination: d.name })}`, "data-deliveries-link": "" },
                "Deliveries",
              ),
              d.deliveries.failed ? [" ", replayButton(d.name, d.deliveries.failed)] : null,
              connectButton(d),
            ),
          ),
        ),
        [
          "No destinations yet: create one with ",
          h("a", { href: "#/destinations/new" }, "New destination"),
          ".",
        ],
      ),
    );
  }
  return { el, refresh };
}

// ---------- routing and session ----------

const VIEWS = { overview, deliveries, leads, destinations, keys };
/** Views of one thing: #/<name>/<id>. */
const DETAILS = { leads: lead, destinations: destination };

function onRoute() {
  if (!key.get()) return showLogin();
  const [path = "", query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name = "", id] = path.split("/");
  const params = new URLSearchParams(query);
  // A destination has one page (health panel, actions, settings): old #/health/<name> links land there.
  if (name === "health" && id) return location.replace(`#/destinations/${id}`);
  connectedNotice(params);
  const detail = id ? DETAILS[name] : undefined;
  const view = detail ? name : VIEWS[name] ? name : "overview";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === view);
  show(detail ? detail(decodeURIComponent(id), params) : VIEWS[view](params));
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
  if (currentView()) onRoute();
});

if (key.get()) {
  $("nav").hidden = false;
  $("session").hidden = false;
  onRoute();
} else showLogin();
