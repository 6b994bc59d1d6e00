import { type Kysely, sql } from "kysely";
import type { Database } from "./schema.ts";

// A destination's attempts per hour by outcome, push latency per hour and failures by error code
// (GET /v1/destinations/:id/stats, the dashboard's health panel). Settled hours come from their
// kept aggregates (attempt_hours, migration 015); the others are ranges of the index
// attempts(destination_id, started_at, outcome, duration_ms, error_code) (migration 011): the rows
// of one destination within one hour, read from the index alone. The answer's size depends on the
// window (24 or 168 buckets, 50 codes at most), not on the traffic.

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

/**
 * An hour is settled once it ended this long ago: no attempt can still be written into it. An
 * attempt's row is written when the attempt ends, stamped with its start, and one attempt lasts at
 * most four timeouts (4 × 120 s) plus the completion writer's window. A settled hour's aggregate
 * is kept in `attempt_hours` (migration 015) by the first read that needs it, so a 7-day window
 * reads at most 168 small rows and the attempts of its last two hours, whatever the traffic.
 */
export const SETTLED_AFTER_MS = HOUR_MS;

/** What one hour of one destination's attempts adds up to (kept as JSON in attempt_hours.data). */
interface HourAggregate {
  /** LATENCY_BOUNDS_MS when it was made: an aggregate of other bounds is made again. */
  bounds: string;
  n: number;
  longest: number;
  /** Attempts per outcome, in OUTCOMES order. */
  outcomes: number[];
  /** Attempts at or under each bound of LATENCY_BOUNDS_MS. */
  cumulative: number[];
  /** The hour's attempts with an error code: [code, count, newest started_at]. */
  codes: [string, number, number][];
}
const BOUNDS = LATENCY_BOUNDS_MS.join(",");

function parseAggregate(data: string): HourAggregate | undefined {
  const a = JSON.parse(data) as HourAggregate;
  return a.bounds === BOUNDS && a.outcomes.length === OUTCOMES.length ? a : undefined;
}

/** The aggregate of the attempts started in [start, end): two passes over the hour's index range. */
async function hourAggregate(
  db: Kysely<Database>,
  destinationId: string,
  start: number,
  end: number,
): Promise<HourAggregate> {
  const [totals, codes] = await Promise.all([
    sql<HourRow>`select ${sql.raw(HOUR_COLUMNS)} from attempts
      where destination_id = ${destinationId} and started_at >= ${start} and started_at < ${end}`.execute(db),
    db
      .selectFrom("attempts")
      .where("destination_id", "=", destinationId)
      .where("started_at", ">=", start)
      .where("started_at", "<", end)
      .where("error_code", "is not", null)
      .select((eb) => [
        "error_code",
        eb.fn.countAll<number | string>().as("n"),
        eb.fn.max<number | string>("started_at").as("last"),
      ])
      .groupBy("error_code")
      .execute(),
  ]);
  const r = totals.rows[0] ?? {};
  const num = (k: string) => Number(r[k] ?? 0);
  return {
    bounds: BOUNDS,
    n: num("n"),
    longest: num("longest"),
    outcomes: OUTCOMES.map((_, j) => num(`o${j}`)),
    cumulative: LATENCY_BOUNDS_MS.map((_, j) => num(`c${j}`)),
    codes: codes.map((c) => [c.error_code ?? "", Number(c.n), Number(c.last)]),
  };
}

/** The hours from `hours - 1` hours before `now`'s hour up to `now`'s hour (which is partial). */
export async function destinationStats(
  db: Kysely<Database>,
  destinationId: string,
  now: number,
  hours: number,
): Promise<DestinationStats> {
  const first = Math.floor(now / HOUR_MS) * HOUR_MS - (hours - 1) * HOUR_MS;
  const starts = Array.from({ length: hours }, (_, i) => first + i * HOUR_MS);
  const settled = (start: number) => start + HOUR_MS + SETTLED_AFTER_MS <= now;
  const kept = new Map<number, HourAggregate>();
  const lastSettled = starts.filter(settled).at(-1);
  if (lastSettled !== undefined)
    for (const row of await db
      .selectFrom("attempt_hours")
      .select(["hour", "data"])
      .where("destination_id", "=", destinationId)
      .where("hour", ">=", first)
      .where("hour", "<=", lastSettled)
      .execute()) {
      const a = parseAggregate(row.data);
      if (a) kept.set(Number(row.hour), a);
    }
  // The other hours from the attempts: one aggregate per hour rather than one GROUP BY over the
  // window, which sorted every attempt of the window in a temporary B-tree (~200 ms for 100 000
  // attempts on SQLite); each hour's aggregate is a plain pass over its slice of the index.
  const missing = starts.filter((s) => !kept.has(s));
  const made = await Promise.all(
    missing.map((s) => hourAggregate(db, destinationId, s, Math.min(s + HOUR_MS, now + 1))),
  );
  missing.forEach((s, i) => kept.set(s, made[i]!));
  const keep = missing.filter(settled);
  if (keep.length > 0)
    await db
      .insertInto("attempt_hours")
      .values(
        keep.map((hour) => ({ destination_id: destinationId, hour, data: JSON.stringify(kept.get(hour)) })),
      )
      .onConflict((oc) =>
        oc.columns(["destination_id", "hour"]).doUpdateSet((eb) => ({ data: eb.ref("excluded.data") })),
      )
      .execute();

  const byCode = new Map<string, { count: number; last: number }>();
  const buckets = starts.map((hour) => {
    const a = kept.get(hour)!;
    const counts = { attempts: a.n, delivered: 0, failed: 0, retrying: 0, awaiting: 0, blocked: 0 };
    OUTCOMES.forEach((o, j) => (counts[OUTCOME_FIELDS[o]] += a.outcomes[j] ?? 0));
    // Cumulative counts (≤ each bound) → counts per bucket, the last one above the last bound.
    const histogram = [...a.cumulative, a.n].map((c, j) => c - (j === 0 ? 0 : a.cumulative[j - 1]!));
    for (const [code, count, last] of a.codes) {
      const c = byCode.get(code);
      if (c) {
        c.count += count;
        c.last = Math.max(c.last, last);
      } else byCode.set(code, { count, last });
    }
    return {
      hour,
      ...counts,
      p50Ms: percentile(histogram, a.longest, 0.5),
      p95Ms: percentile(histogram, a.longest, 0.95),
    };
  });
  // Most frequent first, then by code (byte order).
  const codes = [...byCode]
    .sort(([a, x], [b, y]) => y.count - x.count || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, MAX_FAILURE_CODES);

  // The message of each code's newest attempt: rows at exactly those times (index equality).
  const lastTimes = [...new Set(codes.map(([, c]) => c.last))];
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
    buckets,
    failures: codes.map(([code, c]) => ({
      code,
      count: c.count,
      lastSeen: c.last,
      lastMessage: messageOf(code, c.last),
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
