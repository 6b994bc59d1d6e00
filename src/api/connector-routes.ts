import type { FastifyInstance } from "fastify";
import type { ConnectorRouteDeps } from "../connectors/connector.ts";
import { CONNECTORS } from "../connectors/registry.ts";
import { recordingClient } from "../http/recording.ts";
import { authTarget } from "../destinations/model.ts";
import { AppError } from "../util/errors.ts";
import { createRedactor } from "../util/redact.ts";
import { type ApiDeps, doc, parseInput } from "./deps.ts";

/** Every connector's own admin routes (its registry entry's `adminRoutes`), under the `admin` scope. */
export function connectorRoutes(app: FastifyInstance, deps: ApiDeps): void {
  for (const c of Object.values(CONNECTORS)) c.adminRoutes?.(app, connectorRouteDeps(deps, c.name));
}

/** What one connector's routes get: its own destinations, opened with a recording, redacting client. */
export function connectorRouteDeps(deps: ApiDeps, connectorName: string): ConnectorRouteDeps {
  return {
    doc,
    parseInput: (schema, input) => parseInput(schema, input),
    async open(idOrName) {
      const d = await deps.destinations.resolve(idOrName);
      if (d.connector.name !== connectorName) {
        throw new AppError(
          400,
          "wrong_connector",
          `destination "${d.name}" uses the "${d.connector.name}" connector; this call is for "${connectorName}" destinations`,
        );
      }
      const redactor = createRedactor(d.secretValues);
      const http = recordingClient(deps.transport, redactor, []);
      return {
        id: d.id,
        name: d.name,
        timeoutMs: d.timeoutMs,
        connectorConfig: d.connectorConfig,
        auth: d.auth,
        http,
        authSession: (auth = d.auth) =>
          deps.credentials.session(authTarget(d, { auth }), d.strategy, http, redactor),
      };
    },
  };
}
