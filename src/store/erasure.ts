import type { Kysely } from "kysely";
import { FINAL_STATUSES } from "../domain/status.ts";
import { createRedactor } from "../util/redact.ts";
import type { Database } from "./schema.ts";

/** `last_error` of a delivery its lead's erasure ended. */
export const ERASED_ERROR = "lead_erased: the lead was erased before it was delivered";

/**
 * Erases a lead's personal data in one transaction; false when there is no such lead. Every
 * delivery not final yet becomes `failed` (`lead_erased`) and loses its lease, so an attempt in
 * flight cannot bring it back (completions skip final rows) and no heartbeat makes it due again.
 *
 * The deliveries are written FIRST: on Postgres that waits for a completion holding the same rows,
 * so what that completion wrote (an attempt's exchanges, the vendor's answer, enrichment) is
 * committed, and scrubbed by the statements after it. A completion that comes later finds the rows
 * final and the lead erased (see `applyCompletions`).
 */
export async function eraseLeadData(db: Kysely<Database>, id: string, now: number): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    await trx
      .updateTable("deliveries")
      .set({
        status: "failed",
        next_attempt_at: null,
        lease_owner: null,
        lease_until: null,
        batch_id: null,
        last_error: ERASED_ERROR,
        updated_at: now,
      })
      .where("lead_id", "=", id)
      .where("status", "not in", FINAL_STATUSES)
      .execute();
    const lead = await trx
      .selectFrom("leads")
      .select(["id", "source", "name", "email", "phone"])
      .where("id", "=", id)
      .executeTakeFirst();
    if (!lead) return false;
    await trx
      .updateTable("leads")
      .set({
        name: null,
        email: null,
        phone: null,
        name_key: null,
        last_name_key: null,
        city_key: null,
        idempotency_key: null,
        erased_at: now,
        data: JSON.stringify({
          name: "[erased]",
          ...(lead.source ? { source: lead.source } : {}),
          attributes: {},
          enrichment: {},
        }),
      })
      .where("id", "=", id)
      .execute();
    // A vendor's error message may quote the lead ("email x already exists"): its values go.
    const values = [lead.name, lead.email, lead.phone, lead.phone?.replace(/^\+/, "")];
    const redactor = createRedactor(values.filter((v): v is string => typeof v === "string"));
    const deliveryIds = trx.selectFrom("deliveries").select("id").where("lead_id", "=", id);
    const attempts = await trx
      .selectFrom("attempts")
      .select(["id", "error_message"])
      .where("delivery_id", "in", deliveryIds)
      .execute();
    await trx
      .updateTable("attempts")
      .set({ exchanges: "[]" })
      .where("delivery_id", "in", deliveryIds)
      .execute();
    for (const a of attempts) {
      const message = a.error_message === null ? null : redactor.text(a.error_message);
      if (message !== a.error_message)
        await trx.updateTable("attempts").set({ error_message: message }).where("id", "=", a.id).execute();
    }
    const deliveries = await trx
      .selectFrom("deliveries")
      .select(["id", "last_error"])
      .where("lead_id", "=", id)
      .execute();
    for (const d of deliveries) {
      const lastError = d.last_error === null ? null : redactor.text(d.last_error);
      await trx
        .updateTable("deliveries")
        .set({ result: null, last_error: lastError })
        .where("id", "=", d.id)
        .execute();
    }
    // A filter's error message may quote the lead's values.
    await trx
      .updateTable("lead_routing")
      .set({ reason: "filter failed: [erased]" })
      .where("lead_id", "=", id)
      .where("decision", "=", "filter_error")
      .execute();
    return true;
  });
}
