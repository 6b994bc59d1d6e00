import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";

/**
 * JWT-like tokens for the Cognito simulators: `header.payload.signature`, base64url, HS256 with a
 * key only the simulators know (real Cognito signs RS256 with a JWKS key; the shape is the same).
 * One issuer signs; any simulator holding the issuer (or its `verifier` view) checks signature,
 * `iss`, expiry, `token_use` and audience. `expireAll()` makes every token issued so far expired.
 */

export type SimClaims = Record<string, unknown> & { iss: string; iat: number; exp: number; jti: string };

export type VerifyFailure = "malformed" | "signature" | "issuer" | "expired" | "token_use" | "audience";
export type VerifyResult = { ok: true; claims: SimClaims } | { ok: false; reason: VerifyFailure };

export interface VerifyOptions {
  /** Required `token_use` claim ("id" for IdTokens, "access" for AccessTokens). */
  tokenUse?: "id" | "access";
  /** Accepted client ids (`aud` of id tokens, `client_id` of access tokens). */
  audience?: string | readonly string[];
}

export interface SimJwtVerifier {
  readonly issuer: string;
  verify(token: string, opts?: VerifyOptions): VerifyResult;
}

export interface SimJwtIssuer extends SimJwtVerifier {
  /** Signs `claims` plus `iss`, `iat`, `exp` (now + lifetime, rounded up to the second), `jti`. */
  sign(claims: Record<string, unknown>, lifetimeSeconds: number): string;
  /** Every token issued so far now fails verification with `expired`. Returns how many. */
  expireAll(): number;
  /** Forget the expiry marks (used by simulator resets). */
  forget(): void;
}

export interface SimJwtIssuerOptions {
  /** HMAC key; random when omitted. */
  secret?: string;
  /** `iss` claim; default a Cognito-style user pool URL. */
  issuer?: string;
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/** Constant-time string comparison. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** An opaque refresh token shaped like Cognito's (a five-part JWE). */
export function opaqueRefreshToken(): string {
  const header = Buffer.from('{"cty":"JWT","enc":"A256GCM","alg":"RSA-OAEP"}').toString("base64url");
  return [header, randomToken(96), randomToken(12), randomToken(384), randomToken(16)].join(".");
}

/** Decodes a token's payload without verifying it (tests, logs). */
export function decodeJwtPayload(token: string): Record<string, unknown> | null {
  const part = token.split(".")[1];
  if (part === undefined) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function defaultCognitoIssuer(region = "us-east-1", userPoolId = `${region}_Sandbox01`): string {
  return `https://cognito-idp.${region}.amazonaws.com/${userPoolId}`;
}

export function createSimJwtIssuer(opts: SimJwtIssuerOptions = {}): SimJwtIssuer {
  const key = opts.secret ?? randomToken(32);
  const issuer = opts.issuer ?? defaultCognitoIssuer();
  const kid = createHash("sha256").update(key).digest("base64url").slice(0, 16);
  const header = Buffer.from(JSON.stringify({ kid, alg: "HS256", typ: "JWT" })).toString("base64url");
  const issued = new Map<string, number>(); // jti -> exp (seconds)
  const expired = new Map<string, number>();
  const mac = (data: string) => createHmac("sha256", key).update(data).digest("base64url");

  const prune = (map: Map<string, number>) => {
    if (map.size < 5000) return;
    const now = Date.now() / 1000;
    for (const [jti, exp] of map) if (exp <= now) map.delete(jti);
  };

  return {
    issuer,
    sign(claims, lifetimeSeconds) {
      const nowMs = Date.now();
      const iat = Math.floor(nowMs / 1000);
      const exp = Math.ceil(nowMs / 1000) + Math.max(0, Math.round(lifetimeSeconds));
      const jti = randomUUID();
      const payload = { ...claims, iss: issuer, iat, exp, jti };
      const body = `${header}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
      prune(issued);
      issued.set(jti, exp);
      return `${body}.${mac(body)}`;
    },
    verify(token, vopts = {}) {
      const parts = token.split(".");
      if (parts.length !== 3) return { ok: false, reason: "malformed" };
      const [h, p, s] = parts as [string, string, string];
      if (!safeEqual(mac(`${h}.${p}`), s)) return { ok: false, reason: "signature" };
      const claims = decodeJwtPayload(token) as SimClaims | null;
      if (claims === null || typeof claims.exp !== "number" || typeof claims.jti !== "string") {
        return { ok: false, reason: "malformed" };
      }
      if (claims.iss !== issuer) return { ok: false, reason: "issuer" };
      if (Date.now() >= claims.exp * 1000 || expired.has(claims.jti)) return { ok: false, reason: "expired" };
      if (vopts.tokenUse !== undefined && claims["token_use"] !== vopts.tokenUse) {
        return { ok: false, reason: "token_use" };
      }
      if (vopts.audience !== undefined) {
        const allowed = typeof vopts.audience === "string" ? [vopts.audience] : vopts.audience;
        const aud = claims["aud"] ?? claims["client_id"];
        if (typeof aud !== "string" || !allowed.includes(aud)) return { ok: false, reason: "audience" };
      }
      return { ok: true, claims };
    },
    expireAll() {
      const n = issued.size;
      prune(expired);
      for (const [jti, exp] of issued) expired.set(jti, exp);
      issued.clear();
      return n;
    },
    forget() {
      expired.clear();
    },
  };
}

/** What a refresh token stands for. */
export interface RefreshGrant {
  username: string;
  clientId: string;
  scope: string;
  authTime: number;
  originJti: string;
  nonce?: string | undefined;
}
export type RefreshCheck =
  { ok: true; grant: RefreshGrant } | { ok: false; reason: "unknown" | "revoked" | "expired" };

/** Server-side store of opaque refresh tokens (both Cognito simulators). */
export interface RefreshTokenStore {
  issue(grant: RefreshGrant, lifetimeSeconds: number): string;
  check(token: string): RefreshCheck;
  /** Revokes every refresh token issued so far; returns how many. */
  revokeAll(): number;
  clear(): void;
  readonly size: number;
}

export function createRefreshTokenStore(): RefreshTokenStore {
  const tokens = new Map<string, { grant: RefreshGrant; exp: number; revoked: boolean }>();
  return {
    issue(grant, lifetimeSeconds) {
      const token = opaqueRefreshToken();
      tokens.set(token, { grant, exp: Date.now() + lifetimeSeconds * 1000, revoked: false });
      return token;
    },
    check(token) {
      const e = tokens.get(token);
      if (!e) return { ok: false, reason: "unknown" };
      if (e.revoked) return { ok: false, reason: "revoked" };
      if (Date.now() >= e.exp) return { ok: false, reason: "expired" };
      return { ok: true, grant: e.grant };
    },
    revokeAll() {
      let n = 0;
      for (const e of tokens.values()) if (!e.revoked) ((e.revoked = true), n++);
      return n;
    },
    clear: () => tokens.clear(),
    get size() {
      return tokens.size;
    },
  };
}

/** What both Cognito simulators need to mint a user's ID and access tokens. */
export interface CognitoTokenSubject {
  username: string;
  sub: string;
  email?: string | undefined;
}

/** Mints Cognito-shaped AccessToken and IdToken (the latter unless `withIdToken: false`) for a grant. */
export function signCognitoTokens(
  issuer: SimJwtIssuer,
  user: CognitoTokenSubject,
  grant: RefreshGrant,
  lifetimeSeconds: number,
  opts: { withIdToken?: boolean; withAtHash?: boolean } = {},
): { accessToken: string; idToken: string | undefined } {
  const common = {
    sub: user.sub,
    origin_jti: grant.originJti,
    event_id: randomUUID(),
    auth_time: grant.authTime,
  };
  const accessToken = issuer.sign(
    {
      ...common,
      client_id: grant.clientId,
      token_use: "access",
      scope: grant.scope,
      username: user.username,
    },
    lifetimeSeconds,
  );
  if (opts.withIdToken === false) return { accessToken, idToken: undefined };
  const atHash = createHash("sha256").update(accessToken).digest().subarray(0, 16).toString("base64url");
  const idToken = issuer.sign(
    {
      ...common,
      ...(opts.withAtHash !== false ? { at_hash: atHash } : {}),
      aud: grant.clientId,
      token_use: "id",
      "cognito:username": user.username,
      ...(user.email !== undefined ? { email: user.email, email_verified: true } : {}),
      ...(grant.nonce !== undefined ? { nonce: grant.nonce } : {}),
    },
    lifetimeSeconds,
  );
  return { accessToken, idToken };
}
