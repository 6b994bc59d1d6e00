// Simulator of the Housing lead-push document's "Key Based Auth Handler" client. POST /token with header
// APPLICATION_ID and the JSON body {username, Password, Key} (exactly that case) returns
// {"UserAuthenticationResult": {"data": {"UserToken": …}}}; POST /leads needs APPLICATION_ID and USER_TOKEN.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  header,
  makeSimulator,
  safeEqual,
  SimCore,
  TokenStore,
  type ControllableSimulator,
} from "./sim-common.ts";

export interface KeyTokenSimulatorOptions {
  applicationId: string;
  username: string;
  password: string;
  key: string;
  /** How long a UserToken is accepted; default 1 h. */
  tokenTtlMs?: number;
  now?: () => number;
}

const FIELDS = ["username", "Password", "Key"] as const;

export function createKeyTokenSimulator(opts: KeyTokenSimulatorOptions): ControllableSimulator {
  const ttl = opts.tokenTtlMs ?? 60 * 60_000;
  const tokens = new TokenStore(opts.now);
  const hooks = { expireTokens: () => tokens.expireAll(), revokeTokens: () => tokens.revokeAll() };
  const core = new SimCore(hooks);

  /** Answers 400 / 401 unless APPLICATION_ID is right; true when it answered. */
  function badApplication(req: FastifyRequest, reply: FastifyReply): boolean {
    const appId = header(req, "APPLICATION_ID");
    if (appId === undefined) void core.reject(req, reply, 400, "header APPLICATION_ID required");
    else if (!safeEqual(appId, opts.applicationId))
      void core.reject(req, reply, 401, "unknown APPLICATION_ID");
    else return false;
    return true;
  }

  function routes(app: FastifyInstance): void {
    app.post("/token", async (req, reply) => {
      if (await core.tokenGate(reply)) return reply;
      if (badApplication(req, reply)) return reply;
      const body = core.jsonBody(req, reply);
      if (body === undefined) return reply;
      const extra = Object.keys(body).filter((k) => !(FIELDS as readonly string[]).includes(k));
      if (extra.length > 0)
        return core.reject(
          req,
          reply,
          400,
          `unexpected field(s) ${extra.join(", ")}; expected ${FIELDS.join(", ")}`,
        );
      for (const f of FIELDS) {
        if (typeof body[f] !== "string") return core.reject(req, reply, 400, `field ${f} (string) required`);
      }
      const ok =
        safeEqual(body["username"] as string, opts.username) &&
        safeEqual(body["Password"] as string, opts.password) &&
        safeEqual(body["Key"] as string, opts.key);
      if (!ok)
        return core.reject(req, reply, 401, "invalid credentials", {
          body: {
            UserAuthenticationResult: { success: false, message: "Invalid username, password or key" },
          },
        });
      const token = tokens.issue(ttl, undefined);
      core.state.tokensIssued++;
      return reply.code(200).send({ UserAuthenticationResult: { data: { UserToken: token } } });
    });

    app.post("/leads", async (req, reply) => {
      if (badApplication(req, reply)) return reply;
      const token = header(req, "USER_TOKEN");
      if (token === undefined) return core.reject(req, reply, 401, "header USER_TOKEN required");
      const found = tokens.lookup(token);
      if (found.status !== "ok") return core.reject(req, reply, 401, `USER_TOKEN ${found.status}`);
      const body = core.jsonBody(req, reply);
      if (body === undefined) return reply;
      if (await core.leadsGate(req, reply)) return reply;
      return core.accept(req, reply, body);
    });
  }

  return makeSimulator("key-token", "/key-token", core, hooks, routes);
}
