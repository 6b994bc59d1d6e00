import { z } from "zod";
import { newRequest } from "../http/http-client.ts";
import { type AuthStrategy, configuredLifetimeMs } from "./strategy.ts";
import { badResponse, stringAt, tokenResponse, ttlSecondsField } from "./token-response.ts";

const schema = z
  .object({
    type: z.literal("key_token"),
    /** Where the user token is fetched (POST, JSON). */
    tokenUrl: z.url({ protocol: /^https?$/ }),
    /** Sent as the `APPLICATION_ID` header of the token request and of every push. */
    applicationId: z.string().min(1),
    username: z.string().min(1),
    password: z.string(),
    /** The client's secret key, sent as `Key`. */
    key: z.string().min(1),
    ttlSeconds: ttlSecondsField,
  })
  .strict();

type KeyTokenConfig = z.infer<typeof schema>;

/** Where the Housing lead-push document puts the token in the token endpoint's answer. */
export const USER_TOKEN_PATH = "UserAuthenticationResult.data.UserToken";

/**
 * The Housing lead-push document's "Key Based Auth Handler": POST `{username, Password, Key}` (the document's
 * capitalization) with the `APPLICATION_ID` header; the answer carries
 * `UserAuthenticationResult.data.UserToken`; push with `APPLICATION_ID` and `USER_TOKEN`.
 * Header names are sent lower-case (HTTP header names are case-insensitive).
 */
export const keyTokenAuth: AuthStrategy<KeyTokenConfig> = {
  type: "key_token",
  schema,
  secretFields: ["password", "key"],
  lifetimeMs: configuredLifetimeMs,
  async obtain(config, ctx) {
    const req = newRequest("POST", config.tokenUrl);
    req.headers["application_id"] = config.applicationId;
    req.contentType = "json";
    req.body = { username: config.username, Password: config.password, Key: config.key };
    const got = tokenResponse(await ctx.http.send(req, { timeoutMs: ctx.timeoutMs, step: "auth:token" }));
    if (!got.ok) return got;
    const body = got.response.json();
    const token = stringAt(body, USER_TOKEN_PATH);
    if (token) return { ok: true, credential: { values: { token } } };
    // Such services often answer 200 with `success: false` for wrong credentials.
    const result = (body as { UserAuthenticationResult?: unknown } | undefined)?.UserAuthenticationResult;
    if (result && typeof result === "object" && (result as { success?: unknown }).success === false) {
      return { ok: false, code: "auth_rejected", message: "token endpoint answered success: false" };
    }
    return badResponse(got.response, `a token at ${USER_TOKEN_PATH}`);
  },
  apply(req, config, credential) {
    req.headers["application_id"] = config.applicationId;
    req.headers["user_token"] = credential?.values["token"] ?? "";
  },
};
