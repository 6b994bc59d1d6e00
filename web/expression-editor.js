// JSONata editors (a destination's filter and mapping) with a live preview: as you type (debounced)
// the server evaluates the expression on the chosen lead with the bounded evaluator deliveries use
// (POST /v1/expressions/preview) and the result, or the error and where it is, shows below.
// Nothing is evaluated in the browser.
import { api } from "./api.js";
import { fill, h } from "./dom.js";

const DEBOUNCE_MS = 300;

/**
 * The lead previews and tests run on: the sample lead, or one of the recent leads (a select).
 * { el, leadId() → id or undefined, onChange(fn) }
 */
export function leadPicker() {
  const listeners = [];
  const select = h(
    "select",
    { "aria-label": "Lead for previews and tests", onchange: () => listeners.forEach((fn) => fn()) },
    h("option", { value: "" }, "Sample lead (Asha Rao, Bengaluru)"),
  );
  api("GET", "/v1/leads?limit=10")
    .then((page) => {
      for (const l of page.data) {
        const who = [l.name, l.lastName].filter(Boolean).join(" ") || "(no name)";
        const where = [l.email, l.phone, l.city].filter(Boolean).join(", ");
        select.append(h("option", { value: l.id }, `${who} — ${where}`));
      }
    })
    .catch(() => undefined); // the sample lead still works
  return {
    el: h("label", { class: "lead-picker" }, "Preview and test with ", select),
    leadId: () => select.value || undefined,
    onChange: (fn) => listeners.push(fn),
  };
}

/**
 * A preview box: the result as JSON, or the error with a caret under its position. `idle`: what it
 * says when there is no expression.
 */
function previewBox(idle) {
  const el = h("div", { class: "preview", "aria-live": "polite", "data-state": "idle" });
  let seq = 0;
  let timer;
  return {
    el,
    /** Evaluates `expression` (debounced); answers that arrive after a newer request are dropped. */
    schedule(kind, expression, leadId, source) {
      clearTimeout(timer);
      if (expression === undefined) {
        el.dataset.state = "idle";
        fill(el, h("span", { class: "muted" }, idle));
        return;
      }
      timer = setTimeout(async () => {
        const mine = ++seq;
        el.dataset.state = "loading";
        try {
          const r = await api("POST", "/v1/expressions/preview", {
            kind,
            expression,
            ...(leadId ? { leadId } : {}),
          });
          if (mine === seq) render(r, source);
        } catch (err) {
          if (mine !== seq) return;
          el.dataset.state = "error";
          fill(el, h("span", { class: "error" }, `${err.message} (${err.code})`));
        }
      }, DEBOUNCE_MS);
    },
  };
  function render(r, source) {
    if (r.ok) {
      el.dataset.state = "ok";
      const value = r.result === undefined ? "(undefined)" : JSON.stringify(r.result, null, 2);
      fill(
        el,
        r.matches !== undefined
          ? h(
              "p",
              { class: r.matches ? "ok" : "muted" },
              r.matches ? "✓ This lead would be sent." : "✗ This lead would be filtered out.",
            )
          : null,
        h("pre", { class: "json", "data-preview-result": "" }, value),
      );
      return;
    }
    el.dataset.state = "error";
    const e = r.error;
    const where = e.path.length > 1 ? `${e.path.slice(1).join(".")}: ` : "";
    const text = typeof source === "function" ? source(e.path) : source;
    fill(
      el,
      h("p", { class: "error", "data-preview-error": e.code }, `${where}${e.message} [${e.code}]`),
      e.position !== undefined && typeof text === "string" ? caret(text, e.position) : null,
    );
  }
}

/** The line of `text` holding `position` (JSONata's: just past the offending token), a caret under it. */
function caret(text, position) {
  const at = Math.max(0, Math.min(text.length, position) - 1);
  const start = text.lastIndexOf("\n", at - 1) + 1;
  const endAt = text.indexOf("\n", at);
  const line = text.slice(start, endAt === -1 ? undefined : endAt);
  return h(
    "pre",
    { class: "caret", "data-position": position },
    `${line}\n${" ".repeat(at - start)}^ position ${position}`,
  );
}

/** The filter editor. { el, value() → string or undefined, fields } */
export function filterEditor(initial, picker) {
  const id = "expr-filter";
  const area = h("textarea", {
    id,
    rows: 2,
    class: "mono",
    spellcheck: "false",
    placeholder: 'city = "Pune"',
  });
  area.value = initial ?? "";
  const box = previewBox("No filter: every lead is sent.");
  const errorEl = h("p", { class: "field-error", role: "alert" });
  const wrap = h(
    "div",
    { class: "field", "data-path": "filter" },
    h("label", { for: id }, "filter"),
    area,
    h(
      "p",
      { class: "help" },
      "JSONata boolean over the lead: which leads this destination gets. Empty: every lead.",
    ),
    errorEl,
    box.el,
  );
  const value = () => (area.value.trim() === "" ? undefined : area.value);
  const run = () => box.schedule("filter", value(), picker.leadId(), area.value);
  area.addEventListener("input", run);
  picker.onChange(run);
  run();
  return { el: wrap, value, fields: [errorField(["filter"], wrap, errorEl, area)] };
}

/**
 * The mapping editor: the connector's default, one expression, or one per payload field.
 * { el, value() → string | object | undefined, fields }
 */
export function mappingEditor(initial, picker) {
  const mode = h(
    "select",
    { "aria-label": "Mapping", onchange: () => render() },
    h("option", { value: "default" }, "The connector's default payload"),
    h("option", { value: "one" }, "One JSONata expression"),
    h("option", { value: "fields" }, "One JSONata expression per payload field"),
  );
  mode.value = initial === undefined ? "default" : typeof initial === "string" ? "one" : "fields";
  const single = h("textarea", {
    rows: 4,
    class: "mono",
    spellcheck: "false",
    "aria-label": "Mapping expression",
  });
  single.value = typeof initial === "string" ? initial : '{ "name": name, "email": email }';
  const rows = h("div", { class: "map-rows" });
  const addRow = (k = "", v = "") => {
    const row = h("div", { class: "map-row" });
    const key = h("input", {
      type: "text",
      value: k,
      "aria-label": "Payload field",
      placeholder: "field",
      oninput: run,
    });
    const expr = h("input", {
      type: "text",
      class: "mono",
      "aria-label": `Expression`,
      placeholder: "JSONata",
      oninput: run,
    });
    expr.value = v;
    row.append(
      key,
      expr,
      h(
        "button",
        { type: "button", class: "small secondary", onclick: () => (row.remove(), run()) },
        "Remove",
      ),
    );
    rows.append(row);
  };
  for (const [k, v] of Object.entries(typeof initial === "object" && initial ? initial : {})) addRow(k, v);
  if (!rows.children.length) addRow("email", "email");
  const add = h(
    "button",
    { type: "button", class: "small secondary", onclick: () => (addRow(), run()) },
    "Add field",
  );
  const perField = h("div", {}, rows, add);
  const box = previewBox("No mapping: the connector's default payload is sent.");
  const errorEl = h("p", { class: "field-error", role: "alert" });
  const wrap = h(
    "div",
    { class: "field", "data-path": "mapping" },
    h("label", {}, "mapping"),
    mode,
    single,
    perField,
    h("p", { class: "help" }, "What is sent: JSONata over the lead (its fields, and id)."),
    errorEl,
    box.el,
  );
  single.addEventListener("input", run);
  picker.onChange(run);
  function value() {
    if (mode.value === "default") return undefined;
    if (mode.value === "one") return single.value;
    const out = {};
    for (const row of rows.children) {
      const [k, v] = row.querySelectorAll("input");
      if (k.value.trim() !== "") out[k.value.trim()] = v.value;
    }
    return out;
  }
  function source(path) {
    if (mode.value === "one") return single.value;
    const v = value();
    return path.length > 1 ? v?.[path[1]] : undefined;
  }
  function run() {
    box.schedule("mapping", value(), picker.leadId(), source);
  }
  function render() {
    single.hidden = mode.value !== "one";
    perField.hidden = mode.value !== "fields";
    run();
  }
  render();
  return { el: wrap, value, fields: [errorField(["mapping"], wrap, errorEl, null)] };
}

function errorField(path, wrap, errorEl, control) {
  return {
    path,
    el: wrap,
    error(message) {
      errorEl.textContent = message;
      wrap.classList.add("invalid");
      control?.setAttribute("aria-invalid", "true");
    },
    clear() {
      errorEl.textContent = "";
      wrap.classList.remove("invalid");
      control?.removeAttribute("aria-invalid");
    },
  };
}
