// Simulator of the Housing lead-push document's "OAuth2 Request Handler" client. POST /token takes the
// document's JSON body {username, password, client_id, client_secret, grant_type} or a standard RFC 6749 form
// body (client auth in the body or HTTP Basic); grants password, client_credentials, refresh_token. Errors
// per RFC 6749 §5.2. POST /leads needs `Authorization: Bearer <access token>` (RFC 6750) and JSON.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  header,
  isObject,
  makeSimulator,
  mediaType,
  parseBasic,
  safeEqual,
  SimCore,
  TokenStore,
  type ControllableSimulator,
} from "./sim-common.ts";

export type OAuth2GrantType = "password" | "client_credentials" | "refresh_token";

export interface OAuth2SimulatorOptions {
  clientId: string;
  clientSecret: string;
  /** Resource owner for the `password` grant. */
  username?: string;
  password?: string;
  /** `expires_in` of access tokens, seconds; default 3600. */
  expiresIn?: number;
  /** Issue refresh tokens; default true. */
  refreshTokens?: boolean;
  /** A refresh returns a new refresh token and invalidates the old one; default false. */
  rotateRefreshTokens?: boolean;
  /** Accept only this token request body format; default both. */
  requireFormat?: "json" | "form";
  /** Grants accepted; default all three. */
  grantTypes?: OAuth2GrantType[];
  now?: () => number;
}

const MEDIA = { json: "application/json", form: "application/x-www-form-urlencoded" } as const;

interface Grant {
  clientId: string;
  scope: string | undefined;
}

export function createOAuth2Simulator(opts: OAuth2SimulatorOptions): ControllableSimulator {
  const expiresIn = opts.expiresIn ?? 3600;
  const grants = opts.grantTypes ?? ["password", "client_credentials", "refresh_token"];
  const access = new TokenStore<Grant>(opts.now);
  const refresh = new TokenStore<Grant>(opts.now);
  const hooks = {
    expireTokens: () => access.expireAll(),
    revokeTokens: () => {
      access.revokeAll();
      refresh.revokeAll();
    },
  };
  const core = new SimCore(hooks);

  const oauthError = (
    req: FastifyRequest,
    reply: FastifyReply,
    status: number,
    error: string,
    desc: string,
  ) =>
    core.reject(req, reply, status, `${error}: ${desc}`, {
      body: { error, error_description: desc },
      headers: {
        "cache-control": "no-store",
        ...(status === 401 ? { "www-authenticate": 'Basic realm="oauth2"' } : {}),
      },
    });

  function routes(app: FastifyInstance): void {
    app.post("/token", async (req, reply) => {
      if (await core.tokenGate(reply)) return reply;
      const type = mediaType(req);
      const format =
        type === "application/json" ? "json" : type === "application/x-www-form-urlencoded" ? "form" : "";
      if (format === "" || (opts.requireFormat !== undefined && format !== opts.requireFormat)) {
        const want =
          opts.requireFormat === undefined ? `${MEDIA.json} or ${MEDIA.form}` : MEDIA[opts.requireFormat];
        return core.reject(req, reply, 415, `content-type must be ${want}`, {
          body: { error: "invalid_request", error_description: `content-type must be ${want}` },
        });
      }
      if (!isObject(req.body))
        return oauthError(req, reply, 400, "invalid_request", "body must be an object");
      const p: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.body)) {
        if (typeof v !== "string")
          return oauthError(req, reply, 400, "invalid_request", `parameter ${k} must be a single string`);
        p[k] = v;
      }

      // Client authentication (RFC 6749 §2.3.1): HTTP Basic or body, never both.
      const authz = header(req, "authorization");
      const basic = authz === undefined ? undefined : parseBasic(authz, true);
      if (authz !== undefined && basic === undefined)
        return oauthError(req, reply, 401, "invalid_client", "malformed Authorization header");
      if (basic !== undefined && p["client_secret"] !== undefined)
        return oauthError(req, reply, 400, "invalid_request", "more than one client authentication method");
      if (basic !== undefined && p["client_id"] !== undefined && p["client_id"] !== basic.username)
        return oauthError(
          req,
          reply,
          401,
          "invalid_client",
          "client_id does not match the Basic credentials",
        );
      const clientId = basic?.username ?? p["client_id"];
      const clientSecret = basic?.password ?? p["client_secret"];
      if (clientId === undefined || clientSecret === undefined)
        return oauthError(req, reply, 401, "invalid_client", "client authentication required");
      if (!safeEqual(clientId, opts.clientId) || !safeEqual(clientSecret, opts.clientSecret))
        return oauthError(req, reply, 401, "invalid_client", "client authentication failed");

      const grantType = p["grant_type"];
      if (grantType === undefined)
        return oauthError(req, reply, 400, "invalid_request", "grant_type required");
      if (!(grants as string[]).includes(grantType))
        return oauthError(req, reply, 400, "unsupported_grant_type", `grant_type ${grantType} not supported`);
      let scope = p["scope"];
      // RFC 6749 §4.4.3: no refresh token for client_credentials.
      let withRefresh = opts.refreshTokens !== false && grantType === "password";
      if (grantType === "password") {
        const { username, password } = p;
        if (username === undefined || password === undefined)
          return oauthError(req, reply, 400, "invalid_request", "username and password required");
        const ok =
          opts.username !== undefined &&
          opts.password !== undefined &&
          safeEqual(username, opts.username) &&
          safeEqual(password, opts.password);
        if (!ok) return oauthError(req, reply, 400, "invalid_grant", "invalid resource owner credentials");
      } else if (grantType === "refresh_token") {
        const rt = p["refresh_token"];
        if (rt === undefined) return oauthError(req, reply, 400, "invalid_request", "refresh_token required");
        const found = refresh.lookup(rt);
        if (found.status !== "ok" || found.data.clientId !== clientId)
          return oauthError(req, reply, 400, "invalid_grant", "refresh token invalid, expired or revoked");
        scope = found.data.scope;
        // Without rotation the refresh token stays valid and is not sent again.
        if (opts.rotateRefreshTokens === true) {
          refresh.delete(rt);
          withRefresh = true;
        }
      }
      core.state.tokensIssued++;
      return reply
        .code(200)
        .headers({ "cache-control": "no-store", pragma: "no-cache" })
        .send(issue(clientId, scope, withRefresh));
    });

    app.post("/leads", async (req, reply) => {
      const m = /^bearer\s+(\S+)\s*$/i.exec(header(req, "authorization") ?? "");
      if (m?.[1] === undefined)
        return core.reject(req, reply, 401, "bearer token required", {
          headers: { "www-authenticate": 'Bearer realm="leads"' },
        });
      const found = access.lookup(m[1]);
      if (found.status !== "ok")
        return core.reject(req, reply, 401, `access token ${found.status}`, {
          headers: { "www-authenticate": `Bearer realm="leads", error="invalid_token"` },
          body: { error: "invalid_token", error_description: `access token ${found.status}` },
        });
      const body = core.jsonBody(req, reply);
      if (body === undefined) return reply;
      if (await core.leadsGate(req, reply)) return reply;
      return core.accept(req, reply, body);
    });
  }

  function issue(clientId: string, scope: string | undefined, withRefresh: boolean): Record<string, unknown> {
    const grant = { clientId, scope };
    const out: Record<string, unknown> = {
      access_token: access.issue(expiresIn * 1000, grant),
      token_type: "Bearer",
      expires_in: expiresIn,
    };
    if (withRefresh) out["refresh_token"] = refresh.issue(Infinity, grant);
    if (scope !== undefined) out["scope"] = scope;
    return out;
  }

  return makeSimulator("oauth2", "/oauth2", core, hooks, routes);
}
