// Shared pieces of the Housing lead-push document's auth-client simulators: random tokens, Basic parsing,
// cookies, recorded state, test controls (`GET <prefix>/_state`, `POST <prefix>/_control`) and failure modes.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { parse as parseQuery } from "node:querystring";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Simulator } from "./simulator.ts";

export type TokenEndpointMode = "ok" | "down" | "hang" | "garbage";
/** `fail` answers `leadsFailStatus` (500) after the auth checks passed; `hang` never answers until reset/close. */
export type LeadsEndpointMode = "ok" | "fail" | "hang";

export interface RecordedLead {
  id: string;
  path: string;
  receivedAt: string;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  query: Record<string, unknown>;
}
export interface SimState {
  leads: RecordedLead[];
  /** Every request that reached the token endpoint, whatever its outcome. */
  tokenRequests: number;
  tokensIssued: number;
  /** Why requests were refused (newest last), to debug a client. */
  rejections: { path: string; status: number; reason: string }[];
  tokenEndpoint: TokenEndpointMode;
  leadsEndpoint: LeadsEndpointMode;
  leadsFailStatus: number;
  /** Requests currently held by a `hang` mode. */
  hanging: number;
}
export interface SimControl {
  reset?: boolean;
  expireTokens?: boolean;
  revokeTokens?: boolean;
  tokenEndpoint?: TokenEndpointMode;
  leadsEndpoint?: LeadsEndpointMode;
  leadsFailStatus?: number;
}
/** What every auth-client simulator exposes besides the `Simulator` contract. */
export interface ControllableSimulator extends Simulator {
  readonly state: Readonly<SimState>;
  control(c: SimControl): void;
  /** Tokens stop being accepted as expired (OAuth2 refresh tokens stay usable). */
  expireTokens(): void;
  /** Every token (and OAuth2 refresh token, CSRF session) is forgotten. */
  revokeTokens(): void;
}
export interface TokenStoreHooks {
  expireTokens(): void;
  revokeTokens(): void;
}

export const randomToken = (bytes = 24): string => randomBytes(bytes).toString("base64url");

/** Constant-time string comparison. */
export function safeEqual(a: string, b: string): boolean {
  const h = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

/** First value of a request header (names are lower case in Node). */
export function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** `application/json; charset=utf-8` → `application/json`. */
export const mediaType = (req: FastifyRequest): string =>
  (header(req, "content-type") ?? "").split(";")[0]!.trim().toLowerCase();

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);

/** `Authorization: Basic …` → credentials. `formDecoded` undoes RFC 6749 §2.3.1 encoding of client ids. */
export function parseBasic(
  value: string | undefined,
  formDecoded = false,
): { username: string; password: string } | undefined {
  const b64 = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(value ?? "")?.[1];
  if (b64 === undefined) return undefined;
  const decoded = Buffer.from(b64, "base64").toString("utf8");
  const i = decoded.indexOf(":");
  if (i < 0) return undefined;
  const dec = (s: string) => (formDecoded ? decodeURIComponent(s.replace(/\+/g, " ")) : s);
  try {
    return { username: dec(decoded.slice(0, i)), password: dec(decoded.slice(i + 1)) };
  } catch {
    return undefined;
  }
}

/** `a=1; b=x=y` → Map { a → "1", b → "x=y" }. */
export function parseCookies(value: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (value ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

/** Random tokens with an expiry; `expireAll` keeps them known (so "expired" ≠ "unknown"). */
export class TokenStore<T = undefined> {
  readonly #items = new Map<string, { expiresAt: number; data: T }>();
  readonly #now: () => number;
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }
  issue(ttlMs: number, data: T, token = randomToken()): string {
    this.#items.set(token, { expiresAt: this.#now() + ttlMs, data });
    return token;
  }
  lookup(token: string | undefined): { status: "ok"; data: T } | { status: "expired" | "unknown" } {
    const item = token === undefined ? undefined : this.#items.get(token);
    if (item === undefined) return { status: "unknown" };
    if (this.#now() >= item.expiresAt) return { status: "expired" };
    return { status: "ok", data: item.data };
  }
  delete(token: string): void {
    this.#items.delete(token);
  }
  expireAll(): void {
    for (const item of this.#items.values()) item.expiresAt = -Infinity;
  }
  revokeAll(): void {
    this.#items.clear();
  }
}

const MODES_TOKEN: readonly string[] = ["ok", "down", "hang", "garbage"];
const MODES_LEADS: readonly string[] = ["ok", "fail", "hang"];
const CONTROL_KEYS = "reset expireTokens revokeTokens tokenEndpoint leadsEndpoint leadsFailStatus".split(" ");

/** State, controls and failure modes shared by every simulator; the token stores stay in each file. */
export class SimCore {
  readonly state: SimState = {
    leads: [],
    tokenRequests: 0,
    tokensIssued: 0,
    rejections: [],
    tokenEndpoint: "ok",
    leadsEndpoint: "ok",
    leadsFailStatus: 500,
    hanging: 0,
  };
  readonly #hooks: TokenStoreHooks;
  readonly #hangs = new Set<() => void>();

  constructor(hooks: TokenStoreHooks) {
    this.#hooks = hooks;
  }

  reset(): void {
    const s = this.state;
    s.leads.length = 0;
    s.rejections.length = 0;
    s.tokenRequests = s.tokensIssued = 0;
    s.tokenEndpoint = "ok";
    s.leadsEndpoint = "ok";
    s.leadsFailStatus = 500;
    this.#hooks.revokeTokens();
    this.releaseHangs();
  }

  /** Applies a control; throws a message on an invalid one (the route answers 400 with it). */
  control(c: SimControl): void {
    const unknown = Object.keys(c).filter((k) => !CONTROL_KEYS.includes(k));
    if (unknown.length > 0) throw new Error(`unknown control(s): ${unknown.join(", ")}`);
    if (c.tokenEndpoint !== undefined && !MODES_TOKEN.includes(c.tokenEndpoint))
      throw new Error(`tokenEndpoint must be one of ${MODES_TOKEN.join(", ")}`);
    if (c.leadsEndpoint !== undefined && !MODES_LEADS.includes(c.leadsEndpoint))
      throw new Error(`leadsEndpoint must be one of ${MODES_LEADS.join(", ")}`);
    const fs = c.leadsFailStatus;
    if (fs !== undefined && !(Number.isInteger(fs) && fs >= 400 && fs <= 599))
      throw new Error("leadsFailStatus must be an integer 400..599");
    if (c.reset === true) this.reset();
    if (c.expireTokens === true) this.#hooks.expireTokens();
    if (c.revokeTokens === true) this.#hooks.revokeTokens();
    if (c.tokenEndpoint !== undefined) this.state.tokenEndpoint = c.tokenEndpoint;
    if (c.leadsEndpoint !== undefined) this.state.leadsEndpoint = c.leadsEndpoint;
    if (fs !== undefined) this.state.leadsFailStatus = fs;
    // Leaving a hang mode answers the held requests.
    if ((c.tokenEndpoint ?? "hang") !== "hang" || (c.leadsEndpoint ?? "hang") !== "hang") this.releaseHangs();
  }

  /** Answers every held request (503, `connection: close`). */
  releaseHangs(): void {
    for (const release of this.#hangs) release();
    this.#hangs.clear();
    this.state.hanging = 0;
  }

  /** Sends an error and records why. */
  reject(
    req: FastifyRequest,
    reply: FastifyReply,
    status: number,
    reason: string,
    opts: { body?: unknown; headers?: Record<string, string> } = {},
  ): FastifyReply {
    this.state.rejections.push({ path: req.url, status, reason });
    return reply
      .code(status)
      .headers(opts.headers ?? {})
      .send(opts.body ?? { error: reason });
  }

  /** Counts a token request and applies the token endpoint mode; true when it answered already. */
  async tokenGate(reply: FastifyReply): Promise<boolean> {
    this.state.tokenRequests++;
    const mode = this.state.tokenEndpoint;
    if (mode === "down") {
      void reply.code(503).send({ error: "service unavailable" });
      return true;
    }
    if (mode === "garbage") {
      void reply.code(200).type("text/html").send("<html><body>Gateway maintenance</body></html>");
      return true;
    }
    if (mode === "hang") return this.#hang(reply);
    return false;
  }

  /** Applies the leads endpoint mode (after auth passed); true when it answered already. */
  async leadsGate(req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const mode = this.state.leadsEndpoint;
    if (mode === "fail") {
      void this.reject(req, reply, this.state.leadsFailStatus, "simulated failure");
      return true;
    }
    if (mode === "hang") return this.#hang(reply);
    return false;
  }

  async #hang(reply: FastifyReply): Promise<true> {
    this.state.hanging++;
    await new Promise<void>((resolve) => this.#hangs.add(resolve));
    void reply.code(503).header("connection", "close").send({ error: "released" });
    return true;
  }

  /** A JSON object body, or undefined after answering 415 / 400. */
  jsonBody(req: FastifyRequest, reply: FastifyReply): Record<string, unknown> | undefined {
    if (mediaType(req) !== "application/json") {
      void this.reject(req, reply, 415, "content-type must be application/json");
      return undefined;
    }
    if (!isObject(req.body)) {
      void this.reject(req, reply, 400, "body must be a JSON object");
      return undefined;
    }
    return req.body;
  }

  /** Records an accepted lead and answers 201 `{id}`. */
  accept(req: FastifyRequest, reply: FastifyReply, body: unknown): FastifyReply {
    const id = randomToken(9);
    const [path, headers, receivedAt] = [req.url, { ...req.headers }, new Date().toISOString()];
    const query = isObject(req.query) ? { ...req.query } : {};
    this.state.leads.push({ id, path, receivedAt, body, headers, query });
    return reply.code(201).send({ id });
  }

  /** Body parsers (form → object, anything else → raw Buffer so handlers answer 415), `_state`, `_control`. */
  registerCommon(app: FastifyInstance): void {
    if (!app.hasContentTypeParser("application/x-www-form-urlencoded")) {
      app.addContentTypeParser(
        "application/x-www-form-urlencoded",
        { parseAs: "string" },
        (_req, body, done) => done(null, { ...parseQuery(body as string) }),
      );
    }
    if (!app.hasContentTypeParser("*")) {
      app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
    }
    app.get("/_state", async () => this.state);
    app.post("/_control", async (req, reply) => {
      if (!isObject(req.body)) return reply.code(400).send({ error: "body must be a JSON object" });
      try {
        this.control(req.body as SimControl);
      } catch (e) {
        return reply.code(400).send({ error: (e as Error).message });
      }
      return this.state;
    });
    app.addHook("preClose", async () => this.releaseHangs());
  }
}

/** Builds the object a factory returns around a core and the simulator's routes. */
export function makeSimulator(
  name: string,
  prefix: string,
  core: SimCore,
  hooks: TokenStoreHooks,
  routes: (app: FastifyInstance) => void,
): ControllableSimulator {
  return {
    name,
    prefix,
    state: core.state,
    register(app) {
      core.registerCommon(app);
      routes(app);
    },
    reset: () => core.reset(),
    control: (c) => core.control(c),
    expireTokens: () => hooks.expireTokens(),
    revokeTokens: () => hooks.revokeTokens(),
  };
}
