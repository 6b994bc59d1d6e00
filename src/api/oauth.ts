import type { FastifyInstance, FastifyReply } from "fastify";
import type { ApiErrorCode, AuthFailureCode } from "../domain/codes.ts";
import { AUTH_STRATEGIES, authStrategy } from "../auth/registry.ts";
import type { HttpClient } from "../http/http-client.ts";
import type { DestinationView } from "../destinations/service.ts";
import { AppError } from "../util/errors.ts";
import { createRedactor } from "../util/redact.ts";
import type { ApiDeps } from "./deps.ts";

/** Where providers send the browser back: register it with the vendor (Eminence's "redirect_url"). */
export function callbackUrl(publicUrl: string): string {
  return `${publicUrl}/v1/oauth/callback`;
}

/** Destinations connected in a browser (`oauth2_code`) show the redirect URL to register and where to connect them. */
export function withConnectInfo(view: DestinationView, publicUrl: string): DestinationView {
  const auth = view["auth"] as { type?: string } | undefined;
  if (auth?.type === undefined || !authStrategy(auth.type)?.connect) return view;
  return {
    ...view,
    redirectUrl: callbackUrl(publicUrl),
    connectUrl: `${publicUrl}/v1/destinations/${view.id}/connect`,
  };
}

/** Kept beside the flow's own pending values: a callback for another auth type is refused. */
const AUTH_TYPE_KEY = "authType";

/**
 * Starts a connect with the destination's auth strategy's connect flow: a one-time `state` bound
 * to the destination, kept server-side for the flow's lifetime (10 minutes for `oauth2_code`).
 */
async function begin(deps: ApiDeps, idOrName: string) {
  const destination = await deps.destinations.resolve(idOrName);
  const flow = destination.strategy.connect;
  if (!flow) {
    const types = Object.values(AUTH_STRATEGIES)
      .filter((s) => s.connect)
      .map((s) => s.type);
    throw new AppError(
      400,
      "connect_not_supported",
      `destination "${destination.name}" uses auth type "${destination.auth.type}"; only ${types.join(", ")} destinations are connected in the browser`,
    );
  }
  const redirectUri = callbackUrl(deps.config.publicUrl);
  const started = await flow.begin(destination.auth, redirectUri);
  const data = { ...started.pending, [AUTH_TYPE_KEY]: destination.auth.type };
  const now = deps.now();
  await deps.oauthStates.put(
    started.state,
    { destinationId: destination.id, data, redirectUri },
    now,
    flow.lifetimeMs,
  );
  return {
    destination: destination.name,
    authorizeUrl: started.url,
    redirectUrl: redirectUri,
    expiresAt: new Date(now + flow.lifetimeMs).toISOString(),
  };
}

/** `GET` (302 to the provider) and `POST` (the URL as JSON, for a UI or CLI): the `admin` scope. */
export function connectRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const tags = ["destinations"];
  app.get(
    "/v1/destinations/:id/connect",
    {
      schema: {
        tags,
        summary:
          "oauth2_code (any auth type with a connect flow): redirect (302) to the provider's authorize page to connect the destination",
      },
    },
    async (req, reply) => {
      const started = await begin(deps, (req.params as { id: string }).id);
      return reply.header("cache-control", "no-store").redirect(started.authorizeUrl, 302);
    },
  );
  app.post(
    "/v1/destinations/:id/connect",
    {
      schema: {
        tags,
        summary:
          "oauth2_code (any auth type with a connect flow): the provider's authorize URL to open in a browser ({authorizeUrl})",
      },
    },
    async (req, reply) => {
      const started = await begin(deps, (req.params as { id: string }).id);
      return reply.header("cache-control", "no-store").send(started);
    },
  );
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(reply: FastifyReply, status: number, title: string, body: string) {
  return reply
    .code(status)
    .header("cache-control", "no-store")
    .header("referrer-policy", "no-referrer")
    .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'")
    .type("text/html; charset=utf-8")
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>leadpush: ${esc(title)}</title>` +
        `<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}</style>` +
        `</head><body><h1>${esc(title)}</h1>${body}</body></html>`,
    );
}

const MESSAGES: Partial<Record<ConnectPageCode, string>> = {
  oauth_state_missing: "The link has no state parameter. Start again from leadpush's connect link.",
  oauth_state_unknown: "This sign-in was not started by this leadpush. Start again from the connect link.",
  oauth_state_used: "This sign-in link was already used. Start again from the connect link.",
  oauth_state_expired: "This sign-in took longer than 10 minutes. Start again from the connect link.",
  oauth_destination_missing: "The destination this sign-in was for no longer exists.",
  oauth_destination_changed: "The destination no longer uses the authentication this sign-in was for.",
};

/** The connect page shows its own codes, or the handshake's. */
type ConnectPageCode = Extract<ApiErrorCode, `oauth_${string}`> | AuthFailureCode;

function errorPage(
  reply: FastifyReply,
  status: number,
  code: ConnectPageCode,
  message = MESSAGES[code] ?? code,
) {
  return page(
    reply,
    status,
    "Could not connect",
    `<p>${esc(message)}</p><p>Error code: <code id="error-code">${esc(code)}</code></p>`,
  );
}

/**
 * `GET /v1/oauth/callback`: the browser coming back from the provider. No API key: the one-time
 * `state` is the proof. Exchanges the code, keeps the tokens sealed, marks the destination
 * `active` and sends its waiting deliveries at once.
 */
export function oauthCallbackRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    "/v1/oauth/callback",
    {
      schema: {
        tags: ["destinations"],
        summary: "OAuth redirect target (register it with the provider); answers an HTML page",
        security: [],
      },
    },
    async (req, reply) => {
      const params = new URL(req.url, "http://callback.invalid").searchParams;
      const state = params.get("state");
      if (!state) return errorPage(reply, 400, "oauth_state_missing");
      const taken = await deps.oauthStates.take(state, deps.now());
      if (!taken.ok) return errorPage(reply, 400, `oauth_state_${taken.reason}`);
      const { pending } = taken;
      const destination = await deps.destinations.resolve(pending.destinationId).catch(() => undefined);
      if (!destination) return errorPage(reply, 404, "oauth_destination_missing");
      const { [AUTH_TYPE_KEY]: authType, ...flowPending } = pending.data;
      const flow = destination.strategy.connect;
      if (!flow || (authType != null && authType !== destination.auth.type))
        return errorPage(reply, 409, "oauth_destination_changed");
      const redactor = createRedactor(destination.secretValues);
      const error = params.get("error");
      if (error) {
        const description = params.get("error_description");
        const said = `The provider answered ${error}${description ? `: ${description}` : ""}`;
        return errorPage(reply, 400, "oauth_provider_error", redactor.text(said.slice(0, 300)));
      }
      const http: HttpClient = { send: (r, o) => deps.transport.send(r, o.timeoutMs) };
      const result = await flow.complete(
        destination.auth,
        { http, timeoutMs: destination.timeoutMs, now: deps.now },
        { params, state, pending: flowPending, redirectUri: pending.redirectUri },
      );
      if (!result.ok) {
        deps.log.warn({ destination: destination.name, code: result.code }, "OAuth connect failed");
        return errorPage(reply, 502, result.code, redactor.text(result.message));
      }
      await deps.credentials.store(
        { id: destination.id, version: destination.authVersion, auth: destination.auth },
        destination.strategy,
        result.credential,
      );
      await deps.destinations.setState(destination.id, "active");
      // Deliveries that waited for the reconnect are due now.
      const now = deps.now();
      // (Those of a destination that was never connected waited as `pending`, already due.)
      const woken = await deps.store.wakeDestination(destination.id, now);
      deps.events.emit("work:available");
      await deps.store.notifyWork().catch(() => undefined);
      const waiting = woken.woken + woken.pending;
      deps.log.info({ destination: destination.name, waiting }, "destination connected");
      return page(
        reply,
        200,
        "Connected",
        `<p id="connected">Destination <b>${esc(destination.name)}</b> is connected. Leads are pushed with this account from now on.</p>` +
          (waiting > 0 ? `<p>${waiting} waiting deliveries are being sent now.</p>` : "") +
          `<p>You can close this page.</p>`,
      );
    },
  );
}
