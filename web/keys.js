// API keys: create (the key shown once, with a copy button), list, revoke with a confirmation. The
// key this tab is signed in with is marked, and revoking it takes an explicit second warning.
import { api } from "./api.js";
import { badge, fill, h, table, time } from "./dom.js";
import { act, handle, showLogin } from "./page.js";

/** Copies `text`; falls back to selecting `input` (no clipboard without HTTPS on another host). */
async function copy(text, input, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    input.focus();
    input.select();
    button.textContent = "Press Ctrl+C";
  }
}

/** The just-created key: shown once, selectable, with a copy button. */
function shownOnce(created, onDone) {
  const input = h("input", {
    id: "new-key",
    class: "mono",
    readOnly: true,
    value: created.key,
    "aria-label": "The new API key",
    onfocus: (e) => e.target.select(),
  });
  const copyButton = h("button", { type: "button", id: "copy-key" }, "Copy");
  copyButton.addEventListener("click", () => void copy(created.key, input, copyButton));
  return h(
    "div",
    { class: "key-once", role: "status" },
    h(
      "p",
      {},
      h("b", {}, `Key "${created.name}" (${created.scopes.join(", ")}) created. `),
      "It is shown only this once: copy it now.",
    ),
    h(
      "div",
      { class: "key-row" },
      input,
      copyButton,
      h("button", { type: "button", class: "secondary", onclick: onDone }, "Done"),
    ),
  );
}

function revokeButton(k) {
  return h(
    "button",
    {
      type: "button",
      class: "small secondary danger",
      "data-revoke": k.name,
      onclick: () => {
        const warning = k.current
          ? `"${k.name}" is the key you are signed in with.\n\nRevoking it signs this dashboard out at once, and every program that uses it is refused from now on.\n\nRevoke the key you are using?`
          : `Revoke the key "${k.name}" (${k.prefix}…)?\n\nEvery program that uses it is refused from now on. This cannot be undone.`;
        if (!confirm(warning)) return;
        if (k.current) {
          api("DELETE", `/v1/keys/${encodeURIComponent(k.id)}`).then(
            () =>
              showLogin(
                `You revoked the key you were signed in with ("${k.name}"). Sign in with another admin key.`,
              ),
            handle,
          );
          return;
        }
        void act(
          () => api("DELETE", `/v1/keys/${encodeURIComponent(k.id)}`),
          () => `Key "${k.name}" was revoked: it is refused from now on.`,
        );
      },
    },
    "Revoke",
  );
}

export function keys() {
  const list = h("div");
  const once = h("div");
  const name = h("input", {
    id: "key-name",
    placeholder: "website-form",
    required: true,
    maxLength: 100,
    "aria-label": "Key name",
  });
  const scope = h(
    "select",
    { id: "key-scope", "aria-label": "Scope" },
    h("option", { value: "ingest" }, "ingest (send leads)"),
    h("option", { value: "admin" }, "admin (everything)"),
  );
  const form = h(
    "form",
    { class: "filters", id: "key-create" },
    h("label", {}, "Name ", name),
    h("label", {}, "Scope ", scope),
    h("button", { type: "submit" }, "Create key"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const created = await api("POST", "/v1/keys", { name: name.value.trim(), scopes: [scope.value] });
      name.value = "";
      fill(
        once,
        shownOnce(created, () => fill(once)),
      );
      once.querySelector("#copy-key")?.focus();
      await refresh();
    } catch (err) {
      handle(err);
    }
  });

  const el = h(
    "section",
    {},
    h("h1", {}, "API keys"),
    h(
      "p",
      { class: "muted" },
      "Programs send leads with an ingest key; the dashboard and admin scripts use an admin key. Keys are stored hashed: a key is shown once, when it is created.",
    ),
    form,
    once,
    list,
  );

  async function refresh() {
    const { data } = await api("GET", "/v1/keys");
    fill(
      list,
      table(
        ["Name", "Scopes", "Prefix", "Created", "Last used", "State", ""],
        data
          .slice()
          .reverse()
          .map((k) =>
            h(
              "tr",
              { "data-key": k.name, class: k.revoked ? "muted" : "" },
              h(
                "td",
                {},
                k.name,
                k.current
                  ? h("span", { class: "badge b-you", title: "This tab is signed in with this key" }, "you")
                  : null,
              ),
              h("td", {}, k.scopes.join(", ")),
              h("td", { class: "mono" }, `${k.prefix}…`),
              h("td", { class: "nowrap" }, time(k.createdAt)),
              h("td", { class: "nowrap" }, k.lastUsedAt ? time(k.lastUsedAt) : "never"),
              h("td", {}, k.revoked ? badge("revoked", "failed") : badge("active")),
              h("td", {}, k.revoked ? h("span", { class: "muted" }, time(k.revokedAt)) : revokeButton(k)),
            ),
          ),
        "No API keys in the database (the dashboard may be signed in with LEADPUSH_ADMIN_TOKEN).",
      ),
    );
  }
  // A created key stays on screen through the auto-refresh: only the list is redrawn.
  return { el, refresh };
}
