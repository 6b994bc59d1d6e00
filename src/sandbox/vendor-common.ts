import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import {
  createRefreshTokenStore,
  createSimJwtIssuer,
  defaultCognitoIssuer,
  type RefreshTokenStore,
  type SimJwtIssuer,
  type SimJwtVerifier,
} from "./sim-jwt.ts";

/** Helpers shared by the Cognito, hosted-UI, 7targets and Eminence simulators. */

export class ControlError extends Error {}

/** An error a simulator answers with: `code` is the vendor's error name, `status` the HTTP status. */
export class SimError extends Error {
  code: string;
  status: number;
  constructor(code: string, message: string, status = 400) {
    super(message);
    this.code = code;
    this.status = status;
  }
}
export const failWith = (code: string, message: string, status = 400): never => {
  throw new SimError(code, message, status);
};

/** A user of a simulated Cognito user pool (InitiateAuth and hosted UI). */
export interface SimUser {
  username: string;
  password: string;
  email?: string;
  /** Default: a random UUID, stable for the simulator's life. */
  sub?: string;
  /** InitiateAuth only. */
  status?: "CONFIRMED" | "FORCE_CHANGE_PASSWORD" | "RESET_REQUIRED" | "UNCONFIRMED";
  enabled?: boolean;
}

/** Users with their `sub`, found by username or (with `byEmail`) email, case-insensitively. */
export function userDirectory(list: readonly SimUser[]) {
  const users = list.map((u) => ({ ...u, sub: u.sub ?? randomUUID() }));
  const find = (name: string, byEmail = false) => {
    const n = name.toLowerCase();
    return users.find((u) => u.username.toLowerCase() === n || (byEmail && u.email?.toLowerCase() === n));
  };
  return { users, find };
}

type Handlers = Record<string, (value: unknown) => void>;

/** Applies a control object key by key; unknown keys and bad values throw ControlError. */
export function applyControl(body: unknown, handlers: Handlers): void {
  const obj = controlObject("control body", body);
  for (const key of Object.keys(obj)) {
    if (!Object.hasOwn(handlers, key)) throw new ControlError(`unknown control key: ${key}`);
  }
  for (const [key, value] of Object.entries(obj)) handlers[key]?.(value);
}

export function controlNumber(key: string, value: unknown, min = 0): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new ControlError(`${key} must be a number >= ${min}`);
  }
  return value;
}

export function controlFlag(key: string, value: unknown): boolean {
  if (typeof value !== "boolean") throw new ControlError(`${key} must be a boolean`);
  return value;
}

export function controlObject(key: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ControlError(`${key} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** `failNext` control: the next `count` (default 1) requests fail with `status` and `error`/`message`/`body`. */
export interface FailNext {
  status?: number;
  count?: number;
  error?: string;
  message?: string;
  body?: unknown;
  retryAfterSeconds?: number;
}

export interface Failure {
  status: number;
  count: number;
  error: string | undefined;
  message: string | undefined;
  body: unknown;
  retryAfterSeconds: number | undefined;
}

export const noFailure = (): Failure => ({
  status: 0,
  count: 0,
  error: undefined,
  message: undefined,
  body: undefined,
  retryAfterSeconds: undefined,
});

export function controlFailure(value: unknown, defaultStatus: number): Failure {
  const f = controlObject("failNext", value);
  const str = (k: string) => {
    if (f[k] !== undefined && typeof f[k] !== "string")
      throw new ControlError(`failNext.${k} must be a string`);
    return f[k] as string | undefined;
  };
  const num = (k: string, min = 0) =>
    f[k] === undefined ? undefined : controlNumber(`failNext.${k}`, f[k], min);
  return {
    status: num("status", 100) ?? defaultStatus,
    count: num("count") ?? 1,
    error: str("error"),
    message: str("message"),
    body: f["body"],
    retryAfterSeconds: num("retryAfterSeconds"),
  };
}

/** Takes one failure off `failure` if any is armed. */
export function takeFailure(failure: Failure): boolean {
  if (failure.count <= 0) return false;
  failure.count--;
  return true;
}

/** `GET /_state` and `POST /_control` (JSON; answers the new state, or 400 on a bad control). */
export function registerStateRoutes(
  app: FastifyInstance,
  state: () => unknown,
  control: (body: unknown) => void,
) {
  app.get("/_state", async () => state());
  app.post("/_control", async (req, reply) => {
    try {
      control(req.body);
    } catch (err) {
      if (err instanceof ControlError) return reply.code(400).send({ message: err.message });
      throw err;
    }
    return state();
  });
}

/** Media type of a Content-Type header, lower case, without parameters. */
export function mediaType(header: string | undefined): string {
  return (header ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

export const nowIso = (): string => new Date().toISOString();

/** Copies the listed fields of `from` that are present. */
export function pick(from: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) if (from[f] !== undefined) out[f] = from[f];
  return out;
}

// ---------------------------------------------------------------------------------------------
// What both token issuers (Cognito InitiateAuth, hosted UI) share: signer, refresh tokens,
// token lifetime, armed failures, and the controls over them.

export interface IssuerSettings {
  region?: string;
  userPoolId?: string;
  tokenLifetimeSeconds?: number;
  refreshTokenLifetimeSeconds?: number;
  /** Share a signer with another simulator; default a new one. */
  issuer?: SimJwtIssuer;
}

/** Controls both token issuers accept (`POST <prefix>/_control`). */
export interface IssuerControl {
  revokeRefreshTokens?: boolean;
  expireTokens?: boolean;
  tokenLifetimeSeconds?: number;
  failNext?: FailNext;
  reset?: boolean;
}

/** The parts of a token-issuing simulator both Cognito simulators share. */
export interface IssuerSimulatorBase {
  readonly issuer: SimJwtIssuer;
  readonly verifier: SimJwtVerifier;
  revokeRefreshTokens(): number;
  expireTokens(): number;
}

export interface IssuerCore {
  readonly issuer: SimJwtIssuer;
  readonly refreshTokens: RefreshTokenStore;
  readonly refreshLifetime: number;
  lifetime: number;
  failure: Failure;
  /** Control handlers; `reset` calls `resetAll` (the simulator's own reset). */
  handlers(resetAll: () => void, extra?: Handlers): Handlers;
  /** Lifetime and failures back to the options, refresh tokens forgotten, expiry marks cleared (own signer). */
  reset(): void;
  snapshot(): { tokenLifetimeSeconds: number; refreshTokens: number; failNext: Failure };
  base(): IssuerSimulatorBase;
}

export function createIssuerCore(opts: IssuerSettings, defaultFailStatus: number): IssuerCore {
  const issuer =
    opts.issuer ?? createSimJwtIssuer({ issuer: defaultCognitoIssuer(opts.region, opts.userPoolId) });
  const refreshTokens = createRefreshTokenStore();
  const core: IssuerCore = {
    issuer,
    refreshTokens,
    refreshLifetime: opts.refreshTokenLifetimeSeconds ?? 30 * 86400,
    lifetime: opts.tokenLifetimeSeconds ?? 3600,
    failure: noFailure(),
    handlers: (resetAll, extra = {}) => ({
      revokeRefreshTokens: (v) => void (controlFlag("revokeRefreshTokens", v) && refreshTokens.revokeAll()),
      expireTokens: (v) => void (controlFlag("expireTokens", v) && issuer.expireAll()),
      tokenLifetimeSeconds: (v) => void (core.lifetime = controlNumber("tokenLifetimeSeconds", v, 1)),
      failNext: (v) => void (core.failure = controlFailure(v, defaultFailStatus)),
      reset: (v) => void (controlFlag("reset", v) && resetAll()),
      ...extra,
    }),
    reset() {
      core.lifetime = opts.tokenLifetimeSeconds ?? 3600;
      core.failure = noFailure();
      refreshTokens.clear();
      if (opts.issuer === undefined) issuer.forget();
    },
    base: () => ({
      issuer,
      verifier: issuer,
      revokeRefreshTokens: () => refreshTokens.revokeAll(),
      expireTokens: () => issuer.expireAll(),
    }),
    snapshot: () => ({
      tokenLifetimeSeconds: core.lifetime,
      refreshTokens: refreshTokens.size,
      failNext: core.failure,
    }),
  };
  return core;
}
