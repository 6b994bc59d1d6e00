import { Agent } from "undici";

/** Which connection pool a request goes through: its destination's own, at most `connections` wide. */
export interface PoolKey {
  /** The destination's id. */
  id: string;
  /** Connections per origin (the destination's concurrency). */
  connections: number;
}

/** A pool unused this long is closed (a deleted or idle destination's). */
export const POOL_IDLE_MS = 60_000;
/** At most this many pools are kept; past it the least recently used idle one is closed. */
const MAX_POOLS = 2000;

interface Entry {
  agent: Agent;
  connections: number;
  usedAt: number;
  running: number;
}

/**
 * One undici Agent (a keep-alive pool per origin) per destination, so a destination hanging on
 * every push holds only its own connections: another destination on the same host:port has its
 * own. Bounded: idle pools are closed, and their number is capped.
 */
export class DestinationPools {
  readonly #pools = new Map<string, Entry>();
  readonly #make: (connections: number) => Agent;
  readonly #now: () => number;
  #sweptAt = 0;

  constructor(make: (connections: number) => Agent, now: () => number = Date.now) {
    this.#make = make;
    this.#now = now;
  }

  get size(): number {
    return this.#pools.size;
  }

  /** The destination's Agent; call the returned `done` when the request has settled. */
  acquire(key: PoolKey): { agent: Agent; done: () => void } {
    const now = this.#now();
    this.#sweep(now);
    const connections = Math.max(1, Math.floor(key.connections));
    let entry = this.#pools.get(key.id);
    if (entry && entry.connections !== connections) {
      // The destination's concurrency changed: new requests go through a new pool of that width.
      this.#retire(key.id, entry);
      entry = undefined;
    }
    if (!entry) {
      entry = { agent: this.#make(connections), connections, usedAt: now, running: 0 };
      this.#pools.set(key.id, entry);
    }
    const e = entry;
    e.usedAt = now;
    e.running++;
    let released = false;
    return {
      agent: e.agent,
      done: () => {
        if (released) return;
        released = true;
        e.running--;
        e.usedAt = this.#now();
      },
    };
  }

  /** Closes idle pools (at most every few seconds), and the oldest idle ones past the cap. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < 5000 && this.#pools.size < MAX_POOLS) return;
    this.#sweptAt = now;
    for (const [id, e] of this.#pools) {
      if (e.running === 0 && now - e.usedAt > POOL_IDLE_MS) this.#retire(id, e);
    }
    if (this.#pools.size < MAX_POOLS) return;
    const idle = [...this.#pools]
      .filter(([, e]) => e.running === 0)
      .sort((a, b) => a[1].usedAt - b[1].usedAt);
    for (const [id, e] of idle.slice(0, this.#pools.size - MAX_POOLS + 1)) this.#retire(id, e);
  }

  /** Lets the pool's requests finish, then closes its connections. */
  #retire(id: string, e: Entry): void {
    this.#pools.delete(id);
    e.agent.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    const all = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(all.map((e) => e.agent.close()));
  }

  async destroy(): Promise<void> {
    const all = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(all.map((e) => e.agent.destroy()));
  }
}
