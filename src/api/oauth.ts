import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { ApiErrorCode, AuthFailureCode } from "../domain/codes.ts";
import { AUTH_STRATEGIES, authStrategy } from "../auth/registry.ts";
import type { HttpClient } from "../http/http-client.ts";
import type { DestinationView } from "../destinations/service.ts";
import { AppError } from "../util/errors.ts";
import { createRedactor } from "../util/redact.ts";
import type { ApiDeps } from "./deps.ts";
import { json, other } from "./openapi.ts";

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
async function begin(deps: ApiDeps, idOrName: string, returnTo?: string) {
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
  const data = {
    ...started.pending,
    [AUTH_TYPE_KEY]: destination.auth.type,
    ...(returnTo ? { [RETURN_KEY]: returnTo } : {}),
  };
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

/** How long a connect ticket is good for: the click on Connect, then the browser's first request. */
const TICKET_MS = 60_000;
/** Marks a connect ticket's row (tickets share the one-time table with OAuth states). */
const TICKET_KIND = "connect_ticket";
const KIND_KEY = "kind";
/** Where the callback sends the browser when the connect started from the dashboard. */
const RETURN_KEY = "returnTo";

/** The dashboard's page of a destination (where a connect started there comes back to). */
export const dashboardDestination = (id: string) => `/dashboard#/destinations/${encodeURIComponent(id)}`;

const startedSchema = z.object({
  destination: z.string(),
  authorizeUrl: z.string(),
  redirectUrl: z.string(),
  expiresAt: z.string(),
});

/** `POST` connect (the URL as JSON) and `POST` connect-ticket: the `admin` scope. */
export function connectRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const tags = ["destinations"];
  app.post(
    "/v1/destinations/:id/connect",
    {
      schema: {
        tags,
        summary:
          "oauth2_code (any auth type with a connect flow): the provider's authorize URL to open in a browser ({authorizeUrl})",
        response: {
          200: json("Open authorizeUrl in a browser within 10 minutes", startedSchema, {
            destination: "eminence",
            authorizeUrl: "https://auth.example.com/oauth2/authorize?response_type=code&client_id=…&state=…",
            redirectUrl: "https://leadpush.example.com/v1/oauth/callback",
            expiresAt: "2026-05-04T09:40:00.000Z",
          }),
        },
      },
    },
    async (req, reply) => {
      const started = await begin(deps, (req.params as { id: string }).id);
      return reply.header("cache-control", "no-store").send(started);
    },
  );
  app.post(
    "/v1/destinations/:id/connect-ticket",
    {
      schema: {
        tags,
        summary: "A one-time connect link for a browser that has no API key to send (the dashboard)",
        description:
          "The dashboard keeps its API key in the tab and a browser navigation cannot send it: it asks for " +
          "a ticket and opens `url`. The ticket is good once, for 60 seconds, for this destination only; " +
          "after the provider the browser comes back to the dashboard's page of the destination.",
        response: {
          201: json("Open url in the browser now", z.object({ url: z.string(), expiresAt: z.string() }), {
            url: "https://leadpush.example.com/v1/destinations/01JTWZZ3C8AA/connect?ticket=ct_…",
            expiresAt: "2026-05-04T09:31:00.000Z",
          }),
        },
      },
    },
    async (req, reply) => {
      const destination = await deps.destinations.resolve((req.params as { id: string }).id);
      if (!destination.strategy.connect) await begin(deps, destination.id); // its 400, with the types that connect
      const ticket = `ct_${randomBytes(24).toString("base64url")}`;
      const now = deps.now();
      await deps.oauthStates.put(
        ticket,
        { destinationId: destination.id, data: { [KIND_KEY]: TICKET_KIND }, redirectUri: "" },
        now,
        TICKET_MS,
      );
      const url = `${deps.config.publicUrl}/v1/destinations/${destination.id}/connect?ticket=${ticket}`;
      return reply
        .code(201)
        .header("cache-control", "no-store")
        .send({ url, expiresAt: new Date(now + TICKET_MS).toISOString() });
    },
  );
}

/**
 * `GET /v1/destinations/:id/connect`: a browser is sent on to the provider (302). It proves who it
 * is with a connect ticket in the URL (the dashboard) or an admin API key (`requireAdmin`); a
 * browser with neither gets a page saying what to do, not 401 JSON.
 */
export function connectPageRoutes(
  app: FastifyInstance,
  deps: ApiDeps,
  requireAdmin: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
): void {
  app.get(
    "/v1/destinations/:id/connect",
    {
      schema: {
        tags: ["destinations"],
        summary:
          "oauth2_code (any auth type with a connect flow): redirect (302) to the provider's authorize page to connect the destination",
        description:
          "Send an admin API key, or open the one-time `url` of POST /v1/destinations/{id}/connect-ticket " +
          "(what the dashboard's Connect button does). A browser with neither gets an HTML page (401) " +
          "that says to sign in to the dashboard and press Connect.",
        querystring: { type: "object", properties: { ticket: { type: "string" } } },
        security: [{ apiKey: [] }, {}],
        response: {
          302: { description: "To the provider's authorize page", type: "null" },
          401: other(
            "No API key and no (valid) ticket: a page that says what to do (JSON for a client that does not take HTML)",
            "text/html",
            "<h1>Connect from the dashboard</h1>…",
          ),
        },
      },
    },
    async (req, reply) => {
      const { id } = req.params as { id: string };
      const { ticket } = req.query as { ticket?: string };
      let returnTo: string | undefined;
      if (typeof ticket === "string" && ticket !== "") {
        const taken = await deps.oauthStates.take(ticket, deps.now());
        const destination = await deps.destinations.resolve(id).catch(() => undefined);
        if (
          !taken.ok ||
          taken.pending.data[KIND_KEY] !== TICKET_KIND ||
          taken.pending.destinationId !== destination?.id
        )
          return connectHelp(reply, id, "connect_ticket_invalid");
        returnTo = dashboardDestination(destination.id);
      } else if (req.headers.authorization === undefined && wantsHtml(req)) {
        return connectHelp(reply, id);
      } else {
        await requireAdmin(req, reply);
        if (reply.sent) return reply;
      }
      const started = await begin(deps, id, returnTo);
      return reply.header("cache-control", "no-store").redirect(started.authorizeUrl, 302);
    },
  );
}

const wantsHtml = (req: FastifyRequest) => (req.headers.accept ?? "").includes("text/html");

/** The page a browser gets on the connect URL without a key or with a bad ticket. */
function connectHelp(reply: FastifyReply, id: string, code?: "connect_ticket_invalid") {
  const href = esc(dashboardDestination(id));
  return page(
    reply,
    401,
    "Connect from the dashboard",
    (code
      ? `<p>This connect link was already used or has expired (links are good once, for a minute).</p>`
      : `<p>Connecting a destination needs an admin of this leadpush, and this browser did not say who it is.</p>`) +
      `<p><a id="dashboard-link" href="${href}">Sign in to the leadpush dashboard</a>, open this destination and press <b>Connect</b>.</p>` +
      (code ? `<p>Error code: <code id="error-code">${code}</code></p>` : ""),
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
    `<p>${esc(message)}</p><p>Error code: <code id="error-code">${esc(code)}</code></p>` +
      `<p><a href="/dashboard">Back to the leadpush dashboard</a></p>`,
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
        response: {
          200: other("Connected (a connect started with an API key)", "text/html", "<h1>Connected</h1>…"),
          303: { description: "Connected from the dashboard: back to the destination's page", type: "null" },
          400: other(
            "The sign-in could not be used (the page says why, with a code)",
            "text/html",
            "<h1>Could not connect</h1>…",
          ),
          502: other(
            "The provider refused the code (the page says why)",
            "text/html",
            "<h1>Could not connect</h1>…",
          ),
        },
      },
    },
    async (req, reply) => {
      const params = new URL(req.url, "http://callback.invalid").searchParams;
      const state = params.get("state");
      if (!state) return errorPage(reply, 400, "oauth_state_missing");
      const taken = await deps.oauthStates.take(state, deps.now());
      if (!taken.ok) return errorPage(reply, 400, `oauth_state_${taken.reason}`);
      const { pending } = taken;
      // A connect ticket is no OAuth state (both are kept in one table).
      if (pending.data[KIND_KEY] === TICKET_KIND) return errorPage(reply, 400, "oauth_state_unknown");
      const destination = await deps.destinations.resolve(pending.destinationId).catch(() => undefined);
      if (!destination) return errorPage(reply, 404, "oauth_destination_missing");
      const { [AUTH_TYPE_KEY]: authType, [RETURN_KEY]: returnTo, ...flowPending } = pending.data;
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
      // Started from the dashboard: back to the destination's page there, which shows it active.
      if (returnTo) return reply.header("cache-control", "no-store").redirect(`${returnTo}?connected=1`, 303);
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
