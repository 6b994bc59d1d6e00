import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { CredentialRuntime } from "../auth/runtime.ts";
import type { DestinationService } from "../destinations/service.ts";
import type { Events } from "../events.ts";
import type { Capabilities } from "../store/db.ts";
import type { Database } from "../store/schema.ts";
import type { Transport } from "../http/http-client.ts";

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
}
