import { authStrategy } from "../auth/registry.ts";
import type { Connector } from "../connectors/connector.ts";
import { compileFilter, compileMapping, ExpressionFailure, type MappingSpec } from "../connectors/mapping.ts";
import { connector as findConnector } from "../connectors/registry.ts";
import type { Lead } from "../lead/lead.ts";
import type { DestinationsRepo, DestinationState } from "../store/destinations-repo.ts";
import type { DestinationsTable } from "../store/schema.ts";
import { AppError, notFound } from "../util/errors.ts";
import { newId } from "../util/ids.ts";
import { stringsIn } from "../util/redact.ts";
import type { SecretBox } from "../util/secret-box.ts";
import {
  credentialVersion,
  authTypeOf,
  joinSecrets,
  mergePatch,
  redactSecrets,
  type ResolvedDestination,
  secretPaths,
  splitSecrets,
  validateDestination,
} from "./model.ts";
import { holdView, resolveRateLimit } from "./rate-limit.ts";

/** The lead filters and mappings are tried on when saved, and the dry run's default lead. */
export const SAMPLE_LEAD: Lead = {
  name: "Asha",
  lastName: "Rao",
  email: "asha.rao@example.com",
  phone: "+919123456789",
  city: "Bengaluru",
  projectId: "PRJ-1001",
  source: "Website",
  context: "Interested in a 2BHK near the metro",
  attributes: {},
  enrichment: {},
};

/**
 * Evaluates the filter and the mapping on the sample lead, so that one that fails or hits a limit
 * (time, depth, size) on an ordinary lead is refused when saved instead of failing every lead
 * later. A result that is merely undefined is fine.
 */
async function tryOnSample(spec: ReturnType<typeof validateDestination>): Promise<void> {
  const input = SAMPLE_LEAD as unknown as Record<string, unknown>;
  try {
    await compileFilter(spec.common.filter).matches(input);
    if (spec.common.mapping !== undefined)
      await compileMapping(spec.common.mapping as MappingSpec, () => undefined).render({
        ...input,
        id: "sample",
      });
  } catch (err) {
    if (!(err instanceof ExpressionFailure)) throw err;
    const code = err.code === "filter_error" ? "invalid_filter" : "invalid_mapping";
    throw new AppError(400, code, `the ${err.path[0]} fails on a sample lead: ${err.message}`, [
      {
        path: err.path,
        message: err.message,
        code: err.reason,
        ...(err.position !== undefined ? { position: err.position } : {}),
      },
    ]);
  }
}

/** A destination whose auth needs a person to connect it first starts out waiting for that. */
function initialState(authType: string): DestinationState {
  return authStrategy(authType)?.connect ? "needs_reconnect" : "active";
}

/** The public (redacted) view of a destination, as the API returns it. */
export type DestinationView = Record<string, unknown> & { id: string; name: string; connector: string };

/**
 * Destinations: create/read/update/delete with secrets sealed at rest and redacted on read, and a
 * cache of resolved (validated, compiled) destinations for ingest and the worker. The cache
 * reloads when any destination changed — here at once, in other processes within `refreshMs`.
 */
export class DestinationService {
  readonly #repo: DestinationsRepo;
  readonly #box: SecretBox;
  readonly #now: () => number;
  readonly #refreshMs: number;
  #cache: Map<string, ResolvedDestination> | undefined;
  #stamp = "";
  #checkedAt = 0;
  #loading: Promise<Map<string, ResolvedDestination>> | undefined;
  /** Bumped by every change made here: a reload that started before it must not be kept. */
  #generation = 0;
  /** Called with a destination id whenever it changes (credential cache invalidation). */
  onChange: (id: string) => void = () => undefined;

  constructor(repo: DestinationsRepo, box: SecretBox, opts: { now?: () => number; refreshMs?: number } = {}) {
    this.#repo = repo;
    this.#box = box;
    this.#now = opts.now ?? Date.now;
    this.#refreshMs = opts.refreshMs ?? 1000;
  }

  async create(input: unknown): Promise<DestinationView> {
    const spec = validateDestination(input);
    await tryOnSample(spec);
    const doc = toDocument(spec);
    const now = this.#now();
    await this.#assertNameFree(spec.common.name);
    const row = {
      id: newId(),
      ...this.#seal(doc),
      state: initialState(spec.auth.type),
      created_at: now,
      updated_at: now,
    };
    await this.#repo.insert(row);
    this.#invalidate(row.id);
    return this.#view(row);
  }

  async update(idOrName: string, patch: unknown, opts: { replace?: boolean } = {}): Promise<DestinationView> {
    const row = await this.#row(idOrName);
    const current = this.#document(row);
    const merged = (opts.replace ? patch : mergePatch(current, patch)) as Record<string, unknown>;
    const spec = validateDestination(merged);
    await tryOnSample(spec);
    const doc = toDocument(spec);
    if (spec.common.name !== row.name) await this.#assertNameFree(spec.common.name);
    // Credentials (and an OAuth connection) survive edits that do not touch what they depend on.
    const credentialsChanged = credentialVersion(current) !== credentialVersion(doc);
    const updated = {
      ...row,
      ...this.#seal(doc),
      // A new auth config gets a fresh try, or waits for a connect when it needs one.
      ...(credentialsChanged ? { state: initialState(spec.auth.type) } : {}),
      updated_at: Math.max(this.#now(), row.updated_at + 1),
    };
    await this.#repo.update(updated, { resetHealth: credentialsChanged });
    if (credentialsChanged) this.#invalidate(row.id);
    else this.#dropCache();
    return this.#view(updated);
  }

  /** Creates the destination, or replaces the one with the same name (config as code). */
  async upsert(doc: Record<string, unknown>): Promise<{ view: DestinationView; created: boolean }> {
    const name = typeof doc.name === "string" ? doc.name : "";
    const existing = await this.#repo.idByName(name);
    if (existing === undefined) return { view: await this.create(doc), created: true };
    return { view: await this.update(existing, doc, { replace: true }), created: false };
  }

  async remove(idOrName: string): Promise<void> {
    const row = await this.#row(idOrName);
    await this.#repo.remove(row.id, this.#now());
    this.#invalidate(row.id);
  }

  async setState(id: string, state: DestinationState): Promise<void> {
    await this.#repo.setState(id, state);
    this.#dropCache();
  }

  /** Every destination's name and state, without opening secrets (metrics). */
  async states(): Promise<{ name: string; state: string }[]> {
    return this.#repo.states();
  }

  async get(idOrName: string): Promise<DestinationView> {
    return this.#view(await this.#row(idOrName));
  }

  async list(): Promise<DestinationView[]> {
    const rows = await this.#repo.all({ ordered: true });
    return rows.map((r) => this.#view(r));
  }

  /** The resolved destination by id or name (secrets in clear: never return it from the API). */
  async resolve(idOrName: string): Promise<ResolvedDestination> {
    const all = await this.resolved();
    const found = all.get(idOrName) ?? [...all.values()].find((d) => d.name === idOrName);
    if (!found) throw notFound("destination", idOrName);
    return found;
  }

  /** All destinations, resolved, by id. Cheap: reloads only when something changed. */
  async resolved(opts: { fresh?: boolean } = {}): Promise<Map<string, ResolvedDestination>> {
    const now = this.#now();
    if (this.#cache && !opts.fresh && now - this.#checkedAt < this.#refreshMs) return this.#cache;
    if (this.#loading) return this.#loading;
    const loading: Promise<Map<string, ResolvedDestination>> = this.#reload().finally(() => {
      if (this.#loading === loading) this.#loading = undefined;
    });
    this.#loading = loading;
    return loading;
  }

  /**
   * Forgets the resolved destinations after a change made here. A reload already running read
   * the rows before the change: it is not waited for, and what it read is not kept (a lead
   * accepted just after a destination was created was routed without it).
   */
  #dropCache(): void {
    this.#cache = undefined;
    this.#loading = undefined;
    this.#generation++;
  }

  async #reload(): Promise<Map<string, ResolvedDestination>> {
    const generation = this.#generation;
    const stamp = await this.#repo.stamp();
    if (generation === this.#generation) this.#checkedAt = this.#now();
    if (this.#cache && stamp === this.#stamp) return this.#cache;
    const rows = await this.#repo.all();
    const map = new Map<string, ResolvedDestination>();
    for (const row of rows) {
      try {
        map.set(row.id, this.#resolveRow(row));
      } catch {
        // A destination that no longer validates (connector removed) is skipped, not fatal.
      }
    }
    if (generation !== this.#generation) return map;
    this.#cache = map;
    this.#stamp = stamp;
    return map;
  }

  #resolveRow(row: DestinationsTable): ResolvedDestination {
    const doc = this.#document(row);
    return resolveSpec(doc, validateDestination(doc), {
      id: row.id,
      version: String(row.updated_at),
      enabled: row.enabled === 1,
      state: row.state,
      probeAt: row.probe_at ?? null,
    });
  }

  /**
   * A destination that is not saved (a form being filled in), resolved for a dry run: validated
   * and tried on the sample lead as a save is. With `base` (an id or name) `input` is merged over
   * that destination as a PATCH is, so "[redacted]" keeps its stored secrets. Nothing is written,
   * and the result's id is its own (`draft-…`): no saved destination's credential or pool is used.
   */
  async draft(input: unknown, base?: string): Promise<ResolvedDestination> {
    const doc = base === undefined ? input : mergePatch(this.#document(await this.#row(base)), input);
    const spec = validateDestination(doc);
    await tryOnSample(spec);
    const id = `draft-${newId()}`;
    const meta = { id, version: id, enabled: spec.common.enabled, state: "active", probeAt: null };
    return resolveSpec(toDocument(spec), spec, meta);
  }

  #invalidate(id: string): void {
    this.#dropCache();
    this.onChange(id);
  }

  async #assertNameFree(name: string): Promise<void> {
    if ((await this.#repo.idByName(name)) !== undefined)
      throw new AppError(409, "destination_exists", `a destination named "${name}" already exists`);
  }

  async #row(idOrName: string): Promise<DestinationsTable> {
    const row = await this.#repo.find(idOrName);
    if (!row) throw notFound("destination", idOrName);
    return row;
  }

  #seal(doc: Record<string, unknown>) {
    const { plain, secrets } = splitSecrets(doc, secretPaths(doc.connector as string, authTypeOf(doc)));
    const { name, connector, enabled, ...config } = plain;
    return {
      name: name as string,
      connector: connector as string,
      enabled: enabled === false ? 0 : 1,
      config: JSON.stringify(config),
      secrets: Object.keys(secrets).length > 0 ? this.#box.seal(JSON.stringify(secrets)) : null,
    };
  }

  /** The full stored document, secrets in clear. */
  #document(row: DestinationsTable): Record<string, unknown> {
    const plain = {
      name: row.name,
      connector: row.connector,
      enabled: row.enabled === 1,
      ...(JSON.parse(row.config) as object),
    };
    const secrets = row.secrets ? (JSON.parse(this.#box.open(row.secrets)) as Record<string, unknown>) : {};
    return joinSecrets(plain, secrets);
  }

  #view(row: DestinationsTable): DestinationView {
    const doc = this.#document(row);
    const { plain, secrets } = splitSecrets(doc, secretPaths(row.connector, authTypeOf(doc)));
    return {
      id: row.id,
      ...redactSecrets(plain, secrets),
      state: row.enabled !== 1 ? "disabled" : doc.paused === true ? "paused" : row.state,
      hold: holdView(row, this.#now()),
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString(),
    } as unknown as DestinationView;
  }
}

/** The stored document of a validated destination: common fields, connector fields, auth. */
function toDocument(spec: ReturnType<typeof validateDestination>): Record<string, unknown> {
  return { ...spec.common, ...spec.connectorConfig, ...(spec.authDerived ? {} : { auth: spec.auth }) };
}

/** A validated destination document, compiled for the worker (or a dry run). */
function resolveSpec(
  doc: Record<string, unknown>,
  spec: ReturnType<typeof validateDestination>,
  meta: { id: string; version: string; enabled: boolean; state: string; probeAt: number | null },
): ResolvedDestination {
  const name = spec.common.connector;
  const conn = findConnector(name) as Connector<unknown>;
  const strategy = authStrategy(spec.auth.type);
  if (!strategy) throw new Error(`unknown auth ${spec.auth.type}`);
  const { secrets } = splitSecrets(doc, secretPaths(name, spec.auth.type));
  return {
    id: meta.id,
    name: spec.common.name,
    version: meta.version,
    authVersion: credentialVersion(doc),
    enabled: meta.enabled,
    state: meta.state,
    connector: conn,
    connectorConfig: spec.connectorConfig,
    strategy,
    auth: spec.auth,
    mapping:
      spec.common.mapping === undefined
        ? undefined
        : compileMapping(spec.common.mapping as MappingSpec, () => undefined),
    filter: compileFilter(spec.common.filter),
    filterText: spec.common.filter?.trim() || undefined,
    timeoutMs: spec.common.timeoutMs,
    retry: spec.common.retry,
    concurrency: spec.common.concurrency,
    pushDuplicates: spec.common.pushDuplicates,
    after: spec.common.after,
    paused: spec.common.paused,
    circuit: spec.common.circuit,
    probeAt: meta.probeAt,
    dedupe: spec.common.dedupe,
    rateLimit: resolveRateLimit(spec.common.rateLimit),
    secretValues: stringsIn(secrets),
  };
}
