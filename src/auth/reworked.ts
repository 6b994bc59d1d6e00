import { z } from "zod";
import { type HttpResponse, newRequest } from "../http/http-client.ts";
import type { AuthStrategy, ObtainContext, ObtainResult } from "./strategy.ts";
import { noAnswer } from "./token-response.ts";

/** The Reworked API document: "The token will be valid for 24 hours" (when the answer has no expires_in). */
const DEFAULT_LIFETIME_S = 24 * 3600;

const schema = z
  .object({
    type: z.literal("reworked"),
    /** The API base, e.g. https://app.reworked.ai/bnd/api. */
    baseUrl: z.url({ protocol: /^https?$/ }),
    email: z.string().min(1),
    password: z.string().min(1).optional(),
    /** The `api_key` Reworked provides; with it, user-authenticate is skipped. */
    apiKey: z.string().min(1).optional(),
    /** Where the token goes on every call (the document does not say): `Authorization: Bearer <token>`. */
    headerName: z.string().min(1).default("authorization"),
    headerPrefix: z.string().default("Bearer "),
  })
  .strict()
  .refine((c) => c.password !== undefined || c.apiKey !== undefined, "give password or apiKey");

export type ReworkedAuthConfig = z.infer<typeof schema>;

/**
 * The Reworked API document: `user-authenticate` (email + password → `api_secret_key`; 403 on error), then
 * `generate-token` (`api_key` + email → a token valid 24 h). The key is kept with the token
 * (sealed) so a renewal ahead of expiry needs only generate-token.
 */
export const reworkedAuth: AuthStrategy<ReworkedAuthConfig> = {
  type: "reworked",
  schema,
  secretFields: ["password", "apiKey"],
  async obtain(config, ctx) {
    const known = config.apiKey ?? ctx.previous?.values.apiKey;
    if (known) {
      const token = await generateToken(config, ctx, known);
      // A key learned from user-authenticate may have been rotated: authenticate once more.
      if (token.ok || config.apiKey || config.password === undefined || token.code !== "auth_rejected")
        return token;
    }
    const key = await authenticate(config, ctx);
    if (!key.ok) return key;
    return generateToken(config, ctx, key.apiKey);
  },
  apply(req, config, credential) {
    const token = credential?.values.token;
    if (token) req.headers[config.headerName.toLowerCase()] = `${config.headerPrefix}${token}`;
  },
};

export function reworkedUrl(baseUrl: string, path: string): string {
  return baseUrl.replace(/\/+$/, "") + path;
}

async function post(
  config: ReworkedAuthConfig,
  ctx: ObtainContext,
  path: string,
  body: unknown,
  step: string,
) {
  const req = newRequest("POST", reworkedUrl(config.baseUrl, path));
  req.contentType = "json";
  req.body = body;
  req.headers["accept"] = "application/json";
  return ctx.http.send(req, { timeoutMs: ctx.timeoutMs, step });
}

async function authenticate(
  config: ReworkedAuthConfig,
  ctx: ObtainContext,
): Promise<{ ok: true; apiKey: string } | Extract<ObtainResult, { ok: false }>> {
  const sent = await post(
    config,
    ctx,
    "/user-authenticate",
    { email: config.email, password: config.password },
    "auth user-authenticate",
  );
  if (!sent.ok) return noAnswer("Reworked user-authenticate", sent.error);
  const res = sent.response;
  const failed = refusal(res, "user-authenticate", "check email and password");
  if (failed) return failed;
  const key = (res.json() as { data?: { api_secret_key?: unknown } } | undefined)?.data?.api_secret_key;
  if (typeof key !== "string" || !key) {
    return {
      ok: false,
      code: "auth_bad_response",
      message: "Reworked user-authenticate answered without data.api_secret_key",
    };
  }
  return { ok: true, apiKey: key };
}

async function generateToken(
  config: ReworkedAuthConfig,
  ctx: ObtainContext,
  apiKey: string,
): Promise<ObtainResult> {
  const sent = await post(
    config,
    ctx,
    "/generate-token",
    { api_key: apiKey, email: config.email },
    "auth generate-token",
  );
  if (!sent.ok) return noAnswer("Reworked generate-token", sent.error);
  const res = sent.response;
  const failed = refusal(res, "generate-token", "check apiKey and email");
  if (failed) return failed;
  const data = (res.json() as { data?: { token?: unknown; expires_in?: unknown } } | undefined)?.data;
  if (typeof data?.token !== "string" || !data.token) {
    return {
      ok: false,
      code: "auth_bad_response",
      message: "Reworked generate-token answered without data.token",
    };
  }
  const expiresIn = Number(data.expires_in);
  const lifetime = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_LIFETIME_S;
  return {
    ok: true,
    credential: {
      values: { token: data.token, ...(config.apiKey ? {} : { apiKey }) },
      expiresAt: ctx.now() + lifetime * 1000,
    },
  };
}

function refusal(
  res: HttpResponse,
  what: string,
  hint: string,
): Extract<ObtainResult, { ok: false }> | undefined {
  if (res.status >= 200 && res.status < 300) return undefined;
  const msg = (res.json() as { msg?: unknown } | undefined)?.msg;
  const said = typeof msg === "string" ? `: ${msg.slice(0, 200)}` : "";
  if (res.status === 429 || res.status >= 500) {
    return { ok: false, code: "auth_unreachable", message: `Reworked ${what} answered ${res.status}${said}` };
  }
  return {
    ok: false,
    code: "auth_rejected",
    message: `Reworked ${what} refused (${res.status}${said}); ${hint}`,
  };
}
