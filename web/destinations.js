// Destinations in the browser: the list (#/destinations), a new one (#/destinations/new) and a
// destination's page (#/destinations/ID): pause/resume, enable/disable, delete, and its form.
import { api, qs } from "./api.js";
import { connectButton } from "./connect.js";
import { destinationHealth } from "./destination-health.js";
import { destinationForm, formSchemas } from "./destination-form.js";
import { badge, fill, h, table, time } from "./dom.js";
import { act, banner, handle } from "./page.js";

const path = (d) => `#/destinations/${encodeURIComponent(d.id)}`;

export function destinations() {
  const list = h("div");
  const el = h(
    "section",
    {},
    h(
      "div",
      { class: "title-row" },
      h("h1", {}, "Destinations"),
      h("a", { class: "button", href: "#/destinations/new" }, "New destination"),
    ),
    list,
  );
  async function refresh() {
    const { data } = await api("GET", "/v1/destinations");
    fill(
      list,
      table(
        ["Destination", "Connector", "Auth", "State", "Updated"],
        data.map((d) =>
          h(
            "tr",
            { "data-destination": d.name },
            h("td", {}, h("a", { href: path(d) }, d.name)),
            h("td", {}, d.connector),
            h("td", {}, d.auth?.type ?? "–"),
            h("td", {}, badge(d.state)),
            h("td", { class: "nowrap" }, time(d.updatedAt)),
          ),
        ),
        "No destinations yet: create the first one with New destination.",
      ),
    );
  }
  return { el, refresh };
}

/** Deliveries of a destination that have not ended yet: what a delete fails. */
const WAITING = ["pending", "retrying", "blocked", "awaiting"];

export function destination(id) {
  const head = h("div");
  const body = h("div");
  // State, health figures, charts and failures by code (destination-health.js), above the settings.
  const healthEl = h("div", { class: "destination-health" });
  const panel = id === "new" ? undefined : destinationHealth(healthEl, id);
  const el = h(
    "section",
    {},
    h("p", {}, h("a", { href: "#/destinations" }, "← Destinations")),
    head,
    id === "new" ? null : healthEl,
    body,
  );
  let formFor; // the updatedAt the form was built from: refreshes do not rebuild it under the typist

  async function refresh() {
    const schemas = await formSchemas();
    if (id === "new") {
      if (formFor !== "new") {
        formFor = "new";
        fill(head, h("h1", {}, "New destination"));
        fill(body, destinationForm(schemas, undefined, (v) => (location.hash = path(v))).el);
      }
      return;
    }
    const d = await api("GET", `/v1/destinations/${encodeURIComponent(id)}`);
    fill(head, header(d));
    if (formFor === undefined) build(schemas, d);
    await panel?.refresh();
  }
  function build(schemas, d) {
    formFor = d.updatedAt;
    fill(
      body,
      h("h2", {}, "Settings"),
      destinationForm(schemas, d, (v) => {
        fill(head, header(v));
        build(schemas, v);
      }).el,
    );
  }

  function header(d) {
    const paused = d.paused === true;
    const enabled = d.enabled !== false;
    const patch = (change, done) =>
      void act(
        () => api("PATCH", `/v1/destinations/${encodeURIComponent(d.id)}`, change),
        () => done,
      );
    return h(
      "div",
      { class: "dest-head", "data-state": d.state },
      h("h1", {}, d.name, " ", badge(d.state)),
      h(
        "p",
        { class: "muted" },
        `${d.connector} · auth ${d.auth?.type ?? "–"} · updated ${time(d.updatedAt)} · `,
        h(
          "a",
          { href: `#/deliveries${qs({ destination: d.name })}`, "data-deliveries-link": "" },
          "Deliveries",
        ),
      ),
      h(
        "div",
        { class: "form-actions" },
        connectButton(d),
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            "data-action": paused ? "resume" : "pause",
            onclick: () =>
              patch(
                { paused: !paused },
                paused
                  ? `${d.name} resumed: its waiting deliveries go now.`
                  : `${d.name} paused: new deliveries wait.`,
              ),
          },
          paused ? "Resume" : "Pause",
        ),
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            "data-action": enabled ? "disable" : "enable",
            onclick: () =>
              patch(
                { enabled: !enabled },
                enabled ? `${d.name} disabled: new leads are not routed to it.` : `${d.name} enabled.`,
              ),
          },
          enabled ? "Disable" : "Enable",
        ),
        h(
          "button",
          { type: "button", class: "danger", "data-action": "delete", onclick: () => void remove(d) },
          "Delete",
        ),
        d.state === "needs_reconnect"
          ? h("span", { class: "muted", "data-connect-hint": "" }, "Needs a browser connect (oauth2_code).")
          : null,
      ),
    );
  }

  async function remove(d) {
    try {
      const stats = await api("GET", "/v1/stats");
      const counts = stats.destinations.find((x) => x.id === d.id)?.deliveries ?? {};
      const waiting = WAITING.reduce((n, s) => n + (counts[s] ?? 0), 0);
      const what =
        waiting > 0
          ? `Its ${waiting} waiting deliveries (pending, retrying, blocked or awaiting) will not be sent: they fail with destination_deleted.`
          : "It has no waiting deliveries.";
      if (
        !confirm(
          `Delete ${d.name}? ${what} Delivered and failed deliveries stay in the log. This cannot be undone.`,
        )
      )
        return;
      await api("DELETE", `/v1/destinations/${encodeURIComponent(d.id)}`);
      banner(
        `${d.name} deleted.${waiting > 0 ? ` ${waiting} waiting deliveries fail with destination_deleted.` : ""}`,
        "info",
      );
      location.hash = "#/destinations";
    } catch (err) {
      handle(err);
    }
  }
  return { el, refresh };
}
