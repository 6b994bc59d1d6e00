import type { Kysely } from "kysely";
import type { Capabilities } from "./db.ts";
import type { AlertTargetsTable, Database, NotificationsTable } from "./schema.ts";

/** At most this many notifications in one listing. */
export const NOTIFICATIONS_PAGE = 200;

/** A new notification before the debounce decided on it (the body depends on what it carries). */
export interface NewNotification {
  id: string;
  targetId: string;
  kind: string;
  destinationId: string;
  now: number;
  /** Alerts of the same key are sent at most once per this window (ms), across every process. */
  windowMs: number;
  /** The body, given how many alerts of the same key were suppressed since the last one sent. */
  payload: (carried: number) => string;
}

/** What an attempt leaves a claimed notification in (the lease is given back). */
export type AttemptResult = Pick<
  NotificationsTable,
  "status" | "last_error" | "next_attempt_at" | "updated_at"
>;

/**
 * Alert targets and the notifications sent to them (migrations 009, 010). The debounce and the
 * retries live here, shared by every process: `openNotification` decides in one statement whether
 * an alert is sent or suppressed, and pending notifications are claimed with a lease
 * (`FOR UPDATE SKIP LOCKED` on Postgres), so a notification is sent by one process at a time and
 * one left by a process that stopped or died is taken by another when its lease ends.
 */
export function alertsRepo(db: Kysely<Database>, caps: Capabilities) {
  return {
    targets: (): Promise<AlertTargetsTable[]> =>
      db.selectFrom("alert_targets").selectAll().orderBy("name").execute(),
    target: (idOrName: string): Promise<AlertTargetsTable | undefined> =>
      db
        .selectFrom("alert_targets")
        .selectAll()
        .where((eb) => eb.or([eb("id", "=", idOrName), eb("name", "=", idOrName)]))
        .executeTakeFirst(),
    /** Creates or replaces the target with this name; true when it was created. */
    async upsertTarget(row: AlertTargetsTable): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        const was = await trx
          .selectFrom("alert_targets")
          .select("id")
          .where("name", "=", row.name)
          .executeTakeFirst();
        if (was) {
          const { id: _id, created_at: _c, ...rest } = row;
          await trx.updateTable("alert_targets").set(rest).where("id", "=", was.id).execute();
          return false;
        }
        await trx.insertInto("alert_targets").values(row).execute();
        return true;
      });
    },
    /** Deletes a target; its pending notifications fail (`target_deleted`), its debounce goes. */
    async deleteTarget(id: string, now: number): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        const r = await trx.deleteFrom("alert_targets").where("id", "=", id).executeTakeFirst();
        if (Number(r.numDeletedRows) === 0) return false;
        await trx.deleteFrom("alert_debounce").where("target_id", "=", id).execute();
        await trx
          .updateTable("notifications")
          .set({ status: "failed", last_error: "target_deleted", next_attempt_at: null, updated_at: now })
          .where("target_id", "=", id)
          .where("status", "=", "pending")
          .execute();
        return true;
      });
    },

    /**
     * The debounce, decided atomically in the database: the first alert of a target, destination
     * and kind per window becomes a pending notification (due now) and is returned; any other in
     * the window is counted on the one sent (`suppressed`) and on the key (carried by the next
     * one sent), and undefined is returned. Concurrent callers in any process: one wins.
     */
    async openNotification(n: NewNotification): Promise<NotificationsTable | undefined> {
      return db.transaction().execute(async (trx) => {
        const won = await trx
          .insertInto("alert_debounce")
          .values({
            ...{ target_id: n.targetId, destination_id: n.destinationId, kind: n.kind },
            ...{ sent_at: n.now, notification_id: n.id, suppressed: 0, carried: 0 },
          })
          .onConflict((oc) =>
            oc
              .columns(["target_id", "destination_id", "kind"])
              .doUpdateSet((eb) => ({
                sent_at: n.now,
                notification_id: n.id,
                suppressed: 0,
                // Every right-hand side reads the row as it was: what was suppressed since the last one.
                carried: eb.ref("alert_debounce.suppressed"),
              }))
              .where("alert_debounce.sent_at", "<=", n.now - n.windowMs),
          )
          .returning("carried")
          .executeTakeFirst();
        if (!won) {
          const key = await trx
            .updateTable("alert_debounce")
            .set((eb) => ({ suppressed: eb("suppressed", "+", 1) }))
            .where("target_id", "=", n.targetId)
            .where("destination_id", "=", n.destinationId)
            .where("kind", "=", n.kind)
            .returning("notification_id")
            .executeTakeFirst();
          if (key)
            await trx
              .updateTable("notifications")
              .set((eb) => ({ suppressed: eb("suppressed", "+", 1) }))
              .where("id", "=", key.notification_id)
              .execute();
          return undefined;
        }
        const row: NotificationsTable = {
          id: n.id,
          target_id: n.targetId,
          kind: n.kind,
          destination_id: n.destinationId,
          payload: n.payload(Number(won.carried)),
          status: "pending",
          attempts: 0,
          last_error: null,
          created_at: n.now,
          updated_at: n.now,
          suppressed: 0,
          next_attempt_at: n.now,
          lease_owner: null,
        };
        await trx.insertInto("notifications").values(row).execute();
        return row;
      });
    },

    /**
     * Claims up to `limit` due pending notifications for `owner` until `leaseUntil`; each claim
     * counts as an attempt (a process that dies mid-send spent one, so a crash loop is bounded).
     */
    async claim(opts: {
      owner: string;
      now: number;
      leaseUntil: number;
      limit: number;
    }): Promise<NotificationsTable[]> {
      let due = db
        .selectFrom("notifications")
        .select("id")
        .where("next_attempt_at", "<=", opts.now)
        .where("status", "=", "pending")
        .orderBy("next_attempt_at")
        .limit(opts.limit);
      if (caps.skipLocked) due = due.forUpdate().skipLocked();
      return db
        .updateTable("notifications")
        .set((eb) => ({
          lease_owner: opts.owner,
          next_attempt_at: opts.leaseUntil,
          attempts: eb("attempts", "+", 1),
        }))
        .where("id", "in", due)
        .where("status", "=", "pending")
        .where("next_attempt_at", "<=", opts.now)
        .returningAll()
        .execute();
    },

    /** Records an attempt of a notification this owner holds; false when its lease was lost. */
    async finishAttempt(id: string, owner: string, set: AttemptResult): Promise<boolean> {
      const r = await db
        .updateTable("notifications")
        .set({ ...set, lease_owner: null })
        .where("id", "=", id)
        .where("lease_owner", "=", owner)
        .where("status", "=", "pending")
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },

    /** When the next pending notification falls due (or its lease ends), if any. */
    async nextDueAt(): Promise<number | undefined> {
      const r = await db
        .selectFrom("notifications")
        .select((eb) => eb.fn.min("next_attempt_at").as("at"))
        .where("next_attempt_at", "is not", null)
        .executeTakeFirst();
      return r?.at === null || r?.at === undefined ? undefined : Number(r.at);
    },

    notifications: (limit = NOTIFICATIONS_PAGE): Promise<NotificationsTable[]> =>
      db
        .selectFrom("notifications")
        .selectAll()
        .orderBy("created_at", "desc")
        .orderBy("id", "desc")
        .limit(Math.min(limit, NOTIFICATIONS_PAGE))
        .execute(),
  };
}

export type AlertsRepo = ReturnType<typeof alertsRepo>;
