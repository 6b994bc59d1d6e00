// The page's frame, shared by every view: the view on screen, the banner, error handling, the
// refresh loop and the login form's reappearance.
import { ApiError, key } from "./api.js";
import { fill } from "./dom.js";

export const REFRESH_MS = 5000;
export const $ = (id) => document.getElementById(id);
const main = $("main");

/** The view on screen: { el, refresh() }. */
let current;
export const currentView = () => current;
/** Puts `view` on screen and refreshes it. */
export function show(view) {
  current = view;
  main.replaceChildren(view.el);
  void refreshNow();
}

// ---------- messages ----------

let bannerKind = "";
let bannerTimer;
export function banner(message = "", kind = "error") {
  clearTimeout(bannerTimer);
  bannerKind = message ? kind : "";
  fill($("banner"), message);
  $("banner").className = `banner ${kind}`;
  $("banner").hidden = !message;
  if (message && kind === "info") bannerTimer = setTimeout(() => banner(), 5000);
}

export function handle(err) {
  if (!(err instanceof ApiError)) {
    console.error(err);
    return banner(`Something went wrong in the page: ${err}`);
  }
  if (err.status === 401)
    return showLogin(
      "This API key was refused (401 unauthorized). Check it, or create one with `leadpush keys create --scope admin`.",
    );
  if (err.status === 403)
    return showLogin(
      "This key is valid but lacks the admin scope (403 forbidden): the dashboard needs an admin key.",
    );
  if (err.status === 0) return banner(`${err.message} Retrying every ${REFRESH_MS / 1000} s.`);
  banner(`${err.message} (${err.code}, HTTP ${err.status})`);
}

/** Runs an action (retry, replay), reports its error, refreshes the view. */
export async function act(fn, done) {
  try {
    const result = await fn();
    if (done) banner(done(result), "info");
  } catch (err) {
    handle(err);
  }
  await refreshNow();
}

// ---------- refresh loop ----------

let running;
let again = false;
export function refreshNow() {
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    do {
      again = false;
      const view = current;
      if (!view) return;
      try {
        await view.refresh();
        if (bannerKind === "error") banner();
        $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
      } catch (err) {
        handle(err);
      }
    } while (again);
  })().finally(() => (running = undefined));
  return running;
}

setInterval(() => {
  if (current && $("auto").checked && !document.hidden) void refreshNow();
}, REFRESH_MS);

export function showLogin(message = "") {
  key.clear();
  current = undefined;
  main.replaceChildren();
  banner();
  $("nav").hidden = true;
  $("session").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("key").focus();
}
