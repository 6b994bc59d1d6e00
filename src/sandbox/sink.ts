import type { FastifyInstance } from "fastify";
import type { Simulator } from "./simulator.ts";

export interface SinkRequest {
  at: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  idempotencyKey: string | undefined;
}

/** How the sink answers the next requests. */
export interface SinkBehaviour {
  /** Answer this status for the next `times` requests (e.g. 500, 400, 429). */
  status?: number;
  times?: number;
  /** Seconds for `Retry-After` (with 429/503). */
  retryAfter?: number;
  /** Never answer the next `times` requests (until reset or close). */
  hang?: boolean;
  /** Require `Authorization: Bearer <token>`; 401 otherwise. */
  bearer?: string;
  /** Answer every request after this many milliseconds (a slow client). */
  delayMs?: number;
  /** Keep only counts, not bodies (benchmarks). */
  countOnly?: boolean;
}

export interface Sink extends Simulator {
  readonly received: SinkRequest[];
  /** Requests that got a 2xx, by Idempotency-Key. */
  readonly delivered: Map<string, number>;
  readonly counts: { total: number; ok: number };
  behave(b: SinkBehaviour): void;
  /** Resolves when `n` requests have been answered 2xx. */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
}

/**
 * A receiving server for tests, demos and benchmarks: records what it receives and can be told to
 * fail, hang or answer 429. Control it in-process (`behave`) or over HTTP (`POST /sink/_control`).
 */
export function createSink(prefix = "/sink"): Sink {
  const received: SinkRequest[] = [];
  const delivered = new Map<string, number>();
  const counts = { total: 0, ok: 0 };
  let behaviour: SinkBehaviour = {};
  let remaining = 0;
  const hanging = new Set<() => void>();
  const waiters: { n: number; resolve: () => void }[] = [];
  const settle = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (w && counts.ok >= w.n) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  };
  const sink: Sink = {
    name: "sink",
    prefix,
    received,
    delivered,
    counts,
    behave(b) {
      behaviour = { ...behaviour, ...b };
      remaining = b.times ?? (b.status !== undefined || b.hang ? Number.POSITIVE_INFINITY : 0);
    },
    waitFor(n, timeoutMs = 30_000) {
      if (counts.ok >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`sink: ${counts.ok} of ${n} delivered after ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
    reset() {
      received.length = 0;
      delivered.clear();
      counts.total = 0;
      counts.ok = 0;
      behaviour = {};
      remaining = 0;
      for (const release of hanging) release();
      hanging.clear();
    },
    register(app: FastifyInstance) {
      if (!app.hasContentTypeParser("application/x-www-form-urlencoded")) {
        app.addContentTypeParser(
          "application/x-www-form-urlencoded",
          { parseAs: "string" },
          (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
        );
      }
      app.addHook("onClose", async () => {
        for (const release of hanging) release();
      });
      app.get("/_state", async () => ({ counts, delivered: delivered.size, received: received.slice(-100) }));
      app.post("/_control", async (req) => {
        const body = (req.body ?? {}) as SinkBehaviour & { reset?: boolean };
        if (body.reset) sink.reset();
        else sink.behave(body);
        return { ok: true };
      });
      app.all("/*", async (req, reply) => {
        counts.total++;
        const key = req.headers["idempotency-key"];
        const idempotencyKey = typeof key === "string" ? key : undefined;
        if (!behaviour.countOnly) {
          received.push({
            at: Date.now(),
            method: req.method,
            path: req.url.slice(prefix.length),
            headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
            body: req.body,
            idempotencyKey,
          });
        }
        if (behaviour.bearer && req.headers.authorization !== `Bearer ${behaviour.bearer}`) {
          return reply.code(401).send({ error: "invalid token" });
        }
        if (behaviour.delayMs) await new Promise((r) => setTimeout(r, behaviour.delayMs));
        if (remaining > 0) {
          remaining--;
          if (behaviour.hang) {
            await new Promise<void>((resolve) => hanging.add(resolve));
            return reply.code(503).header("connection", "close").send({ error: "released" });
          }
          if (behaviour.status !== undefined) {
            if (behaviour.retryAfter !== undefined) reply.header("retry-after", String(behaviour.retryAfter));
            return reply.code(behaviour.status).send({ error: `told to answer ${behaviour.status}` });
          }
        }
        counts.ok++;
        if (idempotencyKey) delivered.set(idempotencyKey, (delivered.get(idempotencyKey) ?? 0) + 1);
        settle();
        return reply.code(201).send({ id: `sink-${counts.ok}` });
      });
    },
  };
  return sink;
}
