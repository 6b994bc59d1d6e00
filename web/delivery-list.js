// The Deliveries view: a filter bar (destination, status, error code, time) kept in the URL hash so
// a filtered view can be linked, replay by that filter (count first, then a confirmation), CSV.
import { api, qs } from "./api.js";
import { exportButton } from "./csv-download.js";
import { deliveryTable, loadDetails } from "./deliveries.js";
import { STATUSES, fill, h } from "./dom.js";
import { act, handle, refreshNow } from "./page.js";

const RANGES = { "": "Any time", "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days" };
const RANGE_MS = { "1h": 3_600_000, "24h": 86_400_000, "7d": 604_800_000 };
const REPLAYABLE = ["failed", "retrying", "delivered"];
const FILTER_KEYS = ["status", "destination", "errorCode", "range", "since", "until"];

/** The API's filter for the view's filter (a relative range is read against the clock now). */
function apiFilter(f) {
  const since = RANGE_MS[f.range] ? new Date(Date.now() - RANGE_MS[f.range]).toISOString() : f.since;
  return { status: f.status, destination: f.destination, errorCode: f.errorCode, since, until: f.until };
}

export function deliveries(params) {
  const f = Object.fromEntries(FILTER_KEYS.map((k) => [k, params.get(k) ?? ""]));
  let rows = [];
  let cursor = null;
  let names = "";
  const changed = () => {
    f.status = status.value;
    f.destination = destination.value;
    f.errorCode = errorCode.value.trim();
    f.range = range.value;
    history.replaceState(null, "", `#/deliveries${qs(f)}`);
    rows = [];
    fill(confirmBox);
    void refreshNow();
  };
  const status = h(
    "select",
    { "aria-label": "Status", onchange: changed },
    h("option", { value: "" }, "All statuses"),
    STATUSES.map((s) => h("option", { value: s, selected: s === f.status }, s)),
  );
  const destination = h("select", { "aria-label": "Destination", onchange: changed });
  const errorCode = h("input", {
    type: "search",
    placeholder: "Error code, e.g. http_500",
    "aria-label": "Error code",
    value: f.errorCode,
    onchange: changed,
  });
  const range = h(
    "select",
    { "aria-label": "Time", onchange: changed },
    Object.entries(RANGES).map(([v, label]) => h("option", { value: v, selected: v === f.range }, label)),
  );
  const replay = h(
    "button",
    { type: "button", class: "secondary", "data-replay": "filter", onclick: () => void askReplay() },
    "Replay…",
  );
  const confirmBox = h("div", { class: "replay-confirm", role: "status" });
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
    h(
      "div",
      { class: "filters" },
      status,
      destination,
      errorCode,
      range,
      replay,
      exportButton(() => `/v1/deliveries/export${qs(apiFilter(f))}`, "deliveries.csv"),
    ),
    confirmBox,
    list,
    more,
  );

  /** The replay's filter: only what the list shows, and only a status that can be sent again. */
  const replayBody = () => {
    const a = apiFilter(f);
    return {
      status: [a.status],
      destination: a.destination || undefined,
      errorCode: a.errorCode || undefined,
      since: a.since || undefined,
      until: a.until || undefined,
    };
  };
  async function askReplay() {
    try {
      const body = replayBody();
      const dry = await api("POST", "/v1/deliveries/replay", { ...body, dryRun: true });
      if (dry.count === 0) return fill(confirmBox, h("p", { class: "muted" }, "No delivery to replay."));
      const what = `${dry.count}${dry.capped ? ` (the first ${dry.limit}; more match)` : ""}`;
      // What the filter is, in words: a person confirms what they see, not only a number.
      const scope = [
        f.destination && ` of ${f.destination}`,
        f.errorCode && ` with ${f.errorCode}`,
        RANGES[f.range] && f.range ? ` from the ${RANGES[f.range].toLowerCase()}` : "",
      ]
        .filter(Boolean)
        .join("");
      const yes = h(
        "button",
        {
          type: "button",
          "data-confirm": "replay",
          onclick: () => {
            fill(confirmBox);
            void act(
              () => api("POST", "/v1/deliveries/replay", { ...body, limit: dry.count }),
              (r) =>
                `${r.replayed} deliveries were queued again${r.capped ? "; more match: replay again" : ""}.`,
            );
          },
        },
        `Replay ${dry.count}`,
      );
      fill(
        confirmBox,
        h(
          "p",
          { "data-replay-count": dry.count },
          `Send ${what} ${body.status[0]} deliveries${scope} again?`,
        ),
        yes,
        h("button", { type: "button", class: "secondary", onclick: () => fill(confirmBox) }, "Cancel"),
      );
      yes.focus();
    } catch (err) {
      handle(err);
    }
  }

  function render() {
    fill(list, deliveryTable(rows));
    more.hidden = !cursor;
    replay.disabled = !REPLAYABLE.includes(f.status);
    replay.title = replay.disabled ? "Choose status failed, retrying or delivered to replay" : "";
  }
  async function loadMore() {
    try {
      const page = await api("GET", `/v1/deliveries${qs({ ...apiFilter(f), cursor, limit: 50 })}`);
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
      api("GET", `/v1/deliveries${qs({ ...apiFilter(f), limit })}`),
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
    await loadDetails(page.data);
    rows = page.data;
    cursor = page.nextCursor;
    render();
  }
  return { el, refresh };
}
