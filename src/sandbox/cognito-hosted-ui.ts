import { createHash, randomUUID } from "node:crypto";
import type { FastifyReply } from "fastify";
import type { Simulator } from "./simulator.ts";
import { randomToken, safeEqual, signCognitoTokens, type RefreshGrant } from "./sim-jwt.ts";
import {
  applyControl,
  controlFlag,
  createIssuerCore,
  failWith,
  mediaType,
  nowIso,
  registerStateRoutes,
  SimError,
  takeFailure,
  userDirectory,
  type IssuerControl,
  type IssuerSettings,
  type IssuerSimulatorBase,
  type SimUser,
} from "./vendor-common.ts";

/**
 * Cognito hosted UI / OAuth2 endpoints (the Eminence API document): `GET /oauth2/authorize` (authorization
 * code, PKCE S256 required, exact redirect_uri), a login page when `autoLogin` is false, and
 * `POST /oauth2/token` (form-encoded, HTTP Basic client authentication; authorization_code and
 * refresh_token grants). Errors: `{"error": "invalid_grant"}` 400, `invalid_client` 401.
 */

export interface HostedUiClient {
  clientId: string;
  clientSecret?: string;
  /** Exact-match allow list (Cognito's callback URLs). */
  redirectUris: readonly string[];
  /** Default ["openid", "email", "profile"]. */
  allowedScopes?: readonly string[];
}
export type HostedUiUser = SimUser;
/** Also `region`, `userPoolId`, `tokenLifetimeSeconds` (expires_in, default 3600), `refreshTokenLifetimeSeconds`, `issuer`. */
export interface HostedUiSimulatorOptions extends IssuerSettings {
  prefix?: string;
  clients: readonly HostedUiClient[];
  users: readonly HostedUiUser[];
  /** Default true: /oauth2/authorize signs `autoLoginUsername` (default the first user) in at once. */
  autoLogin?: boolean;
  autoLoginUsername?: string;
  /** Default 300 (Cognito's 5 minutes). */
  codeLifetimeSeconds?: number;
  /** Default true. */
  requirePkce?: boolean;
  /** Also accept client_id + client_secret in the form body; default false (HTTP Basic only). */
  allowClientSecretPost?: boolean;
}
export interface HostedUiLogEntry {
  at: string;
  endpoint: "authorize" | "login" | "token";
  clientId?: string | undefined;
  grantType?: string | undefined;
  /** "code", "login_form", "tokens" or the error (with a reason). */
  outcome: string;
}
export interface HostedUiState {
  authorizeRequests: number;
  codesIssued: number;
  /** Every POST /oauth2/token received. */
  tokenRequests: number;
  authorizationCodeGrants: number;
  refreshGrants: number;
  errors: number;
  log: HostedUiLogEntry[];
}
/** failNext: `{error: "server_error" (default), status?: 500, count?: 1}` on /oauth2/token. `autoLogin` switches the login page. */
export interface HostedUiControl extends IssuerControl {
  autoLogin?: boolean;
}
export interface HostedUiSimulator extends Simulator, IssuerSimulatorBase {
  readonly state: HostedUiState;
  control(c: HostedUiControl): void;
}

/** PKCE S256: base64url(SHA-256(code_verifier)). */
export function pkceChallenge(verifier: string): string {
  return createHash("sha256").update(verifier).digest("base64url");
}

type Pending = Record<"clientId" | "redirectUri" | "scope", string> &
  Record<"state" | "challenge" | "nonce", string | undefined>;
const oauthFail = failWith;
type Endpoint = HostedUiLogEntry["endpoint"];
type Form = Record<string, string | undefined>;
const FORM = "application/x-www-form-urlencoded";
const HTML = "text/html; charset=utf-8";
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);

export function createHostedUiSimulator(opts: HostedUiSimulatorOptions): HostedUiSimulator {
  const core = createIssuerCore(opts, 500);
  const { issuer, refreshTokens } = core;
  const prefix = opts.prefix ?? "/hosted-ui";
  const clients = new Map(opts.clients.map((c) => [c.clientId, c]));
  const { users, find: findUser } = userDirectory(opts.users);
  const newState = (): HostedUiState => ({
    authorizeRequests: 0,
    codesIssued: 0,
    tokenRequests: 0,
    authorizationCodeGrants: 0,
    refreshGrants: 0,
    errors: 0,
    log: [],
  });
  let state = newState();
  let autoLogin = opts.autoLogin ?? true;
  const codes = new Map<string, Pending & { username: string; exp: number; authTime: number }>();
  const sessions = new Map<string, Pending>();
  const log = (endpoint: Endpoint, clientId: string | undefined, outcome: string, grantType?: string) => {
    state.log.push({ at: nowIso(), endpoint, clientId, grantType, outcome });
    if (outcome.startsWith("error")) state.errors++;
  };
  const redirect = (reply: FastifyReply, to: string, params: Record<string, string | undefined>) => {
    const url = new URL(to);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
    return reply.redirect(url.href, 302);
  };
  const page = (reply: FastifyReply, status: number, html: string) =>
    reply.code(status).type(HTML).send(html);
  const loginPage = (reply: FastifyReply, session: string, error = "") =>
    page(
      reply,
      200,
      `<!doctype html><title>Sign in</title><p class="error">${esc(error)}</p>
<form method="post" action="${esc(prefix)}/login"><input type="hidden" name="session" value="${esc(session)}">
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form>`,
    );

  const issueCode = (reply: FastifyReply, p: Pending, username: string) => {
    const code = randomUUID();
    const exp = Date.now() + (opts.codeLifetimeSeconds ?? 300) * 1000;
    codes.set(code, { ...p, username, exp, authTime: Math.floor(Date.now() / 1000) });
    state.codesIssued++;
    log("authorize", p.clientId, "code");
    return redirect(reply, p.redirectUri, { code, state: p.state });
  };

  const authenticateClient = (authorization: string | undefined, body: Form) => {
    let id = body["client_id"];
    let secret = opts.allowClientSecretPost ? body["client_secret"] : undefined;
    const basic = /^Basic\s+(\S+)$/i.exec(authorization ?? "")?.[1];
    if (basic !== undefined) {
      const [basicId, basicSecret] = Buffer.from(basic, "base64").toString("utf8").split(/:(.*)/s);
      if (basicSecret === undefined) oauthFail("invalid_client", "malformed Basic credentials", 401);
      if (id !== undefined && id !== basicId)
        oauthFail("invalid_client", "client_id differs from Basic", 401);
      [id, secret] = [decodeURIComponent(basicId ?? ""), decodeURIComponent(basicSecret ?? "")];
    }
    const client = clients.get(id ?? "") ?? oauthFail("invalid_client", `unknown client ${id}`, 401);
    const expected = client.clientSecret;
    if (expected !== undefined && (secret === undefined || !safeEqual(secret, expected))) {
      oauthFail("invalid_client", basic ? "bad client secret" : "Basic client authentication required", 401);
    }
    return client;
  };

  const issue = (grant: RefreshGrant, withRefresh: boolean) => {
    const user = findUser(grant.username) ?? oauthFail("invalid_grant", "user no longer exists");
    const withIdToken = grant.scope.split(" ").includes("openid");
    const t = signCognitoTokens(issuer, user, grant, core.lifetime, { withIdToken });
    return {
      ...(t.idToken !== undefined ? { id_token: t.idToken } : {}),
      access_token: t.accessToken,
      ...(withRefresh ? { refresh_token: refreshTokens.issue(grant, core.refreshLifetime) } : {}),
      expires_in: core.lifetime,
      token_type: "Bearer",
    };
  };

  const tokenGrant = (body: Form, client: HostedUiClient) => {
    const grantType = body["grant_type"];
    if (grantType === "authorization_code") {
      state.authorizationCodeGrants++;
      const code = str(body["code"]) ?? oauthFail("invalid_request", "code missing");
      const found = codes.get(code);
      codes.delete(code); // one presentation only, whatever its outcome
      if (!found || Date.now() >= found.exp)
        return oauthFail("invalid_grant", "unknown, used or expired code");
      if (found.clientId !== client.clientId) oauthFail("invalid_grant", "code of another client");
      if (body["redirect_uri"] !== found.redirectUri) oauthFail("invalid_grant", "redirect_uri mismatch");
      if (found.challenge !== undefined) {
        const verifier = str(body["code_verifier"]) ?? oauthFail("invalid_grant", "code_verifier missing");
        if (!safeEqual(pkceChallenge(verifier), found.challenge))
          oauthFail("invalid_grant", "code_verifier mismatch");
      }
      const { username, scope, authTime, nonce } = found;
      const originJti = randomUUID();
      return issue({ username, clientId: client.clientId, scope, authTime, originJti, nonce }, true);
    }
    if (grantType === "refresh_token") {
      state.refreshGrants++;
      const token = str(body["refresh_token"]) ?? oauthFail("invalid_request", "refresh_token missing");
      const found = refreshTokens.check(token);
      if (!found.ok) return oauthFail("invalid_grant", `refresh token ${found.reason}`);
      if (found.grant.clientId !== client.clientId)
        oauthFail("invalid_grant", "refresh token of another client");
      return issue(found.grant, false);
    }
    if (grantType === undefined) return oauthFail("invalid_request", "grant_type missing");
    return oauthFail("unsupported_grant_type", grantType);
  };

  const authorize = (q: Record<string, unknown>, reply: FastifyReply) => {
    const clientId = str(q["client_id"]);
    const client = clients.get(clientId ?? "");
    const redirectUri = str(q["redirect_uri"]);
    if (!client || redirectUri === undefined || !client.redirectUris.includes(redirectUri)) {
      log("authorize", clientId, "error:redirect_mismatch");
      return page(reply, 400, "<h1>An error was encountered with the requested page.</h1>redirect_mismatch");
    }
    const back = (error: string, reason: string) => {
      log("authorize", client.clientId, `error:${error}: ${reason}`);
      return redirect(reply, redirectUri, { error, error_description: reason, state: str(q["state"]) });
    };
    if (q["response_type"] !== "code") return back("unsupported_response_type", "response_type must be code");
    const allowed = client.allowedScopes ?? ["openid", "email", "profile"];
    const scopes = (str(q["scope"]) ?? allowed.join(" ")).split(" ").filter(Boolean);
    if (!scopes.every((s) => allowed.includes(s))) return back("invalid_scope", "scope not allowed");
    const challenge = str(q["code_challenge"]);
    if (challenge === undefined && (opts.requirePkce ?? true))
      return back("invalid_request", "code_challenge required");
    if (challenge !== undefined && q["code_challenge_method"] !== "S256") {
      return back("invalid_request", "code_challenge_method must be S256");
    }
    const [state_, scope, nonce, clientId_] = [
      str(q["state"]),
      scopes.join(" "),
      str(q["nonce"]),
      client.clientId,
    ];
    const pending: Pending = { clientId: clientId_, redirectUri, state: state_, scope, challenge, nonce };
    if (autoLogin) {
      const user = opts.autoLoginUsername !== undefined ? findUser(opts.autoLoginUsername) : users[0];
      return user ? issueCode(reply, pending, user.username) : back("server_error", "no user to log in");
    }
    const session = randomToken(24);
    sessions.set(session, pending);
    log("authorize", client.clientId, "login_form");
    return reply.redirect(`${prefix}/login?session=${session}`, 302);
  };

  const sim: HostedUiSimulator = {
    name: "hosted-ui",
    prefix,
    ...core.base(),
    get state() {
      return state;
    },
    control: (c) =>
      applyControl(
        c,
        core.handlers(sim.reset, { autoLogin: (v) => void (autoLogin = controlFlag("autoLogin", v)) }),
      ),
    reset() {
      state = newState();
      autoLogin = opts.autoLogin ?? true;
      codes.clear();
      sessions.clear();
      core.reset();
    },
    register(app) {
      app.addContentTypeParser(FORM, { parseAs: "string" }, (_req, body, done) =>
        done(null, Object.fromEntries(new URLSearchParams(body as string))),
      );
      const snapshot = () => ({ ...state, ...core.snapshot(), autoLogin, pendingCodes: codes.size });
      registerStateRoutes(app, snapshot, (b) => sim.control(b as HostedUiControl));
      app.get("/oauth2/authorize", async (req, reply) => {
        state.authorizeRequests++;
        return authorize(req.query as Record<string, unknown>, reply);
      });
      app.get("/login", async (req, reply) => {
        const session = str((req.query as Record<string, unknown>)["session"]) ?? "";
        return sessions.has(session) ? loginPage(reply, session) : page(reply, 400, "<p>Session expired</p>");
      });
      app.post("/login", async (req, reply) => {
        const body = (mediaType(req.headers["content-type"]) === FORM ? req.body : {}) as Form;
        const session = body["session"] ?? "";
        const pending = sessions.get(session);
        if (!pending) return page(reply, 400, "<p>Session expired</p>");
        const user = findUser(body["username"] ?? "");
        if (!user || !safeEqual(user.password, body["password"] ?? "")) {
          log("login", pending.clientId, "error:bad_credentials");
          return loginPage(reply, session, "Incorrect username or password.");
        }
        sessions.delete(session);
        return issueCode(reply, pending, user.username);
      });
      app.post("/oauth2/token", async (req, reply) => {
        state.tokenRequests++;
        const isForm = mediaType(req.headers["content-type"]) === FORM;
        const body = (isForm ? req.body : {}) as Form;
        const grantType = str(body["grant_type"]);
        reply.header("cache-control", "no-store").header("pragma", "no-cache");
        try {
          const { failure } = core;
          if (takeFailure(failure)) oauthFail(failure.error ?? "server_error", "failNext", failure.status);
          if (!isForm) oauthFail("invalid_request", `Content-Type must be ${FORM}`);
          const client = authenticateClient(req.headers.authorization, body);
          const result = tokenGrant(body, client);
          log("token", client.clientId, "tokens", grantType);
          return result;
        } catch (e) {
          if (!(e instanceof SimError)) throw e;
          log("token", str(body["client_id"]), `error:${e.code}: ${e.message}`, grantType);
          if (e.status === 401) reply.header("www-authenticate", 'Basic realm="cognito"');
          return reply.code(e.status).send({ error: e.code });
        }
      });
    },
  };
  return sim;
}
