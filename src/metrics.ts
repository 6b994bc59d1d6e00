import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Events } from "./events.ts";
import { DELIVERY_STATUSES, DESTINATION_STATES } from "./domain/status.ts";
import type { DestinationQueue } from "./store/queue-metrics.ts";

export interface MetricSources {
  queueDepth: () => Promise<Record<string, number>>;
  destinationStates?: () => Promise<{ name: string; state: string }[]>;
  queueByDestination?: () => Promise<DestinationQueue[]>;
  now?: () => number;
}

/** Prometheus metrics, fed from lifecycle events (the worker and API don't know about them). */
export function createMetrics(events: Events, sources: MetricSources) {
  const { queueDepth, destinationStates = () => Promise.resolve([]), now = Date.now } = sources;
  const queueByDestination = sources.queueByDestination ?? (() => Promise.resolve([]));
  const registry = new Registry();
  // The default process metrics keep their standard names (process_cpu_seconds_total,
  // nodejs_heap_size_total_bytes…): dashboards and alerts written for any Node service find them.
  collectDefaultMetrics({ register: registry });
  const leads = new Counter({
    name: "leadpush_leads_accepted_total",
    help: "Leads accepted",
    registers: [registry],
  });
  const deliveries = new Counter({
    name: "leadpush_delivery_attempts_total",
    help: "Delivery attempts by destination, outcome (delivered, retry, failed, blocked) and error code ('' when none)",
    labelNames: ["destination", "outcome", "error_code"],
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
  // One query per scrape for both queue gauges: the registry collects all metrics at once, so the
  // second collect joins the read the first one started.
  let queueRead: Promise<DestinationQueue[] | undefined> | undefined;
  const queueRows = () =>
    (queueRead ??= queueByDestination()
      .catch(() => undefined)
      .finally(() => (queueRead = undefined)));
  new Gauge({
    name: "leadpush_destination_queue_depth",
    help: "Deliveries waiting to be pushed (pending + retrying) per destination",
    labelNames: ["destination"],
    registers: [registry],
    async collect() {
      const rows = await queueRows();
      if (!rows) return;
      this.reset();
      for (const r of rows) this.set({ destination: r.destination }, r.waiting);
    },
  });
  new Gauge({
    name: "leadpush_destination_oldest_waiting_seconds",
    help: "Age of the oldest delivery waiting to be pushed, per destination",
    labelNames: ["destination"],
    registers: [registry],
    async collect() {
      const rows = await queueRows();
      if (!rows) return;
      this.reset();
      const t = now();
      for (const r of rows)
        this.set({ destination: r.destination }, Math.max(0, (t - r.oldestCreatedAt) / 1000));
    },
  });
  // Read from the store at scrape time: any process may have changed it.
  const states = () => destinationStates().catch(() => undefined);
  const destinationState = new Gauge({
    name: "leadpush_destination_needs_reconnect",
    help: "1 when a destination waits for an admin to reconnect its OAuth account",
    labelNames: ["destination"],
    registers: [registry],
    async collect() {
      const list = await states();
      if (!list) return;
      this.reset();
      for (const d of list) this.set({ destination: d.name }, d.state === "needs_reconnect" ? 1 : 0);
    },
  });
  new Gauge({
    name: "leadpush_destination_state",
    help: "A destination's state: one series per state, 1 for the current one",
    labelNames: ["destination", "state"],
    registers: [registry],
    async collect() {
      const list = await states();
      if (!list) return;
      this.reset();
      for (const d of list)
        for (const s of DESTINATION_STATES)
          this.set({ destination: d.name, state: s }, d.state === s ? 1 : 0);
    },
  });
  const transitions = new Counter({
    name: "leadpush_destination_state_changes_total",
    help: "Destination state changes seen by this process, by destination and new state",
    labelNames: ["destination", "from", "to"],
    registers: [registry],
  });
  const circuit = new Counter({
    name: "leadpush_circuit_transitions_total",
    help: "Circuit breaker transitions seen by this process (opened, closed)",
    labelNames: ["destination", "transition"],
    registers: [registry],
  });
  const holds = new Counter({
    name: "leadpush_rate_limit_holds_total",
    help: "Times a destination was held (rate limit, Retry-After) by this process",
    labelNames: ["destination", "reason"],
    registers: [registry],
  });
  events.on("lead:accepted", () => leads.inc());
  events.on("delivery:completed", (e) => {
    deliveries.inc({ destination: e.destination, outcome: e.outcome, error_code: e.code ?? "" });
    latency.observe({ destination: e.destination }, e.durationMs / 1000);
  });
  events.on("destination:state", (e) => {
    transitions.inc({ destination: e.destination, from: e.from, to: e.to });
    if (e.to === "circuit_open") circuit.inc({ destination: e.destination, transition: "opened" });
    else if (e.from === "circuit_open") circuit.inc({ destination: e.destination, transition: "closed" });
  });
  events.on("destination:hold", (e) => holds.inc({ destination: e.destination, reason: e.reason }));
  return { registry, destinationState };
}

export type Metrics = ReturnType<typeof createMetrics>;
