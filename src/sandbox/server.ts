import Fastify, { type FastifyInstance } from "fastify";
import { SANDBOX_ACCOUNTS as A } from "./accounts.ts";
import { createCsrfSimulator } from "./csrf-client.ts";
import { createEjentoSimulator } from "./ejento.ts";
import { createKeyTokenSimulator } from "./key-token-client.ts";
import { createNoneSimulator } from "./none-client.ts";
import { createOAuth2Simulator } from "./oauth2-client.ts";
import { createReworkedSimulator } from "./reworked.ts";
import { createSink, type Sink } from "./sink.ts";
import type { Simulator } from "./simulator.ts";
import { createStaticKeySimulator } from "./static-key-client.ts";

export interface Sandbox {
  app: FastifyInstance;
  url: string;
  sink: Sink;
  simulators: Record<string, Simulator>;
  close(): Promise<void>;
}

/** Every simulator of the seed systems, on one port (`leadpush sandbox`, the demo, the tests). */
export function createSimulators() {
  const ejento = createEjentoSimulator({ agents: [A.ejento.agentId] });
  return {
    sink: createSink(),
    none: createNoneSimulator(),
    staticKey: createStaticKeySimulator({ vendor: A.staticKey.vendor, vendoryKey: A.staticKey.vendoryKey }),
    csrf: createCsrfSimulator({ username: A.csrf.username, password: A.csrf.password }),
    keyToken: createKeyTokenSimulator({ ...A.keyToken }),
    oauth2: createOAuth2Simulator({ ...A.oauth2, requireFormat: "json" }),
    /** Ejento's auth app (`/ejento-auth`) and API (`/ejento`): two simulators sharing one state. */
    ejentoAuth: ejento.auth,
    ejento: ejento.api,
    reworked: createReworkedSimulator({ accounts: [{ ...A.reworked }] }),
  };
}

export async function startSandbox(
  opts: { port?: number; host?: string } = {},
): Promise<Sandbox & ReturnType<typeof createSimulators>> {
  const sims = createSimulators();
  const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 });
  for (const sim of Object.values(sims) as Simulator[]) {
    await app.register(async (scope) => sim.register(scope), { prefix: sim.prefix });
  }
  app.get("/", async () => ({
    sandbox: "leadpush",
    simulators: Object.values(sims).map((s: Simulator) => ({ name: s.name, prefix: s.prefix })),
  }));
  await app.listen({ port: opts.port ?? 0, host: opts.host ?? "127.0.0.1" });
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    ...sims,
    app,
    url: `http://127.0.0.1:${port}`,
    simulators: sims,
    close: () => app.close(),
  };
}
