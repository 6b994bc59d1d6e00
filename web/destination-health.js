// A destination's health panel (read-only): state and health figures from
// GET /v1/destinations/:id, attempts per hour by outcome and latency per hour (24 h or 7 days) from
// GET /v1/destinations/:id/stats as hand-made SVG, and recent failures grouped by error code.
// `destinationHealth(el, name)` renders into `el` and returns { refresh }: the destination's page
// (destinations.js) shows it above its settings. Data is only ever rendered as text.
import { api, qs } from "./api.js";
import { badge, fill, h, time } from "./dom.js";
import { refreshNow } from "./page.js";

const SVG = "http://www.w3.org/2000/svg";
const OUTCOMES = [
  ["delivered", "delivered"],
  ["retrying", "retrying"],
  ["failed", "failed"],
  ["other", "awaiting or blocked"],
];
const WINDOWS = { "24h": "24 hours", "7d": "7 days" };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs))
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity))
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** An axis label: the grid line's own value (the half of 5 is 2.5, not 3). */
const tick = (v) => (Number.isInteger(v) ? String(v) : String(Math.round(v * 10) / 10));

/** 1, 2, 5 × 10ⁿ at or above `n` (an axis maximum). */
function niceMax(n) {
  if (n <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= n);
}

export function age(msValue) {
  if (msValue === null || msValue === undefined) return "–";
  const sec = Math.round(msValue / 1000);
  if (sec < 60) return `${sec} s`;
  if (sec < 3600) return `${Math.round(sec / 60)} min`;
  if (sec < 86_400) return `${(sec / 3600).toFixed(1)} h`;
  return `${(sec / 86_400).toFixed(1)} days`;
}

const pctText = (r) =>
  !r || r.attempts === 0 ? "no attempts" : `${Math.round(r.rate * 1000) / 10} % of ${r.attempts} attempts`;

function hourLabel(iso, windowName) {
  const d = new Date(iso);
  const hh = `${String(d.getHours()).padStart(2, "0")}:00`;
  return windowName === "24h"
    ? hh
    : `${d.toLocaleDateString(undefined, { weekday: "short", day: "numeric" })} ${hh}`;
}

/** Axis, bars and labels shared by both charts; `bars(b, x, w, y)` draws one bucket. */
function chart(kind, label, buckets, windowName, max, unit, bars) {
  const W = 720;
  const H = 170;
  const left = 48;
  const bottom = 22;
  const plotW = W - left - 8;
  const plotH = H - bottom - 10;
  const step = plotW / buckets.length;
  const y = (v) => 10 + plotH - (v / max) * plotH;
  const ticks = [0, max / 2, max];
  const xLabels = [0, Math.floor(buckets.length / 2), buckets.length - 1];
  return s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label, "data-chart": kind },
    s("title", {}, label),
    ticks.map((t) => [
      s("line", { x1: left, x2: W - 8, y1: y(t), y2: y(t), class: "grid" }),
      s("text", { x: left - 6, y: y(t) + 4, class: "axis", "text-anchor": "end" }, `${tick(t)}${unit}`),
    ]),
    xLabels.map((i) =>
      s(
        "text",
        { x: left + i * step + step / 2, y: H - 6, class: "axis", "text-anchor": "middle" },
        buckets[i] ? hourLabel(buckets[i].hour, windowName) : "",
      ),
    ),
    buckets.map((b, i) => bars(b, left + i * step + step * 0.1, Math.max(1, step * 0.8), y)),
  );
}

function outcomesChart(stats) {
  const max = niceMax(Math.max(0, ...stats.buckets.map((b) => b.attempts)));
  const label = `Attempts per hour by outcome, last ${WINDOWS[stats.window]}`;
  return chart("outcomes", label, stats.buckets, stats.window, max, "", (b, x, w, y) => {
    if (b.attempts === 0) return null;
    const counts = {
      delivered: b.delivered,
      retrying: b.retrying,
      failed: b.failed,
      other: b.attempts - b.delivered - b.retrying - b.failed,
    };
    let base = 0;
    const parts = [];
    for (const [k] of OUTCOMES) {
      if (counts[k] <= 0) continue;
      const top = base + counts[k];
      parts.push(
        s("rect", { x, width: w, y: y(top), height: y(base) - y(top), class: `seg-${k}`, "data-outcome": k }),
      );
      base = top;
    }
    const text = `${hourLabel(b.hour, stats.window)}: ${b.attempts} attempts — ${b.delivered} delivered, ${b.retrying} retrying, ${b.failed} failed`;
    return s("g", { class: "bar" }, s("title", {}, text), parts);
  });
}

function latencyChart(stats) {
  const max = niceMax(Math.max(0, ...stats.buckets.map((b) => b.p95Ms ?? 0)));
  const label = `Attempt duration per hour (p50 and p95), last ${WINDOWS[stats.window]}`;
  return chart("latency", label, stats.buckets, stats.window, max, " ms", (b, x, w, y) => {
    if (b.p95Ms === null) return null;
    const text = `${hourLabel(b.hour, stats.window)}: p50 ${b.p50Ms} ms, p95 ${b.p95Ms} ms`;
    return s(
      "g",
      { class: "bar" },
      s("title", {}, text),
      s("rect", {
        x,
        width: w,
        y: y(b.p95Ms),
        height: y(0) - y(b.p95Ms),
        class: "lat-p95",
        "data-latency": "p95",
      }),
      s("rect", {
        x,
        width: w,
        y: y(b.p50Ms),
        height: y(0) - y(b.p50Ms),
        class: "lat-p50",
        "data-latency": "p50",
      }),
    );
  });
}

const legend = (items) =>
  h(
    "p",
    { class: "legend" },
    items.map(([cls, text]) => h("span", {}, h("span", { class: `swatch ${cls}` }), text)),
  );

function facts(d) {
  const hl = d.health ?? {};
  const c = hl.circuit ?? {};
  const rl = d.rateLimit;
  const row = (k, ...v) => [h("dt", {}, k), h("dd", {}, ...v)];
  return h(
    "dl",
    { class: "facts", "data-health": "" },
    row("State", badge(d.state ?? "active"), c.reason ? ` ${c.reason}` : ""),
    row("Success, last hour", pctText(hl.successRate?.lastHour)),
    row("Success, last 24 h", pctText(hl.successRate?.lastDay)),
    row(
      "Last error",
      hl.lastError
        ? h(
            "span",
            { class: "error" },
            `${hl.lastError.code}: ${hl.lastError.message ?? ""} (${time(hl.lastError.at)})`,
          )
        : "none",
    ),
    row(
      "Oldest waiting delivery",
      hl.oldestWaitingMs === null || hl.oldestWaitingMs === undefined ? "none" : age(hl.oldestWaitingMs),
    ),
    row(
      "Rate limit",
      rl
        ? `${rl.perSecond ? `${rl.perSecond} per second` : `${rl.perMinute} per minute`}${rl.burst ? `, burst ${rl.burst}` : ""}`
        : "none",
    ),
    row(
      "Hold",
      hl.hold ? `until ${time(hl.hold.until)}${hl.hold.reason ? ` — ${hl.hold.reason}` : ""}` : "none",
    ),
    row(
      "Circuit",
      `${c.state ?? "–"}, ${c.consecutiveFailures ?? 0} consecutive failures`,
      c.nextProbeAt ? `, next probe ${time(c.nextProbeAt)}` : "",
    ),
  );
}

function failures(name, stats) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { "data-failures": "" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Error code", "Attempts", "Last seen", "Last message", ""].map((x) => h("th", {}, x)),
        ),
      ),
      h(
        "tbody",
        {},
        stats.failures.length
          ? stats.failures.map((f) =>
              h(
                "tr",
                { "data-code": f.code },
                h("td", { class: "mono" }, f.code),
                h("td", { class: "num" }, f.count),
                h("td", { class: "nowrap" }, time(f.lastSeen)),
                h("td", {}, f.lastMessage ?? "–"),
                h(
                  "td",
                  {},
                  h(
                    "a",
                    { href: `#/deliveries${qs({ destination: name, errorCode: f.code })}` },
                    "Deliveries",
                  ),
                ),
              ),
            )
          : h(
              "tr",
              {},
              h("td", { colSpan: 5, class: "muted" }, `No failures in the last ${WINDOWS[stats.window]}.`),
            ),
      ),
    ),
  );
}

/** Renders the health panel of destination `name` (id or name) into `el`; returns { refresh }. */
export function destinationHealth(el, name) {
  let windowName = "24h";
  const toggle = h("div", { class: "window-toggle", role: "group", "aria-label": "Time window" });
  const body = h("div");
  fill(el, toggle, body);
  el.classList.add("health-panel");

  function renderToggle() {
    fill(
      toggle,
      Object.entries(WINDOWS).map(([w, text]) =>
        h(
          "button",
          {
            type: "button",
            class: w === windowName ? "small" : "small secondary",
            "aria-pressed": String(w === windowName),
            "data-window": w,
            onclick: () => {
              windowName = w;
              renderToggle();
              void refreshNow();
            },
          },
          text,
        ),
      ),
    );
  }
  renderToggle();

  async function refresh() {
    const path = `/v1/destinations/${encodeURIComponent(name)}`;
    const [d, stats] = await Promise.all([
      api("GET", path),
      api("GET", `${path}/stats${qs({ window: windowName })}`),
    ]);
    const t = stats.totals;
    fill(
      body,
      facts(d),
      h("h2", {}, `Attempts per hour, last ${WINDOWS[stats.window]}`),
      h(
        "p",
        { class: "muted", "data-totals": "" },
        `${t.attempts} attempts: ${t.delivered} delivered, ${t.retrying} retrying, ${t.failed} failed` +
          (t.awaiting + t.blocked ? `, ${t.awaiting + t.blocked} awaiting or blocked` : ""),
      ),
      outcomesChart(stats),
      legend(OUTCOMES.map(([k, text]) => [`seg-${k}`, text])),
      h("h2", {}, "Attempt duration per hour"),
      latencyChart(stats),
      legend([
        ["lat-p50", "p50 (median)"],
        ["lat-p95", "p95"],
      ]),
      h("h2", {}, `Failures by error code, last ${WINDOWS[stats.window]}`),
      failures(d.name, stats),
    );
  }
  return { refresh };
}
