import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import { checkLeadShape, MAX_LEAD_BYTES } from "../lead/lead.ts";
import { alertTargetRoutes } from "./alert-targets.ts";
import type { Scope } from "../store/keys-repo.ts";
import { batchRoutes } from "./batches.ts";
import { connectorRoutes } from "./connector-routes.ts";
import { deliveryRoutes } from "./deliveries.ts";
import { dashboardRoutes } from "./dashboard.ts";
import type { ApiDeps } from "./deps.ts";
import { destinationToolRoutes } from "./destination-tools.ts";
import { destinationRoutes } from "./destinations.ts";
import { destinationStatsRoutes } from "./destination-stats.ts";
import { clientErrorHandler, errorHandler, sendError } from "./http-errors.ts";
import { importRoutes } from "./imports.ts";
import { leadAdminRoutes, leadIngestRoutes } from "./leads.ts";
import { keyRoutes } from "./keys.ts";
import { connectPageRoutes, connectRoutes, oauthCallbackRoutes } from "./oauth.ts";
import { addErrorResponses } from "./openapi.ts";
import { opsRoutes } from "./ops.ts";
import { statsRoutes } from "./stats.ts";
import { signedRoutes } from "./signed.ts";
import { exportRoutes } from "./exports.ts";

export const BODY_LIMIT = MAX_LEAD_BYTES;

/** Routes whose bodies are leads: `parseLead` checks each one (and says which lead was bad). */
const LEAD_ROUTES = new Set(["/v1/leads", "/v1/leads/batch"]);

declare module "fastify" {
  interface FastifyRequest {
    /** The id of the API key that sent the request (set by the scope hook; `admin-token` for it). */
    apiKeyId: string;
  }
}

/**
 * The HTTP API. Every route is registered here, grouped by the scope it needs, so who may call
 * what is visible at a glance.
 */
export async function buildServer(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: "api" }) as unknown as FastifyBaseLogger,
    // One logger for every request instead of a pino child each (a measurable cost per lead);
    // request logging is off, and errors carry the request's method and URL themselves.
    childLoggerFactory: (logger) => logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
    // Errors Fastify finds before routing (a path that is not valid percent-encoding) get our shape.
    frameworkErrors: (err, _req, reply) =>
      sendError(reply, 400, "invalid_url", `the request URL is not valid: ${err.message}`),
    clientErrorHandler,
    ajv: { customOptions: { strict: false } },
  });
  // Input is validated by the zod schemas the routes document (parseInput); Fastify's own
  // validation is off so there is exactly one source of truth.
  app.setValidatorCompiler(() => () => true);
  // Response schemas document (/docs) and never filter or coerce what a route sends.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.addHook("onRoute", addErrorResponses);
  app.setErrorHandler(errorHandler);
  app.decorateRequest("apiKeyId", "");
  // JSON only (CSV imports add their own parser): anything else is 415 unsupported_media_type.
  app.removeContentTypeParser("text/plain");
  // A NUL character in the path or the query: nothing of ours has one, and Postgres cannot compare
  // text with it (an id or a filter value would turn into a 500).
  app.addHook("onRequest", async (req, reply) => {
    if (/%00/.test(req.url) || req.url.includes("\u0000"))
      return sendError(reply, 400, "invalid_url", "the URL may not contain the NUL character (%00)", [
        { path: [], code: "nul_character", message: "a NUL character (%00) in the path or the query" },
      ]);
  });
  // Every JSON body gets a lead's bounds (no NUL, bounded nesting) before its route reads it; the
  // lead routes check each lead themselves, so one bad lead of a batch fails only itself.
  app.addHook("preValidation", async (req, reply) => {
    if (req.body === null || typeof req.body !== "object" || LEAD_ROUTES.has(req.routeOptions.url ?? ""))
      return;
    const problems = checkLeadShape(req.body);
    if (problems.length > 0)
      return sendError(reply, 400, "invalid_request", "the request is not valid", problems);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, 404, "not_found", `no route ${req.method} ${req.url.split("?")[0]}`),
  );

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "leadpush",
        version: "1",
        description:
          'Self-hosted lead push gateway. Errors are {"error": {"code", "message", "details"}} with a stable code.',
      },
      components: { securitySchemes: { apiKey: { type: "http", scheme: "bearer" } } },
      security: [{ apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  /** onRequest hook: 401 without a valid key, 403 without the scope (admin may do everything). */
  const requireScope = (scope: Scope) => async (req: FastifyRequest, reply: FastifyReply) => {
    const header = req.headers.authorization;
    const token = header?.startsWith("Bearer ") ? header.slice(7).trim() : undefined;
    const key = token ? await deps.keys.identify(token) : undefined;
    if (!key)
      return sendError(reply, 401, "unauthorized", "send a valid API key: Authorization: Bearer <key>");
    const { scopes } = key;
    req.apiKeyId = key.id;
    if (!scopes.includes("admin") && !scopes.includes(scope)) {
      return sendError(reply, 403, "forbidden", `this API key lacks the "${scope}" scope this call needs`);
    }
    return undefined;
  };

  opsRoutes(app, deps);
  // No API key: the browser coming back from an OAuth provider; the one-time state is the proof.
  oauthCallbackRoutes(app, deps);
  // An admin API key or a one-time connect ticket (the dashboard); a browser with neither gets help.
  connectPageRoutes(app, deps, requireScope("admin"));
  // Static files, no key: the page asks for an admin key and sends it to the /v1 calls below.
  dashboardRoutes(app);
  // No API key: the signed token in the URL is the proof (vendors fetch files and call back).
  await app.register(async (signed) => signedRoutes(signed, deps));
  await app.register(async (ingest) => {
    ingest.addHook("onRequest", requireScope("ingest"));
    leadIngestRoutes(ingest, deps);
    importRoutes(ingest, deps);
  });
  await app.register(async (admin) => {
    admin.addHook("onRequest", requireScope("admin"));
    leadAdminRoutes(admin, deps);
    exportRoutes(admin, deps);
    destinationRoutes(admin, deps);
    destinationStatsRoutes(admin, deps);
    destinationToolRoutes(admin, deps);
    connectRoutes(admin, deps);
    connectorRoutes(admin, deps);
    deliveryRoutes(admin, deps);
    batchRoutes(admin, deps);
    statsRoutes(admin, deps);
    alertTargetRoutes(admin, deps);
    keyRoutes(admin, deps);
  });
  return app;
}
