import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { DELIVERY_STATUSES, type DeliveryStatus } from "../domain/status.ts";
import type { ApiDeps } from "./deps.ts";
import { json, statsExample } from "./openapi.ts";

type Status = DeliveryStatus;
type Counts = Record<Status, number>;

const countsSchema = z
  .object(
    Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, z.number().int()])) as Record<Status, z.ZodNumber>,
  )
  .describe("Deliveries by status (every status present, 0 when none)");
const statsSchema = z.object({
  leads: z.number().int().describe("Leads stored (erased ones included)"),
  deliveries: countsSchema,
  destinations: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      connector: z.string(),
      authType: z.string(),
      enabled: z.boolean(),
      state: z.string().describe("`active` or `needs_reconnect`"),
      deliveries: countsSchema,
    }),
  ),
});

const zero = (): Counts => Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, 0])) as Counts;

/** GET /v1/stats: counts by status, overall and per destination (the dashboard's overview). */
export function statsRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    "/v1/stats",
    {
      schema: {
        tags: ["operations"],
        summary: "Counts of leads and of deliveries by status, overall and per destination",
        response: { 200: json("Counts", statsSchema, statsExample) },
      },
    },
    async (): Promise<z.infer<typeof statsSchema>> => {
      const [{ deliveries: groups, leads }, destinations] = await Promise.all([
        deps.store.reads.counts(),
        deps.destinations.list(),
      ]);
      const total = zero();
      const byDestination = new Map<string, Counts>();
      for (const g of groups) {
        const status = g.status as Status;
        if (!(status in total)) continue;
        const n = Number(g.n);
        total[status] += n;
        let counts = byDestination.get(g.destination_id);
        if (!counts) byDestination.set(g.destination_id, (counts = zero()));
        counts[status] += n;
      }
      return {
        leads,
        deliveries: total,
        destinations: destinations.map((d) => ({
          id: d.id,
          name: d.name,
          connector: d.connector,
          authType: (d.auth as { type?: string } | undefined)?.type ?? "none",
          enabled: d.enabled !== false,
          state: typeof d.state === "string" ? d.state : "active",
          deliveries: byDestination.get(d.id) ?? zero(),
        })),
      };
    },
  );
}
