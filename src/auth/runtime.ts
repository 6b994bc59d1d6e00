import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import type { HttpClient, OutboundRequest } from "../http/http-client.ts";
import type { Redactor } from "../util/redact.ts";
import type { SecretBox } from "../util/secret-box.ts";
import type { AuthStrategy, Credential } from "./strategy.ts";
import type { AuthFailureCode } from "../domain/codes.ts";
import { memoryCredentialStore } from "./memory-store.ts";

/** Where credentials are shared between workers: the store, sealed. */
export interface CredentialStore {
  load(destinationId: string): Promise<{ data: string; version: string } | undefined>;
  /** With `ifData`: only while the stored (sealed) data is still that text (compare-and-swap). */
  save(destinationId: string, data: string, expiresAt: number | undefined, ifData?: string): Promise<void>;
  /** With `ifData`: only while the stored (sealed) data is still that text (compare-and-swap). */
  remove(destinationId: string, ifData?: string): Promise<void>;
  /** Who fetches the destination's credential until when, or which failed handshake is held. */
  leaseOf(destinationId: string): Promise<CredentialLease | undefined>;
  /**
   * Takes the right to fetch the destination's credential until `until` when nobody holds it (no
   * row, its lease or hold over, or a hold of an older `version`'s failure); false when another has it.
   */
  takeLease(
    destinationId: string,
    holder: string,
    now: number,
    until: number,
    version: string,
  ): Promise<boolean>;
  renewLease(destinationId: string, holder: string, until: number): Promise<void>;
  /**
   * Ends `holder`'s lease (any holder's when undefined). With `hold`, the row stays as a hold of a
   * failed handshake (sealed `failure`) that the other processes answer with until `hold.until`.
   */
  releaseLease(
    destinationId: string,
    holder: string | undefined,
    hold?: { until: number; version: string; failure: string },
  ): Promise<void>;
}

export interface CredentialLease {
  /** Empty when the row holds a failed handshake. */
  holder: string;
  until: number;
  /** A failed handshake (sealed result) of this destination version, held until `until`. */
  failure?: { version: string; data: string };
}

export type PrepareResult =
  { ok: true } | { ok: false; code: AuthFailureCode; message: string; needsReconnect?: boolean };

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
  auth: { type: string };
  timeoutMs: number;
  /**
   * At most this long a failed handshake answers for the next deliveries (the destination's first
   * retry delay, so a delivery's own retry always gets a fresh try). Default 60 s.
   */
  failureHoldMs?: number;
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
 * How long a process holds the right to fetch a destination's credential without renewing it: a
 * crashed fetcher delays the others by at most this. Renewed every quarter while the handshake runs.
 */
export const CREDENTIAL_LEASE_MS = 10_000;

/**
 * The one credential runtime for every auth strategy: the single place for caching, expiry margins,
 * single flight, invalidation after a rejection, persistence (sealed) and feeding the redactor.
 */
export class CredentialRuntime {
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<PrepareResultWithCred>>();
  /** A failed handshake is remembered briefly, so a backlog does not hammer the token endpoint. */
  readonly #failures = new Map<string, { version: string; until: number; result: PrepareResultWithCred }>();
  readonly #store: CredentialStore;
  readonly #box: SecretBox;
  readonly #now: () => number;
  /** Number of handshakes performed, by destination id (for tests and metrics). */
  readonly handshakes = new Map<string, number>();
  /** Who this runtime is in `credential_leases`. */
  readonly #holder = randomUUID();

  constructor(store: CredentialStore, box: SecretBox, now: () => number = Date.now) {
    this.#store = store;
    this.#box = box;
    this.#now = now;
  }

  /**
   * A runtime of its own that shares nothing and keeps nothing (its store is its memory): the dry
   * run of a destination that is not saved, whose handshake must touch no saved destination's
   * credential and leave nothing behind in the shared store.
   */
  detached(): CredentialRuntime {
    return new CredentialRuntime(memoryCredentialStore(), this.#box, this.#now);
  }

  /**
   * Keeps a credential obtained outside a push (the OAuth connect callback) exactly as a handshake's
   * result is kept: sealed in the shared store and cached here, replacing what was there. A
   * credential without an expiry of its own lives as long as the strategy says (`lifetimeMs`).
   */
  async store(
    target: Omit<AuthTarget, "timeoutMs">,
    strategy: AuthStrategy<{ type: string }>,
    credential: Credential,
  ): Promise<void> {
    this.#failures.delete(target.id);
    const now = this.#now();
    const lifetimeMs = credential.expiresAt === undefined ? strategy.lifetimeMs?.(target.auth) : undefined;
    const expiresAt = credential.expiresAt ?? (lifetimeMs ? now + lifetimeMs : undefined);
    const refreshAt =
      expiresAt === undefined ? Number.MAX_SAFE_INTEGER : expiresAt - refreshMargin(expiresAt - now);
    const cached: Cached = { version: target.version, credential, refreshAt };
    this.#cache.set(target.id, cached);
    await this.#store.save(target.id, this.#box.seal(JSON.stringify(cached)), expiresAt);
  }

  session(
    target: AuthTarget,
    strategy: AuthStrategy<{ type: string }>,
    http: HttpClient,
    redactor: Redactor,
  ): AuthSession {
    const needsToken = typeof strategy.obtain === "function";
    /** The credential this session last attached: only that one is dropped after a rejection. */
    let applied: Credential | undefined;
    return {
      prepare: async (req) => {
        if (!needsToken) {
          strategy.apply(req, target.auth, undefined);
          return { ok: true };
        }
        const got = await this.#credential(target, strategy, http, redactor);
        if (!got.ok) return got;
        // Every session feeds its own redactor, also when it waited for another's handshake.
        redactor.add(...Object.values(got.credential.values), got.credential.refresh);
        applied = got.credential;
        strategy.apply(req, target.auth, got.credential);
        return { ok: true };
      },
      isRejection: (status, headers) =>
        strategy.isRejection
          ? strategy.isRejection(status, headers)
          : status === 401 || (needsToken && status === 403),
      invalidate: async () => {
        await this.#invalidate(target, applied);
        applied = undefined;
      },
    };
  }

  /** Forget a destination's credential everywhere (edited, deleted, reconnected). */
  async forget(destinationId: string): Promise<void> {
    this.#cache.delete(destinationId);
    this.#failures.delete(destinationId);
    await this.#store.remove(destinationId);
    // A handshake (or a failure's hold) under the old settings no longer answers for the new ones.
    await this.#store.releaseLease(destinationId, undefined);
  }

  /**
   * Marks the refused credential stale, here and in the shared store. It stays in memory as the
   * `previous` of the next handshake (an OAuth refresh token can still be good). When another
   * delivery already replaced it, nothing is dropped: many deliveries refused with the same old
   * token cause one handshake, not one each.
   */
  async #invalidate(target: AuthTarget, rejected: Credential | undefined): Promise<void> {
    const cached = this.#cache.get(target.id);
    if (cached && (rejected === undefined || sameCredential(cached.credential, rejected))) {
      this.#cache.set(target.id, { ...cached, refreshAt: 0 });
    }
    // Compare-and-swap on the stored (sealed) text: what is dropped is exactly what was read, so a
    // credential another process stored meanwhile is never thrown away.
    const row = await this.#store.load(target.id);
    const shared = row && this.#open(row.data);
    if (row && shared && (rejected === undefined || sameCredential(shared.credential, rejected))) {
      if (shared.credential.refresh === undefined) await this.#store.remove(target.id, row.data);
      // A refresh token stays in the shared store too (marked stale), for other processes and
      // restarts: an OAuth connection made by a person in a browser is not thrown away because
      // one access token was refused.
      else
        await this.#store.save(
          target.id,
          this.#box.seal(JSON.stringify({ ...shared, refreshAt: 0 })),
          shared.credential.expiresAt,
          row.data,
        );
    }
  }

  async #credential(
    target: AuthTarget,
    strategy: AuthStrategy<{ type: string }>,
    http: HttpClient,
    redactor: Redactor,
  ): Promise<PrepareResultWithCred> {
    const cached = this.#cache.get(target.id);
    if (cached && this.#usable(target, cached)) return { ok: true, credential: cached.credential };
    const running = this.#inflight.get(target.id);
    if (running) return running;
    const failed = this.#failures.get(target.id);
    if (failed && failed.version === target.version && failed.until > this.#now()) return failed.result;
    const p = this.#shared(target, strategy, http, redactor).finally(() => this.#inflight.delete(target.id));
    this.#inflight.set(target.id, p);
    return p;
  }

  #usable(target: AuthTarget, c: Cached | undefined): c is Cached {
    return c !== undefined && c.version === target.version && c.refreshAt > this.#now();
  }

  /**
   * One handshake for every process: the shared credential when it is fresh; otherwise the lease
   * to fetch one, or — while another process holds it — waiting and re-reading what it stores. A
   * crashed holder's lease runs out; the wait is bounded. A failed handshake's hold is shared too.
   */
  async #shared(
    target: AuthTarget,
    strategy: AuthStrategy<{ type: string }>,
    http: HttpClient,
    redactor: Redactor,
  ): Promise<PrepareResultWithCred> {
    const giveUpAt = performance.now() + 3 * target.timeoutMs + CREDENTIAL_LEASE_MS;
    for (let pause = 25; ; pause = Math.min(pause * 2, 200)) {
      const shared = await this.#loadShared(target);
      if (this.#usable(target, shared)) return this.#adopt(target, shared);
      const now = this.#now();
      const lease = await this.#store.leaseOf(target.id);
      const failure = lease?.failure?.version === target.version ? lease.failure : undefined;
      if (lease && failure && lease.until > now) {
        const result = this.#openFailure(failure.data);
        if (result) {
          this.#failures.set(target.id, { version: target.version, until: lease.until, result });
          return result;
        }
      }
      const free = !lease || lease.until <= now || (lease.failure !== undefined && !failure);
      if (
        free &&
        (await this.#store.takeLease(target.id, this.#holder, now, now + CREDENTIAL_LEASE_MS, target.version))
      )
        return this.#fetchLeased(target, strategy, http, redactor);
      if (performance.now() > giveUpAt)
        return {
          ok: false,
          code: "auth_unreachable",
          message: "another process's token request for this destination did not finish in time",
        };
      await delay(pause);
    }
  }

  /** Fetches under this runtime's lease (renewed meanwhile), then ends it or leaves a failure's hold. */
  async #fetchLeased(
    target: AuthTarget,
    strategy: AuthStrategy<{ type: string }>,
    http: HttpClient,
    redactor: Redactor,
  ): Promise<PrepareResultWithCred> {
    const renew = setInterval(() => {
      this.#store
        .renewLease(target.id, this.#holder, this.#now() + CREDENTIAL_LEASE_MS)
        .catch(() => undefined);
    }, CREDENTIAL_LEASE_MS / 4);
    renew.unref();
    let hold: { until: number; version: string; failure: string } | undefined;
    try {
      // Re-check once the lease is ours: its previous holder may have stored one since our read.
      const shared = await this.#loadShared(target);
      if (this.#usable(target, shared)) return this.#adopt(target, shared);
      // The newest credential of this version (a rotated refresh token may be in the store only).
      const stale = [shared, this.#cache.get(target.id)].find((c) => c?.version === target.version);
      const result = await this.#fetch(target, strategy, http, redactor, stale?.credential);
      const failed = this.#failures.get(target.id);
      // A refusal (or a needed reconnect) answers for every process during its hold: a wrong
      // password tried by each could lock the account. Not an endpoint that did not answer — that
      // is also what an aborted handshake (this process shutting down) looks like.
      if (!result.ok && failed && result.code !== "auth_unreachable")
        hold = {
          until: failed.until,
          version: target.version,
          failure: this.#box.seal(JSON.stringify(result)),
        };
      return result;
    } finally {
      clearInterval(renew);
      // Should this fail, the lease runs out by itself.
      await this.#store.releaseLease(target.id, this.#holder, hold).catch(() => undefined);
    }
  }

  #adopt(target: AuthTarget, shared: Cached): PrepareResultWithCred {
    this.#cache.set(target.id, shared);
    return { ok: true, credential: shared.credential };
  }

  /** The shared store's credential of a destination (not put in the cache: it may be older). */
  async #loadShared(target: AuthTarget): Promise<Cached | undefined> {
    const row = await this.#store.load(target.id);
    return row && this.#open(row.data);
  }

  #open(data: string): Cached | undefined {
    try {
      return JSON.parse(this.#box.open(data)) as Cached;
    } catch {
      return undefined;
    }
  }

  #openFailure(data: string): PrepareResultWithCred | undefined {
    try {
      const r = JSON.parse(this.#box.open(data)) as PrepareResultWithCred;
      return r.ok ? undefined : r;
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
    // A refresh sends the previous credential: it must be hidden in the handshake's record too.
    if (previous) redactor.add(...Object.values(previous.values), previous.refresh);
    const result = await obtain(target.auth, { http, timeoutMs: target.timeoutMs, now: this.#now, previous });
    if (!result.ok) {
      const failure = { ...result, message: redactor.text(result.message) };
      const hold = Math.min(failureHoldMs(result.code), target.failureHoldMs ?? Number.POSITIVE_INFINITY);
      this.#failures.set(target.id, { version: target.version, until: this.#now() + hold, result: failure });
      return failure;
    }
    await this.store(target, strategy, result.credential);
    return { ok: true, credential: result.credential };
  }
}

/**
 * How long a failed handshake answers for the next deliveries without a new request: refused
 * credentials (a wrong password: repeated logins could lock the account, e.g. in Cognito) are
 * held a minute; an unreachable endpoint a few seconds. Editing the destination clears it.
 */
export function failureHoldMs(code: AuthFailureCode): number {
  if (code === "auth_unreachable") return 5_000;
  if (code === "needs_reconnect") return 10_000;
  return 60_000;
}

function sameCredential(a: Credential, b: Credential): boolean {
  return JSON.stringify(a.values) === JSON.stringify(b.values);
}

type PrepareResultWithCred =
  | { ok: true; credential: Credential }
  | { ok: false; code: AuthFailureCode; message: string; needsReconnect?: boolean };
