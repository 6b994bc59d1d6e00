import { type Kysely, sql } from "kysely";
import type { Database } from "./schema.ts";

// A destination's attempts per hour by outcome, push latency per hour and failures by error code
// (GET /v1/destinations/:id/stats, the dashboard's health panel). Every query is a range of the
// index attempts(destination_id, started_at, outcome, duration_ms, error_code) (migration 011):
// the rows of one destination within one hour (or the window, for failures), read from the index
// alone. The answer's size depends on the window (24 or 168 buckets, 50 codes at most), not on
// the traffic.

export const HOUR_MS = 3_600_000;

/**
 * Upper bounds (ms) of the latency histogram's buckets; the last bucket is open-ended (closed by
 * the hour's longest attempt). Percentiles are interpolated within a bucket, as Prometheus's
 * `histogram_quantile` does: exact at the bounds, within the bucket between. Each bound costs a
 * comparison per attempt read, so there are 16 of them (~1.5–2.5× apart where pushes usually are).
 */
export const LATENCY_BOUNDS_MS = [
  5, 10, 20, 35, 50, 75, 100, 150, 250, 400, 600, 1000, 2000, 5000, 10_000, 30_000,
] as const;

/** Attempt outcomes (attempts.outcome) and the bucket field each is counted in. */
const OUTCOME_FIELDS = {
  delivered: "delivered",
  failed: "failed",
  retry: "retrying",
  awaiting: "awaiting",
  blocked: "blocked",
} as const;

export interface HourBucket {
  /** The hour's start (ms). */
  hour: number;
  /** Attempts started in this hour, whatever their outcome. */
  attempts: number;
  delivered: number;
  failed: number;
  /** Attempts that left their delivery `retrying` (outcome `retry`). */
  retrying: number;
  awaiting: number;
  blocked: number;
  /** Attempt duration (handshake included) percentiles; null without attempts. */
  p50Ms: number | null;
  p95Ms: number | null;
}

export interface FailureGroup {
  code: string;
  count: number;
  /** The newest attempt with this code (ms). */
  lastSeen: number;
  /** Its message (as stored: redacted). */
  lastMessage: string | null;
}

export interface DestinationStats {
  from: number;
  to: number;
  buckets: HourBucket[];
  /** Attempts with an error code in the window, most frequent first (50 codes at most). */
  failures: FailureGroup[];
}

export const MAX_FAILURE_CODES = 50;

/** One hour's aggregate, every column of it: a single pass over the hour's index range, no sort. */
const OUTCOMES = Object.keys(OUTCOME_FIELDS) as (keyof typeof OUTCOME_FIELDS)[];
const HOUR_COLUMNS = [
  "count(*) as n",
  "max(duration_ms) as longest",
  ...OUTCOMES.map((o, i) => `sum(case when outcome = '${o}' then 1 else 0 end) as o${i}`),
  ...LATENCY_BOUNDS_MS.map((b, i) => `sum(case when duration_ms <= ${b} then 1 else 0 end) as c${i}`),
].join(", ");
type HourRow = Record<string, number | string | null>;

/** The hours from `hours - 1` hours before `now`'s hour up to `now`'s hour (which is partial). */
export async function destinationStats(
  db: Kysely<Database>,
  destinationId: string,
  now: number,
  hours: number,
): Promise<DestinationStats> {
  const first = Math.floor(now / HOUR_MS) * HOUR_MS - (hours - 1) * HOUR_MS;
  // One aggregate per hour rather than one GROUP BY over the window: grouping sorted every
  // attempt of the window in a temporary B-tree (~200 ms for 100 000 attempts on SQLite); each
  // hour's aggregate is a plain pass over its slice of the index (ms).
  const starts = Array.from({ length: hours }, (_, i) => first + i * HOUR_MS);
  const [perHour, codes] = await Promise.all([
    Promise.all(
      starts.map(async (start) => {
        const end = Math.min(start + HOUR_MS, now + 1);
        const r = await sql<HourRow>`select ${sql.raw(HOUR_COLUMNS)} from attempts
          where destination_id = ${destinationId} and started_at >= ${start} and started_at < ${end}`.execute(
          db,
        );
        return r.rows[0] ?? {};
      }),
    ),
    db
      .selectFrom("attempts")
      .where("destination_id", "=", destinationId)
      .where("started_at", ">=", first)
      .where("started_at", "<=", now)
      .select((eb) => [
        "error_code",
        eb.fn.countAll<number | string>().as("n"),
        eb.fn.max<number | string>("started_at").as("last"),
      ])
      .where("error_code", "is not", null)
      .groupBy("error_code")
      .orderBy(sql`count(*)`, "desc")
      .orderBy("error_code")
      .limit(MAX_FAILURE_CODES)
      .execute(),
  ]);

  const buckets = perHour.map((r, i) => {
    const num = (k: string) => Number(r[k] ?? 0);
    const counts = { attempts: num("n"), delivered: 0, failed: 0, retrying: 0, awaiting: 0, blocked: 0 };
    OUTCOMES.forEach((o, j) => (counts[OUTCOME_FIELDS[o]] += num(`o${j}`)));
    // Cumulative counts (≤ each bound) → counts per bucket, the last one above the last bound.
    const cumulative = LATENCY_BOUNDS_MS.map((_, j) => num(`c${j}`));
    const histogram = [...cumulative, counts.attempts].map((c, j) => c - (j === 0 ? 0 : cumulative[j - 1]!));
    return { counts, histogram, longest: num("longest"), hour: starts[i]! };
  });

  // The message of each code's newest attempt: rows at exactly those times (index equality).
  const lastTimes = [...new Set(codes.map((c) => Number(c.last)))];
  const messages =
    lastTimes.length === 0
      ? []
      : await db
          .selectFrom("attempts")
          .select(["error_code", "error_message", "started_at"])
          .where("destination_id", "=", destinationId)
          .where("started_at", "in", lastTimes)
          .where("error_code", "is not", null)
          .execute();
  const messageOf = (code: string, at: number) =>
    messages.find((m) => m.error_code === code && Number(m.started_at) === at)?.error_message ?? null;

  return {
    from: first,
    to: now,
    buckets: buckets.map((b) => ({
      hour: b.hour,
      ...b.counts,
      p50Ms: percentile(b.histogram, b.longest, 0.5),
      p95Ms: percentile(b.histogram, b.longest, 0.95),
    })),
    failures: codes.map((c) => ({
      code: c.error_code ?? "",
      count: Number(c.n),
      lastSeen: Number(c.last),
      lastMessage: messageOf(c.error_code ?? "", Number(c.last)),
    })),
  };
}

/**
 * The `q` quantile of a histogram over LATENCY_BOUNDS_MS (counts per bucket; the last bucket is
 * above the last bound, up to `longest`), interpolated linearly within its bucket; null when empty.
 */
export function percentile(histogram: readonly number[], longest: number, q: number): number | null {
  const total = histogram.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < histogram.length; i++) {
    const n = histogram[i] ?? 0;
    if (n > 0 && below + n >= rank) {
      const lower = i === 0 ? 0 : (LATENCY_BOUNDS_MS[i - 1] ?? 0);
      const upper = Math.min(LATENCY_BOUNDS_MS[i] ?? longest, longest);
      return Math.round(lower + (Math.max(upper, lower) - lower) * ((rank - below) / n));
    }
    below += n;
  }
  return longest;
}
