import { readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import { sendError } from "./http-errors.ts";

export const WEB_DIR = fileURLToPath(new URL("../../web/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/**
 * The page may only run its own scripts and talk to its own origin: even if some API data were
 * rendered as markup by mistake, no injected script or inline handler would run.
 */
const HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

/**
 * The dashboard: static files of `web/` (plain HTML, CSS and ES modules, no build step), read once
 * at start, served at /dashboard without an API key — the page asks for one and calls the JSON API
 * with it.
 */
export function dashboardRoutes(app: FastifyInstance, dir = WEB_DIR): void {
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) files.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  const send = (reply: FastifyReply, name: string) => {
    const file = files.get(name);
    if (!file) return sendError(reply, 404, "not_found", `no dashboard file ${name}`);
    return reply.headers(HEADERS).type(file.type).send(file.body);
  };
  const hide = { schema: { hide: true } };
  app.get("/", hide, async (_req, reply) => reply.redirect("/dashboard", 302));
  app.get("/dashboard", hide, async (_req, reply) => send(reply, "index.html"));
  app.get("/dashboard/", hide, async (_req, reply) => send(reply, "index.html"));
  app.get("/dashboard/:file", hide, async (req, reply) => send(reply, (req.params as { file: string }).file));
}
