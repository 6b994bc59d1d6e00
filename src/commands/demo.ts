import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { createApp, type App } from "../app.ts";
import { AUTH_STRATEGIES } from "../auth/registry.ts";
import { loadConfig } from "../config.ts";
import { AppError } from "../util/errors.ts";
import { CONNECTORS } from "../connectors/registry.ts";
import { type DeliveryStatus, OPEN_STATUSES } from "../domain/status.ts";
import { createLogger } from "../logger.ts";
import { SANDBOX_ACCOUNTS as A } from "../sandbox/accounts.ts";
import { type Sandbox, startSandbox } from "../sandbox/server.ts";
import { SAMPLE_LEADS } from "./demo-leads.ts";
import { formatTable } from "./destinations.ts";
import { ensurePrivateDir } from "../util/private-files.ts";

export const DEMO_HELP = `leadpush demo [--once] [--port 8080] [--sandbox-port 8090] [--timeout 90]

Starts the simulators of every seed system and leadpush (embedded SQLite in ./demo-data), creates
one destination per seed system, sends realistic sample leads, and shows a live table of
deliveries per destination. Everything travels over real HTTP through the real connectors.
--once: run until every lead reached every destination (or --timeout seconds pass), print the
table, exit 0 only when everything landed.`;

/** One demo destination per seed system; `body` gets the sandbox URL. */
export interface DemoDestination {
  seed: string;
  body: (sandboxUrl: string) => Record<string, unknown>;
  /** Runs after creation (e.g. the OAuth connect through the simulated hosted UI). */
  setup?: (ctx: { app: App; sandbox: Sandbox; destinationId: string; publicUrl: string }) => Promise<void>;
}

const FAST_RETRY = { delaysMs: [500, 1000, 2000, 5000], jitter: 0.1 };

export const DEMO_DESTINATIONS: DemoDestination[] = [
  {
    seed: "002 none",
    body: (u) => ({ name: "seed002-none", connector: "http", url: `${u}/none/leads`, retry: FAST_RETRY }),
  },
  {
    seed: "002 static key",
    body: (u) => ({
      name: "seed002-static-key",
      connector: "http",
      url: `${u}/static-key/leads`,
      auth: {
        type: "static_key",
        fields: { vendory_key: A.staticKey.vendoryKey },
        publicFields: { vendor: A.staticKey.vendor },
      },
      mapping: {
        name: "name",
        email: "email",
        mobile_number: "phone",
        city: "city",
        project_id: "projectId",
      },
      retry: FAST_RETRY,
    }),
  },
  {
    seed: "002 CSRF token",
    body: (u) => ({
      name: "seed002-csrf",
      connector: "http",
      url: `${u}/csrf/leads`,
      auth: {
        type: "csrf",
        tokenUrl: `${u}/csrf/token`,
        username: A.csrf.username,
        password: A.csrf.password,
      },
      retry: FAST_RETRY,
    }),
  },
  {
    seed: "002 key token",
    body: (u) => ({
      name: "seed002-key-token",
      connector: "http",
      url: `${u}/key-token/leads`,
      auth: { type: "key_token", tokenUrl: `${u}/key-token/token`, ...A.keyToken },
      retry: FAST_RETRY,
    }),
  },
  {
    seed: "002 OAuth2",
    body: (u) => ({
      name: "seed002-oauth2",
      connector: "http",
      url: `${u}/oauth2/leads`,
      auth: {
        type: "oauth2",
        tokenUrl: `${u}/oauth2/token`,
        grantType: "password",
        bodyFormat: "json",
        clientId: A.oauth2.clientId,
        clientSecret: A.oauth2.clientSecret,
        username: A.oauth2.username,
        password: A.oauth2.password,
      },
      retry: FAST_RETRY,
    }),
  },
  {
    seed: "001 7targets (Cognito)",
    body: (u) => ({
      name: "seed001-7targets",
      connector: "seventargets",
      url: `${u}/seventargets/leads`,
      auth: {
        type: "cognito",
        endpoint: `${u}/cognito/`,
        clientId: A.cognito.clientId,
        username: A.cognito.username,
        password: A.cognito.password,
      },
      options: { assistantId: A.cognito.assistantId },
      retry: FAST_RETRY,
    }),
  },
  {
    seed: "000 Eminence (OAuth connect)",
    body: (u) => ({
      name: "seed000-eminence",
      connector: "eminence",
      url: `${u}/eminence/leads`,
      auth: {
        type: "oauth2_code",
        authorizeUrl: `${u}/hosted-ui/oauth2/authorize`,
        tokenUrl: `${u}/hosted-ui/oauth2/token`,
        clientId: A.eminence.clientId,
        clientSecret: A.eminence.clientSecret,
      },
      retry: FAST_RETRY,
    }),
    // What an admin does once in the browser: connect → hosted UI sign-in → callback.
    setup: async ({ app, destinationId, publicUrl }) => {
      let next = `${publicUrl}/v1/destinations/${destinationId}/connect`;
      const headers = { authorization: `Bearer ${app.config.adminToken ?? ""}` };
      for (let hop = 0; hop < 5; hop++) {
        const res = await fetch(next, { redirect: "manual", headers: hop === 0 ? headers : {} });
        await res.arrayBuffer();
        const location = res.headers.get("location");
        if (res.status === 200) return;
        if (!location) throw new Error(`connecting seed000-eminence failed: ${res.status} at ${next}`);
        next = new URL(location, next).href;
      }
      throw new Error("connecting seed000-eminence: too many redirects");
    },
  },
  {
    seed: "003 Ejento (agent thread + response)",
    body: (u) => ({
      name: "seed003-ejento",
      connector: "ejento",
      baseUrl: `${u}/ejento`,
      authBaseUrl: `${u}/ejento-auth`,
      email: A.ejento.email,
      password: A.ejento.password,
      options: { agentId: A.ejento.agentId },
      retry: FAST_RETRY,
    }),
    // The Ejento API document: every user registers through the API first.
    setup: async ({ app, destinationId, publicUrl }) => {
      const res = await fetch(`${publicUrl}/v1/destinations/${destinationId}/ejento/register`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${app.config.adminToken ?? ""}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ fullName: "leadpush demo" }),
      });
      if (!res.ok)
        throw new Error(`registering the Ejento account failed: ${res.status} ${await res.text()}`);
    },
  },
  {
    seed: "004 Reworked (CSV batch enrichment)",
    body: (u) => ({
      name: "seed004-reworked",
      connector: "reworked",
      baseUrl: `${u}/reworked`,
      email: A.reworked.email,
      password: A.reworked.password,
      options: { batchSize: 5, batchWindowMs: 2000 },
      retry: FAST_RETRY,
    }),
  },
  {
    seed: "004 → CRM with Reworked's enrichment (after)",
    body: (u) => ({
      name: "seed004-enriched-crm",
      connector: "http",
      url: `${u}/sink/enriched-crm`,
      after: ["seed004-reworked"],
      mapping: {
        name: "name",
        email: "email",
        company: "enrichment.`seed004-reworked`.company",
        jobTitle: "enrichment.`seed004-reworked`.job_title",
        score: "enrichment.`seed004-reworked`.lead_score",
      },
      retry: FAST_RETRY,
    }),
  },
];

/** Which demo destinations this build can run (every connector and auth type they need exists). */
export function runnableDemoDestinations(sandboxUrl: string): DemoDestination[] {
  return DEMO_DESTINATIONS.filter((d) => {
    const b = d.body(sandboxUrl);
    const auth = (b.auth as { type?: string } | undefined)?.type;
    return (
      Object.hasOwn(CONNECTORS, b.connector as string) &&
      (auth === undefined || Object.hasOwn(AUTH_STRATEGIES, auth))
    );
  });
}

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      once: { type: "boolean", default: false },
      port: { type: "string", default: process.env.PORT ?? "8080" },
      "sandbox-port": { type: "string", default: "8090" },
      timeout: { type: "string", default: "90" },
      "data-dir": { type: "string", default: "./demo-data" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(DEMO_HELP + "\n");
    return 0;
  }
  const dataDir = resolve(values["data-dir"]);
  // Owner-only, like the data directory of `serve`: it holds the demo's leads and master key.
  ensurePrivateDir(dataDir);
  const port = Number(values.port);
  // 127.0.0.1, not localhost: the simulators fetch files and call back here, and leadpush listens on IPv4.
  const publicUrl = `http://127.0.0.1:${port}`;
  const sandboxPort = Number(values["sandbox-port"]);
  const sandbox = await startSandbox({ port: sandboxPort, publicUrl }).catch((err: unknown) => {
    throw portTaken(err, sandboxPort, "--sandbox-port");
  });
  const config = loadConfig({
    PORT: String(port),
    HOST: "127.0.0.1",
    DATABASE_URL: `file:${dataDir}/demo-${Date.now()}.db`,
    LEADPUSH_DATA_DIR: dataDir,
    LEADPUSH_PUBLIC_URL: publicUrl,
    LEADPUSH_ADMIN_TOKEN: "demo-admin-token-0123456789",
    LEADPUSH_DUPLICATE_WINDOW_DAYS: "0",
    LOG_LEVEL: "error",
  });
  const app = await createApp(config, { logger: createLogger("error") });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.stop();
    await sandbox.close();
  };
  try {
    const url = (await app.start().catch((err: unknown) => {
      throw portTaken(err, port, "--port");
    })) as string;
    const runnable = runnableDemoDestinations(sandbox.url);
    const skipped = DEMO_DESTINATIONS.length - runnable.length;
    for (const d of runnable) {
      const view = await app.destinations.create(d.body(sandbox.url));
      await d.setup?.({ app, sandbox, destinationId: view.id, publicUrl });
    }
    process.stdout.write(
      `leadpush demo — sandbox ${sandbox.url}, leadpush ${url}\n${runnable.length} destinations (one per seed system)${skipped ? `, ${skipped} not available in this build` : ""}; sending ${SAMPLE_LEADS.length} sample leads…\n\n`,
    );
    for (const lead of SAMPLE_LEADS) await app.ingest.accept(lead);
    const deadline = Date.now() + Number(values.timeout) * 1000;
    const tty = process.stdout.isTTY && !values.once;
    let lines = 0;
    let allDone = false;
    for (;;) {
      const { rows, done, delivered } = await deliveryTable(app);
      allDone = done && delivered;
      if (tty) {
        if (lines) process.stdout.write(`\x1b[${lines}A\x1b[0J`);
        const text = renderTable(rows);
        process.stdout.write(text);
        lines = text.split("\n").length - 1;
      }
      // Live in a terminal the table was drawn above; the highlights and the dashboard follow it.
      if (done || Date.now() > deadline) {
        if (!tty) process.stdout.write(renderTable(rows));
        break;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    process.stdout.write(await highlights(app, sandbox));
    process.stdout.write(
      `\nDashboard: ${url}/dashboard   API docs: ${url}/docs   admin key: demo-admin-token-0123456789\n` +
        `Try: curl -H "Authorization: Bearer demo-admin-token-0123456789" ${url}/v1/deliveries\n`,
    );
    if (values.once) {
      process.stdout.write(
        allDone ? "\nevery sample lead reached every destination\n" : "\nNOT everything landed in time\n",
      );
      await stop();
      return allDone ? 0 : 1;
    }
    process.stdout.write("\nleadpush and the sandbox keep running; Ctrl-C to stop.\n");
    await new Promise<void>((resolveStop) => {
      const onSignal = () => void stop().then(resolveStop);
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
    });
    return 0;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** What the vendors made of the first sample lead: proof that the multi-step connectors ran. */
async function highlights(app: App, sandbox: Sandbox): Promise<string> {
  const lines: string[] = [];
  const first = await app.store.reads.leadDataByEmail(SAMPLE_LEADS[0]!.email);
  const enrichment = first
    ? ((JSON.parse(first) as { enrichment?: Record<string, Record<string, unknown>> }).enrichment ?? {})
    : {};
  const answer = enrichment["seed003-ejento"]?.answer;
  if (typeof answer === "string")
    lines.push(`Ejento's agent on ${SAMPLE_LEADS[0]!.name}: "${answer.slice(0, 160)}"`);
  const crm = sandbox.sink.received.find((r) => r.path === "/enriched-crm");
  if (crm) lines.push(`CRM after Reworked received: ${JSON.stringify(crm.body)}`);
  return lines.length > 0 ? `\n${lines.join("\n")}\n` : "";
}

interface Row {
  destination: string;
  counts: Record<string, number>;
}

async function deliveryTable(app: App): Promise<{ rows: Row[]; done: boolean; delivered: boolean }> {
  const rows = await app.store.reads.countsByDestinationName();
  const by = new Map<string, Record<string, number>>();
  for (const r of rows) {
    const c = by.get(r.name) ?? {};
    c[r.status] = r.n;
    by.set(r.name, c);
  }
  const list = [...by.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([destination, counts]) => ({ destination, counts }));
  const open = list.some((r) => OPEN_STATUSES.some((s) => (r.counts[s] ?? 0) > 0));
  const failed = list.some((r) => (r.counts.failed ?? 0) > 0);
  return { rows: list, done: !open, delivered: !open && !failed && list.length > 0 };
}

function renderTable(rows: Row[]): string {
  const cols: readonly DeliveryStatus[] = [
    "delivered",
    "pending",
    "retrying",
    "awaiting",
    "blocked",
    "failed",
  ];
  return formatTable(
    ["DESTINATION", ...cols.map((c) => c.toUpperCase())],
    rows.map((r) => [r.destination, ...cols.map((c) => String(r.counts[c] ?? 0))]),
  );
}

/** A port the demo could not listen on: the message names the option that picks another one. */
function portTaken(err: unknown, port: number, option: string): unknown {
  if ((err as { code?: string }).code !== "EADDRINUSE") return err;
  return new AppError(
    409,
    "port_in_use",
    `port ${port} is already in use; pick a free one with ${option} (e.g. npm run demo -- ${option} ${port + 10})`,
  );
}
