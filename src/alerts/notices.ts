import type { Logger } from "pino";
import type { Events } from "../events.ts";

/** States in which a destination gets an `info` summary every minute. */
const UNHEALTHY = new Set(["degraded", "circuit_open", "auth_failing", "needs_reconnect"]);

/** At most this many distinct error codes per summary (the rest are counted as `other`). */
const MAX_CODES = 20;

interface Unhealthy {
  destinationId: string;
  destination: string;
  state: string;
  since: number;
  codes: Map<string, number>;
}

/**
 * Log lines people look at: a `warn` for each destination state change and each delivery that
 * fails for good, and an `info` summary per minute (counts by error code) while a destination is
 * unhealthy. Only ids, names and codes: no lead data, no vendor messages, no secrets.
 */
export function startNotices(
  events: Events,
  log: Logger,
  opts: { now?: () => number; summaryEveryMs?: number } = {},
): () => void {
  const now = opts.now ?? Date.now;
  const unhealthy = new Map<string, Unhealthy>();
  const off = [
    events.on("destination:state", (e) => {
      log.warn(
        {
          destination: e.destination,
          destinationId: e.destinationId,
          from: e.from,
          to: e.to,
          reason: e.reason,
        },
        `destination ${e.destination} is now ${e.to} (was ${e.from})`,
      );
      if (!UNHEALTHY.has(e.to)) unhealthy.delete(e.destinationId);
      else {
        const was = unhealthy.get(e.destinationId);
        unhealthy.set(e.destinationId, {
          destinationId: e.destinationId,
          destination: e.destination,
          state: e.to,
          since: was?.since ?? now(),
          codes: was?.codes ?? new Map(),
        });
      }
    }),
    events.on("delivery:completed", (e) => {
      if (e.status === "failed")
        log.warn(
          {
            destination: e.destination,
            destinationId: e.destinationId,
            leadId: e.leadId,
            deliveryId: e.deliveryId,
            attempt: e.attempt,
            code: e.code ?? "unknown",
          },
          `delivery to ${e.destination} failed for good (${e.code ?? "unknown"})`,
        );
      const u = unhealthy.get(e.destinationId);
      if (!u) return;
      const code = e.status === "delivered" ? "delivered" : (e.code ?? "unknown");
      const key = u.codes.has(code) || u.codes.size < MAX_CODES ? code : "other";
      u.codes.set(key, (u.codes.get(key) ?? 0) + 1);
    }),
  ];
  const summarize = () => {
    for (const u of unhealthy.values()) {
      log.info(
        {
          destination: u.destination,
          destinationId: u.destinationId,
          state: u.state,
          unhealthyForS: Math.round((now() - u.since) / 1000),
          attempts: Object.fromEntries(u.codes),
        },
        `destination ${u.destination} is still ${u.state}`,
      );
      u.codes = new Map();
    }
  };
  const timer = setInterval(summarize, opts.summaryEveryMs ?? 60_000);
  timer.unref();
  return () => {
    clearInterval(timer);
    for (const f of off) f();
  };
}
