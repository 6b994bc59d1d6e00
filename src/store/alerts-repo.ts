import type { Kysely } from "kysely";
import type { AlertTargetsTable, Database, NotificationsTable } from "./schema.ts";

/** At most this many notifications in one listing. */
export const NOTIFICATIONS_PAGE = 200;

/** Alert targets and the notifications sent to them (migration 009). */
export function alertsRepo(db: Kysely<Database>) {
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
    async deleteTarget(id: string): Promise<boolean> {
      const r = await db.deleteFrom("alert_targets").where("id", "=", id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },
    insertNotification: (row: NotificationsTable) => db.insertInto("notifications").values(row).execute(),
    updateNotification: (
      id: string,
      set: Pick<NotificationsTable, "status" | "attempts" | "last_error" | "updated_at">,
    ) => db.updateTable("notifications").set(set).where("id", "=", id).execute(),
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
