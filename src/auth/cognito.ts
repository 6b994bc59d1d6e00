import { createHmac } from "node:crypto";
import { z } from "zod";
import { type HttpResult, newRequest } from "../http/http-client.ts";
import { applyBearer, bearerFields, expiresAtFrom, jwtPayload } from "./bearer.ts";
import {
  type AuthStrategy,
  type Credential,
  type ObtainContext,
  type ObtainResult,
  configuredLifetimeMs,
} from "./strategy.ts";
import { noAnswer } from "./token-response.ts";
import type { AuthCode } from "../domain/codes.ts";

const schema = z
  .object({
    type: z.literal("cognito"),
    /** AWS region of the user pool; the endpoint is https://cognito-idp.<region>.amazonaws.com/. */
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "an AWS region such as us-east-1")
      .default("us-east-1"),
    /** Overrides the regional endpoint (a VPC endpoint, cognito-local, a test double). */
    endpoint: z.url({ protocol: /^https?$/ }).optional(),
    /** The app client id (the 7targets API document: "ask us for the APP_CLIENT_ID"). */
    clientId: z.string().min(1),
    /** The app client's secret, when it has one: then every call carries SECRET_HASH. */
    clientSecret: z.string().min(1).optional(),
    username: z.string().min(1),
    password: z.string().min(1),
    /** Which token the pushes carry: the 7targets API document uses the IdToken. */
    token: z.enum(["IdToken", "AccessToken"]).default("IdToken"),
    ...bearerFields,
  })
  .strict();

export type CognitoConfig = z.infer<typeof schema>;

export const INITIATE_AUTH_TARGET = "AWSCognitoIdentityProviderService.InitiateAuth";
const AMZ_JSON = "application/x-amz-json-1.1";

/** SECRET_HASH = Base64(HMAC_SHA256(key = client secret, message = username + client id)). */
export function secretHash(username: string, clientId: string, clientSecret: string): string {
  return createHmac("sha256", clientSecret).update(`${username}${clientId}`).digest("base64");
}

export function cognitoEndpoint(config: Pick<CognitoConfig, "endpoint" | "region">): string {
  return config.endpoint ?? `https://cognito-idp.${config.region}.amazonaws.com/`;
}

/**
 * Cognito error types → stable codes. Everything not listed is `auth_rejected` (4xx) or
 * `auth_unreachable` (5xx, throttling: try again later).
 */
const ERROR_CODES: Record<string, AuthCode> = {
  NotAuthorizedException: "auth_rejected",
  UserNotFoundException: "auth_rejected",
  PasswordResetRequiredException: "auth_password_reset_required",
  UserNotConfirmedException: "auth_user_not_confirmed",
  ResourceNotFoundException: "auth_misconfigured",
  InvalidParameterException: "auth_misconfigured",
  InvalidUserPoolConfigurationException: "auth_misconfigured",
  UnknownOperationException: "auth_misconfigured",
  TooManyRequestsException: "auth_unreachable",
  LimitExceededException: "auth_unreachable",
  InternalErrorException: "auth_unreachable",
};

const CHALLENGE_HINTS: Record<string, string> = {
  NEW_PASSWORD_REQUIRED:
    "the user must set a permanent password first (sign in once, or AdminSetUserPassword with Permanent)",
  SMS_MFA: "the user has MFA; use a user without MFA for leadpush",
  SOFTWARE_TOKEN_MFA: "the user has MFA; use a user without MFA for leadpush",
  MFA_SETUP: "the pool asks the user to set up MFA; use a user without MFA for leadpush",
};

type Failure = Extract<ObtainResult, { ok: false }>;

/** One line of Cognito's own words (it never echoes a password), without a trailing period. */
function clean(message: string): string {
  return message.replace(/\s+/g, " ").trim().replace(/\.$/, "").slice(0, 200);
}

/** What an InitiateAuth answer that is not 2xx means. */
function cognitoFailure(result: Extract<HttpResult, { ok: true }>["response"]): Failure {
  const body = result.json() as Record<string, unknown> | undefined;
  const rawType =
    (typeof body?.["__type"] === "string" ? body["__type"] : undefined) ??
    result.headers["x-amzn-errortype"]?.split(":")[0] ??
    "";
  const type = rawType.split("#").pop() ?? "";
  const said = body?.["message"] ?? body?.["Message"];
  const message = typeof said === "string" && said.trim() ? clean(said) : `answered ${result.status}`;
  let code = ERROR_CODES[type];
  if (!code) code = result.status >= 500 || result.status === 429 ? "auth_unreachable" : "auth_rejected";
  return { ok: false, code, message: `Cognito: ${message}${type ? ` (${type})` : ""}` };
}

async function initiateAuth(
  config: CognitoConfig,
  ctx: ObtainContext,
  flow: "USER_PASSWORD_AUTH" | "REFRESH_TOKEN_AUTH",
  params: Record<string, string>,
  hashUser: string,
): Promise<ObtainResult> {
  const req = newRequest("POST", cognitoEndpoint(config));
  req.headers["x-amz-target"] = INITIATE_AUTH_TARGET;
  req.headers["content-type"] = AMZ_JSON;
  const AuthParameters = { ...params };
  if (config.clientSecret !== undefined) {
    AuthParameters["SECRET_HASH"] = secretHash(hashUser, config.clientId, config.clientSecret);
  }
  req.contentType = "raw";
  req.body = JSON.stringify({ AuthFlow: flow, ClientId: config.clientId, AuthParameters });
  const step = flow === "REFRESH_TOKEN_AUTH" ? "auth:refresh" : "auth:login";
  const result = await ctx.http.send(req, { timeoutMs: ctx.timeoutMs, step });
  if (!result.ok) return noAnswer("Cognito", result.error);
  const res = result.response;
  if (res.status < 200 || res.status >= 300) return cognitoFailure(res);
  const answer = res.json() as Record<string, unknown> | undefined;
  const challenge = answer?.["ChallengeName"];
  if (typeof challenge === "string" && challenge) {
    const hint = CHALLENGE_HINTS[challenge] ?? "leadpush cannot answer it without a person";
    return {
      ok: false,
      code: "auth_challenge_required",
      message: `Cognito asks for the ${challenge} challenge: ${hint}`,
    };
  }
  const auth = answer?.["AuthenticationResult"] as Record<string, unknown> | undefined;
  const token = auth?.[config.token];
  if (typeof token !== "string" || token === "") {
    return {
      ok: false,
      code: "auth_bad_response",
      message: `Cognito answered ${res.status} without AuthenticationResult.${config.token}`,
    };
  }
  const refresh = auth?.["RefreshToken"];
  const expiresAt = expiresAtFrom(auth?.["ExpiresIn"], ctx.now());
  // Both tokens are named so that the runtime's redactor hides both wherever they appear.
  const credential: Credential = { values: { token } };
  for (const [name, key] of [
    ["idToken", "IdToken"],
    ["accessToken", "AccessToken"],
  ] as const) {
    const v = auth?.[key];
    if (typeof v === "string" && v && v !== token) credential.values[name] = v;
  }
  if (typeof refresh === "string" && refresh) credential.refresh = refresh;
  if (expiresAt !== undefined) credential.expiresAt = expiresAt;
  return { ok: true, credential };
}

/** The user name Cognito hashes a refresh with: the pool's own name for the user, from the last token. */
function refreshUser(config: CognitoConfig, previous: Credential): string {
  const claims = jwtPayload(previous.values["token"]);
  const name = claims?.["cognito:username"] ?? claims?.["username"];
  return typeof name === "string" && name ? name : config.username;
}

/**
 * The 7targets API document: AWS Cognito `InitiateAuth` with `USER_PASSWORD_AUTH` (the documented wire call:
 * one POST with `X-Amz-Target` and `application/x-amz-json-1.1`), `SECRET_HASH` for clients with a
 * secret; the IdToken (or AccessToken) as bearer. Before expiry the runtime calls `obtain` again
 * with the previous credential: `REFRESH_TOKEN_AUTH`, and a password login when that is refused.
 */
export const cognitoAuth: AuthStrategy<CognitoConfig> = {
  type: "cognito",
  schema,
  secretFields: ["clientSecret", "password"],
  lifetimeMs: configuredLifetimeMs,
  async obtain(config, ctx) {
    const previous = ctx.previous;
    if (previous?.refresh !== undefined) {
      const params = { REFRESH_TOKEN: previous.refresh };
      const refreshed = await initiateAuth(
        config,
        ctx,
        "REFRESH_TOKEN_AUTH",
        params,
        refreshUser(config, previous),
      );
      if (refreshed.ok) {
        // Cognito sends no new refresh token unless rotation is on: the old one stays valid.
        refreshed.credential.refresh ??= previous.refresh;
        return refreshed;
      }
      // Unreachable: a login would not get through either. Refused (revoked, expired): log in again.
      if (refreshed.code === "auth_unreachable") return refreshed;
    }
    const params = { USERNAME: config.username, PASSWORD: config.password };
    return initiateAuth(config, ctx, "USER_PASSWORD_AUTH", params, config.username);
  },
  apply: applyBearer,
};
