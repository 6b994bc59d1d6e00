// DOM helpers. Everything from the API becomes text nodes or attribute values: never markup.

/**
 * h("a", { href: "#/x", class: "link", onclick: fn }, "text", child, [more]) → an element.
 * Strings and numbers become text nodes; null/undefined/false children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export { STATUSES } from "./statuses.js";

export const badge = (value, kind = value) => h("span", { class: `badge b-${kind}` }, value);

export function time(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

export const ms = (n) =>
  n === null || n === undefined ? "–" : n < 1000 ? `${n} ms` : `${(n / 1000).toFixed(1)} s`;

export const short = (id) => (id ? String(id).slice(-8) : "–");

/** A destination's name linking to its page (or the text alone when it was deleted). */
export const destinationLink = (id, name) =>
  name && id
    ? h("a", { href: `#/destinations/${encodeURIComponent(id)}`, "data-destination-link": "" }, name)
    : (name ?? "(deleted)");

/** A table in a horizontally scrolling wrapper (responsive). */
export function table(headers, rows, empty = "Nothing here yet.") {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          headers.map((x) => h("th", {}, x)),
        ),
      ),
      h(
        "tbody",
        {},
        rows.length ? rows : h("tr", {}, h("td", { colSpan: headers.length, class: "muted" }, empty)),
      ),
    ),
  );
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
