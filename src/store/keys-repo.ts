import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import { newId } from "../util/ids.ts";
import type { Database } from "./schema.ts";

export const SCOPES = ["ingest", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

const hash = (token: string) => createHash("sha256").update(token).digest("hex");

/** API keys: stored as SHA-256 hashes; the plain key is shown once, at creation. */
export class ApiKeys {
  readonly #db: Kysely<Database>;
  readonly #adminToken: string | undefined;
  readonly #cache = new Map<string, { id: string; scopes: Scope[]; at: number }>();

  constructor(db: Kysely<Database>, adminToken: string | undefined) {
    this.#db = db;
    this.#adminToken = adminToken;
  }

  async create(
    name: string,
    scopes: Scope[],
  ): Promise<{ id: string; key: string; name: string; scopes: Scope[] }> {
    const key = `lp_${randomBytes(24).toString("base64url")}`;
    const id = newId();
    await this.#db
      .insertInto("api_keys")
      .values({
        id,
        name,
        prefix: key.slice(0, 7),
        hash: hash(key),
        scopes: scopes.join(","),
        created_at: Date.now(),
        last_used_at: null,
        revoked_at: null,
      })
      .execute();
    return { id, key, name, scopes };
  }

  /** Config as code: a key with this name gets exactly this value and these scopes. */
  async upsert(name: string, scopes: Scope[], key: string): Promise<"created" | "updated"> {
    const existing = await this.#db
      .selectFrom("api_keys")
      .select("id")
      .where("name", "=", name)
      .executeTakeFirst();
    const values = { prefix: key.slice(0, 7), hash: hash(key), scopes: scopes.join(","), revoked_at: null };
    this.#cache.clear();
    if (existing) {
      await this.#db.updateTable("api_keys").set(values).where("id", "=", existing.id).execute();
      return "updated";
    }
    await this.#db
      .insertInto("api_keys")
      .values({ id: newId(), name, created_at: Date.now(), last_used_at: null, ...values })
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

  async list() {
    const rows = await this.#db.selectFrom("api_keys").selectAll().orderBy("created_at").execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      prefix: r.prefix,
      scopes: r.scopes.split(","),
      createdAt: new Date(r.created_at).toISOString(),
      revoked: r.revoked_at !== null,
    }));
  }

  async revoke(id: string): Promise<boolean> {
    const res = await this.#db
      .updateTable("api_keys")
      .set({ revoked_at: Date.now() })
      .where("id", "=", id)
      .executeTakeFirst();
    this.#cache.clear();
    return Number(res.numUpdatedRows) > 0;
  }

  /** The scopes of a presented key, or undefined. */
  async verify(token: string): Promise<Scope[] | undefined> {
    return (await this.identify(token))?.scopes;
  }

  /**
   * The id and scopes of a presented key, or undefined. `LEADPUSH_ADMIN_TOKEN` has no row: its id
   * is `admin-token`. Verified keys are remembered for 5 s.
   */
  async identify(token: string): Promise<{ id: string; scopes: Scope[] } | undefined> {
    if (this.#adminToken && token.length === this.#adminToken.length) {
      if (timingSafeEqual(Buffer.from(token), Buffer.from(this.#adminToken))) {
        return { id: "admin-token", scopes: ["admin"] };
      }
    }
    const h = hash(token);
    const hit = this.#cache.get(h);
    if (hit && Date.now() - hit.at < 5000) return hit;
    const row = await this.#db
      .selectFrom("api_keys")
      .select(["id", "scopes", "revoked_at"])
      .where("hash", "=", h)
      .executeTakeFirst();
    if (!row || row.revoked_at !== null) return undefined;
    const scopes = row.scopes.split(",") as Scope[];
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(h, { id: row.id, scopes, at: Date.now() });
    return { id: row.id, scopes };
  }
}
