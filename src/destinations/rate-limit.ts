import { z } from "zod";

/**
 * A destination's rate limit, shared by every worker process: `perSecond` or `perMinute` pushes,
 * with up to `burst` at once after a quiet spell (default: one second's worth, at least 1).
 */
export const rateLimitSchema = z
  .object({
    perSecond: z.number().positive().max(10_000).optional(),
    perMinute: z.number().positive().max(600_000).optional(),
    burst: z.number().int().min(1).max(10_000).optional(),
  })
  .strict()
  .refine((r) => (r.perSecond === undefined) !== (r.perMinute === undefined), {
    message: 'give exactly one of "perSecond" or "perMinute"',
  });

export type RateLimitSpec = z.infer<typeof rateLimitSchema>;

/** A rate limit as the claim uses it: one token every `intervalMs`, a bucket of `burst`. */
export interface RateLimit {
  intervalMs: number;
  burst: number;
}

export function resolveRateLimit(spec: RateLimitSpec | undefined): RateLimit | undefined {
  if (!spec) return undefined;
  const perSecond = spec.perSecond ?? (spec.perMinute ?? 60) / 60;
  return { intervalMs: 1000 / perSecond, burst: spec.burst ?? Math.max(1, Math.ceil(perSecond)) };
}

/**
 * The destination view's `hold`: until when (ISO time) and why the whole destination is not
 * called (a Retry-After, an adaptive back-off after a 429); null when it is not held. The row's
 * traffic columns are selected with it (`selectAll`) though the destination row type omits them.
 */
export function holdView(row: object, now: number): { until: string; reason: string } | null {
  const r = row as { hold_until?: number | string | null; hold_reason?: string | null };
  const until = r.hold_until == null ? 0 : Number(r.hold_until);
  if (until <= now) return null;
  return { until: new Date(until).toISOString(), reason: r.hold_reason ?? "held" };
}
