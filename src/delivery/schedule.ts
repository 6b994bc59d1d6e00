/**
 * When to try again. `delays[n-1]` is the wait after attempt n; attempts = delays + 1. Jitter
 * spreads retries of many deliveries (± `jitter` × delay). A `Retry-After` from the client wins
 * when it asks for longer.
 */
export function nextRetryDelay(
  attempt: number,
  retry: { delaysMs: number[]; jitter: number },
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number | undefined {
  const base = retry.delaysMs[attempt - 1];
  if (base === undefined) return undefined;
  const jittered = Math.round(base * (1 + retry.jitter * (random() * 2 - 1)));
  return Math.max(jittered, retryAfterMs ?? 0);
}
