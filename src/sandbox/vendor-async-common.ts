import { createHash, createHmac, randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

/**
 * Helpers shared by the Ejento and Reworked simulators: raw body handling (each route decides how
 * strict it is about content types), bearer tokens with expiry, deterministic hashing, pending
 * timers / outbound requests that must stop on close or reset, and the `_state` / `_control` routes.
 */

/** Replaces every body parser in this (encapsulated) scope with one that keeps the raw text. */
export function installRawBodyParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, body, done) => {
    done(null, body);
  });
}

export function rawBody(req: FastifyRequest): string {
  return typeof req.body === "string" ? req.body : "";
}

/** The media type of the request, lower case, without parameters ("" when absent). */
export function mediaType(req: FastifyRequest): string {
  const ct = req.headers["content-type"] ?? "";
  return (ct.split(";")[0] ?? "").trim().toLowerCase();
}

export function isJsonRequest(req: FastifyRequest): boolean {
  const mt = mediaType(req);
  return mt === "application/json" || /^application\/[\w.+-]+\+json$/.test(mt);
}

export type JsonBody =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; reason: "content-type" | "invalid-json" | "not-object"; raw: string };

/** Parses a JSON object body; the caller maps each failure reason to the vendor's status. */
export function readJsonObject(req: FastifyRequest): JsonBody {
  const raw = rawBody(req);
  if (!isJsonRequest(req)) return { ok: false, reason: "content-type", raw };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, reason: "invalid-json", raw };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, reason: "not-object", raw };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== "string") return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/** Base URL the caller reached us at, from the Host header and protocol, plus the mount prefix. */
export function publicBaseUrl(req: FastifyRequest, prefix: string, override?: string): string {
  if (override) return override.replace(/\/+$/, "");
  return `${req.protocol}://${req.host}${prefix}`;
}

/** Unsigned 32-bit number derived from the text (stable across runs). */
export function hash32(text: string): number {
  return createHash("sha256").update(text).digest().readUInt32BE(0);
}

export function pick<T>(list: readonly T[], seed: string): T {
  const v = list[hash32(seed) % list.length];
  if (v === undefined) throw new Error("pick from an empty list");
  return v;
}

export interface IssuedToken<K extends string> {
  token: string;
  kind: K;
  subject: string;
  issuedAt: number;
  expiresAt: number;
  revoked: boolean;
  /** Free-form data bound to the token (e.g. a job id). */
  data?: Record<string, unknown>;
}

export type TokenCheck<K extends string> =
  | { ok: true; token: IssuedToken<K> }
  | { ok: false; reason: "missing" | "unknown" | "expired" | "revoked" | "wrong-kind" };

const b64url = (s: string | Buffer): string => Buffer.from(s).toString("base64url");

/**
 * Issued bearer tokens. They look like HS256 JWTs (with `sub`, `exp`, `typ`) so clients that
 * decode `exp` work, but validity is decided by this table: expiring or revoking is instant.
 */
export class TokenStore<K extends string> {
  readonly tokens = new Map<string, IssuedToken<K>>();
  private readonly secret = randomBytes(32);
  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  issue(kind: K, subject: string, lifetimeSeconds: number, data?: Record<string, unknown>): IssuedToken<K> {
    const issuedAt = this.now();
    const expiresAt = issuedAt + lifetimeSeconds * 1000;
    const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const payload = b64url(
      JSON.stringify({
        sub: subject,
        typ: kind,
        iat: Math.floor(issuedAt / 1000),
        exp: Math.floor(expiresAt / 1000),
        jti: randomBytes(8).toString("hex"),
      }),
    );
    const sig = createHmac("sha256", this.secret).update(`${header}.${payload}`).digest("base64url");
    const t: IssuedToken<K> = {
      token: `${header}.${payload}.${sig}`,
      kind,
      subject,
      issuedAt,
      expiresAt,
      revoked: false,
    };
    if (data) t.data = data;
    this.tokens.set(t.token, t);
    return t;
  }

  check(token: string | undefined, kinds: readonly K[]): TokenCheck<K> {
    if (!token) return { ok: false, reason: "missing" };
    const t = this.tokens.get(token);
    if (!t) return { ok: false, reason: "unknown" };
    if (!kinds.includes(t.kind)) return { ok: false, reason: "wrong-kind" };
    if (t.revoked) return { ok: false, reason: "revoked" };
    if (this.now() >= t.expiresAt) return { ok: false, reason: "expired" };
    return { ok: true, token: t };
  }

  /** Makes every issued token of these kinds (all kinds when omitted) expired now. */
  expireAll(kinds?: readonly K[]): number {
    let n = 0;
    const now = this.now();
    for (const t of this.tokens.values()) {
      if (kinds && !kinds.includes(t.kind)) continue;
      if (t.expiresAt > now) n++;
      t.expiresAt = Math.min(t.expiresAt, now);
    }
    return n;
  }

  revoke(predicate: (t: IssuedToken<K>) => boolean): number {
    let n = 0;
    for (const t of this.tokens.values()) {
      if (!t.revoked && predicate(t)) {
        t.revoked = true;
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.tokens.clear();
  }

  /** Summary for `_state` (token values shortened). */
  list(): Array<Omit<IssuedToken<K>, "token"> & { token: string; expired: boolean }> {
    const now = this.now();
    return [...this.tokens.values()].map((t) => ({
      ...t,
      token: `${t.token.slice(-12)}`,
      expired: now >= t.expiresAt,
    }));
  }
}

/** Timers and outbound requests of a simulator: all stopped by `clear()` (on reset and on close). */
export class PendingWork {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly aborts = new Set<AbortController>();

  after(ms: number, fn: () => void | Promise<void>): void {
    const t = setTimeout(
      () => {
        this.timers.delete(t);
        void Promise.resolve()
          .then(fn)
          .catch(() => undefined);
      },
      Math.max(0, ms),
    );
    this.timers.add(t);
  }

  /** An abort signal that fires on `clear()` or after `timeoutMs`. */
  signal(timeoutMs: number): { signal: AbortSignal; done: () => void } {
    const ac = new AbortController();
    this.aborts.add(ac);
    const t = setTimeout(() => ac.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    return {
      signal: ac.signal,
      done: () => {
        clearTimeout(t);
        this.aborts.delete(ac);
      },
    };
  }

  get size(): number {
    return this.timers.size + this.aborts.size;
  }

  clear(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const ac of this.aborts) ac.abort(new Error("simulator reset or closed"));
    this.aborts.clear();
  }
}

/**
 * `GET /_state` returns `getState()`; `POST /_control` with a JSON object calls `control(body)`
 * and returns its result (400 on a body that is not a JSON object or when control throws).
 */
export function mountStateAndControl(
  app: FastifyInstance,
  getState: () => unknown,
  control: (body: Record<string, unknown>) => unknown,
): void {
  app.get("/_state", async () => getState());
  app.post("/_control", async (req: FastifyRequest, reply: FastifyReply) => {
    const body = rawBody(req).trim() === "" ? ({ ok: true, value: {} } as const) : readJsonObject(req);
    if (!body.ok) return reply.code(400).send({ error: `control body: ${body.reason}` });
    try {
      return { ok: true, applied: control(body.value) };
    } catch (err) {
      return reply.code(400).send({ error: err instanceof Error ? err.message : String(err) });
    }
  });
}

/** Reads an optional typed field from a control body; throws on a wrong type. */
export function ctl<T extends "number" | "boolean" | "string">(
  body: Record<string, unknown>,
  key: string,
  type: T,
): (T extends "number" ? number : T extends "boolean" ? boolean : string) | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== type || (type === "number" && !Number.isFinite(v))) {
    throw new Error(`control field ${key} must be a ${type}`);
  }
  return v as never;
}

export function isoNow(now: () => number): string {
  return new Date(now()).toISOString();
}
