// What the benchmarks' load side shares: one undici agent to 127.0.0.1, a bounded pool of
// concurrent callers, the bench lead, the sink's figures and the raw-undici baseline.
import { Agent, request } from "undici";

/** Every load loop stops by this time, whatever it was asked to do. */
export const DEADLINE = Date.now() + 10 * 60_000;

export const now = () => performance.timeOrigin + performance.now();
export const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};
export const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 0) : "n/a");

export const agent = new Agent({ connections: 128, keepAliveTimeout: 30_000 });

export async function call(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(url, {
    method: method as "POST",
    dispatcher: agent,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export const lead = (i: number) => ({
  name: `Bench ${i}`,
  email: `bench${i}@example.com`,
  phone: `+9198${String(10_000_000 + i).slice(-8)}`,
  city: "Mumbai",
  source: "bench",
  attributes: { sentAt: now() },
});

/** Calls `fn(0 … n−1)` with `concurrency` callers at a time, until done or the deadline. */
export async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n && Date.now() < DEADLINE) await fn(next++);
    }),
  );
}

export async function waitFor(check: () => Promise<boolean>, ms: number) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

export interface SinkStats {
  tokenRequests: number;
  received: number;
  unique: number;
  lastAt: number;
  latencies: number[];
}

export async function stats(sinkUrl: string): Promise<SinkStats> {
  return (await call("GET", `${sinkUrl}/stats`)).json as unknown as SinkStats;
}

/** Raw undici POSTs straight to the sink, concurrency 64, with a token fetched once: leads/s. */
export async function baseline(sinkUrl: string, token: string, leads: number): Promise<number> {
  const t = now();
  await pool(leads, 64, async (i) => {
    await call("POST", `${sinkUrl}/leads`, lead(i), { authorization: `Bearer ${token}` });
  });
  const perS = leads / ((now() - t) / 1000);
  await call("POST", `${sinkUrl}/reset`);
  return perS;
}
