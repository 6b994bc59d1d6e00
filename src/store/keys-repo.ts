import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import { newId } from "../util/ids.ts";
import type { Database } from "./schema.ts";

export const SCOPES = ["ingest", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

const hash = (token: string) => createHash("sha256").update(token).digest("hex");

/** A key as listed: never the key itself, nor its hash. */
export interface KeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  revoked: boolean;
  revokedAt: string | null;
}

/** How often a key's `last_used_at` is written, at most, per process. */
const LAST_USED_EVERY_MS = 60_000;

/**
 * API keys: stored as SHA-256 hashes; the plain key is shown once, at creation.
 *
 * A presented key is looked up in the database on every request (one read by the unique `hash`
 * index), never cached: a key revoked by another process (`leadpush keys revoke`, another API
 * process) is refused at once. Its `last_used_at` is written at most once a minute per process.
 */
export class ApiKeys {
  readonly #db: Kysely<Database>;
  readonly #adminToken: string | undefined;
  readonly #lastUsedWritten = new Map<string, number>();
  readonly #now: () => number;

  constructor(db: Kysely<Database>, adminToken: string | undefined, now: () => number = Date.now) {
    this.#db = db;
    this.#adminToken = adminToken;
    this.#now = now;
  }

  async create(name: string, scopes: Scope[]): Promise<KeyView & { key: string }> {
    const key = `lp_${randomBytes(24).toString("base64url")}`;
    const id = newId();
    const createdAt = this.#now();
    await this.#db
      .insertInto("api_keys")
      .values({
        id,
        name,
        prefix: key.slice(0, 7),
        hash: hash(key),
        scopes: scopes.join(","),
        created_at: createdAt,
        last_used_at: null,
        revoked_at: null,
      })
      .execute();
    return {
      id,
      key,
      name,
      prefix: key.slice(0, 7),
      scopes,
      createdAt: new Date(createdAt).toISOString(),
      lastUsedAt: null,
      revoked: false,
      revokedAt: null,
    };
  }

  /** Config as code: a key with this name gets exactly this value and these scopes. */
  async upsert(name: string, scopes: Scope[], key: string): Promise<"created" | "updated"> {
    const existing = await this.#db
      .selectFrom("api_keys")
      .select("id")
      .where("name", "=", name)
      .executeTakeFirst();
    const values = { prefix: key.slice(0, 7), hash: hash(key), scopes: scopes.join(","), revoked_at: null };
    if (existing) {
      await this.#db.updateTable("api_keys").set(values).where("id", "=", existing.id).execute();
      return "updated";
    }
    await this.#db
      .insertInto("api_keys")
      .values({ id: newId(), name, created_at: this.#now(), last_used_at: null, ...values })
      .execute();
    return "created";
  }

  async count(): Promise<number> {
    const row = await this.#db
      .selectFrom("api_keys")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Every key, oldest first (API keys are few: a person creates each one). */
  async list(limit = 1000): Promise<KeyView[]> {
    const rows = await this.#db
      .selectFrom("api_keys")
      .select(["id", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"])
      .orderBy("created_at")
      .orderBy("id")
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      prefix: r.prefix,
      scopes: r.scopes.split(","),
      createdAt: new Date(Number(r.created_at)).toISOString(),
      lastUsedAt: r.last_used_at === null ? null : new Date(Number(r.last_used_at)).toISOString(),
      revoked: r.revoked_at !== null,
      revokedAt: r.revoked_at === null ? null : new Date(Number(r.revoked_at)).toISOString(),
    }));
  }

  /**
   * The keys an id or a prefix (the `lp_xxxx` shown by `keys list`, or any longer start of the key)
   * names: several when a prefix is ambiguous.
   */
  async find(idOrPrefix: string): Promise<KeyView[]> {
    const all = await this.list(100_000);
    const byId = all.filter((k) => k.id === idOrPrefix);
    if (byId.length > 0) return byId;
    const prefix = idOrPrefix.replace(/…$/, "");
    if (prefix.length < 4) return [];
    return all.filter((k) => prefix.startsWith(k.prefix) || k.prefix.startsWith(prefix));
  }

  /** Revokes a key by id: true when it exists (revoking a revoked key keeps its first time). */
  async revoke(id: string): Promise<boolean> {
    await this.#db
      .updateTable("api_keys")
      .set({ revoked_at: this.#now() })
      .where("id", "=", id)
      .where("revoked_at", "is", null)
      .execute();
    const row = await this.#db.selectFrom("api_keys").select("id").where("id", "=", id).executeTakeFirst();
    return row !== undefined;
  }

  /** The scopes of a presented key, or undefined. */
  async verify(token: string): Promise<Scope[] | undefined> {
    return (await this.identify(token))?.scopes;
  }

  /**
   * The id and scopes of a presented key, or undefined (unknown or revoked). `LEADPUSH_ADMIN_TOKEN`
   * has no row: its id is `admin-token`.
   */
  async identify(token: string): Promise<{ id: string; scopes: Scope[] } | undefined> {
    if (this.#adminToken && token.length === this.#adminToken.length) {
      if (timingSafeEqual(Buffer.from(token), Buffer.from(this.#adminToken))) {
        return { id: "admin-token", scopes: ["admin"] };
      }
    }
    if (token.length > 200) return undefined;
    const row = await this.#db
      .selectFrom("api_keys")
      .select(["id", "scopes", "revoked_at"])
      .where("hash", "=", hash(token))
      .executeTakeFirst();
    if (!row || row.revoked_at !== null) return undefined;
    this.#touch(row.id);
    return { id: row.id, scopes: row.scopes.split(",") as Scope[] };
  }

  /** Records a key's use, at most once a minute per process; never delays or fails the request. */
  #touch(id: string): void {
    const now = this.#now();
    const last = this.#lastUsedWritten.get(id);
    if (last !== undefined && now - last < LAST_USED_EVERY_MS) return;
    if (this.#lastUsedWritten.size > 10_000) this.#lastUsedWritten.clear();
    this.#lastUsedWritten.set(id, now);
    this.#db
      .updateTable("api_keys")
      .set({ last_used_at: now })
      .where("id", "=", id)
      .execute()
      .catch(() => this.#lastUsedWritten.delete(id));
  }
}
