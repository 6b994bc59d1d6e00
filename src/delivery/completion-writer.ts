import type { Logger } from "pino";
import type { DestinationService } from "../destinations/service.ts";
import type { Events } from "../events.ts";
import { type Completion, completeMany } from "../store/completions.ts";
import type { Database } from "../store/schema.ts";
import type { Kysely } from "kysely";
import { wakeableDelay } from "../util/delay.ts";
import { upstreamLookup } from "./completion.ts";

/** Completions waiting that make the writer go at once instead of at the window's end. */
const COMPLETION_BATCH = 256;

export interface CompletionWriterDeps {
  db: Kysely<Database>;
  destinations: DestinationService;
  events: Events;
  log: Logger;
  now: () => number;
  windowMs: number;
  /** Something may be due sooner than the worker thinks (a retry, an unblocked downstream row). */
  wake: () => void;
}

/**
 * Writes the worker's attempt outcomes: those finishing within `windowMs` go in one transaction
 * (sooner when `COMPLETION_BATCH` are waiting). A crash in the window means those pushes are made
 * again (same Idempotency-Key), as for any push in flight.
 */
export class CompletionWriter {
  readonly #deps: CompletionWriterDeps;
  #pending: Completion[] = [];
  #writing: Promise<void> | undefined;
  /** Ends the current window early (many waiting, or shutting down). */
  #writeNow: (() => void) | undefined;

  constructor(deps: CompletionWriterDeps) {
    this.#deps = deps;
  }

  add(completion: Completion): void {
    this.#pending.push(completion);
    if (!this.#writing) {
      const window = wakeableDelay(this.#deps.windowMs);
      this.#writeNow = window.wake;
      this.#writing = window.done.then(() => this.#writeLoop());
    } else if (this.#pending.length >= COMPLETION_BATCH) this.#writeNow?.();
  }

  /** Writes everything waiting now. */
  async flush(): Promise<void> {
    this.#writeNow?.();
    while (this.#writing || this.#pending.length > 0) {
      await (this.#writing ?? this.#writeLoop());
    }
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending;
        this.#pending = [];
        try {
          const { upstreamOf, isUpstream } = upstreamLookup(await this.#deps.destinations.resolved());
          const applied = await completeMany(this.#deps.db, batch, this.#deps.now(), upstreamOf);
          // A retry changes when the next row is due, and a finished row can unblock downstream
          // ones (the loop may have gone to sleep before this write, with the row still leased).
          if (applied.some((c) => c.status === "retrying" || isUpstream(c.destinationId))) this.#deps.wake();
          const awaiting = applied.filter((c) => c.status === "awaiting").map((c) => c.destinationId);
          if (awaiting.length > 0)
            this.#deps.events.emit("deliveries:awaiting", { destinationIds: [...new Set(awaiting)] });
        } catch (err) {
          // The leases run out and the deliveries are tried again: at-least-once, nothing lost.
          this.#deps.log.error({ err, count: batch.length }, "recording attempt outcomes failed");
        }
      }
    } finally {
      this.#writing = undefined;
      this.#writeNow = undefined;
    }
  }
}
