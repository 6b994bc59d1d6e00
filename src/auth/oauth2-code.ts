import * as oauth from "oauth4webapi";
import { z } from "zod";
import { type HttpFailure, newRequest } from "../http/http-client.ts";
import { applyBearer, bearerFields, expiresAtFrom, jwtHeader, jwtPayload } from "./bearer.ts";
import {
  type AuthStrategy,
  configuredLifetimeMs,
  type ConnectContext,
  type ConnectFlow,
  type Credential,
  type ObtainResult,
} from "./strategy.ts";
import { noAnswer } from "./token-response.ts";
import type { AuthCode } from "../domain/codes.ts";

const schema = z
  .object({
    type: z.literal("oauth2_code"),
    /** The provider's authorization endpoint (Cognito hosted UI: https://<domain>/oauth2/authorize). */
    authorizeUrl: z.url({ protocol: /^https?$/ }),
    /** The token endpoint (Cognito: https://<domain>/oauth2/token). */
    tokenUrl: z.url({ protocol: /^https?$/ }),
    clientId: z.string().min(1),
    /** Sent as HTTP Basic (what Cognito requires of clients with a secret). Absent: a public client. */
    clientSecret: z.string().min(1).optional(),
    /** Space-separated scopes asked for when connecting. */
    scope: z.string().min(1).default("openid email"),
    /** The token pushes carry: `id_token` (the Eminence API document) or e.g. `access_token`. */
    tokenField: z.string().min(1).default("id_token"),
    /**
     * The OIDC issuer the ID token's `iss` must equal (Cognito:
     * https://cognito-idp.<region>.amazonaws.com/<userPoolId>). Absent: the `iss` the authorization
     * response names (RFC 9207), else the one of the ID token received from the token endpoint.
     */
    issuer: z.url().optional(),
    ...bearerFields,
  })
  .strict();

export type OAuth2CodeConfig = z.infer<typeof schema>;

/** How long a `state` (and its PKCE verifier) waits for the browser to come back. */
export const STATE_LIFETIME_MS = 10 * 60 * 1000;

/** Everything one authorization needs to remember until the callback (kept server-side). */
export interface PendingAuthorization {
  url: string;
  state: string;
  codeVerifier: string;
  nonce: string | undefined;
}

export type ExchangeContext = ConnectContext;

/** The authorize URL of a new connect: authorization code with PKCE S256, a fresh `state` and `nonce`. */
export async function startAuthorization(
  config: OAuth2CodeConfig,
  redirectUri: string,
): Promise<PendingAuthorization> {
  const state = oauth.generateRandomState();
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const openid = config.scope.split(/\s+/).includes("openid");
  const nonce = openid ? oauth.generateRandomNonce() : undefined;
  const url = new URL(config.authorizeUrl);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", config.clientId);
  url.searchParams.set("redirect_uri", redirectUri);
  url.searchParams.set("scope", config.scope);
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set("code_challenge_method", "S256");
  if (nonce !== undefined) url.searchParams.set("nonce", nonce);
  return { url: url.href, state, codeVerifier, nonce };
}

class TransportError extends Error {
  readonly failure: HttpFailure;
  constructor(failure: HttpFailure) {
    super(failure.message);
    this.failure = failure;
  }
}

/** The provider, as oauth4webapi sees it; requests go through leadpush's recording HTTP client. */
function session(config: OAuth2CodeConfig, ctx: ExchangeContext, step: string) {
  const as: { -readonly [K in keyof oauth.AuthorizationServer]: oauth.AuthorizationServer[K] } = {
    issuer: config.issuer ?? new URL(config.tokenUrl).origin,
    authorization_endpoint: config.authorizeUrl,
    token_endpoint: config.tokenUrl,
  };
  const client: oauth.Client = { client_id: config.clientId };
  const clientAuth =
    config.clientSecret !== undefined ? oauth.ClientSecretBasic(config.clientSecret) : oauth.None();
  const status = { last: 0 };
  const options = {
    [oauth.allowInsecureRequests]: config.tokenUrl.startsWith("http:"),
    [oauth.customFetch]: async (url: string, init: oauth.CustomFetchOptions<string, unknown>) => {
      const req = newRequest(init.method, url);
      for (const [k, v] of Object.entries(init.headers)) req.headers[k.toLowerCase()] = v;
      if (init.body !== undefined && init.body !== null) {
        req.contentType = "raw";
        req.body = String(init.body as URLSearchParams);
      }
      const result = await ctx.http.send(req, { timeoutMs: ctx.timeoutMs, step });
      if (!result.ok) throw new TransportError(result.error);
      const res = result.response;
      status.last = res.status;
      const empty = res.status === 204 || res.status === 304;
      return new Response(empty ? null : res.text, { status: res.status, headers: res.headers });
    },
  };
  /** Without a configured issuer, trust the ID token's own `iss` and `alg` (it came over TLS from the token endpoint). */
  const learnIssuer = async (response: Response) => {
    const body = (await response
      .clone()
      .json()
      .catch(() => undefined)) as Record<string, unknown> | undefined;
    const idToken = typeof body?.["id_token"] === "string" ? body["id_token"] : undefined;
    if (idToken === undefined) return;
    const iss = jwtPayload(idToken)?.["iss"];
    if (
      config.issuer === undefined &&
      typeof iss === "string" &&
      !as.authorization_response_iss_parameter_supported
    )
      as.issuer = iss;
    const header = jwtHeader(idToken);
    if (typeof header?.["alg"] === "string") client.id_token_signed_response_alg = header["alg"];
  };
  return { as, client, clientAuth, options, status, learnIssuer };
}

type Failure = Extract<ObtainResult, { ok: false }>;

/** What a failed token request means; `refused` is the code for an answer that refuses (4xx). */
function failure(err: unknown, lastStatus: number, refused: AuthCode, what: string): Failure {
  if (err instanceof TransportError) return noAnswer("token endpoint", err.failure);
  const transient = lastStatus >= 500 || lastStatus === 429 || lastStatus === 408;
  if (err instanceof oauth.ResponseBodyError) {
    const described = err.error_description ? `: ${err.error_description.slice(0, 200)}` : "";
    const message = `the token endpoint answered ${err.status} ${err.error}${described}`;
    return transient
      ? { ok: false, code: "auth_unreachable", message }
      : { ok: false, code: refused, message: `${what}: ${message}` };
  }
  if (transient)
    return { ok: false, code: "auth_unreachable", message: `the token endpoint answered ${lastStatus}` };
  const message = err instanceof Error ? err.message : String(err);
  if (lastStatus >= 400)
    return { ok: false, code: refused, message: `${what}: the token endpoint answered ${lastStatus}` };
  return {
    ok: false,
    code: "auth_bad_response",
    message: `the token endpoint's answer is not usable: ${message}`,
  };
}

function toCredential(
  config: OAuth2CodeConfig,
  answer: oauth.TokenEndpointResponse,
  now: number,
  previousRefresh: string | undefined,
): ObtainResult {
  const token = answer[config.tokenField];
  if (typeof token !== "string" || token === "") {
    return {
      ok: false,
      code: "auth_bad_response",
      message: `the token endpoint answered without ${config.tokenField} (is "openid" in scope?)`,
    };
  }
  // Every token is named so that the runtime's redactor hides all of them wherever they appear.
  const credential: Credential = { values: { token } };
  for (const [name, key] of [
    ["idToken", "id_token"],
    ["accessToken", "access_token"],
  ] as const) {
    const v = answer[key];
    if (typeof v === "string" && v && v !== token) credential.values[name] = v;
  }
  const refresh = answer.refresh_token ?? previousRefresh;
  if (refresh) credential.refresh = refresh;
  const expiresAt = expiresAtFrom(answer.expires_in, now);
  if (expiresAt !== undefined) credential.expiresAt = expiresAt;
  return { ok: true, credential };
}

/**
 * The callback's half of the flow: checks the authorization response (`state`, `iss`, `error`),
 * exchanges the code with the PKCE verifier (client authentication by HTTP Basic), validates the
 * ID token's claims (audience, expiry, nonce) and returns the credential to keep.
 * Refusals are `oauth_exchange_failed`.
 */
export async function exchangeCode(
  config: OAuth2CodeConfig,
  ctx: ExchangeContext,
  callback: { params: URLSearchParams; pending: Omit<PendingAuthorization, "url">; redirectUri: string },
): Promise<ObtainResult> {
  const s = session(config, ctx, "auth:code");
  const iss = callback.params.get("iss");
  if (iss && config.issuer === undefined) {
    s.as.issuer = iss;
    s.as.authorization_response_iss_parameter_supported = true;
  }
  try {
    const params = oauth.validateAuthResponse(s.as, s.client, callback.params, callback.pending.state);
    const response = await oauth.authorizationCodeGrantRequest(
      s.as,
      s.client,
      s.clientAuth,
      params,
      callback.redirectUri,
      callback.pending.codeVerifier,
      s.options,
    );
    await s.learnIssuer(response);
    const answer = await oauth.processAuthorizationCodeResponse(s.as, s.client, response, {
      expectedNonce: callback.pending.nonce ?? oauth.expectNoNonce,
    });
    return toCredential(config, answer, ctx.now(), undefined);
  } catch (err) {
    if (err instanceof oauth.AuthorizationResponseError) {
      return { ok: false, code: "oauth_provider_error", message: `the provider answered ${err.error}` };
    }
    return failure(err, s.status.last, "oauth_exchange_failed", "the code exchange was refused");
  }
}

/** The browser half: what `api/oauth.ts` calls for `/connect` and `/v1/oauth/callback`. */
const connectFlow: ConnectFlow<OAuth2CodeConfig> = {
  lifetimeMs: STATE_LIFETIME_MS,
  async begin(config, redirectUri) {
    const started = await startAuthorization(config, redirectUri);
    const pending = { codeVerifier: started.codeVerifier, nonce: started.nonce ?? null };
    return { url: started.url, state: started.state, pending };
  },
  complete(config, ctx, { params, state, pending, redirectUri }) {
    const codeVerifier = pending["codeVerifier"] ?? "";
    const nonce = pending["nonce"] ?? undefined;
    return exchangeCode(config, ctx, { params, pending: { state, codeVerifier, nonce }, redirectUri });
  },
};

/**
 * The Eminence API document: OAuth 2.0 authorization code with PKCE against the Cognito hosted UI (or any
 * provider). An admin connects once in the browser (`/v1/destinations/:id/connect`); the runtime
 * keeps the tokens sealed and calls `obtain` before expiry to refresh them. Without a refresh
 * token, or when the provider refuses it, the destination needs a person: `needs_reconnect`.
 */
export const oauth2CodeAuth: AuthStrategy<OAuth2CodeConfig> = {
  type: "oauth2_code",
  schema,
  secretFields: ["clientSecret"],
  lifetimeMs: configuredLifetimeMs,
  connect: connectFlow,
  async obtain(config, ctx) {
    const refreshToken = ctx.previous?.refresh;
    if (refreshToken === undefined) {
      return {
        ok: false,
        code: "needs_reconnect",
        message: "not connected: an admin must connect this destination (GET /v1/destinations/:id/connect)",
        needsReconnect: true,
      };
    }
    const s = session(config, ctx, "auth:refresh");
    try {
      const response = await oauth.refreshTokenGrantRequest(
        s.as,
        s.client,
        s.clientAuth,
        refreshToken,
        s.options,
      );
      await s.learnIssuer(response);
      const answer = await oauth.processRefreshTokenResponse(s.as, s.client, response);
      return toCredential(config, answer, ctx.now(), refreshToken);
    } catch (err) {
      const f = failure(err, s.status.last, "needs_reconnect", "the refresh token was refused; reconnect");
      return f.code === "needs_reconnect" ? { ...f, needsReconnect: true } : f;
    }
  },
  apply: applyBearer,
};
