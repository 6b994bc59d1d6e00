import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { CredentialRuntime } from "../auth/runtime.ts";
import type { DestinationService } from "../destinations/service.ts";
import type { Events } from "../events.ts";
import type { Capabilities } from "../store/db.ts";
import type { Database } from "../store/schema.ts";
import type { Transport } from "../http/http-client.ts";
import type { HealthTracker } from "./health-tracker.ts";

/** What the background processors (the worker, the batch service) run on; wired once in app.ts. */
export interface DeliveryRuntime {
  db: Kysely<Database>;
  caps: Capabilities;
  destinations: DestinationService;
  credentials: CredentialRuntime;
  transport: Transport;
  events: Events;
  log: Logger;
  now: () => number;
  /** Subscribes to other processes' wake-ups (LISTEN/NOTIFY); returns an unsubscribe function. */
  listen: (onWake: () => void) => Promise<() => Promise<void>>;
  /**
   * The process's destination health tracker, shared by the worker and the batch service (both
   * feed it outcomes; it remembers which destinations this process saw fail). Made when absent.
   */
  health?: HealthTracker;
}

/** The worker's settings (`Worker`), from the configuration. */
export interface WorkerOptions {
  /** Deliveries in flight at once in this process. */
  concurrency: number;
  /** A claim is owned for the destination's timeout plus this long. */
  leaseMs: number;
  /** Longest sleep when nothing is due (catches other processes' retries and expired leases). */
  idleCheckMs?: number;
  /** While a destination waits for an OAuth reconnect, look again this often. */
  blockedRecheckMs?: number;
  /** Attempt outcomes finishing within this window are written in one transaction (`CompletionWriter`). */
  completionWindowMs?: number;
}
