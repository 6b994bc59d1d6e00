// `node bench/search.ts`: lead search, delivery filters and the replay's dry count at 100 000 leads,
// on SQLite and on Postgres, beside a baseline from the same run (the unfiltered first page, a
// primary-key walk). What each route handler calls: the store's read models, no HTTP around them.
// BENCH_SEARCH_LEADS (100 000), BENCH_SEARCH_BACKENDS (sqlite,postgres), BENCH_PG_URL.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { parseLead } from "../src/lead/lead.ts";
import { openDb } from "../src/store/db.ts";
import { createDeliveryStore } from "../src/store/delivery-store.ts";
import { insertLeads, type NewLead } from "../src/store/leads-repo.ts";

const LEADS = Number(process.env.BENCH_SEARCH_LEADS ?? 100_000);
const BACKENDS = (process.env.BENCH_SEARCH_BACKENDS ?? "sqlite,postgres").split(",");
const PG = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const RUNS = 15;
const FIRST = ["Asha", "Priya", "Rahul", "Kiran", "Anil", "Meera", "Vikram", "Sneha", "Arjun", "Divya"];
const LAST = ["Sharma", "Patel", "Iyer", "Khan", "Reddy", "Das", "Nair", "Gupta", "Joshi", "Mehta"];
const CITIES = ["Pune", "Mumbai", "Navi Mumbai", "Bengaluru", "Chennai", "Delhi", "Hyderabad", "Kolkata"];

async function fill(backend: string) {
  const dir = mkdtempSync(join(tmpdir(), "leadpush-search-bench-"));
  let dbName = "";
  if (backend === "postgres") {
    dbName = `lp_bench_search_${process.pid}`;
    const admin = new pg.Client({ connectionString: PG });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.end();
  }
  const target =
    backend === "sqlite"
      ? { kind: "sqlite" as const, path: join(dir, "search.db") }
      : { kind: "postgres" as const, url: PG.replace(/\/[^/]*$/, `/${dbName}`) };
  const db = await openDb(target);
  const dest = { id: "dest-bench", name: "bench" };
  const now = Date.now();
  await db.kysely
    .insertInto("destinations")
    .values({
      id: dest.id,
      name: dest.name,
      connector: "http",
      enabled: 1,
      config: "{}",
      secrets: null,
      state: "active",
      created_at: now,
      updated_at: now,
    })
    .execute();
  const t0 = performance.now();
  for (let start = 0; start < LEADS; start += 1000) {
    const items: NewLead[] = [];
    for (let i = start; i < Math.min(LEADS, start + 1000); i++) {
      const parsed = parseLead(
        {
          name: `${FIRST[i % 10]}${i % 7 === 0 ? "" : String.fromCharCode(97 + (i % 26))}`,
          lastName: LAST[(i * 7) % 10],
          email: `lead${i}@bench.example`,
          phone: `+9198${String(i).padStart(8, "0")}`,
          city: CITIES[i % CITIES.length],
          source: "bench",
        },
        "IN",
      );
      if (!parsed.ok) throw new Error("bad bench lead");
      items.push({
        lead: parsed.lead,
        idempotencyKey: undefined,
        apiKeyId: "admin-token",
        targets: [
          { destinationId: dest.id, destinationName: dest.name, status: "pending", pushDuplicates: true },
        ],
      });
    }
    await insertLeads(db.kysely, items, now - (LEADS - start) * 10);
  }
  // A tenth failed (half with http_500), one in fifty delivered with a vendor id.
  await db.kysely
    .updateTable("deliveries")
    .set({ status: "failed", next_attempt_at: null, last_error: "http_500: client answered 500" })
    .where(
      "id",
      "in",
      db.kysely
        .selectFrom("deliveries")
        .select("id")
        .orderBy("id")
        .limit(Math.floor(LEADS / 20)),
    )
    .execute();
  await db.kysely
    .updateTable("deliveries")
    .set({ status: "failed", next_attempt_at: null, last_error: "network_error: connection refused" })
    .where("status", "=", "pending")
    .where(
      "id",
      "in",
      db.kysely
        .selectFrom("deliveries")
        .select("id")
        .orderBy("id", "desc")
        .limit(Math.floor(LEADS / 20)),
    )
    .execute();
  const delivered = await db.kysely
    .selectFrom("deliveries")
    .select("id")
    .where("status", "=", "pending")
    .orderBy("id")
    .limit(Math.floor(LEADS / 50))
    .execute();
  for (let i = 0; i < delivered.length; i += 500)
    for (const d of delivered.slice(i, i + 500))
      await db.kysely
        .updateTable("deliveries")
        .set({ status: "delivered", next_attempt_at: null, external_id: `VND-${d.id.slice(-8)}` })
        .where("id", "=", d.id)
        .execute();
  const fillS = (performance.now() - t0) / 1000;
  const sample = delivered[Math.floor(delivered.length / 2)]?.id.slice(-8) ?? "";
  return {
    db,
    fillS,
    sample,
    now,
    async drop() {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
      if (dbName) {
        const admin = new pg.Client({ connectionString: PG });
        await admin.connect();
        await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
        await admin.end();
      }
    },
  };
}

async function time(fn: () => Promise<unknown>): Promise<{ median: number; max: number }> {
  await fn();
  const t: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const s = performance.now();
    await fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return { median: t[Math.floor(t.length / 2)] as number, max: t.at(-1) as number };
}

async function main() {
  console.log(`leadpush search bench — ${LEADS} leads, median (max) of ${RUNS} runs, ms`);
  for (const backend of BACKENDS) {
    const f = await fill(backend);
    const store = createDeliveryStore(f.db);
    const lead = (text: string, field?: "phone") => () =>
      store.reads.leads({ limit: 50, text, region: "IN", ...(field ? { field } : {}) });
    const hourAgo = f.now - 3_600_000;
    const cases: [string, () => Promise<unknown>][] = [
      ["baseline: first page, no filter", () => store.reads.leads({ limit: 50 })],
      ["baseline: deliveries first page", () => store.reads.deliveries({ limit: 50 })],
      ['q="a" (a name prefix of ~10 %)', lead("a")],
      ['q="priyak" (rare name prefix)', lead("priyak")],
      ['q="sharma" (last name, 10 %)', lead("sharma")],
      ['q="lead4242@" (email prefix)', lead("lead4242@")],
      ['q="pune" (city, 12 %)', lead("pune")],
      ['q="navi mu" (two words)', lead("navi mu")],
      ['q="098 0004-2424" (phone, other format)', lead("098 0004-2424")],
      ['q="9800042" (partial phone)', lead("9800042")],
      [`q="VND-${f.sample}" (vendor id)`, lead(`VND-${f.sample}`)],
      ['q="zzz" (no match)', lead("zzz")],
      [
        "deliveries failed + errorCode=http_500",
        () => store.reads.deliveries({ limit: 50, status: "failed", errorCode: "http_500" }),
      ],
      [
        "deliveries failed, last hour",
        () => store.reads.deliveries({ limit: 50, status: "failed", since: hourAgo }),
      ],
      [
        "replay dry count: failed http_500 (cap 10 000)",
        () =>
          store.countReplayable({ statuses: ["failed"], errorCode: "http_500", limit: 10_001 }, Date.now()),
      ],
    ];
    console.log(`\n${backend}: filled in ${f.fillS.toFixed(1)} s`);
    for (const [name, fn] of cases) {
      const r = await time(fn);
      console.log(`  ${name.padEnd(48)} ${r.median.toFixed(2).padStart(8)} (${r.max.toFixed(1)})`);
    }
    await f.drop();
  }
}

await main();
