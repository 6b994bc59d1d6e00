import { z } from "zod";
import { newRequest } from "../http/http-client.ts";
import { basicHeader } from "./basic.ts";
import { type AuthStrategy, configuredLifetimeMs } from "./strategy.ts";
import { badResponse, tokenResponse, ttlSecondsField } from "./token-response.ts";

const schema = z
  .object({
    type: z.literal("csrf"),
    tokenUrl: z
      .url({ protocol: /^https?$/ })
      .describe("Where the CSRF token is fetched (GET with HTTP Basic and `x-csrf-token: Fetch`)."),
    username: z.string().min(1).describe("HTTP Basic user of both the token fetch and every push."),
    password: z.string().describe("HTTP Basic password of both the token fetch and every push."),
    ttlSeconds: ttlSecondsField,
  })
  .strict();

type CsrfConfig = z.infer<typeof schema>;

/** `SID=abc; path=/; HttpOnly` → `SID=abc`. */
function cookiePair(setCookie: string): string {
  return (setCookie.split(";")[0] ?? "").trim();
}

/**
 * The Housing lead-push document's "CSRF Request Handler" (the SAP Gateway handshake): GET `tokenUrl` with
 * Basic and `x-csrf-token: Fetch`, keep the `x-csrf-token` response header and every Set-Cookie; push with
 * Basic, the token, the cookies and `cache-control: no-cache`. A push answered 403 with
 * `x-csrf-token: Required` means the token (its session) went stale.
 */
export const csrfAuth: AuthStrategy<CsrfConfig> = {
  type: "csrf",
  schema,
  secretFields: ["password"],
  lifetimeMs: configuredLifetimeMs,
  async obtain(config, ctx) {
    const req = newRequest("GET", config.tokenUrl);
    req.headers["authorization"] = basicHeader(config.username, config.password);
    req.headers["x-csrf-token"] = "Fetch";
    const got = tokenResponse(await ctx.http.send(req, { timeoutMs: ctx.timeoutMs, step: "auth:csrf" }));
    if (!got.ok) return got;
    const token = got.response.headers["x-csrf-token"]?.trim();
    if (!token || token.toLowerCase() === "required") {
      return badResponse(got.response, "an x-csrf-token response header");
    }
    const cookie = got.response.setCookies.map(cookiePair).filter(Boolean).join("; ");
    return { ok: true, credential: { values: { csrfToken: token, ...(cookie ? { cookie } : {}) } } };
  },
  apply(req, config, credential) {
    req.headers["authorization"] = basicHeader(config.username, config.password);
    req.headers["x-csrf-token"] = credential?.values["csrfToken"] ?? "";
    const cookie = credential?.values["cookie"];
    if (cookie) req.headers["cookie"] = cookie;
    req.headers["cache-control"] = "no-cache";
  },
  isRejection(status, headers) {
    return status === 403 && (headers["x-csrf-token"] ?? "").trim().toLowerCase() === "required";
  },
};
