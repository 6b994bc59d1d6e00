import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { buildServer } from "./api/server.ts";
import type { ApiDeps } from "./api/deps.ts";
import { CredentialRuntime } from "./auth/runtime.ts";
import { type Config, usesDataDir } from "./config.ts";
import type { ConfigFile } from "./config-file.ts";
import { createTransport, type Transport } from "./http/http-client.ts";
import { BatchService } from "./delivery/batches.ts";
import { createDeliveryStore } from "./store/delivery-store.ts";
import type { DeliveryRuntime } from "./delivery/runtime.ts";
import { Worker } from "./delivery/worker.ts";
import { HealthTracker } from "./delivery/health-tracker.ts";
import { DestinationService } from "./destinations/service.ts";
import { Events } from "./events.ts";
import { Ingest } from "./ingest/ingest.ts";
import { createLogger } from "./logger.ts";
import { createMetrics } from "./metrics.ts";
import { startNotices } from "./alerts/notices.ts";
import { Alerter } from "./alerts/alerter.ts";
import { alertsRepo } from "./store/alerts-repo.ts";
import { credentialStore } from "./store/credentials-repo.ts";
import { type Db, openDb } from "./store/db.ts";
import { destinationsRepo } from "./store/destinations-repo.ts";
import { ApiKeys } from "./store/keys-repo.ts";
import { oauthStates } from "./store/oauth-states-repo.ts";
import { queueByDestination } from "./store/queue-metrics.ts";
import { ensurePrivateDir } from "./util/private-files.ts";
import { createSecretBox, loadOrCreateMasterKey } from "./util/secret-box.ts";
import { createUrlSigner } from "./util/signed-url.ts";

export interface App extends ApiDeps {
  /** The database (tests, commands and wiring; route handlers get `store`). */
  db: Db;
  kysely: Db["kysely"];
  server: FastifyInstance | undefined;
  /** The admin key generated on the very first start (shown once), if any. */
  firstAdminKey: string | undefined;
  secretKeyFile: string | undefined;
  /** Starts listening (when `api`) and the worker (when `worker`). Returns the URL. */
  start(): Promise<string | undefined>;
  stop(): Promise<void>;
}

/** Applies `leadpush.config.yaml`: destinations and API keys created or replaced by name. */
export async function applyConfigFile(
  app: Pick<App, "destinations" | "keys" | "log" | "alerts">,
  file: ConfigFile,
): Promise<void> {
  for (const doc of file.destinations) {
    const { created } = await app.destinations.upsert(doc);
    app.log.info(
      { destination: doc.name, file: file.path },
      created ? "destination created from config" : "destination updated from config",
    );
  }
  for (const k of file.apiKeys) {
    const what = await app.keys.upsert(k.name, k.scopes, k.key);
    app.log.info({ apiKey: k.name, scopes: k.scopes }, `API key ${what} from config`);
  }
  for (const a of file.alertTargets ?? []) {
    const { created } = await app.alerts.upsert(a);
    app.log.info(
      { alertTarget: a.name, file: file.path },
      `alert target ${created ? "created" : "updated"} from config`,
    );
  }
}

export interface AppOptions {
  api?: boolean;
  worker?: boolean;
  logger?: Logger;
  now?: () => number;
  /** Create an admin key on an empty database with no LEADPUSH_ADMIN_TOKEN (the `serve` first start). */
  bootstrapKey?: boolean;
}

/** Wires leadpush together from a parsed config. Nothing here reads the environment. */
export async function createApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const log = opts.logger ?? createLogger(config.logLevel);
  const now = opts.now ?? Date.now;
  for (const path of usesDataDir(config) ? ensurePrivateDir(config.dataDir) : [])
    log.warn({ path }, "the data directory was open to other users: tightened to mode 0700");
  const db: Db = await openDb(config.database);
  const { key, generated } = loadOrCreateMasterKey(config.secretKey, config.dataDir, !db.caps.shared);
  if (generated)
    log.warn(
      { file: generated },
      "generated a master key for secrets at rest (mode 0600); back it up with the database",
    );
  const box = createSecretBox(key);
  const signer = createUrlSigner(key);
  const events = new Events();
  const destinations = new DestinationService(destinationsRepo(db.kysely), box, { now });
  const credentials = new CredentialRuntime(credentialStore(db.kysely), box, now);
  destinations.onChange = (id) => void credentials.forget(id).catch(() => undefined);
  const transport: Transport = createTransport({ allowPrivateNetworks: config.allowPrivateNetworks });
  const keys = new ApiKeys(db.kysely, config.adminToken);
  const store = createDeliveryStore(db);
  const metrics = createMetrics(events, {
    queueDepth: () => store.countByStatus(),
    destinationStates: () => destinations.states(),
    queueByDestination: () => queueByDestination(db.kysely),
    now,
  });
  const stopNotices = startNotices(events, log, { now });
  const alerts = new Alerter({ repo: alertsRepo(db.kysely, db.caps), box, transport, events, log, now });
  alerts.start();
  const ingest = new Ingest({
    db: db.kysely,
    destinations,
    events,
    now,
    defaultRegion: config.defaultRegion,
    notifyOthers: () => db.notifyWork(),
    duplicateWindowMs: config.duplicateWindowMs,
  });
  const runtime: DeliveryRuntime = {
    db: db.kysely,
    caps: db.caps,
    destinations,
    credentials,
    transport,
    events,
    log,
    now,
    listen: (fn) => db.listenWork(fn),
    // One per process: the worker and the batch service both feed it.
    health: new HealthTracker({ db: db.kysely, events, log, now }),
  };
  const worker =
    opts.worker === false
      ? undefined
      : new Worker({
          ...runtime,
          options: { concurrency: config.workerConcurrency, leaseMs: config.leaseMs },
        });
  if (worker) ingest.attachWorker(worker);
  const batches =
    opts.worker === false
      ? undefined
      : new BatchService({
          ...runtime,
          box,
          signer,
          publicUrl: config.publicUrl,
          notifyWork: () => db.notifyWork(),
          // A step may log in, call the vendor and download a large file: own it generously.
          options: { leaseMs: config.leaseMs + 120_000 },
        });
  let firstAdminKey: string | undefined;
  if (opts.bootstrapKey && !config.adminToken && (await keys.count()) === 0) {
    firstAdminKey = (await keys.create("admin (first start)", ["admin"])).key;
  }
  const deps: ApiDeps = {
    config,
    store,
    log,
    events,
    ingest,
    destinations,
    credentials,
    transport,
    keys,
    oauthStates: oauthStates(db.kysely, box),
    metrics,
    worker,
    batches,
    signer,
    now,
    alerts,
  };
  const server = opts.api === false ? undefined : await buildServer(deps);
  let stopped = false;
  /**
   * Graceful stop within `shutdownGraceMs` from the call, a hard limit: pushes still in flight
   * then are aborted and recorded (`shutdown_aborted`), and what else is still running (a
   * request, a batch step) is cut off; a cut-off batch step runs again when its lease ends.
   */
  async function stop() {
    if (stopped) return;
    stopped = true;
    const deadline = Date.now() + config.shutdownGraceMs;
    const left = () => Math.max(0, deadline - Date.now());
    // Alerts raised while stopping are recorded; another process (or the next start) sends them.
    alerts.pause();
    await within(server?.close(), left());
    await ingest.idle();
    await worker?.stop(left());
    await within(batches?.stop(), left() + 1000);
    if (!(await within(transport.close(), 1000))) await transport.destroy();
    stopNotices();
    await within(alerts.stop(), left() + 1000);
    await db.close();
  }
  return {
    ...deps,
    db,
    kysely: db.kysely,
    server,
    firstAdminKey,
    secretKeyFile: generated,
    /** Starts the worker, batches and API; if any of them fails (a port in use), stops what started. */
    async start() {
      try {
        await worker?.start();
        await batches?.start();
        if (!server) return undefined;
        await server.listen({ port: config.port, host: config.host });
      } catch (err) {
        await stop();
        throw err;
      }
      const addr = server.server.address();
      const port = typeof addr === "object" && addr ? addr.port : config.port;
      return `http://${config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host}:${port}`;
    },
    stop,
  };
}

/** Waits for `p` at most `ms`; true when it settled in time (a rejection counts as settled). */
async function within(p: Promise<unknown> | undefined, ms: number): Promise<boolean> {
  if (!p) return true;
  let timer: NodeJS.Timeout | undefined;
  const done = p.then(
    () => true,
    () => true,
  );
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  const inTime = await Promise.race([done, late]);
  clearTimeout(timer);
  return inTime;
}
