// A destination's form, generated from the schemas the API validates with: pick a connector, then an
// auth type, and exactly that type's fields appear. Save creates (POST) or changes (PATCH) it; Test
// and Send test lead run the form as it is, saved or not (POST /v1/destinations/test).
import { api, ApiError } from "./api.js";
import { fieldSet, FieldError, showErrors } from "./destination-fields.js";
import { exchangeList } from "./attempt-inspector.js";
import { fill, h } from "./dom.js";
import { filterEditor, leadPicker, mappingEditor } from "./expression-editor.js";
import { banner, handle } from "./page.js";

let schemasOnce;
/** GET /v1/schemas/destinations, once per page. */
export function formSchemas() {
  schemasOnce ??= api("GET", "/v1/schemas/destinations").catch((err) => {
    schemasOnce = undefined;
    throw err;
  });
  return schemasOnce;
}

/** Common fields the form handles itself (or the page's buttons: enabled, paused). */
const SPECIAL = ["name", "connector", "auth", "mapping", "filter", "enabled", "paused"];

/** The fields of a destination as read that the form edits (not its id, state, health, …). */
function editable(view, schemas, connector) {
  if (!view) return {};
  const keys = new Set([
    ...Object.keys(schemas.common.properties).filter((k) => k !== "enabled" && k !== "paused"),
    ...Object.keys(connector?.schema.properties ?? {}),
  ]);
  return Object.fromEntries(Object.entries(view).filter(([k]) => keys.has(k)));
}

/** A PATCH from `before` to `after`: what is gone is sent as null (removed), objects key by key. */
function patchOf(before, after) {
  const out = { ...after };
  for (const [k, v] of Object.entries(before)) {
    if (!(k in after)) out[k] = null;
    else if (isPlain(v) && isPlain(after[k])) out[k] = patchOf(v, after[k]);
  }
  return out;
}
const isPlain = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * The form. `original`: the destination as read (editing), or undefined (a new one). `onSaved(view)`
 * is called after a save.
 */
export function destinationForm(schemas, original, onSaved) {
  const byName = new Map(schemas.connectors.map((c) => [c.name, c]));
  const authByType = new Map(schemas.authTypes.map((a) => [a.type, a]));
  const general = h("ul", { class: "form-errors", role: "alert", hidden: true });
  const result = h("div", { class: "test-result", "aria-live": "polite" });
  const picker = leadPicker();

  const common = schemas.common.properties;
  const nameField = fieldSet(
    { properties: { name: common.name }, required: ["name"] },
    { values: original ?? {} },
  );
  const connectorSelect = h(
    "select",
    { id: "dest-connector", onchange: () => renderConnector() },
    schemas.connectors.map((c) => h("option", { value: c.name }, c.name)),
  );
  connectorSelect.value = original?.connector ?? "http";
  const connectorBox = h("div");
  const authSelect = h("select", { id: "dest-auth-type", onchange: () => renderAuth() });
  const authBox = h("div");
  const authRow = h(
    "div",
    { class: "field", "data-path": "auth.type" },
    h("label", { for: "dest-auth-type" }, "auth type"),
    authSelect,
  );
  const filter = filterEditor(original?.filter, picker);
  const mapping = mappingEditor(original?.mapping, picker);
  const settings = fieldSet(schemas.common, { values: original ?? {}, skip: SPECIAL });

  let connFields;
  let authFields;
  function renderConnector() {
    const c = byName.get(connectorSelect.value);
    const same = original && original.connector === c.name;
    connFields = fieldSet(c.schema, { values: same ? original : {}, secrets: c.secretFields });
    fill(connectorBox, connFields.el);
    authRow.hidden = c.authFromFields;
    fill(
      authSelect,
      c.authTypes.map((t) => h("option", { value: t }, t)),
    );
    const current = same ? original.auth?.type : undefined;
    authSelect.value = c.authTypes.includes(current) ? current : c.defaultAuth.type;
    renderAuth();
  }
  function renderAuth() {
    const c = byName.get(connectorSelect.value);
    if (c.authFromFields) {
      authFields = {
        el: [h("p", { class: "muted" }, "This connector signs in with its own fields above.")],
        fields: [],
        collect: () => ({}),
      };
    } else {
      const a = authByType.get(authSelect.value);
      const values =
        original?.connector === c.name && original.auth?.type === a.type
          ? original.auth
          : c.defaultAuth.type === a.type
            ? c.defaultAuth
            : {};
      authFields = fieldSet(a.schema, { prefix: ["auth"], values, secrets: a.secretFields });
      if (a.connect)
        authFields.el.push(
          h(
            "p",
            { class: "muted" },
            "After saving, connect it in a browser (Connect) before its first push.",
          ),
        );
    }
    fill(authBox, authFields.el);
  }
  renderConnector();

  const allFields = () => [
    ...nameField.fields,
    { path: ["connector"], ...errorless(connectorSelect) },
    ...connFields.fields,
    { path: ["auth", "type"], ...errorless(authRow) },
    ...authFields.fields,
    ...filter.fields,
    ...mapping.fields,
    ...settings.fields,
  ];

  /** The destination the form describes, as POST /v1/destinations takes it. */
  function collect() {
    const c = byName.get(connectorSelect.value);
    const doc = { ...nameField.collect(), connector: c.name, ...connFields.collect(), ...settings.collect() };
    if (!c.authFromFields) doc.auth = { type: authSelect.value, ...authFields.collect() };
    const f = filter.value();
    const m = mapping.value();
    if (f !== undefined) doc.filter = f;
    if (m !== undefined) doc.mapping = m;
    return doc;
  }
  /** What is sent: the whole destination (new), or a PATCH over the saved one. */
  function body() {
    const doc = collect();
    if (!original) return doc;
    return patchOf(editable(original, schemas, byName.get(original.connector)), doc);
  }

  function clearErrors() {
    for (const f of allFields()) f.clear();
    general.hidden = true;
    general.replaceChildren();
  }
  /** Errors of the request itself go beside their fields; the rest to the banner. */
  function report(err) {
    if (err instanceof FieldError)
      return showErrors(allFields(), [{ path: err.path, message: err.message }], general);
    if (err instanceof ApiError && err.details?.length) {
      showErrors(allFields(), err.details, general);
      banner(`${err.message} (${err.code}): see the fields marked below.`);
      return;
    }
    handle(err);
  }

  async function save(e) {
    e.preventDefault();
    clearErrors();
    try {
      const b = body();
      const view = original
        ? await api("PATCH", `/v1/destinations/${encodeURIComponent(original.id)}`, b)
        : await api("POST", "/v1/destinations", b);
      banner(original ? `${view.name} saved.` : `${view.name} created.`, "info");
      onSaved(view);
    } catch (err) {
      report(err);
    }
  }

  async function test(send) {
    clearErrors();
    let b;
    try {
      b = body();
    } catch (err) {
      return report(err);
    }
    const leadId = picker.leadId();
    fill(result, h("p", { class: "muted" }, send ? "Sending a test lead…" : "Testing…"));
    try {
      const r = await api("POST", "/v1/destinations/test", {
        destination: b,
        ...(original ? { id: original.id } : {}),
        ...(leadId ? { leadId } : {}),
        send,
      });
      fill(result, testResult(r));
    } catch (err) {
      fill(result);
      report(err);
    }
  }

  const el = h(
    "form",
    { class: "dest-form", novalidate: true, onsubmit: save },
    general,
    h(
      "fieldset",
      {},
      h("legend", {}, "Destination"),
      nameField.el,
      h(
        "div",
        { class: "field", "data-path": "connector" },
        h("label", { for: "dest-connector" }, "connector"),
        connectorSelect,
      ),
      connectorBox,
    ),
    h("fieldset", {}, h("legend", {}, "Authentication"), authRow, authBox),
    h("fieldset", {}, h("legend", {}, "Which leads, and what is sent"), picker.el, filter.el, mapping.el),
    h(
      "details",
      { class: "settings" },
      h("summary", {}, "Delivery settings (timeout, retries, concurrency, rate limit, duplicates)"),
      settings.el,
    ),
    h(
      "div",
      { class: "form-actions" },
      h("button", { type: "submit", "data-action": "save" }, original ? "Save" : "Create"),
      h(
        "button",
        { type: "button", class: "secondary", "data-action": "test", onclick: () => void test(false) },
        "Test",
      ),
      h(
        "button",
        { type: "button", class: "secondary", "data-action": "send", onclick: () => void test(true) },
        "Send test lead",
      ),
      h(
        "span",
        { class: "muted" },
        "Test signs in for real and shows the request it would send; Send test lead sends it.",
      ),
    ),
    result,
  );
  return { el };
}

const errorless = (el) => ({ el, error: () => undefined, clear: () => undefined });

/** An outcome's kind as a person reads it (`retry` is the worker's word for a retryable failure). */
const OUTCOME_WORDS = { retry: "retryable failure (a delivery would be tried again)" };

/** The answer of a test: the sign-in, the outcome, every request (redacted by the server). */
export function testResult(r) {
  const o = r.outcome;
  const outcome =
    o.kind === "dry_run"
      ? "Dry run: the request below was not sent."
      : `${OUTCOME_WORDS[o.kind] ?? o.kind}${o.code ? ` — ${o.code}: ${o.message}` : ""}${o.status ? ` (HTTP ${o.status})` : ""}`;
  return h(
    "div",
    { "data-test-result": r.auth.ok ? "ok" : "auth_failed" },
    h("h3", {}, r.sent ? "Test lead sent" : "Test (dry run)"),
    h(
      "p",
      { class: r.auth.ok ? "ok" : "error", "data-auth": r.auth.ok ? "ok" : "failed" },
      r.auth.ok
        ? `Sign-in (${r.auth.type}): OK`
        : `Sign-in (${r.auth.type}) failed — ${r.auth.error?.code}: ${r.auth.error?.message}`,
    ),
    h("p", { "data-outcome": o.kind }, `Outcome: ${outcome}`),
    o.result !== undefined ? h("pre", { class: "json" }, JSON.stringify(o.result, null, 2)) : null,
    // Every request, shown as the attempt inspector shows an attempt's (labelled, headers as a table).
    h("div", { class: "inspector" }, exchangeList(r.requests)),
  );
}
