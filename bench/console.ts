// `npm run bench:console`: every API call the dashboard's screens make, at 100 000 leads, on SQLite
// and on Postgres (issue 15: "every screen stays usable at 100 000 leads, API calls ≤ 200 ms").
//
// Per backend: a fresh database, leadpush's API in this process (no worker: the rows stay as
// filled), four destinations created through the API, then BENCH_CONSOLE_LEADS leads written
// through the store in bulk, in the shapes the app writes (`insertLeads`, then each delivery's
// outcome and its attempt rows as the worker's completions leave them), spread over 7 days: most
// delivered, some failed (http_500, network_error, http_422), some retrying, the last hour still
// pending. Then each call is timed over HTTP, one at a time: p50/p95 of BENCH_CONSOLE_CALLS calls,
// beside GET /healthz (the HTTP baseline) and `SELECT 1` (the database round trip) from the same
// run, with a verdict against 200 ms. Postgres is ANALYZEd after the fill (what autovacuum does
// after a bulk load). BENCH_CONSOLE_BACKENDS (sqlite,postgres), BENCH_PG_URL.
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import pg from "pg";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { parseLead } from "../src/lead/lead.ts";
import { insertRows } from "../src/store/insert-rows.ts";
import { insertLeads, type NewLead } from "../src/store/leads-repo.ts";
import type { Database } from "../src/store/schema.ts";
import { newId } from "../src/util/ids.ts";

const LEADS = Number(process.env.BENCH_CONSOLE_LEADS ?? 100_000);
const CALLS = Number(process.env.BENCH_CONSOLE_CALLS ?? 20);
const BACKENDS = (process.env.BENCH_CONSOLE_BACKENDS ?? "sqlite,postgres").split(",");
/** Only the calls whose screen or label matches (a regular expression), e.g. "stats|replay". */
const ONLY = new RegExp(process.env.BENCH_CONSOLE_ONLY ?? "");
/** After the fill on Postgres: `vacuum` (VACUUM ANALYZE: what autovacuum reaches soon after a bulk load), `analyze`, or `none`. */
/** Keep the Postgres database (its name is printed) to look at plans afterwards. */
const KEEP = process.env.BENCH_CONSOLE_KEEP === "1";
const PG_AFTER_FILL = process.env.BENCH_CONSOLE_PG_AFTER_FILL ?? "vacuum";
const PG = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const ADMIN = "bench-admin-token-0123456789abcdef";
const LIMIT_MS = 200;
const HOUR = 3_600_000;
const SPAN = 7 * 24 * HOUR;
const BATCH = 250;

const FIRST = ["Asha", "Priya", "Rahul", "Kiran", "Anil", "Meera", "Vikram", "Sneha", "Arjun", "Divya"];
const LAST = ["Sharma", "Patel", "Iyer", "Khan", "Reddy", "Das", "Nair", "Gupta", "Joshi", "Mehta"];
const CITIES = ["Pune", "Mumbai", "Navi Mumbai", "Bengaluru", "Chennai", "Delhi", "Hyderabad", "Kolkata"];
/** Every lead goes to crm; a share also to the others (their filters said yes). */
const DESTINATIONS = [
  { name: "crm", share: 1 },
  { name: "partner", share: 0.5 },
  { name: "sheets", share: 0.3 },
  { name: "flaky", share: 0.2 },
];
const ERRORS = [
  { code: "http_500", message: "client answered 500", status: 500 },
  { code: "network_error", message: "connection refused", status: null },
  { code: "http_422", message: "client answered 422: phone is invalid", status: 422 },
];

/** A deterministic pseudo-random number in [0, 1) for (i, salt): the same fill every run. */
const rand = (i: number, salt: number) => {
  let x = (i * 2654435761 + salt * 40503) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x45d9f3b) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  return x / 2 ** 32;
};

const exchanges = (url: string, status: number | null, latency: number, body: string) =>
  JSON.stringify([
    {
      step: "push",
      startMs: 0,
      request: {
        method: "POST",
        url,
        headers: { "content-type": "application/json", authorization: "[redacted]" },
        body: JSON.stringify({
          name: "[lead]",
          email: "[lead]",
          phone: "[lead]",
          city: "Pune",
          source: "web",
        }),
      },
      ...(status === null
        ? { error: "connect ECONNREFUSED 10.0.0.9:443" }
        : { response: { status, headers: { "content-type": "application/json" }, body } }),
      durationMs: latency,
    },
  ]);

type Delivery = { id: string; leadId: string; destinationId: string; createdAt: number; i: number };
type DeliveryUpdate = Partial<Database["deliveries"]> & { status: Database["deliveries"]["status"] };

/** The outcome of one delivery and its attempt rows, as the worker's completions write them. */
function outcome(d: Delivery, now: number, url: string) {
  const attempts: Database["attempts"][] = [];
  const attempt = (
    n: number,
    at: number,
    result: "delivered" | "failed" | "retry",
    err?: (typeof ERRORS)[0],
  ) => {
    const r = rand(d.i * 7 + n, 3);
    // Most pushes 30–250 ms, a tail to a few seconds (the slow destination is slower).
    const latency = Math.round(
      (d.destinationId.endsWith("flaky") ? 300 : 30) + 220 * r + (r > 0.97 ? 3000 * r : 0),
    );
    attempts.push({
      id: newId(),
      delivery_id: d.id,
      lead_id: d.leadId,
      destination_id: d.destinationId,
      number: n,
      started_at: at,
      duration_ms: latency,
      outcome: result,
      exchanges: exchanges(
        url,
        err ? err.status : 200,
        latency,
        err ? `{"error":"${err.message}"}` : `{"id":"VND-${d.id.slice(-8)}"}`,
      ),
      response_status: err ? err.status : 200,
      error_code: err?.code ?? null,
      error_message: err ? `${err.code}: ${err.message}` : null,
    });
  };
  const r = rand(d.i, d.destinationId.length);
  const err = ERRORS[Math.floor(rand(d.i, 9) * ERRORS.length)]!;
  const t = d.createdAt + 50;
  if (now - d.createdAt < HOUR && r < 0.3) return { status: "pending" as const, attempts, update: null };
  if (r < 0.05) {
    attempt(1, t, "retry", ERRORS[0]);
    attempt(2, t + 60_000, "retry", err);
    attempt(3, t + 600_000, "failed", err);
    const u: DeliveryUpdate = {
      status: "failed",
      attempts: 3,
      last_error: `${err.code}: ${err.message}`,
      last_status: err.status,
    };
    return { status: "failed" as const, attempts, update: u };
  }
  if (r < 0.08) {
    attempt(1, t, "retry", err);
    const u: DeliveryUpdate = {
      status: "retrying",
      attempts: 1,
      last_error: `${err.code}: ${err.message}`,
      last_status: err.status,
      next_attempt_at: now + 10 * 60_000,
    };
    return { status: "retrying" as const, attempts, update: u };
  }
  if (r < 0.15) attempt(1, t, "retry", ERRORS[0]);
  attempt(attempts.length + 1, t + attempts.length * 60_000, "delivered");
  const u: DeliveryUpdate = {
    status: "delivered",
    attempts: attempts.length,
    last_status: 200,
    delivered_at: t,
  };
  return { status: "delivered" as const, attempts, update: u };
}

async function fill(app: Awaited<ReturnType<typeof createApp>>, ids: Map<string, string>, now: number) {
  const db = app.kysely;
  const url = "https://crm.example.com/leads";
  const from = now - SPAN;
  for (let start = 0; start < LEADS; start += BATCH) {
    const at = from + Math.floor((start / LEADS) * SPAN);
    const items: NewLead[] = [];
    for (let i = start; i < Math.min(LEADS, start + BATCH); i++) {
      const parsed = parseLead(
        {
          name: `${FIRST[i % 10]}${i % 7 === 0 ? "" : String.fromCharCode(97 + (i % 26))}`,
          lastName: LAST[(i * 7) % 10],
          email: `lead${i}@bench.example`,
          phone: `+9198${String(i).padStart(8, "0")}`,
          city: CITIES[i % CITIES.length],
          source: i % 5 === 0 ? "import" : "web",
        },
        "IN",
      );
      if (!parsed.ok) throw new Error("bad bench lead");
      items.push({
        lead: parsed.lead,
        idempotencyKey: undefined,
        apiKeyId: "admin-token",
        targets: DESTINATIONS.filter((d, k) => k === 0 || rand(i, k) < d.share).map((d) => ({
          destinationId: ids.get(d.name)!,
          destinationName: d.name,
          status: "pending" as const,
          pushDuplicates: true,
        })),
      });
    }
    const results = await insertLeads(db, items, at);
    const deliveries: Delivery[] = [];
    results.forEach((r, k) =>
      r.deliveries.forEach((d) =>
        deliveries.push({
          id: d.id,
          leadId: r.id,
          destinationId: ids.get(d.destination)!,
          createdAt: at,
          i: start + k,
        }),
      ),
    );
    const attempts: Database["attempts"][] = [];
    const groups = new Map<string, { update: DeliveryUpdate; ids: string[] }>();
    for (const d of deliveries) {
      const o = outcome(d, now, url);
      attempts.push(...o.attempts);
      if (!o.update) continue;
      const key = JSON.stringify(o.update);
      const g = groups.get(key) ?? { update: o.update, ids: [] };
      g.ids.push(d.id);
      groups.set(key, g);
    }
    await db.transaction().execute(async (trx) => {
      for (const g of groups.values()) {
        await trx
          .updateTable("deliveries")
          .set({
            next_attempt_at: null,
            ...g.update,
            updated_at: at,
            // The partner answers with its own id (searchable as a vendor id).
            ...(g.update.status === "delivered"
              ? {
                  external_id: sql<string>`case when destination_id = ${ids.get("partner")!} then 'VND-' || substr(id, 29, 8) else null end`,
                }
              : {}),
          })
          .where("id", "in", g.ids)
          .execute();
      }
      for (let k = 0; k < attempts.length; k += 500)
        await insertRows(trx, "attempts", attempts.slice(k, k + 500));
    });
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? NaN;
};

interface Call {
  screen: string;
  label: string;
  /** Resolves to the bytes read, or to `{ ms }` when the call times itself. */
  run: () => Promise<number | { ms: number }>;
  /** Before each call, untimed. */
  before?: () => Promise<unknown>;
  /** Not a call a screen waits for on every view (once per install, a download): shown, not judged. */
  once?: boolean;
}

async function main() {
  console.log(
    `leadpush console bench — ${LEADS} leads over 7 days, ${DESTINATIONS.length} destinations, ` +
      `${CALLS} calls each, one at a time; load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}`,
  );
  const verdicts: string[] = [];
  for (const backend of BACKENDS) {
    const dir = mkdtempSync(join(tmpdir(), "leadpush-console-bench-"));
    let dbName = "";
    if (backend === "postgres") {
      dbName = `lp_bench_console_${process.pid}`;
      const admin = new pg.Client({ connectionString: PG });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
      await admin.end();
    }
    const config = loadConfig({
      PORT: "0",
      HOST: "127.0.0.1",
      DATABASE_URL:
        backend === "sqlite" ? `file:${join(dir, "console.db")}` : PG.replace(/\/[^/]*$/, `/${dbName}`),
      LEADPUSH_DATA_DIR: dir,
      LEADPUSH_SECRET_KEY: "22".repeat(32),
      LEADPUSH_ADMIN_TOKEN: ADMIN,
      // The export calls stop reading after the first chunk, which the server logs as an error.
      LOG_LEVEL: "fatal",
    });
    const app = await createApp(config, { worker: false });
    try {
      const base = (await app.start()) as string;
      const headers = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
      const call = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(`${base}${path}`, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await res.text();
        if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
        return text;
      };
      const ids = new Map<string, string>();
      for (const d of DESTINATIONS) {
        const made = JSON.parse(
          await call("POST", "/v1/destinations", {
            name: d.name,
            connector: "http",
            url: `https://${d.name}.example.com/leads`,
            auth: { type: "static_key", fields: { "x-api-key": "bench-secret-key" }, in: "header" },
          }),
        ) as { id: string };
        ids.set(d.name, made.id);
      }
      const now = Date.now();
      let t = performance.now();
      await fill(app, ids, now);
      const fillS = (performance.now() - t) / 1000;
      t = performance.now();
      if (backend === "postgres" && PG_AFTER_FILL !== "none")
        await sql.raw(PG_AFTER_FILL === "vacuum" ? "vacuum analyze" : "analyze").execute(app.kysely);
      const counts = await sql<{ n: number | string }>`select count(*) as n from attempts`.execute(
        app.kysely,
      );
      const dCount = await sql<{ n: number | string }>`select count(*) as n from deliveries`.execute(
        app.kysely,
      );
      console.log(
        `\n${backend}: filled in ${fillS.toFixed(0)} s — ${LEADS} leads, ${Number(dCount.rows[0]?.n)} deliveries, ` +
          `${Number(counts.rows[0]?.n)} attempts${backend === "postgres" ? `; ${PG_AFTER_FILL} ${((performance.now() - t) / 1000).toFixed(1)} s` : ""}`,
      );

      const sample = JSON.parse(
        await call("GET", "/v1/deliveries?limit=1&status=failed&destination=partner"),
      ) as {
        data: { id: string; leadId: string }[];
      };
      const failed = sample.data[0]!;
      const vendor = JSON.parse(
        await call("GET", "/v1/deliveries?limit=1&status=delivered&destination=partner"),
      ) as {
        data: { externalId: string | null }[];
      };
      const iso = (ms: number) => new Date(now - ms).toISOString();
      const get = (path: string) => async () => (await call("GET", path)).length;
      const post = (path: string, body: unknown) => async () => (await call("POST", path, body)).length;
      /**
       * Time to the first chunk of a streamed answer (the download has started); the rest is read
       * too, untimed, so the next call does not run beside this one's remaining pages.
       */
      const firstBytes = (path: string) => async () => {
        const s = performance.now();
        const res = await fetch(`${base}${path}`, { headers });
        const reader = res.body!.getReader();
        await reader.read();
        const ms = performance.now() - s;
        while (!(await reader.read()).done);
        return { ms };
      };
      const q = (s: string) => `/v1/leads?limit=50&q=${encodeURIComponent(s)}`;
      const calls: Call[] = [
        { screen: "baseline", label: "GET /healthz", run: get("/healthz") },
        {
          screen: "baseline",
          label: "SELECT 1 (database round trip)",
          run: async () => (await sql`select 1 as x`.execute(app.kysely)).rows.length,
        },
        { screen: "overview", label: "GET /v1/stats", run: get("/v1/stats") },
        { screen: "destinations", label: "GET /v1/destinations", run: get("/v1/destinations") },
        {
          screen: "destination",
          label: "GET /v1/destinations/crm (health)",
          run: get("/v1/destinations/crm"),
        },
        {
          screen: "destination",
          label: "GET …/crm/stats?window=24h",
          run: get("/v1/destinations/crm/stats?window=24h"),
        },
        {
          screen: "destination",
          label: "GET …/crm/stats?window=7d",
          run: get("/v1/destinations/crm/stats?window=7d"),
        },
        {
          screen: "destination",
          label: "GET …/flaky/stats?window=7d",
          run: get("/v1/destinations/flaky/stats?window=7d"),
        },
        {
          screen: "destination",
          label: "GET …/crm/stats?window=7d, first view",
          // No hour kept yet (a new install, or the first view after the upgrade): every hour is read.
          before: () => app.kysely.deleteFrom("attempt_hours").execute(),
          once: true,
          run: get("/v1/destinations/crm/stats?window=7d"),
        },
        {
          screen: "deliveries",
          label: "GET /v1/deliveries (first page)",
          run: get("/v1/deliveries?limit=50"),
        },
        { screen: "deliveries", label: "  status=failed", run: get("/v1/deliveries?limit=50&status=failed") },
        {
          screen: "deliveries",
          label: "  status=retrying",
          run: get("/v1/deliveries?limit=50&status=retrying"),
        },
        {
          screen: "deliveries",
          label: "  status=pending",
          run: get("/v1/deliveries?limit=50&status=pending"),
        },
        {
          screen: "deliveries",
          label: "  destination=flaky",
          run: get("/v1/deliveries?limit=50&destination=flaky"),
        },
        {
          screen: "deliveries",
          label: "  destination=crm",
          run: get("/v1/deliveries?limit=50&destination=crm"),
        },
        {
          screen: "deliveries",
          label: "  errorCode=http_422",
          run: get("/v1/deliveries?limit=50&errorCode=http_422"),
        },
        {
          screen: "deliveries",
          label: "  failed+errorCode=network_error+sheets",
          run: get("/v1/deliveries?limit=50&status=failed&errorCode=network_error&destination=sheets"),
        },
        {
          screen: "deliveries",
          label: "  status=failed, last hour",
          run: get(`/v1/deliveries?limit=50&status=failed&since=${iso(HOUR)}`),
        },
        {
          screen: "deliveries",
          label: "  errorCode=http_500, last 24 h",
          run: get(`/v1/deliveries?limit=50&errorCode=http_500&since=${iso(24 * HOUR)}`),
        },
        {
          screen: "deliveries",
          label: "  refresh of 500 rows (limit=500)",
          run: get("/v1/deliveries?limit=500"),
        },
        {
          screen: "deliveries",
          label: "GET /v1/deliveries/:id (inspector)",
          run: get(`/v1/deliveries/${failed.id}`),
        },
        {
          screen: "deliveries",
          label: "replay dry run: failed",
          run: post("/v1/deliveries/replay", { status: ["failed"], dryRun: true }),
        },
        {
          screen: "deliveries",
          label: "replay dry run: failed, http_500",
          run: post("/v1/deliveries/replay", { status: ["failed"], errorCode: "http_500", dryRun: true }),
        },
        {
          screen: "deliveries",
          label: "replay dry run: crm failed, 24 h",
          run: post("/v1/deliveries/replay", {
            status: ["failed"],
            destination: "crm",
            since: iso(24 * HOUR),
            dryRun: true,
          }),
        },
        {
          screen: "deliveries",
          label: "export failed: first bytes",
          run: firstBytes("/v1/deliveries/export?status=failed"),
        },
        {
          screen: "deliveries",
          label: "export failed: whole file (10 000 rows)",
          once: true,
          run: get("/v1/deliveries/export?status=failed"),
        },
        { screen: "leads", label: "GET /v1/leads (first page)", run: get("/v1/leads?limit=50") },
        { screen: "leads", label: "  refresh of 500 rows (limit=500)", run: get("/v1/leads?limit=500") },
        { screen: "leads", label: '  q="a" (name prefix, ~10 %)', run: get(q("a")) },
        { screen: "leads", label: '  q="priyak" (rare prefix)', run: get(q("priyak")) },
        { screen: "leads", label: '  q="sharma" (last name)', run: get(q("sharma")) },
        { screen: "leads", label: '  q="lead4242@" (email)', run: get(q("lead4242@")) },
        { screen: "leads", label: '  q="pune" (city)', run: get(q("pune")) },
        { screen: "leads", label: '  q="navi mu" (two words)', run: get(q("navi mu")) },
        { screen: "leads", label: '  q="098 0004-2424" (phone)', run: get(q("098 0004-2424")) },
        { screen: "leads", label: '  q="9800042" (partial phone)', run: get(q("9800042")) },
        { screen: "leads", label: "  q=vendor id", run: get(q(vendor.data[0]?.externalId ?? "VND-")) },
        { screen: "leads", label: '  q="zzz" (no match)', run: get(q("zzz")) },
        { screen: "leads", label: "export all: first bytes", run: firstBytes("/v1/leads/export") },
        { screen: "lead", label: "GET /v1/leads/:id", run: get(`/v1/leads/${failed.leadId}`) },
        { screen: "expression", label: "GET /v1/leads?limit=10", run: get("/v1/leads?limit=10") },
        { screen: "keys", label: "GET /v1/keys", run: get("/v1/keys") },
      ];
      console.log(
        `  ${"screen".padEnd(13)}${"call".padEnd(42)}${"p50".padStart(8)}${"p95".padStart(8)}  verdict`,
      );
      for (const c of calls.filter((c) => c.screen === "baseline" || ONLY.test(`${c.screen} ${c.label}`))) {
        for (let i = 0; i < 2; i++) await c.run(); // warm
        const ms: number[] = [];
        for (let i = 0; i < CALLS; i++) {
          await c.before?.();
          const s = performance.now();
          const r = await c.run();
          ms.push(typeof r === "object" ? r.ms : performance.now() - s);
        }
        const p95 = pct(ms, 0.95);
        const verdict =
          c.screen === "baseline"
            ? ""
            : c.once
              ? "not judged"
              : p95 <= LIMIT_MS
                ? "ok"
                : `OVER ${LIMIT_MS} ms`;
        if (verdict.startsWith("OVER")) verdicts.push(`${backend}: ${c.screen} ${c.label.trim()}`);
        console.log(
          `  ${c.screen.padEnd(13)}${c.label.padEnd(42)}${pct(ms, 0.5).toFixed(1).padStart(8)}${p95.toFixed(1).padStart(8)}  ${verdict}`,
        );
      }
    } finally {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
      if (dbName && KEEP) console.log(`kept database ${dbName}`);
      else if (dbName) {
        const admin = new pg.Client({ connectionString: PG });
        await admin.connect();
        await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
        await admin.end();
      }
    }
  }
  console.log(
    `\nload average at the end ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}; ` +
      (verdicts.length === 0
        ? `every call ≤ ${LIMIT_MS} ms p95`
        : `over ${LIMIT_MS} ms p95: ${verdicts.join("; ")}`),
  );
}

await main();
