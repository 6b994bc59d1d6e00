// Simulator of the Housing lead-push document's "No Authentication Handler" client: POST /leads with the
// JSON payload.
import type { FastifyInstance } from "fastify";
import { makeSimulator, SimCore, type ControllableSimulator } from "./sim-common.ts";

export function createNoneSimulator(): ControllableSimulator {
  const hooks = { expireTokens: () => {}, revokeTokens: () => {} };
  const core = new SimCore(hooks);

  function routes(app: FastifyInstance): void {
    app.post("/leads", async (req, reply) => {
      const body = core.jsonBody(req, reply);
      if (body === undefined) return reply;
      if (await core.leadsGate(req, reply)) return reply;
      return core.accept(req, reply, body);
    });
  }

  return makeSimulator("none", "/none", core, hooks, routes);
}
