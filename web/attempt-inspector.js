// The attempt inspector: every exchange of one attempt — auth handshake steps and the push — with
// method, URL, request headers and body, response status, headers and body excerpt, and when each
// step began and how long it took, on one time line. It shows what GET /v1/deliveries/:id returns:
// the exchanges as stored, redacted by the server; nothing is fetched or un-redacted here.
import { badge, h, ms } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

/** Attempts open in the inspector, by `${deliveryId}:${number}` (kept across refreshes). */
const open = new Set();

/** The button that opens or closes attempt `a` of delivery `deliveryId`; `changed` re-renders. */
export function inspectButton(deliveryId, a, changed) {
  const id = `${deliveryId}:${a.number}`;
  const isOpen = open.has(id);
  return h(
    "button",
    {
      type: "button",
      class: "small secondary",
      "aria-expanded": String(isOpen),
      "data-inspect": a.number,
      onclick: () => {
        if (open.has(id)) open.delete(id);
        else open.add(id);
        changed();
      },
    },
    isOpen ? "Close" : "Inspect",
  );
}

export const isInspected = (deliveryId, a) => open.has(`${deliveryId}:${a.number}`);

/** A JSON body indented; anything else as it is. */
function pretty(body) {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

function headers(hs, part) {
  const entries = Object.entries(hs ?? {});
  if (entries.length === 0) return h("p", { class: "muted", "data-part": part }, "No headers.");
  return h(
    "table",
    { class: "headers", "data-part": part },
    h(
      "tbody",
      {},
      entries.map(([k, v]) => h("tr", {}, h("th", { class: "mono" }, k), h("td", { class: "mono" }, v))),
    ),
  );
}

/** Where a step sits within the attempt: a bar from its start over its duration. */
function timeline(e, total) {
  const start = e.startMs ?? 0;
  const x = total > 0 ? (start / total) * 100 : 0;
  const w = total > 0 ? Math.max(0.5, (e.durationMs / total) * 100) : 100;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 100 4");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "step-time");
  svg.setAttribute("aria-hidden", "true");
  const rect = document.createElementNS(SVG, "rect");
  for (const [k, v] of Object.entries({ x: Math.min(x, 99.5), y: 0, width: Math.min(w, 100 - x), height: 4 }))
    rect.setAttribute(k, String(v));
  rect.setAttribute("class", e.step.startsWith("auth") ? "auth" : "push");
  svg.append(rect);
  return svg;
}

function exchange(e, i, total) {
  // A dry run's push was never sent: no answer to show.
  const sent = e.status !== undefined || e.error !== undefined;
  const result = e.error
    ? h("span", { class: "error" }, `${e.error.code}: ${e.error.message}`)
    : h("span", { class: "exchange-status" }, sent ? `HTTP ${e.status}` : "not sent");
  const when = e.startMs === undefined ? ms(e.durationMs) : `at +${ms(e.startMs)}, took ${ms(e.durationMs)}`;
  return h(
    "article",
    { class: "exchange", "data-exchange": i, "data-step": e.step },
    h(
      "header",
      {},
      badge(e.step, e.step.startsWith("auth") ? "auth" : "push"),
      h("span", { class: "mono" }, e.method),
      " ",
      h("span", { class: "url" }, e.url),
      " ",
      result,
      h("span", { class: "muted step-when" }, when),
    ),
    timeline(e, total),
    h(
      "div",
      { class: "exchange-parts" },
      h(
        "section",
        {},
        h("h4", {}, "Request"),
        headers(e.requestHeaders, "request-headers"),
        e.requestBody !== undefined
          ? h("pre", { class: "excerpt request-body", "data-part": "request-body" }, pretty(e.requestBody))
          : h("p", { class: "muted" }, "No body."),
      ),
      h(
        "section",
        {},
        h("h4", {}, e.error ? "No answer" : sent ? `Response ${e.status}` : "Not sent"),
        e.error || !sent ? null : headers(e.responseHeaders, "response-headers"),
        e.responseBody
          ? h("pre", { class: "excerpt response-body", "data-part": "response-body" }, pretty(e.responseBody))
          : null,
      ),
    ),
  );
}

/** Exchanges (an attempt's, or a Test's `requests`) on one time line of `durationMs` at least. */
export function exchangeList(exchanges, durationMs = 0) {
  const total = Math.max(durationMs, ...exchanges.map((e) => (e.startMs ?? 0) + (e.durationMs ?? 0)));
  return exchanges.map((e, i) => exchange(e, i, total));
}

/** The inspector of attempt `a` (one element of `attempts` in GET /v1/deliveries/:id). */
export function inspector(a) {
  const exchanges = a.exchanges ?? [];
  return h(
    "div",
    { class: "inspector", "data-inspector": a.number },
    h(
      "p",
      { class: "muted" },
      `Attempt ${a.number}: ${exchanges.length} exchange${exchanges.length === 1 ? "" : "s"} in ${ms(a.durationMs)}. ` +
        "Secrets, tokens and cookies are redacted as stored.",
    ),
    exchanges.length
      ? exchangeList(exchanges, a.durationMs ?? 0)
      : h(
          "p",
          { class: "muted" },
          "This attempt made no request (the destination was held or its lead erased).",
        ),
  );
}
