// Simulator of the Housing lead-push document's "Static Key Based Auth Handler" client: POST /leads with a
// form-encoded body carrying the lead fields plus `vendor` and `vendory_key` (the document's spelling). The
// `in: header` and `in: query` variants of leadpush's static_key auth are served at /leads-header and
// /leads-query (JSON).
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  header,
  isObject,
  makeSimulator,
  mediaType,
  safeEqual,
  SimCore,
  type ControllableSimulator,
} from "./sim-common.ts";

export interface StaticKeySimulatorOptions {
  /** Expected value of the `vendor` field. */
  vendor: string;
  /** Expected value of the `vendory_key` field. */
  vendoryKey: string;
}

export function createStaticKeySimulator(opts: StaticKeySimulatorOptions): ControllableSimulator {
  const hooks = { expireTokens: () => {}, revokeTokens: () => {} };
  const core = new SimCore(hooks);

  /** Answers 401 unless both keys match; true when it answered. */
  function badKeys(
    req: FastifyRequest,
    reply: FastifyReply,
    where: string,
    get: (name: string) => unknown,
  ): boolean {
    for (const [name, want] of [
      ["vendor", opts.vendor],
      ["vendory_key", opts.vendoryKey],
    ] as const) {
      const got = get(name);
      if (typeof got !== "string" || !safeEqual(got, want)) {
        void core.reject(req, reply, 401, `${where} ${name} missing or wrong`);
        return true;
      }
    }
    return false;
  }

  function routes(app: FastifyInstance): void {
    app.post("/leads", async (req, reply) => {
      if (mediaType(req) !== "application/x-www-form-urlencoded")
        return core.reject(req, reply, 415, "content-type must be application/x-www-form-urlencoded");
      const form = isObject(req.body) ? req.body : {};
      if (badKeys(req, reply, "form field", (n) => form[n])) return reply;
      if (await core.leadsGate(req, reply)) return reply;
      return core.accept(req, reply, form);
    });

    app.post("/leads-header", async (req, reply) => {
      if (badKeys(req, reply, "header", (n) => header(req, n))) return reply;
      const body = core.jsonBody(req, reply);
      if (body === undefined) return reply;
      if (await core.leadsGate(req, reply)) return reply;
      return core.accept(req, reply, body);
    });

    app.post("/leads-query", async (req, reply) => {
      const query = isObject(req.query) ? req.query : {};
      if (badKeys(req, reply, "query parameter", (n) => query[n])) return reply;
      const body = core.jsonBody(req, reply);
      if (body === undefined) return reply;
      if (await core.leadsGate(req, reply)) return reply;
      return core.accept(req, reply, body);
    });
  }

  return makeSimulator("static-key", "/static-key", core, hooks, routes);
}
