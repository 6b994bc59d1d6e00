import { dirname, resolve } from "node:path";
import { z } from "zod";

/**
 * Everything leadpush reads from the environment, parsed once at start-up and passed down frozen.
 * Nothing else in the code reads `process.env`.
 */
const envSchema = z.object({
  /** HTTP port of the API, dashboard and worker health endpoints. */
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Interface to bind. Default all interfaces, like most servers; set 127.0.0.1 to keep it local. */
  HOST: z.string().default("0.0.0.0"),
  /** `file:PATH` / `sqlite:PATH` (embedded, default ./data/leadpush.db) or `postgres://…`. */
  DATABASE_URL: z.string().optional(),
  /** Folder for the embedded database and the generated secret key. */
  LEADPUSH_DATA_DIR: z.string().default("./data"),
  /** Master key for secrets at rest: 32 bytes as base64 or 64 hex chars. Generated on first embedded start. */
  LEADPUSH_SECRET_KEY: z.string().optional(),
  /** When set, accepted as an admin API key (for automation); no key is generated on first start. */
  LEADPUSH_ADMIN_TOKEN: z.string().min(16, "LEADPUSH_ADMIN_TOKEN must be at least 16 characters").optional(),
  /** Allow destinations on private/loopback networks. Default true: self-hosted gateways often push inside a LAN. */
  LEADPUSH_ALLOW_PRIVATE_NETWORKS: z
    .enum(["true", "false", "1", "0"])
    .default("true")
    .transform((v) => v === "true" || v === "1"),
  /** Base URL vendors and browsers reach leadpush at (OAuth redirects, callbacks, file URLs). */
  LEADPUSH_PUBLIC_URL: z.string().url().optional(),
  /** Default region for phone numbers written without a country code (ISO 3166 alpha-2). */
  LEADPUSH_DEFAULT_REGION: z.string().length(2).default("IN"),
  /** Leads with the same email or phone within this many days are duplicates (0: off). */
  LEADPUSH_DUPLICATE_WINDOW_DAYS: z.coerce.number().min(0).default(30),
  /** Destinations and API keys as code (optional file), applied by `serve` at start. */
  LEADPUSH_CONFIG: z.string().default("./leadpush.config.yaml"),
  /** pino level. */
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** How long a worker owns a claimed delivery beyond its timeout before others may take it (ms). */
  LEADPUSH_LEASE_MS: z.coerce.number().int().min(500).default(30_000),
  /** Deliveries in flight per worker process, over all destinations. */
  LEADPUSH_WORKER_CONCURRENCY: z.coerce.number().int().min(1).default(128),
  /** How long SIGTERM waits for in-flight pushes before releasing their leases (ms). */
  LEADPUSH_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  /** The largest CSV body `POST /v1/imports` takes (bytes); a larger one is 413. */
  LEADPUSH_IMPORT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(512 * 1024 * 1024),
  /**
   * The most deliveries one `POST /v1/deliveries/replay` sends again, and the most rows one CSV
   * export writes: a larger filter is replayed (or exported) in several calls.
   */
  LEADPUSH_REPLAY_MAX: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
});

export type DatabaseTarget = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly database: DatabaseTarget;
  readonly dataDir: string;
  readonly secretKey: string | undefined;
  readonly adminToken: string | undefined;
  readonly allowPrivateNetworks: boolean;
  readonly publicUrl: string;
  readonly defaultRegion: string;
  readonly logLevel: string;
  readonly leaseMs: number;
  readonly workerConcurrency: number;
  readonly shutdownGraceMs: number;
  readonly duplicateWindowMs: number;
  readonly configFile: string;
  readonly importMaxBytes: number;
  /** LEADPUSH_REPLAY_MAX: rows per replay call and per CSV export. */
  readonly replayMax: number;
}

export class ConfigError extends Error {
  readonly code = "invalid_config";
}

export function parseDatabaseUrl(url: string | undefined, dataDir: string): DatabaseTarget {
  if (!url) return { kind: "sqlite", path: resolve(dataDir, "leadpush.db") };
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) return { kind: "postgres", url };
  for (const prefix of ["file:", "sqlite:"]) {
    if (url.startsWith(prefix)) {
      const path = url.slice(prefix.length).replace(/^\/\/(?=\/)/, "");
      return { kind: "sqlite", path: path === ":memory:" ? path : resolve(path) };
    }
  }
  throw new ConfigError(
    `DATABASE_URL must start with file:, sqlite:, postgres:// or postgresql:// (got "${url.split(":")[0]}:…")`,
  );
}

/**
 * Whether leadpush keeps files in the data directory: the embedded database when it lives there,
 * or the generated master key (embedded database, no LEADPUSH_SECRET_KEY). Such a directory is
 * made owner-only (0700) at start; one used for nothing is not created.
 */
export function usesDataDir(config: Pick<Config, "database" | "dataDir" | "secretKey">): boolean {
  const db = config.database;
  if (db.kind !== "sqlite") return false;
  return !config.secretKey || (db.path !== ":memory:" && dirname(db.path) === config.dataDir);
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`invalid environment:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  const dataDir = resolve(e.LEADPUSH_DATA_DIR);
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    database: parseDatabaseUrl(e.DATABASE_URL, dataDir),
    dataDir,
    secretKey: e.LEADPUSH_SECRET_KEY,
    adminToken: e.LEADPUSH_ADMIN_TOKEN,
    allowPrivateNetworks: e.LEADPUSH_ALLOW_PRIVATE_NETWORKS,
    publicUrl: (e.LEADPUSH_PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/$/, ""),
    defaultRegion: e.LEADPUSH_DEFAULT_REGION.toUpperCase(),
    logLevel: e.LOG_LEVEL,
    leaseMs: e.LEADPUSH_LEASE_MS,
    workerConcurrency: e.LEADPUSH_WORKER_CONCURRENCY,
    shutdownGraceMs: e.LEADPUSH_SHUTDOWN_GRACE_MS,
    duplicateWindowMs: e.LEADPUSH_DUPLICATE_WINDOW_DAYS * 86_400_000,
    configFile: resolve(e.LEADPUSH_CONFIG),
    importMaxBytes: e.LEADPUSH_IMPORT_MAX_BYTES,
    replayMax: e.LEADPUSH_REPLAY_MAX,
  });
}
