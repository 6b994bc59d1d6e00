import Fastify, { type FastifyInstance } from "fastify";
import { SANDBOX_ACCOUNTS as A } from "./accounts.ts";
import { createCognitoSimulator } from "./cognito.ts";
import { createHostedUiSimulator } from "./cognito-hosted-ui.ts";
import { createCsrfSimulator } from "./csrf-client.ts";
import { createEminenceSimulator } from "./eminence.ts";
import { createEjentoSimulator } from "./ejento.ts";
import { createKeyTokenSimulator } from "./key-token-client.ts";
import { createNoneSimulator } from "./none-client.ts";
import { createOAuth2Simulator } from "./oauth2-client.ts";
import { createReworkedSimulator } from "./reworked.ts";
import { createSink, type Sink } from "./sink.ts";
import { createSevenTargetsSimulator } from "./seventargets.ts";
import type { Simulator } from "./simulator.ts";
import { createStaticKeySimulator } from "./static-key-client.ts";

export interface Sandbox {
  app: FastifyInstance;
  url: string;
  sink: Sink;
  simulators: Record<string, Simulator>;
  close(): Promise<void>;
}

export interface SandboxOptions {
  port?: number;
  host?: string;
  /** The public URL of the leadpush under test: the hosted UI accepts `${publicUrl}/v1/oauth/callback`. */
  publicUrl?: string;
  /**
   * Redirect URIs the hosted UI (the Eminence API document) accepts for the Eminence client, besides the one
   * of `publicUrl`. Default (neither given): leadpush on localhost:8080 / 127.0.0.1:8080.
   */
  redirectUris?: readonly string[];
}

export const DEFAULT_REDIRECT_URIS = [
  "http://localhost:8080/v1/oauth/callback",
  "http://127.0.0.1:8080/v1/oauth/callback",
];

/** Every simulator of the seed systems, on one port (`leadpush sandbox`, the demo, the tests). */
export function createSimulators(opts: Pick<SandboxOptions, "redirectUris" | "publicUrl"> = {}) {
  const redirectUris = [
    ...(opts.publicUrl !== undefined ? [`${opts.publicUrl.replace(/\/$/, "")}/v1/oauth/callback`] : []),
    ...(opts.redirectUris ?? []),
  ];
  const c = A.cognito;
  const cognito = createCognitoSimulator({
    region: c.region,
    userPoolId: c.userPoolId,
    clients: [{ clientId: c.clientId }, { clientId: c.secretClientId, clientSecret: c.clientSecret }],
    users: [{ username: c.username, password: c.password, email: c.username }],
  });
  const e = A.eminence;
  const hostedUi = createHostedUiSimulator({
    clients: [
      {
        clientId: e.clientId,
        clientSecret: e.clientSecret,
        redirectUris: redirectUris.length > 0 ? redirectUris : DEFAULT_REDIRECT_URIS,
      },
    ],
    users: [{ username: e.username, password: e.password, email: e.username }],
  });
  const ejento = createEjentoSimulator({ agents: [A.ejento.agentId] });
  return {
    cognito,
    hostedUi,
    sevenTargets: createSevenTargetsSimulator({ verifier: cognito.verifier }),
    eminence: createEminenceSimulator({ verifier: hostedUi.verifier }),
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
  opts: SandboxOptions = {},
): Promise<Sandbox & ReturnType<typeof createSimulators>> {
  const sims = createSimulators(opts);
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
