import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Events } from "./events.ts";
import { DELIVERY_STATUSES } from "./domain/status.ts";

/** Prometheus metrics, fed from lifecycle events (the worker and API don't know about them). */
export function createMetrics(
  events: Events,
  queueDepth: () => Promise<Record<string, number>>,
  destinationStates: () => Promise<{ name: string; state: string }[]> = () => Promise.resolve([]),
) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "leadpush_process_" });
  const leads = new Counter({
    name: "leadpush_leads_accepted_total",
    help: "Leads accepted",
    registers: [registry],
  });
  const deliveries = new Counter({
    name: "leadpush_delivery_attempts_total",
    help: "Delivery attempts by destination and outcome (delivered, retry, failed, blocked)",
    labelNames: ["destination", "outcome"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "leadpush_attempt_duration_seconds",
    help: "Duration of delivery attempts (auth handshake included)",
    labelNames: ["destination"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  new Gauge({
    name: "leadpush_deliveries",
    help: "Deliveries by status (pending + retrying = queue depth)",
    labelNames: ["status"],
    registers: [registry],
    async collect() {
      const counts = await queueDepth().catch(() => ({}) as Record<string, number>);
      this.reset();
      for (const s of DELIVERY_STATUSES) this.set({ status: s }, counts[s] ?? 0);
    },
  });
  const destinationState = new Gauge({
    name: "leadpush_destination_needs_reconnect",
    help: "1 when a destination waits for an admin to reconnect its OAuth account",
    labelNames: ["destination"],
    registers: [registry],
    // Read from the store at scrape time: any process may have changed it.
    async collect() {
      const states = await destinationStates().catch(() => undefined);
      if (!states) return;
      this.reset();
      for (const d of states) this.set({ destination: d.name }, d.state === "needs_reconnect" ? 1 : 0);
    },
  });
  events.on("lead:accepted", () => leads.inc());
  events.on("delivery:completed", (e) => {
    deliveries.inc({ destination: e.destination, outcome: e.outcome });
    latency.observe({ destination: e.destination }, e.durationMs / 1000);
  });
  return { registry, destinationState };
}

export type Metrics = ReturnType<typeof createMetrics>;
