// Form fields generated from the JSON Schemas of GET /v1/schemas/destinations: one control per
// property, with its help text and default, secrets write-only (set/unset, replaceable, never shown),
// and a place beside it for the validation error the API names its path.
import { h } from "./dom.js";

/** What the API answers instead of a secret, and what a PATCH sends to keep it. */
export const REDACTED = "[redacted]";

let seq = 0;
const nextId = () => `fld-${++seq}`;

/** A value the page cannot read (bad JSON, not a number): reported at its field, nothing sent. */
export class FieldError extends Error {
  constructor(path, message) {
    super(message);
    this.path = path;
  }
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const primitiveAnyOf = (p) =>
  Array.isArray(p.anyOf) &&
  p.anyOf.some((a) => a.type === "string") &&
  p.anyOf.every((a) => ["string", "integer", "number"].includes(a.type));

/** The kind of control a property gets. */
function kindOf(p) {
  if (Array.isArray(p.enum) && p.enum.every((v) => typeof v === "string")) return "enum";
  if (p.type === "boolean") return "boolean";
  if (p.type === "integer" || p.type === "number") return "number";
  if (p.type === "string" || primitiveAnyOf(p)) return "string";
  if (p.type === "object" && p.properties && !p.additionalProperties) return "object";
  return "json";
}

/**
 * The fields of one object schema. `values`: the current values (a destination as read: secrets
 * are "[redacted]"); `secrets`: which properties are secret. Returns { el, fields, collect() },
 * `fields` flat (nested ones included), each { path, el, error(message), clear() }.
 */
export function fieldSet(schema, { prefix = [], values = {}, secrets = [], skip = [] } = {}) {
  const required = new Set(schema.required ?? []);
  const own = [];
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    if (skip.includes(name) || prop.const !== undefined) continue;
    own.push(
      field(name, prop, {
        path: [...prefix, name],
        required: required.has(name),
        value: values?.[name],
        secret: secrets.includes(name),
      }),
    );
  }
  return {
    el: own.map((f) => f.el),
    fields: own.flatMap((f) => [f, ...(f.nested ?? [])]),
    collect() {
      const out = {};
      for (const f of own) {
        const v = f.collect();
        if (v !== undefined) out[f.name] = v;
      }
      return out;
    },
  };
}

function field(name, prop, { path, required, value, secret }) {
  const id = nextId();
  const kind = kindOf(prop);
  const errorEl = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
  const help = [
    prop.description,
    prop.default !== undefined && kind !== "object" ? `Default: ${JSON.stringify(prop.default)}.` : null,
  ]
    .filter(Boolean)
    .join(" ");
  const label = h(
    "label",
    { for: id },
    name,
    required ? h("span", { class: "req", title: "required" }, " *") : null,
    secret ? h("span", { class: "badge b-secret" }, "secret") : null,
  );
  const wrap = h("div", { class: "field", "data-path": path.join(".") });
  const base = { name, path, el: wrap, nested: undefined };
  let control;
  let collect;

  if (kind === "object") {
    const inner = fieldSet(prop, { prefix: path, values: isObject(value) ? value : {} });
    fill(
      wrap,
      h(
        "fieldset",
        { class: "nested" },
        h("legend", {}, name),
        help && h("p", { class: "help" }, help),
        inner.el,
        errorEl,
      ),
    );
    wrap.classList.add("group");
    return {
      ...base,
      nested: inner.fields,
      collect() {
        const v = inner.collect();
        return Object.keys(v).length ? v : undefined;
      },
      ...errorApi(wrap, errorEl, null),
    };
  }

  if (secret && kind === "string") return secretField(base, { id, label, help, value, errorEl, wrap });

  if (kind === "enum") {
    const blank = prop.default !== undefined ? `(default: ${prop.default})` : required ? "Choose…" : "(none)";
    control = h(
      "select",
      { id },
      h("option", { value: "" }, blank),
      prop.enum.map((v) => h("option", { value: v, selected: v === value }, v)),
    );
    collect = () => control.value || undefined;
  } else if (kind === "boolean") {
    control = h("input", { id, type: "checkbox", checked: value ?? prop.default ?? false });
    collect = () => control.checked;
  } else if (kind === "number") {
    control = h("input", {
      id,
      type: "number",
      step: prop.type === "integer" ? "1" : "any",
      placeholder: prop.default !== undefined ? String(prop.default) : "",
    });
    if (typeof value === "number") control.value = String(value);
    collect = () => {
      if (control.value.trim() === "") return undefined;
      const n = Number(control.value);
      if (!Number.isFinite(n)) throw new FieldError(path, "not a number");
      return n;
    };
  } else if (kind === "string") {
    control = h("input", {
      id,
      type: prop.format === "uri" ? "url" : "text",
      placeholder: prop.default !== undefined ? String(prop.default) : "",
      autocomplete: "off",
    });
    if (value !== undefined && value !== null) control.value = String(value);
    collect = () => (control.value === "" ? undefined : control.value);
  } else {
    // Records, lists, unions: JSON (a secret record shows its keys, each value "[redacted]").
    control = h("textarea", { id, rows: 3, class: "mono", spellcheck: "false" });
    if (value !== undefined) control.value = JSON.stringify(value, null, 2);
    collect = () => {
      const text = control.value.trim();
      if (text === "") return undefined;
      try {
        return JSON.parse(text);
      } catch {
        throw new FieldError(path, "not valid JSON");
      }
    };
  }
  control.setAttribute("aria-describedby", `${id}-help ${id}-error`);
  fill(
    wrap,
    label,
    control,
    help || (secret && kind === "json")
      ? h(
          "p",
          { class: "help", id: `${id}-help` },
          help,
          secret && kind === "json" ? ` Values are write-only: "${REDACTED}" keeps the stored one.` : "",
        )
      : null,
    errorEl,
  );
  return { ...base, collect, ...errorApi(wrap, errorEl, control) };
}

/** A secret: write-only. Set ones show "set" and a Replace button; the value never reaches the page. */
function secretField(base, { id, label, help, value, errorEl, wrap }) {
  const isSet = value === REDACTED;
  const input = h("input", {
    id,
    type: "password",
    autocomplete: "new-password",
    "aria-describedby": `${id}-error`,
  });
  const state = h(
    "span",
    { class: `badge ${isSet ? "b-active" : "b-disabled"}`, "data-secret-state": "" },
    isSet ? "set" : "unset",
  );
  let replacing = !isSet;
  const replace = h(
    "button",
    {
      type: "button",
      class: "small secondary",
      onclick: () => {
        replacing = !replacing;
        input.hidden = !replacing;
        replace.textContent = replacing ? "Keep the stored value" : "Replace";
        if (replacing) input.focus();
        else input.value = "";
      },
    },
    "Replace",
  );
  input.hidden = isSet;
  replace.hidden = !isSet;
  fill(
    wrap,
    label,
    h("div", { class: "secret-row" }, state, replace, input),
    help && h("p", { class: "help" }, help),
    errorEl,
  );
  return {
    ...base,
    collect() {
      if (isSet && (!replacing || input.value === "")) return REDACTED;
      return input.value === "" ? undefined : input.value;
    },
    ...errorApi(wrap, errorEl, input),
  };
}

function errorApi(wrap, errorEl, control) {
  return {
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

function fill(el, ...children) {
  el.replaceChildren();
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false && c !== "") el.append(c);
}

/**
 * Shows each error detail of a 400 next to the field its path names (the longest field path that
 * starts it); the rest, and a detail with no field, in `general`. Returns how many found a field.
 */
export function showErrors(fields, details, general) {
  let placed = 0;
  const messages = new Map();
  const rest = [];
  for (const d of details) {
    const path = (d.path ?? []).map(String);
    let best;
    for (const f of fields) {
      const fp = f.path.map(String);
      if (
        fp.length <= path.length &&
        fp.every((p, i) => p === path[i]) &&
        (!best || fp.length > best.path.length)
      )
        best = f;
    }
    const text =
      d.path.length > (best?.path.length ?? 0)
        ? `${d.path.slice(best?.path.length ?? 0).join(".")}: ${d.message}`
        : d.message;
    if (best) {
      messages.set(best, [...(messages.get(best) ?? []), text]);
      placed++;
    } else rest.push(d.path.length ? `${d.path.join(".")}: ${d.message}` : d.message);
  }
  for (const [f, list] of messages) f.error(list.join("; "));
  general.replaceChildren(...rest.map((m) => h("li", {}, m)));
  general.hidden = rest.length === 0;
  return placed;
}
