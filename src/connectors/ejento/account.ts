import { authAppUrl, detail, type EjentoAuthConfig } from "../../auth/ejento.ts";
import type { AuthCode } from "../../domain/codes.ts";
import { type HttpResponse, newRequest, type OutboundRequest } from "../../http/http-client.ts";
import { AppError } from "../../util/errors.ts";
import type { ConnectorRouteDeps } from "../connector.ts";
import { sendWithAuth } from "../push.ts";

/**
 * The Ejento account behind a destination, on the auth app (the Ejento API document): register it (the only
 * way to create a user), list and update users. Logins go through the credential runtime (one cached
 * login per destination, shared with deliveries); the users API gets the auth-app token.
 */
export type AccountDeps = Pick<ConnectorRouteDeps, "open">;

export interface EjentoUser {
  id: string;
  email: string;
  fullName: string | null;
  isActive: boolean;
  isSuperuser: boolean;
}

export interface UserChanges {
  email?: string;
  fullName?: string | null;
  isActive?: boolean;
  isSuperuser?: boolean;
  password?: string;
}

const PAGE = 100;
const MAX_PAGES = 1000;

export async function registerAccount(deps: AccountDeps, destination: string, fullName?: string) {
  const { d, auth, http } = await open(deps, destination);
  const req = newRequest("POST", authAppUrl(auth, auth.paths.register));
  req.headers["accept"] = "application/json";
  req.contentType = "json";
  req.body = { email: auth.email, password: auth.password, ...(fullName ? { full_name: fullName } : {}) };
  const sent = await http.send(req, { timeoutMs: d.timeoutMs, step: "register" });
  if (!sent.ok) throw unavailable(sent.error.message);
  const res = sent.response;
  if (res.status === 400 && /already exists/i.test(res.text)) {
    throw new AppError(409, "ejento_user_exists", `Ejento already has a user ${auth.email}${detail(res)}`);
  }
  return userView(expectOk(res, "register"));
}

/** Every user, paged through `GET /api/users/?skip=&limit=` (needs a superuser account). */
export async function listUsers(deps: AccountDeps, destination: string) {
  const { auth, ctx } = await open(deps, destination);
  const users: EjentoUser[] = [];
  let count: number | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const url = `${authAppUrl(auth, "/api/users/")}?skip=${users.length}&limit=${PAGE}`;
    const res = await authed(ctx, () => get(url), "users");
    const body = expectOk(res, "list users") as { data?: unknown[]; count?: unknown } | unknown[];
    const rows = Array.isArray(body) ? body : Array.isArray(body.data) ? body.data : [];
    if (!Array.isArray(body) && typeof body.count === "number") count = body.count;
    users.push(...rows.map(userView));
    if (rows.length < PAGE || (count !== undefined && users.length >= count)) break;
  }
  return { data: users, count: count ?? users.length };
}

export async function updateUser(
  deps: AccountDeps,
  destination: string,
  userId: string,
  changes: UserChanges,
) {
  const { auth, ctx } = await open(deps, destination);
  const body: Record<string, unknown> = {};
  if (changes.email !== undefined) body.email = changes.email;
  if (changes.fullName !== undefined) body.full_name = changes.fullName;
  if (changes.isActive !== undefined) body.is_active = changes.isActive;
  if (changes.isSuperuser !== undefined) body.is_superuser = changes.isSuperuser;
  if (changes.password !== undefined) body.password = changes.password;
  const url = authAppUrl(auth, `/api/users/${encodeURIComponent(userId)}`);
  const res = await authed(
    ctx,
    () => {
      const req = newRequest("PATCH", url);
      req.headers["accept"] = "application/json";
      req.contentType = "json";
      req.body = body;
      return req;
    },
    "update user",
  );
  if (res.status === 404) throw new AppError(404, "not_found", `Ejento has no user ${userId}${detail(res)}`);
  return userView(expectOk(res, "update user"));
}

async function open(deps: AccountDeps, idOrName: string) {
  const d = await deps.open(idOrName);
  const auth = d.auth as EjentoAuthConfig;
  const { http } = d;
  // Same destination, same cached login as deliveries; this session attaches the auth-app token.
  const authApp: EjentoAuthConfig = { ...auth, token: "auth_app" };
  const session = d.authSession(authApp);
  return { d, auth, http, ctx: { auth: session, http, destination: { timeoutMs: d.timeoutMs } } };
}

function get(url: string): OutboundRequest {
  const req = newRequest("GET", url);
  req.headers["accept"] = "application/json";
  return req;
}

async function authed(
  ctx: Parameters<typeof sendWithAuth>[0],
  build: () => OutboundRequest,
  step: string,
): Promise<HttpResponse> {
  const sent = await sendWithAuth(ctx, build, step);
  if (sent.ok) return sent.response;
  const o = sent.outcome;
  const code = "code" in o ? o.code : "vendor_unavailable";
  const message = "message" in o ? o.message : "Ejento did not answer";
  throw new AppError(502, code.startsWith("auth") ? (code as AuthCode) : "vendor_unavailable", message);
}

function expectOk(res: HttpResponse, what: string): unknown {
  if (res.status >= 200 && res.status < 300) return res.json() ?? {};
  if (res.status >= 500 || res.status === 429) throw unavailable(`Ejento ${what} answered ${res.status}`);
  throw new AppError(422, "vendor_rejected", `Ejento refused ${what} (${res.status}${detail(res)})`, [
    { path: [], message: `status ${res.status}${detail(res)}` },
  ]);
}

const unavailable = (message: string) => new AppError(502, "vendor_unavailable", message);

function userView(raw: unknown): EjentoUser {
  const u = (raw ?? {}) as Record<string, unknown>;
  return {
    id: String(u.id ?? ""),
    email: String(u.email ?? ""),
    fullName: typeof u.full_name === "string" ? u.full_name : null,
    isActive: u.is_active !== false,
    isSuperuser: u.is_superuser === true,
  };
}
