import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { LATENCY_BOUNDS_MS, MAX_FAILURE_CODES } from "../store/destination-stats.ts";
import { type ApiDeps, doc, parseInput } from "./deps.ts";
import { json } from "./openapi.ts";

const WINDOWS = { "24h": 24, "7d": 7 * 24 } as const;

const statsQuery = z.object({
  window: z
    .enum(Object.keys(WINDOWS) as [keyof typeof WINDOWS, ...(keyof typeof WINDOWS)[]])
    .default("24h")
    .describe("The last 24 hours or 7 days, in hourly buckets (the current hour is partial)"),
});

const count = (what: string) => z.number().int().describe(what);
const bucketSchema = z.object({
  hour: z.string().describe("Start of the hour (ISO 8601, UTC)"),
  attempts: count("Attempts started in this hour, whatever their outcome"),
  delivered: count("Attempts that delivered"),
  failed: count("Attempts that failed their delivery for good"),
  retrying: count("Attempts that left their delivery retrying"),
  awaiting: count("Attempts that left their delivery awaiting a vendor's answer"),
  blocked: count("Attempts that left their delivery blocked (waiting for a person)"),
  p50Ms: z
    .number()
    .int()
    .nullable()
    .describe("Median attempt duration, handshake included; null without attempts"),
  p95Ms: z.number().int().nullable().describe("95th percentile of the attempt duration"),
});
const statsSchema = z.object({
  destination: z.object({ id: z.string(), name: z.string() }),
  window: z.enum(Object.keys(WINDOWS) as [keyof typeof WINDOWS, ...(keyof typeof WINDOWS)[]]),
  from: z.string().describe("Start of the first bucket"),
  to: z.string().describe("When the figures were read"),
  latency: z
    .object({ boundsMs: z.array(z.number().int()) })
    .describe(
      "Percentiles come from a histogram with these bucket bounds, interpolated within a bucket " +
        "(exact at a bound, within one bucket's width between)",
    ),
  buckets: z.array(bucketSchema),
  totals: bucketSchema.omit({ hour: true, p50Ms: true, p95Ms: true }),
  failures: z
    .array(
      z.object({
        code: z.string(),
        count: z.number().int(),
        lastSeen: z.string(),
        lastMessage: z.string().nullable().describe("The newest such attempt's message (redacted)"),
      }),
    )
    .describe(
      `Attempts with an error code in the window, most frequent first (${MAX_FAILURE_CODES} codes at most)`,
    ),
});
const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.array(z.unknown()).optional() }),
});

const iso = (ms: number) => new Date(ms).toISOString();

/** GET /v1/destinations/:id/stats: the destination page's charts and failures by code. */
export function destinationStatsRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    "/v1/destinations/:id/stats",
    {
      schema: {
        tags: ["destinations"],
        summary: "Attempts per hour by outcome, attempt latency per hour and failures by error code",
        params: doc(z.object({ id: z.string().describe("Destination id or name") })),
        querystring: doc(statsQuery),
        response: {
          200: json("Hourly figures of the window, oldest hour first, and failures by code", statsSchema, {
            destination: { id: "01JTWZZ9QQ01", name: "crm" },
            window: "24h",
            from: "2026-05-03T10:00:00.000Z",
            to: "2026-05-04T09:30:00.000Z",
            latency: { boundsMs: [...LATENCY_BOUNDS_MS] },
            buckets: [
              {
                hour: "2026-05-04T09:00:00.000Z",
                attempts: 42,
                delivered: 40,
                failed: 1,
                retrying: 1,
                awaiting: 0,
                blocked: 0,
                p50Ms: 84,
                p95Ms: 310,
              },
            ],
            totals: { attempts: 42, delivered: 40, failed: 1, retrying: 1, awaiting: 0, blocked: 0 },
            failures: [
              {
                code: "timeout",
                count: 2,
                lastSeen: "2026-05-04T09:12:00.000Z",
                lastMessage: "no answer within 10000 ms",
              },
            ],
          }),
          400: doc(errorSchema),
          404: doc(errorSchema),
        },
      },
    },
    async (req): Promise<z.infer<typeof statsSchema>> => {
      const q = parseInput(statsQuery, req.query ?? {});
      const d = await deps.destinations.get((req.params as { id: string }).id);
      const s = await deps.store.reads.destinationStats(d.id, deps.now(), WINDOWS[q.window]);
      const totals = { attempts: 0, delivered: 0, failed: 0, retrying: 0, awaiting: 0, blocked: 0 };
      for (const b of s.buckets)
        for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += b[k];
      return {
        destination: { id: d.id, name: d.name },
        window: q.window,
        from: iso(s.from),
        to: iso(s.to),
        latency: { boundsMs: [...LATENCY_BOUNDS_MS] },
        buckets: s.buckets.map((b) => ({ ...b, hour: iso(b.hour) })),
        totals,
        failures: s.failures.map((f) => ({ ...f, lastSeen: iso(f.lastSeen) })),
      };
    },
  );
}
