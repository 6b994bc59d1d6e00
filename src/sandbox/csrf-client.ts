// Simulator of the Housing lead-push document's "CSRF Request Handler" client: an SAP-Gateway-style service.
// GET /token with HTTP Basic and `x-csrf-token: Fetch` returns the token in the `x-csrf-token` response
// header plus the session cookies; POST /leads needs Basic, the token, the cookies, `cache-control: no-cache`
// and JSON.
import type { FastifyInstance } from "fastify";
import {
  header,
  makeSimulator,
  parseBasic,
  parseCookies,
  randomToken,
  safeEqual,
  SimCore,
  TokenStore,
  type ControllableSimulator,
} from "./sim-common.ts";

export interface CsrfSimulatorOptions {
  username: string;
  password: string;
  /** How long a fetched token (and its session) is accepted; default 30 min (SAP's session timeout). */
  tokenTtlMs?: number;
  /** Name of the session cookie; default `SAP_SESSIONID_LP1_100`. */
  sessionCookie?: string;
  /** A second cookie that must be sent back too (proves every Set-Cookie was forwarded); default `sap-usercontext`. */
  contextCookie?: string;
  now?: () => number;
}

const REALM = 'Basic realm="SAP NetWeaver Application Server [LP1/100]"';

export function createCsrfSimulator(opts: CsrfSimulatorOptions): ControllableSimulator {
  const ttl = opts.tokenTtlMs ?? 30 * 60_000;
  const sessionCookie = opts.sessionCookie ?? "SAP_SESSIONID_LP1_100";
  const contextCookie = opts.contextCookie ?? "sap-usercontext";
  const contextValue = "sap-client=100";
  /** session id → CSRF token of that session */
  const sessions = new TokenStore<string>(opts.now);
  const hooks = { expireTokens: () => sessions.expireAll(), revokeTokens: () => sessions.revokeAll() };
  const core = new SimCore(hooks);

  const basicOk = (value: string | undefined): boolean => {
    const c = parseBasic(value);
    return c !== undefined && safeEqual(c.username, opts.username) && safeEqual(c.password, opts.password);
  };
  const required = { "x-csrf-token": "Required" };

  function routes(app: FastifyInstance): void {
    app.get("/token", async (req, reply) => {
      if (await core.tokenGate(reply)) return reply;
      if (!basicOk(header(req, "authorization")))
        return core.reject(req, reply, 401, "basic auth required", {
          headers: { "www-authenticate": REALM },
          body: "Logon failed",
        });
      if ((header(req, "x-csrf-token") ?? "").toLowerCase() !== "fetch")
        return core.reject(req, reply, 400, "request header x-csrf-token: Fetch required");
      const token = randomToken(18);
      const sid = sessions.issue(ttl, token, randomToken(32));
      core.state.tokensIssued++;
      return reply
        .code(200)
        .header("x-csrf-token", token)
        .header("set-cookie", [
          `${sessionCookie}=${sid}; path=/; HttpOnly; SameSite=Lax`,
          `${contextCookie}=${contextValue}; path=/`,
        ])
        .type("application/json")
        .send({ d: { EntitySets: ["LeadSet"] } });
    });

    app.post("/leads", async (req, reply) => {
      if (!basicOk(header(req, "authorization")))
        return core.reject(req, reply, 401, "basic auth required", {
          headers: { "www-authenticate": REALM },
          body: "Logon failed",
        });
      const forbid = (reason: string) =>
        core.reject(req, reply, 403, reason, { headers: required, body: "CSRF token validation failed" });
      const cookies = parseCookies(header(req, "cookie"));
      const sid = cookies.get(sessionCookie);
      if (sid === undefined) return forbid(`cookie ${sessionCookie} missing`);
      if (cookies.get(contextCookie) !== contextValue) return forbid(`cookie ${contextCookie} missing`);
      const session = sessions.lookup(sid);
      if (session.status !== "ok") return forbid(`session ${session.status}`);
      const token = header(req, "x-csrf-token");
      if (token === undefined) return forbid("x-csrf-token missing");
      if (!safeEqual(token, session.data)) return forbid("x-csrf-token does not match the session");
      if ((header(req, "cache-control") ?? "").toLowerCase() !== "no-cache")
        return core.reject(req, reply, 400, "cache-control: no-cache required");
      const body = core.jsonBody(req, reply);
      if (body === undefined) return reply;
      if (await core.leadsGate(req, reply)) return reply;
      return core.accept(req, reply, body);
    });
  }

  return makeSimulator("csrf", "/csrf", core, hooks, routes);
}
