import { createHash } from "node:crypto";
import { type CircuitConfig, circuitSchema } from "./circuit.ts";
import { z } from "zod";
import { authStrategy, AUTH_STRATEGIES } from "../auth/registry.ts";
import type { AuthTarget } from "../auth/runtime.ts";
import type { AuthStrategy } from "../auth/strategy.ts";
import type { Connector } from "../connectors/connector.ts";
import { compileFilter, compileMapping, type Filter, type Mapping } from "../connectors/mapping.ts";
import { connector as findConnector, CONNECTORS } from "../connectors/registry.ts";
import { AppError, type ErrorDetail } from "../util/errors.ts";
import { REDACTED } from "../util/redact.ts";
import type { DedupeRule } from "../store/duplicates.ts";
import { type RateLimit, type RateLimitSpec, rateLimitSchema } from "./rate-limit.ts";
import { issues } from "./issues.ts";

/** Default delays between attempts: the first attempt is immediate, then 10 s, 1 min, 5 min, … 24 h. */
export const DEFAULT_RETRY_DELAYS_MS = [10e3, 60e3, 300e3, 1800e3, 7200e3, 21600e3, 43200e3, 86400e3];

/**
 * A destination's duplicate rule: a lead is a duplicate for it when an earlier lead within
 * `windowHours` that was routed to it shares one of `fields` (and, with `project`, the same
 * `projectId`; two leads without a project count as the same project).
 */
export const dedupeSchema = z.union([
  z.literal(false),
  z.literal("off"),
  z
    .object({
      fields: z
        .array(z.enum(["email", "phone"]))
        .min(1)
        .max(2)
        .default(["email", "phone"])
        .describe("Which fields identify the person (any one equal is a match)."),
      project: z.boolean().default(true).describe("Only a lead about the same project repeats it."),
      windowHours: z
        .number()
        .int()
        .min(1)
        .max(24 * 3650)
        .optional()
        .describe("How far back to look; default: LEADPUSH_DUPLICATE_WINDOW_DAYS."),
    })
    .strict(),
]);

export type DedupeSpec = z.infer<typeof dedupeSchema>;

/** The rule of a destination: its own `dedupe`, else the default over the global window. */
export function dedupeRule(spec: DedupeSpec | undefined, defaultWindowMs: number): DedupeRule {
  if (spec === false || spec === "off") return { fields: [], project: true, windowMs: 0 };
  const windowMs = spec?.windowHours !== undefined ? spec.windowHours * 3_600_000 : defaultWindowMs;
  return { fields: spec?.fields ?? ["email", "phone"], project: spec?.project ?? true, windowMs };
}

/** Fields every destination has, whatever its connector. Connector fields are validated by the connector. */
export const destinationCommonSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "letters, digits, '_', '.', '-'; at most 64; no spaces")
      .describe("Unique name; usable instead of the id in URLs."),
    connector: z.string().describe(`One of: ${Object.keys(CONNECTORS).join(", ")}.`),
    enabled: z.boolean().default(true),
    auth: z
      .looseObject({ type: z.string() })
      .optional()
      .describe(`Auth config; type one of: ${Object.keys(AUTH_STRATEGIES).join(", ")}.`),
    mapping: z
      .union([z.string(), z.record(z.string(), z.string())])
      .optional()
      .describe("JSONata: one expression, or one per payload field."),
    filter: z
      .string()
      .optional()
      .describe("JSONata boolean over the lead: which leads this destination gets."),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(120_000)
      .default(10_000)
      .describe("Whole-request timeout of every push and auth request."),
    retry: z
      .object({
        delaysMs: z
          .array(
            z
              .number()
              .int()
              .min(0)
              .max(7 * 86400e3),
          )
          .max(50)
          .default(DEFAULT_RETRY_DELAYS_MS),
        jitter: z.number().min(0).max(1).default(0.2),
      })
      .strict()
      .default({ delaysMs: DEFAULT_RETRY_DELAYS_MS, jitter: 0.2 })
      .describe("Delays between attempts; attempts = delays + 1. Jitter is a fraction of each delay."),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(16)
      .describe("Pushes in flight at once, per worker process."),
    pushDuplicates: z
      .boolean()
      .default(false)
      .describe("Also push leads recognized as duplicates (same email or phone within the window)."),
    after: z
      .array(z.string())
      .default([])
      .describe("Names of destinations whose delivery of the same lead must finish first."),
    circuit: circuitSchema.describe(
      "Circuit breaking: { failureThreshold, cooldownMs, degradedFailureRate } (defaults 5, 30000, 0.5).",
    ),
    paused: z
      .boolean()
      .default(false)
      .describe("Paused: deliveries are still created and wait (pending); resuming sends them."),
    rateLimit: rateLimitSchema
      .optional()
      .describe(
        'Pushes per second or minute, shared by all worker processes: {"perSecond": n} or ' +
          '{"perMinute": n}, optional "burst".',
      ),
    dedupe: dedupeSchema
      .optional()
      .describe(
        "This destination's duplicate rule; absent: same email or phone, same project, the global window. " +
          'false or "off": every lead is new here.',
      ),
  })
  .loose();

export type DestinationCommon = z.infer<typeof destinationCommonSchema>;

/** A destination as validated: common fields, the connector's own fields, and the auth config. */
export interface DestinationSpec {
  common: {
    name: string;
    connector: string;
    enabled: boolean;
    mapping?: string | Record<string, string>;
    filter?: string;
    timeoutMs: number;
    retry: { delaysMs: number[]; jitter: number };
    concurrency: number;
    pushDuplicates: boolean;
    after: string[];
    paused: boolean;
    circuit: CircuitConfig;
    rateLimit?: RateLimitSpec;
    dedupe?: DedupeSpec;
  };
  connectorConfig: Record<string, unknown>;
  auth: { type: string } & Record<string, unknown>;
  /** Built by the connector's `authFrom` from its own fields: not stored (it would go stale). */
  authDerived: boolean;
}

const COMMON_KEYS = new Set(Object.keys(destinationCommonSchema.shape));

const invalid = (message: string, details: ErrorDetail[]) =>
  new AppError(400, "invalid_destination", message, details);

/** Validates a whole destination document (after merging a PATCH). Throws `invalid_destination`. */
export function validateDestination(input: unknown): DestinationSpec {
  const common = destinationCommonSchema.safeParse(input);
  if (!common.success) throw invalid("the destination is not valid", issues(common.error));
  const conn = findConnector(common.data.connector);
  if (!conn) {
    throw invalid(`unknown connector "${common.data.connector}"`, [
      { path: ["connector"], message: `expected one of: ${Object.keys(CONNECTORS).join(", ")}` },
    ]);
  }
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(common.data)) if (!COMMON_KEYS.has(k)) rest[k] = v;
  const connCfg = (conn as Connector<unknown>).schema.safeParse(rest);
  if (!connCfg.success) throw invalid(`not a valid "${conn.name}" destination`, issues(connCfg.error));
  const derive = (conn as Connector<unknown>).authFrom;
  if (derive && common.data.auth !== undefined) {
    throw invalid(`connector "${conn.name}" builds its auth from its own fields; leave "auth" out`, [
      {
        path: ["auth"],
        message: "not accepted for this connector (see its email / password / apiKey fields)",
      },
    ]);
  }
  const authInput = derive ? derive(connCfg.data) : (common.data.auth ?? conn.defaultAuth);
  const strategy = authStrategy(authInput.type);
  if (!strategy) {
    throw invalid(`unknown auth type "${authInput.type}"`, [
      { path: ["auth", "type"], message: `expected one of: ${Object.keys(AUTH_STRATEGIES).join(", ")}` },
    ]);
  }
  if (conn.authTypes && !conn.authTypes.includes(strategy.type)) {
    throw invalid(`connector "${conn.name}" does not support auth type "${strategy.type}"`, [
      { path: ["auth", "type"], message: `expected one of: ${conn.authTypes.join(", ")}` },
    ]);
  }
  const auth = strategy.schema.safeParse(authInput);
  if (!auth.success)
    throw invalid(`not a valid "${strategy.type}" auth config`, issues(auth.error, ["auth"]));
  const { auth: _a, ...commonFields } = common.data;
  const commonOnly = Object.fromEntries(Object.entries(commonFields).filter(([k]) => COMMON_KEYS.has(k)));
  // Compile once here so a broken expression is a 400 now, not a failure per lead later.
  compileMapping(common.data.mapping, () => undefined);
  compileFilter(common.data.filter);
  return {
    common: commonOnly as DestinationSpec["common"],
    connectorConfig: connCfg.data as Record<string, unknown>,
    auth: auth.data as DestinationSpec["auth"],
    authDerived: derive !== undefined,
  };
}

/** The auth type of a stored destination document (derived auth is not stored). */
export function authTypeOf(doc: Record<string, unknown>): string {
  const auth = doc.auth as { type?: unknown } | undefined;
  if (typeof auth?.type === "string") return auth.type;
  return findConnector(String(doc.connector))?.defaultAuth.type ?? "none";
}

/** The paths of secret fields of a destination: the connector's and its auth strategy's. */
export function secretPaths(connectorName: string, authType: string): string[][] {
  const conn = findConnector(connectorName);
  const strategy = authStrategy(authType);
  return [
    ...(conn?.secretFields ?? []).map((f) => [f]),
    ...(strategy?.secretFields ?? []).map((f) => ["auth", f]),
  ];
}

/** Splits a destination document into its public part and its secrets (by path). */
export function splitSecrets(doc: Record<string, unknown>, paths: string[][]) {
  const plain = structuredClone(doc);
  const secrets: Record<string, unknown> = {};
  for (const path of paths) {
    const parent = walk(plain, path.slice(0, -1));
    const key = path[path.length - 1] as string;
    if (parent && key in parent) {
      secrets[path.join(".")] = parent[key];
      delete parent[key];
    }
  }
  return { plain, secrets };
}

export function joinSecrets(
  plain: Record<string, unknown>,
  secrets: Record<string, unknown>,
): Record<string, unknown> {
  const doc = structuredClone(plain);
  for (const [joined, value] of Object.entries(secrets)) {
    const path = joined.split(".");
    const parent = walk(doc, path.slice(0, -1), true);
    if (parent) parent[path[path.length - 1] as string] = value;
  }
  return doc;
}

/** The public view of secrets: present, but every value replaced by "[redacted]". */
export function redactSecrets(
  plain: Record<string, unknown>,
  secrets: Record<string, unknown>,
): Record<string, unknown> {
  const masked = Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, mask(v)]));
  return joinSecrets(plain, masked);
}

function mask(v: unknown): unknown {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    return Object.fromEntries(Object.keys(v).map((k) => [k, REDACTED]));
  }
  return REDACTED;
}

/** A PATCH body merged over the stored document; "[redacted]" values keep what was stored. */
export function mergePatch(current: unknown, patch: unknown): unknown {
  if (patch === REDACTED) return current;
  if (
    patch &&
    typeof patch === "object" &&
    !Array.isArray(patch) &&
    current &&
    typeof current === "object" &&
    !Array.isArray(current)
  ) {
    const out: Record<string, unknown> = { ...(current as Record<string, unknown>) };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = mergePatch(out[k], v);
    }
    return out;
  }
  return patch;
}

function walk(
  obj: Record<string, unknown>,
  path: string[],
  create = false,
): Record<string, unknown> | undefined {
  let cur: Record<string, unknown> = obj;
  for (const key of path) {
    let next = cur[key];
    if (!next || typeof next !== "object") {
      if (!create) return undefined;
      next = {};
      cur[key] = next;
    }
    cur = next as Record<string, unknown>;
  }
  return cur;
}

/**
 * What the credential runtime needs to know of a destination: the one place that builds it, so
 * deliveries, batches and account calls share one cached credential (same id, same version).
 */
export function authTarget(
  d: ResolvedDestination,
  overrides: { auth?: ResolvedDestination["auth"]; failureHoldMs?: number } = {},
): AuthTarget {
  return {
    id: d.id,
    version: d.authVersion,
    auth: overrides.auth ?? d.auth,
    timeoutMs: d.timeoutMs,
    failureHoldMs: overrides.failureHoldMs ?? d.retry.delaysMs[0] ?? 0,
  };
}

/** The `authVersion` of a destination document (see ResolvedDestination). */
export function credentialVersion(doc: Record<string, unknown>): string {
  const authType = (doc.auth as { type?: string } | undefined)?.type ?? "none";
  const { secrets } = splitSecrets(doc, secretPaths(doc.connector as string, authType));
  const basis = canonicalJson([doc.connector, doc.auth, secrets]);
  return createHash("sha256").update(basis).digest("base64url").slice(0, 22);
}

/** JSON with object keys sorted: the same value gives the same text, whatever the key order. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** A destination ready for the worker: validated, compiled, with secrets in clear (in memory only). */
export interface ResolvedDestination {
  id: string;
  name: string;
  version: string;
  /**
   * Changes only when what credentials depend on changes (connector, auth config, secrets): an
   * edit of the mapping, filter or retry policy keeps the cached credential (and an OAuth connection).
   */
  authVersion: string;
  enabled: boolean;
  state: string;
  connector: Connector<unknown>;
  connectorConfig: unknown;
  strategy: AuthStrategy<{ type: string }>;
  auth: { type: string } & Record<string, unknown>;
  mapping: Mapping | undefined;
  filter: Filter;
  /** The filter's expression (routing records name it), undefined without a filter. */
  filterText: string | undefined;
  timeoutMs: number;
  retry: { delaysMs: number[]; jitter: number };
  concurrency: number;
  pushDuplicates: boolean;
  after: string[];
  /** Deliveries are created and wait: the worker does not claim them until resumed. */
  paused: boolean;
  circuit: CircuitConfig;
  /** When an open circuit (or refused credentials) is probed next (this process's last look). */
  probeAt: number | null;
  /** The destination's own duplicate rule (undefined: the default rule). */
  dedupe: DedupeSpec | undefined;
  /** Its rate limit (undefined: none); claims for it go through its shared budget. */
  rateLimit: RateLimit | undefined;
  /** Every secret string of the destination, for the redactor. */
  secretValues: string[];
}
