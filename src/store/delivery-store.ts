import { batchById, batchItems, recordCallback } from "./batches-repo.ts";
import type { Db } from "./db.ts";
import {
  countByStatus,
  countReplayable,
  replay,
  type ReplayFilter,
  retryNow,
  wakeDestination,
} from "./deliveries-repo.ts";
import { eraseLeadData } from "./erasure.ts";
import { destinationHealth } from "./health-read.ts";
import { destinationStats } from "./destination-stats.ts";
import {
  batchItemRows,
  batchRow,
  counts,
  countsByDestinationName,
  deliveryRows,
  leadDataByEmail,
  leadDetail,
  listBatches,
  listDeliveries,
  listLeads,
  snapshot,
} from "./read-models.ts";

/**
 * What the API may do with the store: the delivery transitions it triggers (retry, replay, erase,
 * wake a reconnected destination, a vendor's callback) and the read models it shows. Route
 * handlers get this, never a database handle.
 */
export function createDeliveryStore(db: Db) {
  const k = db.kysely;
  return {
    /** Wakes other processes' workers (LISTEN/NOTIFY; a no-op on SQLite). */
    notifyWork: () => db.notifyWork(),
    ping: () => db.ping(),
    databaseKind: db.target.kind,
    retryNow: (id: string, now: number) => retryNow(k, id, now),
    replay: (filter: ReplayFilter, now: number) => replay(k, filter, now),
    /** What `replay` with the same filter would take now (its dry run). */
    countReplayable: (filter: ReplayFilter, now: number) => countReplayable(k, filter, now),
    wakeDestination: (destinationId: string, now: number) => wakeDestination(k, destinationId, now),
    eraseLead: (id: string, now: number) => eraseLeadData(k, id, now),
    recordCallback: (batchId: string, body: unknown, now: number) => recordCallback(k, batchId, body, now),
    countByStatus: () => countByStatus(k),
    reads: {
      deliveries: (q: Parameters<typeof listDeliveries>[1]) => listDeliveries(k, q),
      delivery: (id: string, withAttempts: boolean) =>
        withAttempts ? snapshot(k, (trx) => deliveryRows(trx, { id }, true)) : deliveryRows(k, { id }, false),
      lead: (id: string) => leadDetail(k, id),
      leads: (q: Parameters<typeof listLeads>[2]) => listLeads(k, db.caps, q),
      counts: () => counts(k),
      countsByDestinationName: () => countsByDestinationName(k),
      leadDataByEmail: (email: string) => leadDataByEmail(k, email),
      batches: (q: Parameters<typeof listBatches>[1]) => listBatches(k, q),
      batch: (id: string) => batchRow(k, id),
      batchItems: (batchIds: string[]) => batchItemRows(k, batchIds),
      batchById: (id: string) => batchById(k, id),
      destinationHealth: (id: string, now: number) => destinationHealth(k, id, now),
      destinationStats: (id: string, now: number, hours: number) => destinationStats(k, id, now, hours),
      /** A batch's items with their leads (its file). */
      batchFileItems: (id: string) => batchItems(k, id, false),
    },
  };
}

export type DeliveryStore = ReturnType<typeof createDeliveryStore>;
