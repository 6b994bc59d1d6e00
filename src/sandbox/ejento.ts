import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { bodyProblem, missing, P, type Problem, publicUser, userFields, UUID_RE } from "./ejento-fastapi.ts";
import type {
  EjentoControl,
  EjentoResponse,
  EjentoSimulator,
  EjentoSimulators,
  EjentoState,
  EjentoUser,
} from "./ejento-state.ts";
import type { JsonBody } from "./vendor-async-common.ts";
import {
  TokenStore,
  bearerToken,
  ctl,
  hash32,
  installRawBodyParser,
  isoNow,
  mediaType,
  mountStateAndControl,
  pick,
  rawBody,
  readJsonObject,
} from "./vendor-async-common.ts";

/**
 * Ejento (the Ejento API document): an auth app shaped like the FastAPI full-stack template (signup, form
 * login, users API) plus Ejento's own refresh call, and the Ejento API (chat threads, agent responses).
 * Login returns two tokens: `access_token` (auth app: refresh, users API) and
 * `ejento_access_token` (Ejento API only). Each is rejected where the other belongs.
 */

export interface EjentoUserSeed {
  email: string;
  password: string;
  full_name?: string | null;
  is_active?: boolean;
  is_superuser?: boolean;
}
export interface EjentoSimulatorOptions {
  authPrefix?: string; // default "/ejento-auth"
  apiPrefix?: string; // default "/ejento"
  /** Ejento token lifetime, default 2 days (the Ejento API document); `expires_in` of login and refresh. */
  tokenLifetimeSeconds?: number;
  /** Auth-app token lifetime, default 8 days (the FastAPI template's ACCESS_TOKEN_EXPIRE_MINUTES). */
  authTokenLifetimeSeconds?: number;
  /** Known agent ids; empty (default) means every agent id exists. */
  agents?: Array<string | number>;
  /** Users present from the start (and after reset). */
  users?: EjentoUserSeed[];
  /** This email becomes a superuser on signup; otherwise the first registered user does. */
  superuserEmail?: string;
  now?: () => number;
}

/** A deterministic "agent answer": a short qualification summary naming the lead when found. */
export function ejentoAnswer(message: string): string {
  const field = (re: RegExp): string | undefined => re.exec(message)?.[1]?.trim() || undefined;
  const first = field(/\bfirst[ _]?name"?\s*[:=]\s*"?([^\n,;"}]+)/i);
  const last = field(/\blast[ _]?name"?\s*[:=]\s*"?([^\n,;"}]+)/i);
  const name =
    first || last
      ? [first, last].filter(Boolean).join(" ")
      : field(/\b(?:full[ _]?)?name"?\s*[:=]\s*"?([^\n,;"}]+)/i);
  const email = /[^\s@"',;<>]+@[^\s@"',;<>]+\.[a-z]{2,}/i.exec(message)?.[0];
  const score = 40 + (hash32(message) % 60);
  const tier = score >= 75 ? "hot" : score >= 55 ? "warm" : "cold";
  const next = pick(
    tier === "hot"
      ? ["call within the hour", "book a demo today"]
      : tier === "warm"
        ? ["send a tailored follow-up email", "schedule a discovery call this week"]
        : ["add to a nurture sequence", "follow up next month"],
    message,
  );
  const who = name ? `${name}${email ? ` <${email}>` : ""}` : (email ?? "this lead");
  return `Lead qualification for ${who}: score ${score}/100 (${tier}). Recommended next step: ${next}.`;
}

export function createEjentoSimulator(opts: EjentoSimulatorOptions = {}): EjentoSimulators {
  const now = opts.now ?? Date.now;
  const tokens = new TokenStore<"auth" | "ejento">(now);
  let nextThreadId = 1001;
  let nextResponseId = 9001;
  const state = {} as EjentoState;
  const at = (): string => isoNow(now);
  const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
  const isSuper = (email: string, index: number): boolean =>
    opts.superuserEmail ? same(email, opts.superuserEmail) : index === 0;

  function reset(): void {
    tokens.clear();
    nextThreadId = 1001;
    nextResponseId = 9001;
    const users = (opts.users ?? []).map((u, i) => ({
      id: randomUUID(),
      email: u.email,
      password: u.password,
      full_name: u.full_name ?? null,
      is_active: u.is_active ?? true,
      is_superuser: u.is_superuser ?? isSuper(u.email, i),
    }));
    const settings = {
      tokenLifetimeSeconds: opts.tokenLifetimeSeconds ?? 2 * 24 * 3600,
      authTokenLifetimeSeconds: opts.authTokenLifetimeSeconds ?? 8 * 24 * 3600,
      agents: (opts.agents ?? []).map(String),
      failNext: 0,
      failStatus: 503,
    };
    const lists = {
      signups: [],
      tokenRequests: [],
      userUpdates: [],
      threads: [],
      responses: [],
      rejected: [],
    };
    Object.assign(state, { users, settings, ...lists } satisfies EjentoState);
  }
  reset();

  function control(c: EjentoControl): Record<string, unknown> {
    const b = c as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    if (ctl(b, "reset", "boolean")) reset();
    const s = state.settings;
    for (const k of ["tokenLifetimeSeconds", "authTokenLifetimeSeconds", "failNext", "failStatus"] as const)
      s[k] = ctl(b, k, "number") ?? s[k];
    if (ctl(b, "expireTokens", "boolean")) out.expiredTokens = tokens.expireAll(["ejento"]);
    if (ctl(b, "expireAuthTokens", "boolean")) out.expiredAuthTokens = tokens.expireAll(["auth"]);
    if (ctl(b, "revokeTokens", "boolean")) out.revokedTokens = tokens.revoke(() => true);
    if (b.agents !== undefined && !Array.isArray(b.agents))
      throw new Error("control field agents must be an array");
    if (Array.isArray(b.agents)) s.agents = b.agents.map(String);
    return { ...out, settings: { ...s } };
  }

  const getState = () => ({ ...state, tokens: tokens.list() });
  /** Answers `{detail}` with `status` and records why. */
  function reject(req: FastifyRequest, reply: FastifyReply, status: number, why: string, detail: unknown) {
    const app = /\/api\/agent\//.test(req.url) ? "api" : "auth";
    state.rejected.push({ at: at(), app, path: req.url, status, reason: why });
    if (status === 401) reply.header("www-authenticate", "Bearer");
    return reply.code(status).send({ detail });
  }
  const findEmail = (email: string) => state.users.find((u) => same(u.email, email));

  /** The user behind a bearer token of `kind`, or undefined after replying with the error. */
  function bearerUser(req: FastifyRequest, reply: FastifyReply, kind: "auth" | "ejento") {
    const tok = bearerToken(req);
    if (!tok) return void reject(req, reply, 401, "no bearer token", "Not authenticated");
    const c = tokens.check(tok, [kind]);
    if (!c.ok) return void reject(req, reply, 401, `token ${c.reason}`, "Could not validate credentials");
    const user = state.users.find((u) => u.id === c.token.subject);
    if (!user) return void reject(req, reply, 404, "user gone", "User not found");
    if (!user.is_active) return void reject(req, reply, 400, "inactive user", "Inactive user");
    return user;
  }
  function issuePair(u: EjentoUser) {
    const s = state.settings;
    return {
      access_token: tokens.issue("auth", u.id, s.authTokenLifetimeSeconds).token,
      token_type: "bearer",
      ejento_access_token: tokens.issue("ejento", u.id, s.tokenLifetimeSeconds).token,
      expires_in: s.tokenLifetimeSeconds,
    };
  }
  const NO_PRIVILEGES = "The user doesn't have enough privileges";

  function registerAuth(app: FastifyInstance): void {
    installRawBodyParser(app);
    mountStateAndControl(app, getState, control);

    app.post("/api/users/signup", async (req, reply) => {
      const body = readJsonObject(req);
      if (!body.ok) return reject(req, reply, 422, "signup body", bodyProblem(body.reason, body.raw));
      const { problems, fields } = userFields(body.value, false);
      if (problems.length) return reject(req, reply, 422, "signup fields", problems);
      const email = fields.email ?? "";
      const exists = findEmail(email) !== undefined;
      state.signups.push({ at: at(), email, status: exists ? 400 : 200 });
      if (exists)
        return reply.code(400).send({ detail: "The user with this email already exists in the system" });
      const user: EjentoUser = {
        id: randomUUID(),
        email,
        password: fields.password ?? "",
        full_name: fields.full_name ?? null,
        is_active: true,
        is_superuser: isSuper(email, state.users.length),
      };
      state.users.push(user);
      return publicUser(user);
    });

    app.post("/api/login/access-token", async (req, reply) => {
      const mt = mediaType(req);
      const isForm = mt === "application/x-www-form-urlencoded" || mt === "multipart/form-data";
      const headers = { "content-type": String(req.headers["content-type"]) };
      const form = isForm ? await new Response(rawBody(req), { headers }).formData().catch(() => null) : null;
      const get = (k: string) => (typeof form?.get(k) === "string" ? (form.get(k) as string) : undefined);
      const [username, password, grant] = [get("username"), get("password"), get("grant_type")];
      const problems: Problem[] = [];
      if (username === undefined) problems.push(missing("body", "username"));
      if (password === undefined) problems.push(missing("body", "password"));
      if (grant !== undefined && grant !== "password")
        problems.push(
          P(
            "string_pattern_mismatch",
            ["body", "grant_type"],
            "String should match pattern '^password$'",
            grant,
          ),
        );
      const user = findEmail(username ?? "");
      const detail = problems.length
        ? problems
        : !user || user.password !== password
          ? "Incorrect email or password"
          : !user.is_active
            ? "Inactive user"
            : undefined;
      const status = problems.length ? 422 : detail ? 400 : 200;
      state.tokenRequests.push({ at: at(), kind: "login", username: username ?? null, status });
      if (!user || detail) return reject(req, reply, status, `login (${mt || "no content type"})`, detail);
      return issuePair(user);
    });

    app.post("/api/login/refresh-token", async (req, reply) => {
      const user = bearerUser(req, reply, "auth");
      const status = user ? 200 : reply.statusCode;
      state.tokenRequests.push({ at: at(), kind: "refresh", username: user?.email ?? null, status });
      return user ? issuePair(user) : reply;
    });

    app.get("/api/users/me", async (req, reply) => {
      const user = bearerUser(req, reply, "auth");
      return user ? publicUser(user) : reply;
    });

    app.get("/api/users/", async (req, reply) => {
      const user = bearerUser(req, reply, "auth");
      if (!user) return reply;
      if (!user.is_superuser) return reject(req, reply, 403, "not superuser", NO_PRIVILEGES);
      const q = req.query as Record<string, string | undefined>;
      const bad = (["skip", "limit"] as const).filter(
        (k) => q[k] !== undefined && !/^-?\d+$/.test(q[k] ?? ""),
      );
      const msg = "Input should be a valid integer, unable to parse string as an integer";
      if (bad.length)
        return reject(
          req,
          reply,
          422,
          "users query",
          bad.map((k) => P("int_parsing", ["query", k], msg, q[k])),
        );
      const skip = Math.max(0, Number(q.skip ?? 0));
      const limit = Math.max(0, Number(q.limit ?? 100));
      return { data: state.users.slice(skip, skip + limit).map(publicUser), count: state.users.length };
    });

    app.patch("/api/users/:user_id", async (req, reply) => {
      const user = bearerUser(req, reply, "auth");
      if (!user) return reply;
      const id = (req.params as { user_id: string }).user_id;
      const body = readJsonObject(req);
      const { problems, fields } = body.ok ? userFields(body.value, true) : { problems: [], fields: {} };
      const target = state.users.find((u) => same(u.id, id));
      const clash = fields.email !== undefined ? findEmail(fields.email) : undefined;
      const [status, detail] = !user.is_superuser
        ? [403, NO_PRIVILEGES]
        : !UUID_RE.test(id)
          ? [422, [P("uuid_parsing", ["path", "user_id"], "Input should be a valid UUID", id)]]
          : !body.ok
            ? [422, bodyProblem(body.reason, body.raw)]
            : problems.length
              ? [422, problems]
              : !target
                ? [404, "The user with this id does not exist in the system"]
                : clash && clash.id !== target.id
                  ? [409, "User with this email already exists"]
                  : [200, null];
      state.userUpdates.push({ at: at(), userId: id, fields: Object.keys(fields), status });
      if (status !== 200 || !target) return reject(req, reply, status, "user update", detail);
      Object.assign(target, fields);
      return publicUser(target);
    });
  }

  /** Common gate of the Ejento API: injected failures, the Ejento bearer token, the agent id. */
  function apiGate(req: FastifyRequest, reply: FastifyReply) {
    const s = state.settings;
    if (s.failNext > 0) {
      s.failNext--;
      return void reject(req, reply, s.failStatus, "injected failure", "Service temporarily unavailable");
    }
    const user = bearerUser(req, reply, "ejento");
    if (!user) return undefined;
    const raw = (req.params as { agent_id: string }).agent_id;
    if (s.agents.length > 0 && !s.agents.includes(raw))
      return void reject(req, reply, 404, "unknown agent", "Agent not found");
    return { user, agentKey: raw, agent: /^\d+$/.test(raw) ? Number(raw) : raw };
  }

  function registerApi(app: FastifyInstance): void {
    installRawBodyParser(app);
    mountStateAndControl(app, getState, control);

    app.post("/api/agent/:agent_id/chat-thread", async (req, reply) => {
      const g = apiGate(req, reply);
      if (!g) return reply;
      const empty = rawBody(req).trim() === "";
      const body: JsonBody = empty ? { ok: true, value: {} } : readJsonObject(req);
      if (!body.ok) return reject(req, reply, 422, "thread body", bodyProblem(body.reason, body.raw));
      const title = body.value.title;
      if (title !== undefined && typeof title !== "string")
        return reject(req, reply, 422, "thread title", [
          P("string_type", ["body", "title"], "Input should be a valid string", title),
        ]);
      const id = nextThreadId++;
      const thread = { id, agent_id: g.agent, title: title ?? `Chat thread ${id}`, created_at: at() };
      state.threads.push({ ...thread, user_id: g.user.id });
      return thread;
    });

    app.post("/api/agent/:agent_id/response", async (req, reply) => {
      const g = apiGate(req, reply);
      if (!g) return reply;
      const body = readJsonObject(req);
      if (!body.ok) return reject(req, reply, 422, "response body", bodyProblem(body.reason, body.raw));
      const { chat_thread_id: rawId, message = body.value.query } = body.value;
      const threadId = typeof rawId === "string" && /^\d+$/.test(rawId) ? Number(rawId) : rawId;
      const problems: Problem[] = [];
      if (rawId === undefined || rawId === null) problems.push(missing("body", "chat_thread_id"));
      else if (!Number.isInteger(threadId))
        problems.push(P("int_parsing", ["body", "chat_thread_id"], "Input should be a valid integer", rawId));
      if (message === undefined || message === null) problems.push(missing("body", "message"));
      else if (typeof message !== "string" || message.trim() === "")
        problems.push(P("string_type", ["body", "message"], "Input should be a non-empty string", message));
      if (problems.length || typeof message !== "string")
        return reject(req, reply, 422, "response fields", problems);
      const thread = state.threads.find((t) => t.id === threadId);
      if (!thread || String(thread.agent_id) !== g.agentKey)
        return reject(req, reply, 404, "unknown thread", "Chat thread not found");
      const r = {
        id: nextResponseId++,
        chat_thread_id: thread.id,
        agent_id: g.agent,
        message,
        created_at: at(),
      };
      const answer: EjentoResponse = { ...r, response: ejentoAnswer(message) };
      state.responses.push(answer);
      return answer;
    });
  }

  const mk = (name: string, prefix: string, register: (app: FastifyInstance) => void): EjentoSimulator => ({
    name,
    prefix,
    register,
    reset,
    control,
    get state() {
      return state;
    },
  });
  const auth = mk("ejento-auth", opts.authPrefix ?? "/ejento-auth", registerAuth);
  const api = mk("ejento", opts.apiPrefix ?? "/ejento", registerApi);
  return { auth, api, simulators: [auth, api], state, control, reset };
}
