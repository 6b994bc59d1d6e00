import type { HttpClient, OutboundRequest } from "../delivery/http-client.ts";
import type { Redactor } from "../util/redact.ts";
import type { SecretBox } from "../util/secret-box.ts";
import type { AuthStrategy, Credential } from "./strategy.ts";

/** Where credentials are shared between workers: the store, sealed. */
export interface CredentialStore {
  load(destinationId: string): Promise<{ data: string; version: string } | undefined>;
  save(destinationId: string, data: string, expiresAt: number | undefined): Promise<void>;
  remove(destinationId: string): Promise<void>;
}

export type PrepareResult =
  { ok: true } | { ok: false; code: string; message: string; needsReconnect?: boolean };

export interface AuthSession {
  /** Gets a credential (cached, shared, refreshed ahead of expiry, single flight) and applies it. */
  prepare(req: OutboundRequest): Promise<PrepareResult>;
  /** Whether this response says the credential was refused. */
  isRejection(status: number, headers: Record<string, string>): boolean;
  /** Drop the cached credential (after a rejection) so the next `prepare` fetches a fresh one. */
  invalidate(): Promise<void>;
}

export interface AuthTarget {
  id: string;
  /** Changes whenever the destination is edited: cached credentials of an older version are dropped. */
  version: string;
  auth: { type: string; ttlSeconds?: number };
  timeoutMs: number;
}

interface Cached {
  version: string;
  credential: Credential;
  /** When to fetch a new one: ahead of expiry by a margin. */
  refreshAt: number;
}

/** Fetch ahead of expiry by 10% of the lifetime, at most 60 s, at least 1 s. */
export function refreshMargin(lifetimeMs: number): number {
  return Math.max(Math.min(lifetimeMs * 0.1, 60_000), Math.min(1000, lifetimeMs / 2));
}

/**
 * The one credential runtime for every auth strategy: the single place for caching, expiry margins,
 * single flight, invalidation after a rejection, persistence (sealed) and feeding the redactor.
 */
export class CredentialRuntime {
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<PrepareResultWithCred>>();
  readonly #store: CredentialStore;
  readonly #box: SecretBox;
  readonly #now: () => number;
  /** Number of handshakes performed, by destination id (for tests and metrics). */
  readonly handshakes = new Map<string, number>();

  constructor(store: CredentialStore, box: SecretBox, now: () => number = Date.now) {
    this.#store = store;
    this.#box = box;
    this.#now = now;
  }

  /**
   * Keeps a credential obtained outside a push (the OAuth connect callback) exactly as a handshake's
   * result is kept: sealed in the shared store and cached here, replacing what was there.
   */
  async store(target: Omit<AuthTarget, "timeoutMs">, credential: Credential): Promise<void> {
    const now = this.#now();
    const expiresAt =
      credential.expiresAt ?? (target.auth.ttlSeconds ? now + target.auth.ttlSeconds * 1000 : undefined);
    const refreshAt =
      expiresAt === undefined ? Number.MAX_SAFE_INTEGER : expiresAt - refreshMargin(expiresAt - now);
    const cached: Cached = { version: target.version, credential, refreshAt };
    this.#cache.set(target.id, cached);
    await this.#store.save(target.id, this.#box.seal(JSON.stringify(cached)), expiresAt);
  }

  /**
   * After a refusal: the credential must not be used again, but a refresh token in it stays (here
   * and in the shared store) as the `previous` of the next handshake: an OAuth connection made by a
   * person in a browser is not thrown away because one access token was refused.
   */
  async #markStale(target: AuthTarget): Promise<void> {
    const cached = this.#cache.get(target.id) ?? (await this.#loadShared(target));
    if (cached?.credential.refresh === undefined) {
      this.#cache.delete(target.id);
      await this.#store.remove(target.id);
      return;
    }
    const stale: Cached = { ...cached, refreshAt: 0 };
    this.#cache.set(target.id, stale);
    await this.#store.save(target.id, this.#box.seal(JSON.stringify(stale)), cached.credential.expiresAt);
  }

  session(
    target: AuthTarget,
    strategy: AuthStrategy<{ type: string }>,
    http: HttpClient,
    redactor: Redactor,
  ): AuthSession {
    const needsToken = typeof strategy.obtain === "function";
    return {
      prepare: async (req) => {
        if (!needsToken) {
          strategy.apply(req, target.auth, undefined);
          return { ok: true };
        }
        const got = await this.#credential(target, strategy, http, redactor);
        if (!got.ok) return got;
        strategy.apply(req, target.auth, got.credential);
        return { ok: true };
      },
      isRejection: (status, headers) =>
        strategy.isRejection
          ? strategy.isRejection(status, headers)
          : status === 401 || (needsToken && status === 403),
      invalidate: () => this.#markStale(target),
    };
  }

  /** Forget a destination's credential everywhere (edited, deleted, reconnected). */
  async forget(destinationId: string): Promise<void> {
    this.#cache.delete(destinationId);
    await this.#store.remove(destinationId);
  }

  async #credential(
    target: AuthTarget,
    strategy: AuthStrategy<{ type: string }>,
    http: HttpClient,
    redactor: Redactor,
  ): Promise<PrepareResultWithCred> {
    const now = this.#now();
    const usable = (c: Cached | undefined): c is Cached =>
      c !== undefined && c.version === target.version && c.refreshAt > now;
    let cached = this.#cache.get(target.id);
    // Another worker may have refreshed it already: look in the shared store before a handshake.
    if (!usable(cached)) cached = (await this.#loadShared(target)) ?? cached;
    if (usable(cached)) {
      redactor.add(...Object.values(cached.credential.values), cached.credential.refresh);
      return { ok: true, credential: cached.credential };
    }
    const running = this.#inflight.get(target.id);
    if (running) return running;
    const stale = cached as Cached | undefined;
    const previous = stale?.version === target.version ? stale.credential : undefined;
    const p = this.#fetch(target, strategy, http, redactor, previous).finally(() =>
      this.#inflight.delete(target.id),
    );
    this.#inflight.set(target.id, p);
    return p;
  }

  async #loadShared(target: AuthTarget): Promise<Cached | undefined> {
    const row = await this.#store.load(target.id);
    if (!row) return undefined;
    try {
      const cached = JSON.parse(this.#box.open(row.data)) as Cached;
      this.#cache.set(target.id, cached);
      return cached;
    } catch {
      return undefined;
    }
  }

  async #fetch(
    target: AuthTarget,
    strategy: AuthStrategy<{ type: string }>,
    http: HttpClient,
    redactor: Redactor,
    previous: Credential | undefined,
  ): Promise<PrepareResultWithCred> {
    this.handshakes.set(target.id, (this.handshakes.get(target.id) ?? 0) + 1);
    const obtain = strategy.obtain;
    if (!obtain) throw new Error(`auth type ${strategy.type} has no handshake`);
    const result = await obtain(target.auth, { http, timeoutMs: target.timeoutMs, now: this.#now, previous });
    if (!result.ok) {
      return { ...result, message: redactor.text(result.message) };
    }
    const credential = result.credential;
    redactor.add(...Object.values(credential.values), credential.refresh);
    const now = this.#now();
    const expiresAt =
      credential.expiresAt ?? (target.auth.ttlSeconds ? now + target.auth.ttlSeconds * 1000 : undefined);
    const refreshAt =
      expiresAt === undefined ? Number.MAX_SAFE_INTEGER : expiresAt - refreshMargin(expiresAt - now);
    const cached: Cached = { version: target.version, credential, refreshAt };
    this.#cache.set(target.id, cached);
    await this.#store.save(target.id, this.#box.seal(JSON.stringify(cached)), expiresAt);
    return { ok: true, credential };
  }
}

type PrepareResultWithCred =
  | { ok: true; credential: Credential }
  | { ok: false; code: string; message: string; needsReconnect?: boolean };
