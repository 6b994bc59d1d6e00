import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import type { SecretBox } from "../util/secret-box.ts";
import type { Database } from "./schema.ts";

/** What the callback needs back from the connect that sent the browser away. */
export interface PendingState {
  destinationId: string;
  /** What the auth strategy's connect flow keeps until its callback (sealed). */
  data: Record<string, string | null>;
  redirectUri: string;
}

export type TakeResult =
  { ok: true; pending: PendingState } | { ok: false; reason: "unknown" | "used" | "expired" };

/** How long used and expired states are kept (to tell "used" and "expired" from "unknown"). */
const KEEP_MS = 24 * 3600 * 1000;

const hash = (state: string) => createHash("sha256").update(state).digest("base64url");

/** Pending OAuth states, in the database so that any API process can take the callback. */
export function oauthStates(db: Kysely<Database>, box: SecretBox) {
  return {
    async put(state: string, p: PendingState, now: number, lifetimeMs: number): Promise<void> {
      await db
        .deleteFrom("oauth_states")
        .where("created_at", "<", now - KEEP_MS)
        .execute();
      await db
        .insertInto("oauth_states")
        .values({
          id: hash(state),
          destination_id: p.destinationId,
          data: box.seal(JSON.stringify(p.data)),
          redirect_uri: p.redirectUri,
          created_at: now,
          expires_at: now + lifetimeMs,
          used_at: null,
        })
        .execute();
    },

    /** Takes a state: good once, before it expires. */
    async take(state: string, now: number): Promise<TakeResult> {
      const id = hash(state);
      const row = await db.selectFrom("oauth_states").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) return { ok: false, reason: "unknown" };
      if (row.used_at !== null) return { ok: false, reason: "used" };
      if (Number(row.expires_at) <= now) return { ok: false, reason: "expired" };
      const res = await db
        .updateTable("oauth_states")
        .set({ used_at: now })
        .where("id", "=", id)
        .where("used_at", "is", null)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return { ok: false, reason: "used" };
      const data = JSON.parse(box.open(row.data)) as Record<string, string | null>;
      return {
        ok: true,
        pending: { destinationId: row.destination_id, data, redirectUri: row.redirect_uri },
      };
    },
  };
}

export type OAuthStates = ReturnType<typeof oauthStates>;
