import { z } from "zod";
import { newRequest } from "../http/http-client.ts";
import {
  type AuthStrategy,
  type ObtainContext,
  type ObtainResult,
  configuredLifetimeMs,
} from "./strategy.ts";
import { badResponse, expiresAtFrom, stringAt, tokenResponse, ttlSecondsField } from "./token-response.ts";

const schema = z
  .object({
    type: z.literal("oauth2"),
    /** The token endpoint (POST). */
    tokenUrl: z.url({ protocol: /^https?$/ }),
    /** Default: `password` when `username` is given, else `client_credentials`. */
    grantType: z.enum(["password", "client_credentials"]).optional(),
    clientId: z.string().min(1),
    /** Absent: a public client (no secret sent). */
    clientSecret: z.string().optional(),
    /** Resource owner credentials of the `password` grant. */
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    /** Space-separated scopes, sent as `scope` when given. */
    scope: z.string().min(1).optional(),
    /** `form`: RFC 6749 (`application/x-www-form-urlencoded`); `json`: the Housing lead-push document's. */
    bodyFormat: z.enum(["form", "json"]).default("form"),
    /** Client credentials in the body (`client_id`, `client_secret`) or as HTTP Basic (form only). */
    clientAuth: z.enum(["body", "basic"]).default("body"),
    /** Where the token is in the answer (a dotted path for nested ones). */
    tokenField: z.string().min(1).default("access_token"),
    /** The push header carrying the token, and what goes before it. */
    headerName: z
      .string()
      .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "an HTTP header name")
      .default("authorization"),
    headerPrefix: z.string().default("Bearer "),
    ttlSeconds: ttlSecondsField,
  })
  .strict()
  .refine((c) => !(c.bodyFormat === "json" && c.clientAuth === "basic"), {
    message: 'clientAuth "basic" is for bodyFormat "form"',
    path: ["clientAuth"],
  })
  .refine((c) => grantOf(c) !== "password" || (c.username !== undefined && c.password !== undefined), {
    message: 'grantType "password" needs username and password',
    path: ["username"],
  });

type OAuth2Config = z.infer<typeof schema>;

function grantOf(c: { grantType?: string | undefined; username?: string | undefined }): string {
  return c.grantType ?? (c.username !== undefined ? "password" : "client_credentials");
}

/** `application/x-www-form-urlencoded` encoding of one value, as RFC 6749 §2.3.1 asks for Basic. */
const formEncode = (s: string) => new URLSearchParams({ v: s }).toString().slice(2);

/** The grant's parameters, without client authentication. */
function grantParams(config: OAuth2Config): Record<string, string> {
  const grant = grantOf(config);
  const p: Record<string, string> = { grant_type: grant };
  // The Housing lead-push document's JSON body carries username and password whatever the grant; RFC 6749
  // only for `password`.
  if (grant === "password" || config.bodyFormat === "json") {
    if (config.username !== undefined) p["username"] = config.username;
    if (config.password !== undefined) p["password"] = config.password;
  }
  if (config.scope !== undefined) p["scope"] = config.scope;
  return p;
}

async function tokenRequest(
  config: OAuth2Config,
  ctx: ObtainContext,
  params: Record<string, string>,
  step: string,
): Promise<ObtainResult> {
  const req = newRequest("POST", config.tokenUrl);
  req.headers["accept"] = "application/json";
  const body: Record<string, string> = { ...params };
  if (config.clientAuth === "basic") {
    const pair = `${formEncode(config.clientId)}:${formEncode(config.clientSecret ?? "")}`;
    req.headers["authorization"] = "Basic " + Buffer.from(pair, "utf8").toString("base64");
  } else {
    body["client_id"] = config.clientId;
    if (config.clientSecret !== undefined) body["client_secret"] = config.clientSecret;
  }
  req.contentType = config.bodyFormat;
  req.body = body;
  const got = tokenResponse(await ctx.http.send(req, { timeoutMs: ctx.timeoutMs, step }));
  if (!got.ok) return got;
  const answer = got.response.json();
  const token = stringAt(answer, config.tokenField);
  if (!token) return badResponse(got.response, `a token in ${config.tokenField}`);
  const o = answer as Record<string, unknown>;
  const refresh =
    typeof o["refresh_token"] === "string" && o["refresh_token"] ? o["refresh_token"] : undefined;
  const expiresAt = expiresAtFrom(o["expires_in"], ctx.now());
  return {
    ok: true,
    credential: {
      values: { token },
      ...(expiresAt !== undefined ? { expiresAt } : {}),
      ...(refresh !== undefined ? { refresh } : {}),
    },
  };
}

/**
 * The Housing lead-push document's "OAuth2 Request Handler", and standard OAuth 2.0 (RFC 6749) `password` and
 * `client_credentials` grants: POST the token request, push with `Authorization: Bearer <token>`.
 * When the server gave a refresh token, the next fetch uses it (grant_type=refresh_token) and falls
 * back to a full token request when the refresh is refused.
 */
export const oauth2Auth: AuthStrategy<OAuth2Config> = {
  type: "oauth2",
  schema,
  secretFields: ["clientSecret", "password"],
  lifetimeMs: configuredLifetimeMs,
  async obtain(config, ctx) {
    const refreshToken = ctx.previous?.refresh;
    if (refreshToken !== undefined) {
      const params: Record<string, string> = { grant_type: "refresh_token", refresh_token: refreshToken };
      const refreshed = await tokenRequest(config, ctx, params, "auth:refresh");
      if (refreshed.ok) {
        // Without rotation the server sends no new refresh token: the old one stays valid.
        const credential = { ...refreshed.credential, refresh: refreshed.credential.refresh ?? refreshToken };
        return { ok: true, credential };
      }
      // Refused or unusable: a full token request. Unreachable: it would not get through either.
      if (refreshed.code === "auth_unreachable") return refreshed;
    }
    return tokenRequest(config, ctx, grantParams(config), "auth:token");
  },
  apply(req, config, credential) {
    req.headers[config.headerName.toLowerCase()] = config.headerPrefix + (credential?.values["token"] ?? "");
  },
};
