import { z } from "zod";
import { type HttpResponse, newRequest } from "../http/http-client.ts";
import type { AuthStrategy, Credential, ObtainContext, ObtainResult } from "./strategy.ts";
import { noAnswer } from "./token-response.ts";

/**
 * The auth app's paths. The Ejento API document names no paths; its users API has the shape of the
 * FastAPI full-stack template, so register and login follow that template, and refresh is the
 * Ejento addition the document describes (POST with the auth-app token as bearer).
 */
export const EJENTO_AUTH_PATHS = {
  register: "/api/users/signup",
  login: "/api/login/access-token",
  refresh: "/api/login/refresh-token",
} as const;

/** Where the two tokens are in the login / refresh answer. */
export const EJENTO_TOKEN_FIELDS = { authApp: "access_token", ejento: "ejento_access_token" } as const;

/** The Ejento API document: "access tokens expire after 2 days by default" (when no expires_in is given). */
const DEFAULT_LIFETIME_S = 2 * 24 * 3600;

const path = z.string().regex(/^\/\S*$/, "a path starting with /");

const schema = z
  .object({
    type: z.literal("ejento"),
    /** Base URL of the auth app (register, login, refresh, users API). */
    authBaseUrl: z.url({ protocol: /^https?$/ }),
    email: z.string().min(1),
    password: z.string().min(1),
    paths: z
      .object({ register: path, login: path, refresh: path })
      .strict()
      .default({ ...EJENTO_AUTH_PATHS }),
    tokenFields: z
      .object({ authApp: z.string().min(1), ejento: z.string().min(1) })
      .strict()
      .default({ ...EJENTO_TOKEN_FIELDS }),
    /**
     * Which token is attached: `ejento` (the Ejento API, default) or `auth_app` (the auth app's own
     * API: users list and update). Both come from the same login, cached once per destination.
     */
    token: z.enum(["ejento", "auth_app"]).default("ejento"),
  })
  .strict();

export type EjentoAuthConfig = z.infer<typeof schema>;

export function authAppUrl(config: Pick<EjentoAuthConfig, "authBaseUrl">, p: string): string {
  return config.authBaseUrl.replace(/\/+$/, "") + p;
}

/**
 * The Ejento API document: log in with email and password (form-encoded `username`/`password`, as the FastAPI
 * template) and get two tokens: the auth-app token (refresh, users API) and the Ejento token (the
 * Ejento API). Ahead of expiry the runtime asks again with the previous credential: refresh with
 * the auth-app token; if that is refused, log in again.
 */
export const ejentoAuth: AuthStrategy<EjentoAuthConfig> = {
  type: "ejento",
  schema,
  secretFields: ["email", "password"],
  async obtain(config, ctx) {
    const previous = ctx.previous?.refresh;
    if (previous) {
      const refreshed = await exchange(config, ctx, "refresh", previous);
      if (refreshed.ok) return refreshed;
    }
    return exchange(config, ctx, "login", undefined);
  },
  apply(req, config, credential) {
    const token = config.token === "auth_app" ? credential?.values.authToken : credential?.values.token;
    if (token) req.headers["authorization"] = `Bearer ${token}`;
  },
  isRejection: (status) => status === 401,
};

async function exchange(
  config: EjentoAuthConfig,
  ctx: ObtainContext,
  kind: "login" | "refresh",
  authAppToken: string | undefined,
): Promise<ObtainResult> {
  const req = newRequest("POST", authAppUrl(config, config.paths[kind]));
  if (kind === "login") {
    req.contentType = "form";
    req.body = { username: config.email, password: config.password };
  } else {
    req.headers["authorization"] = `Bearer ${authAppToken ?? ""}`;
  }
  req.headers["accept"] = "application/json";
  const sent = await ctx.http.send(req, { timeoutMs: ctx.timeoutMs, step: `auth ${kind}` });
  if (!sent.ok) return noAnswer(`Ejento ${kind}`, sent.error);
  const res = sent.response;
  if (res.status === 429 || res.status >= 500) {
    return { ok: false, code: "auth_unreachable", message: `Ejento ${kind} answered ${res.status}` };
  }
  if (res.status < 200 || res.status >= 300) {
    return {
      ok: false,
      code: "auth_rejected",
      message: `Ejento ${kind} was refused (${res.status}${detail(res)}); check email and password`,
    };
  }
  return credentialFrom(res, config, ctx.now());
}

function credentialFrom(res: HttpResponse, config: EjentoAuthConfig, now: number): ObtainResult {
  const body = res.json() as Record<string, unknown> | undefined;
  const authToken = body?.[config.tokenFields.authApp];
  const token = body?.[config.tokenFields.ejento];
  if (typeof authToken !== "string" || typeof token !== "string" || !authToken || !token) {
    return {
      ok: false,
      code: "auth_bad_response",
      message: `the Ejento auth app's answer lacks "${config.tokenFields.authApp}" or "${config.tokenFields.ejento}"`,
    };
  }
  const expiresIn = Number(body?.expires_in);
  const lifetime = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_LIFETIME_S;
  const credential: Credential = {
    values: { token, authToken },
    refresh: authToken,
    expiresAt: now + lifetime * 1000,
  };
  return { ok: true, credential };
}

/** The vendor's `detail` (FastAPI), shortened, for error messages. */
export function detail(res: HttpResponse): string {
  const body = res.json() as { detail?: unknown } | undefined;
  if (body?.detail === undefined) return "";
  const text = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  return `: ${text.slice(0, 300)}`;
}
