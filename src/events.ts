import { EventEmitter } from "node:events";

/** Lifecycle events, `noun:verb` (graphile-worker's WorkerEventMap). */
export interface EventMap {
  /** New deliveries exist: workers in this process wake at once. */
  "work:available": [];
  "lead:accepted": [{ leadId: string; deliveries: number }];
  /** Deliveries were handed to a batching connector (committed): the batch service looks now. */
  "deliveries:awaiting": [{ destinationIds: string[] }];
  /** A vendor called a batch's signed callback URL (recorded): the batch service checks it now. */
  "batch:callback": [{ batchId: string }];
  /** A destination's health state changed (`delivery/health.ts`): alerts and logs follow it. */
  "destination:state": [
    { destinationId: string; destination: string; from: string; to: string; reason: string },
  ];
  "delivery:completed": [
    {
      deliveryId: string;
      leadId: string;
      destinationId: string;
      destination: string;
      status: string;
      outcome: string;
      durationMs: number;
      attempt: number;
      code?: string;
    },
  ];
  /** A destination is held (rate limit, `Retry-After`) until `until` (ms since the epoch). */
  "destination:hold": [{ destinationId: string; destination: string; until: number; reason: string }];
}

export class Events {
  readonly #ee = new EventEmitter().setMaxListeners(100);
  on<K extends keyof EventMap>(name: K, fn: (...args: EventMap[K]) => void): () => void {
    this.#ee.on(name, fn as (...a: unknown[]) => void);
    return () => this.#ee.off(name, fn as (...a: unknown[]) => void);
  }
  emit<K extends keyof EventMap>(name: K, ...args: EventMap[K]): void {
    this.#ee.emit(name, ...args);
  }
}
