import type { Logger } from "pino";
import type { EventMap, Events } from "../events.ts";
import type { Capabilities } from "../store/db.ts";
import { wakeableDelay } from "../util/delay.ts";

/** What a round answers: run again at once, or sleep this many ms (unless woken first). */
export type NextRound = "again" | number;

export interface LoopOptions {
  /** One round of work. Errors are its own to handle; a throw is logged and the loop sleeps `errorWaitMs`. */
  round: () => Promise<NextRound>;
  /** In-process events that wake the loop. */
  wakeOn: (keyof EventMap)[];
  events: Events;
  caps: Capabilities;
  /** Subscribes to other processes' wake-ups (LISTEN/NOTIFY); returns an unsubscribe function. */
  listen: (onWake: () => void) => Promise<() => Promise<void>>;
  log: Logger;
  errorWaitMs: number;
  /** Called on every wake-up, before the loop is woken. */
  onWake?: () => void;
}

/**
 * The background loop of the worker and the batch service: runs rounds until stopped, sleeping
 * between them on a timer that a wake-up (an in-process event, another process's NOTIFY, `wake()`)
 * ends early. Always sleeps on a timer, never on a query alone: with the embedded database every
 * query resolves as a microtask and would starve the event loop.
 */
export class WakeableLoop {
  readonly #opts: LoopOptions;
  #running = false;
  #wakeRequested = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #off: (() => void)[] = [];
  #unlisten: (() => Promise<void>) | undefined;

  constructor(opts: LoopOptions) {
    this.#opts = opts;
  }

  get running(): boolean {
    return this.#running;
  }

  /** A wake-up came since the current round started: the round may skip its idle-time work. */
  get wakeRequested(): boolean {
    return this.#wakeRequested;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    for (const event of this.#opts.wakeOn) this.#off.push(this.#opts.events.on(event, () => this.wake()));
    if (this.#opts.caps.listenNotify) this.#unlisten = await this.#opts.listen(() => this.wake());
    this.#loop = this.#run();
  }

  wake(): void {
    this.#opts.onWake?.();
    this.#wakeRequested = true;
    this.#wake?.();
  }

  /** Stops the loop after its current round; `unlisten()` ends the cross-process subscription. */
  async stop(): Promise<void> {
    this.#running = false;
    for (const off of this.#off) off();
    this.#off = [];
    this.wake();
    await this.#loop;
  }

  async unlisten(): Promise<void> {
    const unlisten = this.#unlisten;
    this.#unlisten = undefined;
    await unlisten?.();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      this.#wakeRequested = false;
      let next: NextRound;
      try {
        next = await this.#opts.round();
      } catch (err) {
        this.#opts.log.error({ err }, "a background round failed; trying again shortly");
        next = this.#opts.errorWaitMs;
      }
      if (!this.#running) break;
      if (next === "again" || this.#wakeRequested) continue;
      const delay = wakeableDelay(next);
      this.#wake = delay.wake;
      await delay.done;
      this.#wake = undefined;
    }
  }
}
