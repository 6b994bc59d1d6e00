// Connect for destinations whose auth is connected in a browser (oauth2_code). A navigation cannot
// send the tab's API key, so the button asks for a one-time connect ticket (60 s) and opens its
// URL; the provider sends the browser back to #/destinations/ID?connected=1, signed in still
// (the key is in this tab's sessionStorage).
import { api } from "./api.js";
import { h } from "./dom.js";
import { banner, handle } from "./page.js";

/** True for a destination (API or stats shape) connected in a browser. */
export const connectable = (d) =>
  Boolean(d.connectUrl) || d.authType === "oauth2_code" || d.auth?.type === "oauth2_code";

/**
 * The Connect button of a destination ({ id, name, state, and connectUrl or authType }), or null
 * when its auth is not connected in a browser. "Reconnect" once it is connected.
 */
export function connectButton(d) {
  if (!connectable(d)) return null;
  const label = d.state === "needs_reconnect" ? "Connect" : "Reconnect";
  return h(
    "button",
    {
      type: "button",
      class: d.state === "needs_reconnect" ? "small" : "small secondary",
      "data-connect": d.name,
      title: `Sign in at the provider to connect ${d.name}`,
      onclick: async (e) => {
        e.target.disabled = true;
        try {
          const { url } = await api("POST", `/v1/destinations/${encodeURIComponent(d.id)}/connect-ticket`);
          const target = new URL(url);
          // Same origin as the dashboard (the ticket is good wherever leadpush is reached).
          location.assign(target.pathname + target.search);
        } catch (err) {
          e.target.disabled = false;
          handle(err);
        }
      },
    },
    label,
  );
}

/** After the provider sent the browser back (?connected=1): say so. */
export function connectedNotice(params, name) {
  if (params.get("connected") === "1")
    banner(`Connected${name ? `: ${name}` : ""}. Its waiting leads are being sent.`, "info");
}
