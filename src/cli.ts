#!/usr/bin/env node
import { parseArgs } from "node:util";
import { AppError } from "./util/errors.ts";
import { ConfigError, loadConfig } from "./config.ts";
import type { CommandApi, ConnectorCommand } from "./connectors/connector.ts";
import type { Scope } from "./store/keys-repo.ts";
// Everything else is imported by the command that needs it: `leadpush import` streaming a million
// rows should not carry the server (Fastify, the database drivers, every connector) in memory.

const HELP_COMMANDS = `leadpush — a self-hosted lead push gateway

Usage: leadpush <command> [options]

Commands
  serve [--no-worker]   API + worker + dashboard on $PORT (8080), embedded SQLite in ./data unless DATABASE_URL
  worker                only the delivery worker (scale out: many workers, one Postgres)
  migrate               apply database migrations and exit
  sandbox [--port N]    simulators of every seed system on one port (default 8090)
  keys create --name N --scope ingest|admin
                        create an API key in the database (printed once)
  keys list             list API keys (never the keys themselves)
  keys revoke ID|PREFIX revoke an API key (refused at once by every process)
  demo [--once]         sandbox + leadpush + one destination per seed system + sample leads
  import FILE.csv       stream a CSV file of leads to a running leadpush (progress, rejects file)
  destinations list     destinations with their state and delivery counts
  destinations test NAME [--send]
                        dry run: auth handshake + the request that would be sent (redacted)`;

const HELP_END = `Commands that talk to a running leadpush take --url (LEADPUSH_URL, default http://localhost:8080)
and --key (LEADPUSH_API_KEY).

Environment: PORT, HOST, DATABASE_URL (file:PATH | sqlite:PATH | postgres://…), LEADPUSH_SECRET_KEY,
LEADPUSH_ADMIN_TOKEN, LEADPUSH_PUBLIC_URL, LEADPUSH_ALLOW_PRIVATE_NETWORKS, LEADPUSH_DEFAULT_REGION, LOG_LEVEL.
Run 'leadpush <command> --help' for a command's options.`;

type Handler = (argv: string[]) => Promise<number>;

function fail(message: string, next?: string): number {
  process.stderr.write(`leadpush: ${message}\n${next ? `  → ${next}\n` : ""}`);
  return 2;
}

/** What a stop may take beyond the grace (recording aborted pushes, closing the database). */
const STOP_MARGIN_MS = 5000;

function onSignals(stop: () => Promise<void>, graceMs: number): void {
  let stopping = false;
  const handler = (sig: string) => {
    if (stopping) {
      process.stderr.write(`\n${sig} again: exiting now\n`);
      process.exit(130);
    }
    stopping = true;
    process.stderr.write(`\n${sig}: finishing in-flight pushes (up to ${graceMs} ms), then exiting…\n`);
    // The grace is a hard limit: a stop that hangs anyway (a stuck driver) does not keep us alive.
    setTimeout(() => {
      process.stderr.write(`shutdown did not finish within ${graceMs + STOP_MARGIN_MS} ms: exiting\n`);
      process.exit(1);
    }, graceMs + STOP_MARGIN_MS).unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => handler("SIGINT"));
  process.on("SIGTERM", () => handler("SIGTERM"));
}

const serve: Handler = async (argv) => {
  const { values } = parseArgs({
    args: argv,
    options: { help: { type: "boolean", short: "h" }, "no-worker": { type: "boolean" } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      "leadpush serve — API, worker, dashboard and docs in one process.\n" +
        "  --no-worker   API and dashboard only (an API node behind a load balancer): `leadpush worker`\n" +
        "                processes on the same Postgres database push the leads it accepts\n" +
        "Configure with environment variables (see 'leadpush --help').\n",
    );
    return 0;
  }
  const config = loadConfig();
  const noWorker = values["no-worker"] === true;
  if (noWorker && config.database.kind === "sqlite")
    return fail(
      "--no-worker needs Postgres: on SQLite no other process can share the database, so nothing would push the leads",
      "set DATABASE_URL=postgres://… and run `leadpush worker` processes beside it",
    );
  const { applyConfigFile, createApp } = await import("./app.ts");
  const { loadConfigFile } = await import("./config-file.ts");
  const { createLogger } = await import("./logger.ts");
  const file = loadConfigFile(config.configFile);
  const log = createLogger(config.logLevel);
  const hasConfiguredKeys = (file?.apiKeys.length ?? 0) > 0;
  const app = await createApp(config, {
    logger: log,
    bootstrapKey: !hasConfiguredKeys,
    ...(noWorker ? { worker: false } : {}),
  });
  if (file) await applyConfigFile(app, file);
  const url = await app.start();
  const db = config.database.kind === "sqlite" ? `SQLite ${config.database.path}` : "Postgres";
  const lines = [
    "",
    `  leadpush is running at ${url}  (database: ${db}${noWorker ? "; no worker: `leadpush worker` processes push" : ""})`,
    `  dashboard: ${url}/dashboard`,
    `  API docs:  ${url}/docs      health: ${url}/healthz      metrics: ${url}/metrics`,
  ];
  if (app.firstAdminKey) {
    lines.push(
      "",
      "  First start: an admin API key was created. It is shown only this once — keep it:",
      `    ${app.firstAdminKey}`,
      `  Try:  curl -H "Authorization: Bearer ${app.firstAdminKey}" ${url}/v1/destinations`,
    );
  } else if (config.adminToken) {
    lines.push("  Admin API key: the value of LEADPUSH_ADMIN_TOKEN");
  }
  process.stdout.write(lines.join("\n") + "\n\n");
  onSignals(() => app.stop(), config.shutdownGraceMs);
  return -1;
};

/** For commands whose only option is --help: true when help was printed. */
function printedHelp(argv: string[], text: string): boolean {
  const { values } = parseArgs({
    args: argv,
    options: { help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) process.stdout.write(text + "\n");
  return values.help === true;
}

const worker: Handler = async (argv) => {
  if (
    printedHelp(
      argv,
      "leadpush worker — only the delivery worker, no API. Run many against one Postgres (DATABASE_URL,\nthe same LEADPUSH_SECRET_KEY everywhere) to scale out; see 'leadpush --help' for the environment.",
    )
  )
    return 0;
  const config = loadConfig();
  const { createApp } = await import("./app.ts");
  const app = await createApp(config, { api: false });
  await app.start();
  app.log.info({ database: config.database.kind }, "worker started");
  onSignals(() => app.stop(), config.shutdownGraceMs);
  return -1;
};

const migrateCmd: Handler = async (argv) => {
  if (
    printedHelp(
      argv,
      "leadpush migrate — apply the database migrations (DATABASE_URL) and exit. serve and worker also migrate at start.",
    )
  )
    return 0;
  const config = loadConfig();
  const { openDb } = await import("./store/db.ts");
  const db = await openDb(config.database, { migrate: false });
  const { migrate } = await import("./store/migrations.ts");
  const applied = await migrate(db.kysely as never);
  await db.close();
  process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "database is up to date\n");
  return 0;
};

const sandbox: Handler = async (argv) => {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8090" },
      host: { type: "string", default: "127.0.0.1" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(
      "leadpush sandbox [--port 8090] [--host 127.0.0.1] — simulators of every seed system on one port.\n",
    );
    return 0;
  }
  const { startSandbox } = await import("./sandbox/server.ts");
  const { SANDBOX_ACCOUNTS } = await import("./sandbox/accounts.ts");
  const sb = await startSandbox({ port: Number(values.port), host: values.host });
  process.stdout.write(`sandbox listening at ${sb.url}\n`);
  for (const s of Object.values(sb.simulators))
    process.stdout.write(`  ${s.name.padEnd(14)} ${sb.url}${s.prefix}\n`);
  process.stdout.write(`accounts (sandbox-only values):\n${JSON.stringify(SANDBOX_ACCOUNTS, null, 2)}\n`);
  onSignals(() => sb.close(), 10_000);
  return -1;
};

const KEYS_HELP = `leadpush keys create --name NAME --scope ingest|admin [--scope …]
leadpush keys list
leadpush keys revoke ID|PREFIX

Works on the database directly (DATABASE_URL). create prints the key once; list never shows keys,
only their prefix (lp_xxxx); revoke takes the id or the prefix list shows, and the key is refused
at once by every leadpush process.`;

const keys: Handler = async (argv) => {
  const [sub, ...rest] = argv;
  if (sub === "--help" || sub === "-h") {
    process.stdout.write(KEYS_HELP + "\n");
    return 0;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: {
      name: { type: "string" },
      scope: { type: "string", multiple: true },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(KEYS_HELP + "\n");
    return 0;
  }
  if (sub !== "create" && sub !== "list" && sub !== "revoke")
    return fail(sub ? `unknown keys command "${sub}"` : "which keys command?", KEYS_HELP.split("\n\n")[0]);
  const { SCOPES } = await import("./store/keys-repo.ts");
  // Usage errors are found before the database is opened.
  const scopes = values.scope ?? ["ingest"];
  if (sub === "create") {
    const bad = scopes.find((s) => !(SCOPES as readonly string[]).includes(s));
    if (bad) return fail(`unknown scope "${bad}"`, `use one of: ${SCOPES.join(", ")}`);
    if (!values.name)
      return fail("--name is required", "leadpush keys create --name website-form --scope ingest");
  }
  if (sub === "revoke" && positionals.length !== 1)
    return fail("which key? give its id or prefix", "leadpush keys list, then leadpush keys revoke lp_Ab12");
  if (sub !== "revoke" && positionals.length > 0)
    return fail(`unexpected argument "${positionals[0]}"`, `run 'leadpush keys --help'`);
  const config = loadConfig();
  const { openDb } = await import("./store/db.ts");
  const { ApiKeys } = await import("./store/keys-repo.ts");
  const db = await openDb(config.database);
  const api = new ApiKeys(db.kysely, undefined);
  try {
    if (sub === "list") {
      for (const k of await api.list()) {
        process.stdout.write(
          `${k.id}  ${k.prefix}…  ${k.scopes.join(",").padEnd(13)} ${k.name}${k.revoked ? "  (revoked)" : ""}\n`,
        );
      }
      return 0;
    }
    if (sub === "revoke") {
      const found = await api.find(positionals[0]!);
      if (found.length === 0)
        return fail(`no API key has the id or prefix "${positionals[0]}"`, "leadpush keys list");
      if (found.length > 1)
        return fail(
          `the prefix "${positionals[0]}" names ${found.length} keys: ${found.map((k) => `${k.id} (${k.name})`).join(", ")}`,
          "give the id instead",
        );
      const k = found[0]!;
      if (k.revoked) {
        process.stderr.write(`key "${k.name}" (${k.prefix}…) was already revoked at ${k.revokedAt}\n`);
        return 0;
      }
      await api.revoke(k.id);
      process.stderr.write(`revoked key "${k.name}" (${k.prefix}…): it is refused from now on\n`);
      return 0;
    }
    const created = await api.create(values.name!, scopes as Scope[]);
    process.stdout.write(`${created.key}\n`);
    process.stderr.write(
      `created key "${created.name}" (${created.scopes.join(",")}); it is shown only this once\n`,
    );
    return 0;
  } finally {
    await db.close();
  }
};

const COMMANDS: Record<string, Handler> = {
  serve,
  worker,
  migrate: migrateCmd,
  sandbox,
  keys,
  import: async (argv) => (await import("./commands/import.ts")).importCommand(argv),
  destinations: async (argv) => (await import("./commands/destinations.ts")).destinationsCommand(argv),
  demo: async (argv) => (await import("./commands/demo.ts")).demoCommand(argv),
};

/** Commands connectors add (their registry entry's `commands`). Loads every connector: only when asked. */
async function connectorCommands(): Promise<ConnectorCommand[]> {
  const { CONNECTORS } = await import("./connectors/registry.ts");
  return Object.values(CONNECTORS).flatMap((c) => c.commands ?? []);
}

async function commandApi(): Promise<CommandApi> {
  const { callApi, SERVER_OPTIONS, serverTarget } = await import("./commands/client.ts");
  return {
    serverOptions: SERVER_OPTIONS,
    server(values) {
      const target = serverTarget(values);
      return { url: target.url, call: (method, path, body) => callApi(target, method, path, body) };
    },
  };
}

async function handlerOf(cmd: string): Promise<Handler | undefined> {
  if (Object.hasOwn(COMMANDS, cmd)) return COMMANDS[cmd];
  const command = (await connectorCommands()).find((c) => c.name === cmd);
  return command && (async (argv) => command.run(argv, await commandApi()));
}

/** Runs one command line (without `node` and the script); the exit code, or -1 for a server left running. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    const usages = (await connectorCommands()).map((c) => c.usage + "\n").join("");
    process.stdout.write(`${HELP_COMMANDS}\n${usages}\n${HELP_END}\n`);
    return 0;
  }
  const handler = await handlerOf(cmd);
  if (!handler) return fail(`unknown command "${cmd}"`, "run 'leadpush --help' for the list of commands");
  try {
    return await handler(rest);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message, "fix the environment variable and start again");
    if (err instanceof AppError) return fail(`${err.code}: ${err.message}`);
    if ((err as { code?: string }).code === "invalid_config_file")
      return fail(
        `the config file is not valid:\n${(err as Error).message}`,
        "fix it and start again; nothing was started",
      );
    // Unknown options, a missing option value, an unexpected argument: usage errors, not crashes.
    if ((err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS_"))
      return fail((err as Error).message, `run 'leadpush ${cmd} --help'`);
    if ((err as { code?: string }).code === "EADDRINUSE")
      return fail((err as Error).message, "another program uses this port: set PORT to a free one");
    if ((err as { code?: string }).code === "ECONNREFUSED")
      return fail((err as Error).message, "is the database running? check DATABASE_URL");
    throw err;
  }
}

/** Runs a command line and sets the exit code: what the entry points (this file, bin/leadpush.js) do. */
export function run(argv: string[]): void {
  main(argv).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`leadpush: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

// Imported (bin/leadpush.js, a test), it runs nothing by itself.
if (import.meta.main) run(process.argv.slice(2));
