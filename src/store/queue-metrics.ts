import { type Kysely, sql } from "kysely";
import type { Database } from "./schema.ts";

/** At most this many destinations in one scrape (one series each; the query stays bounded). */
export const QUEUE_METRICS_LIMIT = 1000;

export interface DestinationQueue {
  destination: string;
  /** Deliveries waiting to be pushed (`pending` + `retrying`). */
  waiting: number;
  /** When the oldest of them was created (ms since the epoch). */
  oldestCreatedAt: number;
}

/** Queue depth and oldest waiting delivery per destination, in one grouped query (metrics). */
export async function queueByDestination(db: Kysely<Database>): Promise<DestinationQueue[]> {
  const rows = await db
    .selectFrom("deliveries")
    .innerJoin("destinations", "destinations.id", "deliveries.destination_id")
    .where("deliveries.status", "in", ["pending", "retrying"])
    .groupBy("destinations.name")
    .select([
      "destinations.name as destination",
      sql<number>`count(*)`.as("waiting"),
      sql<number>`min(deliveries.created_at)`.as("oldest"),
    ])
    .orderBy("destinations.name")
    .limit(QUEUE_METRICS_LIMIT)
    .execute();
  return rows.map((r) => ({
    destination: r.destination,
    waiting: Number(r.waiting),
    oldestCreatedAt: Number(r.oldest),
  }));
}
