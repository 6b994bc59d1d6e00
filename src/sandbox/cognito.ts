import { createHmac, randomUUID } from "node:crypto";
import type { FastifyReply } from "fastify";
import type { Simulator } from "./simulator.ts";
import { randomToken, safeEqual, signCognitoTokens, type RefreshGrant } from "./sim-jwt.ts";
import {
  applyControl,
  createIssuerCore,
  failWith,
  mediaType,
  nowIso,
  registerStateRoutes,
  SimError,
  takeFailure,
  userDirectory,
  type IssuerControl,
  type IssuerSettings,
  type IssuerSimulatorBase,
  type SimUser,
} from "./vendor-common.ts";

/**
 * Cognito Identity Provider JSON wire API (the 7targets API document): `POST /` with
 * `X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth` and
 * `Content-Type: application/x-amz-json-1.1`; flows USER_PASSWORD_AUTH and REFRESH_TOKEN_AUTH,
 * SECRET_HASH for clients with a secret, the NEW_PASSWORD_REQUIRED challenge, and Cognito's
 * error shape (HTTP 400, `x-amzn-ErrorType`, `{"__type","message"}`).
 */

export type CognitoUser = SimUser;
export interface CognitoClient {
  clientId: string;
  clientSecret?: string;
  /** Default both flows. */
  explicitAuthFlows?: ReadonlyArray<"USER_PASSWORD_AUTH" | "REFRESH_TOKEN_AUTH">;
}
/** Also `region`, `userPoolId`, `tokenLifetimeSeconds` (ExpiresIn, default 3600), `refreshTokenLifetimeSeconds`, `issuer`. */
export interface CognitoSimulatorOptions extends IssuerSettings {
  prefix?: string;
  clients: readonly CognitoClient[];
  users: readonly CognitoUser[];
  /** Unknown user → NotAuthorizedException instead of UserNotFoundException. */
  preventUserExistenceErrors?: boolean;
}
export interface CognitoAuthLogEntry {
  at: string;
  flow: string;
  clientId: string;
  username?: string;
  /** "tokens", "challenge:NEW_PASSWORD_REQUIRED" or the error type. */
  outcome: string;
}
export interface CognitoState {
  /** Every InitiateAuth call received. */
  tokenRequests: number;
  passwordAuths: number;
  refreshAuths: number;
  errors: number;
  log: CognitoAuthLogEntry[];
}
/** failNext: `{error: "TooManyRequestsException" (default), status?: 400, count?: 1, message?}`. */
export type CognitoControl = IssuerControl;
export interface CognitoSimulator extends Simulator, IssuerSimulatorBase {
  readonly state: CognitoState;
  control(c: CognitoControl): void;
}

export const INITIATE_AUTH_TARGET = "AWSCognitoIdentityProviderService.InitiateAuth";
const AMZ_JSON = "application/x-amz-json-1.1";
const FLOWS = ["USER_SRP_AUTH", "REFRESH_TOKEN_AUTH", "REFRESH_TOKEN", "CUSTOM_AUTH", "ADMIN_NO_SRP_AUTH"];
FLOWS.push("USER_PASSWORD_AUTH", "ADMIN_USER_PASSWORD_AUTH", "USER_AUTH");
const ERROR_NS = "http://internal.amazon.com/coral/com.amazonaws.cognito.identity.idp.model/";
// A Buffer, so that Fastify adds no charset: Cognito answers exactly `application/x-amz-json-1.1`.
const amzJson = (body: unknown) => Buffer.from(JSON.stringify(body));
const INVALID = Symbol("invalid body");
const NOT_AUTHORIZED = "NotAuthorizedException";
const INVALID_PARAMETER = "InvalidParameterException";

/** SECRET_HASH = Base64(HMAC_SHA256(key = client secret, message = username + client id)). */
export function cognitoSecretHash(username: string, clientId: string, clientSecret: string): string {
  return createHmac("sha256", clientSecret).update(`${username}${clientId}`).digest("base64");
}

const fail = failWith;

export function createCognitoSimulator(opts: CognitoSimulatorOptions): CognitoSimulator {
  const core = createIssuerCore(opts, 400);
  const { issuer, refreshTokens } = core;
  const clients = new Map(opts.clients.map((c) => [c.clientId, c]));
  const directory = userDirectory(opts.users);
  type User = (typeof directory.users)[number];
  const findUser = (name: string) => directory.find(name, true);
  const newState = (): CognitoState => ({
    tokenRequests: 0,
    passwordAuths: 0,
    refreshAuths: 0,
    errors: 0,
    log: [],
  });
  let state = newState();

  const checkSecretHash = (client: CognitoClient, params: Record<string, unknown>, usernames: string[]) => {
    const { clientId, clientSecret } = client;
    if (clientSecret === undefined) return;
    const given = params["SECRET_HASH"];
    if (typeof given !== "string" || given === "") {
      fail(NOT_AUTHORIZED, `Client ${clientId} is configured with secret but SECRET_HASH was not received`);
    }
    if (!usernames.some((u) => safeEqual(cognitoSecretHash(u, clientId, clientSecret), String(given)))) {
      fail(NOT_AUTHORIZED, `Unable to verify secret hash for client ${clientId}`);
    }
  };
  const param = (params: Record<string, unknown>, name: string): string => {
    const v = params[name];
    return typeof v === "string" && v !== ""
      ? v
      : fail(INVALID_PARAMETER, `Missing required parameter ${name}`);
  };
  const tokens = (user: User, grant: RefreshGrant) => {
    const t = signCognitoTokens(issuer, user, grant, core.lifetime, { withAtHash: false });
    return { AccessToken: t.accessToken, ExpiresIn: core.lifetime, IdToken: t.idToken, TokenType: "Bearer" };
  };

  const initiate = (body: Record<string, unknown>, entry: CognitoAuthLogEntry): Record<string, unknown> => {
    const { AuthFlow: flow, ClientId: clientId, AuthParameters: params = {} } = body;
    const invalid = (member: string, v: unknown) =>
      fail(
        INVALID_PARAMETER,
        `1 validation error detected: Value '${String(v)}' at '${member}' failed to satisfy constraint`,
      );
    if (typeof flow !== "string" || !FLOWS.includes(flow)) invalid("authFlow", flow);
    if (typeof clientId !== "string" || clientId === "") return invalid("clientId", clientId);
    if (typeof params !== "object" || params === null) return invalid("authParameters", params);
    const p = params as Record<string, unknown>;
    entry.clientId = clientId;
    const client =
      clients.get(clientId) ??
      fail("ResourceNotFoundException", `User pool client ${clientId} does not exist.`);
    const canonical = flow === "REFRESH_TOKEN" ? "REFRESH_TOKEN_AUTH" : String(flow);
    if (canonical !== "USER_PASSWORD_AUTH" && canonical !== "REFRESH_TOKEN_AUTH") {
      fail(INVALID_PARAMETER, `${canonical} is not supported by this simulator`);
    }
    const enabled: readonly string[] = client.explicitAuthFlows ?? [
      "USER_PASSWORD_AUTH",
      "REFRESH_TOKEN_AUTH",
    ];
    if (!enabled.includes(canonical)) {
      fail(INVALID_PARAMETER, `${canonical} flow not enabled for this client`);
    }
    if (canonical === "REFRESH_TOKEN_AUTH") {
      state.refreshAuths++;
      const found = refreshTokens.check(param(p, "REFRESH_TOKEN"));
      const user = found.ok ? findUser(found.grant.username) : undefined;
      if (!found.ok && found.reason === "revoked") fail(NOT_AUTHORIZED, "Refresh Token has been revoked");
      if (!found.ok && found.reason === "expired") fail(NOT_AUTHORIZED, "Refresh Token has expired");
      if (!found.ok || !user || found.grant.clientId !== clientId)
        return fail(NOT_AUTHORIZED, "Invalid Refresh Token");
      entry.username = user.username;
      checkSecretHash(client, p, [user.username, user.sub]);
      if (user.enabled === false) fail(NOT_AUTHORIZED, "User is disabled.");
      return { AuthenticationResult: tokens(user, found.grant), ChallengeParameters: {} };
    }
    state.passwordAuths++;
    const username = (entry.username = param(p, "USERNAME"));
    const password = param(p, "PASSWORD");
    checkSecretHash(client, p, [username]);
    const user = findUser(username);
    if (!user && opts.preventUserExistenceErrors) fail(NOT_AUTHORIZED, "Incorrect username or password.");
    if (!user) return fail("UserNotFoundException", "User does not exist.");
    if (user.enabled === false) fail(NOT_AUTHORIZED, "User is disabled.");
    if (user.status === "RESET_REQUIRED")
      fail("PasswordResetRequiredException", "Password reset required for the user");
    if (!safeEqual(user.password, password)) fail(NOT_AUTHORIZED, "Incorrect username or password.");
    if (user.status === "UNCONFIRMED") fail("UserNotConfirmedException", "User is not confirmed.");
    if (user.status === "FORCE_CHANGE_PASSWORD") {
      entry.outcome = "challenge:NEW_PASSWORD_REQUIRED";
      const attributes = user.email !== undefined ? { email: user.email, email_verified: "true" } : {};
      return {
        ChallengeName: "NEW_PASSWORD_REQUIRED",
        ChallengeParameters: {
          USER_ID_FOR_SRP: user.username,
          requiredAttributes: "[]",
          userAttributes: JSON.stringify(attributes),
        },
        Session: randomToken(160),
      };
    }
    const grant: RefreshGrant = {
      username: user.username,
      clientId,
      scope: "aws.cognito.signin.user.admin",
      authTime: Math.floor(Date.now() / 1000),
      originJti: randomUUID(),
    };
    const RefreshToken = refreshTokens.issue(grant, core.refreshLifetime);
    return { AuthenticationResult: { ...tokens(user, grant), RefreshToken }, ChallengeParameters: {} };
  };

  const sendError = (reply: FastifyReply, e: SimError) =>
    reply
      .code(e.status)
      .header("content-type", AMZ_JSON)
      .header("x-amzn-ErrorType", `${e.code}:${ERROR_NS}`)
      .header("x-amzn-ErrorMessage", e.message)
      .send(amzJson({ __type: e.code, message: e.message }));

  const sim: CognitoSimulator = {
    name: "cognito",
    prefix: opts.prefix ?? "/cognito",
    ...core.base(),
    get state() {
      return state;
    },
    control: (c) => applyControl(c, core.handlers(sim.reset)),
    reset() {
      state = newState();
      core.reset();
    },
    register(app) {
      app.addContentTypeParser(AMZ_JSON, { parseAs: "string" }, (_req, body, done) => {
        try {
          done(null, JSON.parse(body as string));
        } catch {
          done(null, INVALID);
        }
      });
      app.addContentTypeParser("*", { parseAs: "string" }, (_req, _body, done) => done(null, INVALID));
      const snapshot = () => ({ ...state, ...core.snapshot() });
      registerStateRoutes(app, snapshot, (body) => sim.control(body as CognitoControl));
      app.post("/", async (req, reply) => {
        const target = req.headers["x-amz-target"];
        if (target !== INITIATE_AUTH_TARGET) {
          const msg = `Unknown or missing X-Amz-Target: ${String(target)}`;
          return sendError(reply, new SimError("UnknownOperationException", msg));
        }
        state.tokenRequests++;
        const entry: CognitoAuthLogEntry = { at: nowIso(), flow: "", clientId: "", outcome: "tokens" };
        state.log.push(entry);
        try {
          if (mediaType(req.headers["content-type"]) !== AMZ_JSON) {
            fail("SerializationException", `Unsupported Content-Type; expected ${AMZ_JSON}`);
          }
          const body = req.body;
          if (typeof body !== "object" || body === null || Array.isArray(body)) {
            return fail("SerializationException", "Request body is not a valid JSON object");
          }
          entry.flow = String((body as Record<string, unknown>)["AuthFlow"] ?? "");
          if (takeFailure(core.failure)) {
            const f = core.failure;
            throw new SimError(f.error ?? "TooManyRequestsException", f.message ?? "Simulated", f.status);
          }
          const result = initiate(body as Record<string, unknown>, entry);
          reply.header("content-type", AMZ_JSON).header("x-amzn-RequestId", randomUUID());
          return reply.send(amzJson(result));
        } catch (e) {
          if (!(e instanceof SimError)) throw e;
          state.errors++;
          entry.outcome = e.code;
          return sendError(reply, e);
        }
      });
    },
  };
  return sim;
}
