import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { applyConfigFile } from "../src/app.ts";
import { SANDBOX_ACCOUNTS } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { AppError } from "../src/util/errors.ts";
import { BACKENDS, eventually, freshDatabase, startApp, type TestApp } from "./helpers/harness.ts";
import { HOSTILE } from "./helpers/hostile.ts";
import { type DeliveryView, FAST_RETRY } from "./helpers/leads.ts";

/** Hostile only for a lead from "Poison": the sample lead passes, so the save-time check does too. */
const onPoison = (expr: string, otherwise: string) => `city = "Poison" ? (${expr}) : ${otherwise}`;

/**
 * Polls /healthz every 50 ms until stopped; `stop` resolves to the slowest answer in ms (a request
 * that gets no answer within 5 s counts as 5 s). A frozen event loop shows up here.
 */
function watchHealth(t: TestApp) {
  let running = true;
  let slowest = 0;
  let checks = 0;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${t.url}/healthz`, { signal: AbortSignal.timeout(5000) });
        await res.text();
      } catch {
        // counted as slow below
      }
      slowest = Math.max(slowest, performance.now() - t0);
      checks++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      assert.ok(checks > 0);
      return slowest;
    },
  };
}

let seq = 0;
const lead = (source: string, city: string) => {
  seq++;
  return {
    name: "Asha",
    email: `asha.limits.${seq}@example.com`,
    phone: `+9197${String(seq).padStart(8, "0")}`,
    city,
    source,
  };
};

for (const backend of BACKENDS) {
  describe(`JSONata limits (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    before(async () => {
      sb = await startSandbox();
      t = await startApp({ backend });
    });
    after(async () => {
      await t.close();
      await sb.close();
    });

    async function destination(name: string, extra: Record<string, unknown>) {
      const res = await t.api("POST", "/v1/destinations", {
        name,
        connector: "http",
        url: `${sb.url}/sink/${name}`,
        retry: FAST_RETRY,
        timeoutMs: 1000,
        filter: `source = "${name.split("-")[0]}"`,
        ...extra,
      });
      assert.equal(res.status, 201, res.text);
      return res.body as { id: string };
    }
    const delivery = async (leadId: string, name: string, status: string) =>
      eventually(
        async () => {
          const r = await t.api("GET", `/v1/leads/${leadId}`);
          const d = (r.body.deliveries as (DeliveryView & { destination: string })[]).find(
            (x) => x.destination === name,
          );
          return d && d.status === status ? d : undefined;
        },
        10_000,
        `${name} ${status}`,
      );

    for (const [kind, h] of Object.entries(HOSTILE)) {
      test(`${kind} as a mapping: that delivery fails once with mapping_error, the other is pushed, /healthz answers`, async () => {
        const tag = `m${kind}`;
        await destination(`${tag}-poison`, { mapping: { name: "name", x: onPoison(h.expr, "city") } });
        await destination(`${tag}-healthy`, {});
        const health = watchHealth(t);
        const res = await t.api("POST", "/v1/leads", lead(tag, "Poison"));
        assert.equal(res.status, 201, res.text);
        assert.equal(res.body.deliveries.length, 2);
        const failed = await delivery(res.body.id, `${tag}-poison`, "failed");
        await delivery(res.body.id, `${tag}-healthy`, "delivered");
        assert.ok((await health.stop()) < 2000, "healthz answered within 2 s throughout");
        assert.equal(failed.attemptCount, 1);
        assert.equal(failed.attempts.length, 1);
        assert.equal(failed.lastError?.code, "mapping_error");
        assert.match(failed.lastError?.message ?? "", new RegExp(`mapping\\.x: .*${h.code}`));
        assert.equal(failed.attempts[0]?.error?.code, "mapping_error");
        assert.ok(sb.sink.received.some((r) => r.path === `/${tag}-healthy`));
        assert.ok(!sb.sink.received.some((r) => r.path === `/${tag}-poison`));
      });

      test(`${kind} as a filter: the lead is accepted and routed to the others, /healthz answers`, async () => {
        const tag = `f${kind}`;
        await destination(`${tag}-poison`, { filter: `source = "${tag}" and (${onPoison(h.expr, "true")})` });
        await destination(`${tag}-healthy`, {});
        const health = watchHealth(t);
        const t0 = performance.now();
        const res = await t.api("POST", "/v1/leads", lead(tag, "Poison"));
        assert.ok(performance.now() - t0 < 2000, "accepted within 2 s");
        assert.equal(res.status, 201, res.text);
        assert.deepEqual(
          res.body.deliveries.map((d: { destination: string }) => d.destination),
          [`${tag}-healthy`],
        );
        await delivery(res.body.id, `${tag}-healthy`, "delivered");
        assert.ok((await health.stop()) < 2000, "healthz answered within 2 s throughout");
        // An ordinary lead still goes to both.
        const fine = await t.api("POST", "/v1/leads", lead(tag, "Pune"));
        assert.equal(fine.body.deliveries.length, 2, fine.text);
      });

      test(`${kind}: refused when saved (400 invalid_mapping / invalid_filter, the limit named)`, async () => {
        const tag = `s${kind}`;
        const base = { connector: "http", url: `${sb.url}/sink/${tag}` };
        const m = await t.api("POST", "/v1/destinations", {
          ...base,
          name: `${tag}-m`,
          mapping: { x: h.expr },
        });
        assert.equal(m.status, 400, m.text);
        assert.equal(m.body.error.code, "invalid_mapping");
        assert.deepEqual(m.body.error.details[0].path, ["mapping", "x"]);
        assert.equal(m.body.error.details[0].code, h.code);
        const f = await t.api("POST", "/v1/destinations", { ...base, name: `${tag}-f`, filter: h.expr });
        assert.equal(f.status, 400, f.text);
        assert.equal(f.body.error.code, "invalid_filter");
        assert.match(f.body.error.message, new RegExp(h.code));
        const ok = await destination(`${tag}-ok`, { mapping: { x: "nosuchfield" } }); // undefined is fine
        const p = await t.api("PATCH", `/v1/destinations/${ok.id}`, { mapping: h.expr });
        assert.equal(p.status, 400, p.text);
        assert.equal(p.body.error.code, "invalid_mapping");
        const kept = await t.api("GET", `/v1/destinations/${ok.id}`);
        assert.deepEqual(kept.body.mapping, { x: "nosuchfield" });
      });
    }

    test("the dry run answers promptly with mapping_error", async () => {
      const d = await destination("dry-poison", { mapping: onPoison(HOSTILE.loop.expr, "$") });
      for (const send of [false, true]) {
        const t0 = performance.now();
        const res = await t.api("POST", `/v1/destinations/${d.id}/test`, {
          lead: { name: "Asha", email: "asha.dry@example.com", city: "Poison" },
          send,
        });
        assert.ok(performance.now() - t0 < 2000);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.outcome.kind, "failed");
        assert.equal(res.body.outcome.code, "mapping_error");
        assert.match(res.body.outcome.message, /expression_timeout/);
        assert.deepEqual(res.body.requests, []);
      }
    });

    test("a config file with a hostile mapping is refused, not applied", async () => {
      const file = {
        path: "leadpush.config.yaml",
        destinations: [
          { name: "cfg-poison", connector: "http", url: `${sb.url}/sink/cfg`, mapping: HOSTILE.deep.expr },
        ],
        apiKeys: [],
      };
      await assert.rejects(
        applyConfigFile(t.app, file),
        (err: AppError) => err instanceof AppError && err.code === "invalid_mapping",
      );
      assert.equal((await t.api("GET", "/v1/destinations/cfg-poison")).status, 404);
    });
  });

  test(`a poison mapping stored before the limits: after a restart it fails its delivery, no freeze (${backend})`, async () => {
    const sb = await startSandbox();
    const db = await freshDatabase(backend);
    try {
      const first = await startApp({ backend, database: db, worker: false });
      const created = await first.api("POST", "/v1/destinations", {
        name: "stored-poison",
        connector: "http",
        url: `${sb.url}/sink/stored`,
        retry: FAST_RETRY,
      });
      assert.equal(created.status, 201, created.text);
      // As an older version would have stored it: straight into the row, past the save-time check.
      const row = await first.app.kysely
        .selectFrom("destinations")
        .select(["config", "updated_at"])
        .where("id", "=", created.body.id)
        .executeTakeFirstOrThrow();
      const config = { ...(JSON.parse(row.config) as object), mapping: HOSTILE.loop.expr };
      await first.app.kysely
        .updateTable("destinations")
        .set({ config: JSON.stringify(config), updated_at: row.updated_at + 1 })
        .where("id", "=", created.body.id)
        .execute();
      const res = await first.api("POST", "/v1/leads", lead("stored", "Pune"));
      assert.equal(res.status, 201, res.text);
      await first.close();

      const second = await startApp({ backend, database: db });
      try {
        const health = watchHealth(second);
        const failed = await eventually(async () => {
          const r = await second.api("GET", `/v1/leads/${res.body.id}`);
          const d = r.body.deliveries[0] as DeliveryView;
          return d.status === "failed" ? d : undefined;
        });
        assert.ok((await health.stop()) < 2000, "healthz answered within 2 s throughout");
        assert.equal(failed.attemptCount, 1);
        assert.equal(failed.lastError?.code, "mapping_error");
        assert.equal(sb.sink.received.length, 0);
      } finally {
        await second.close();
      }
    } finally {
      await db.drop();
      await sb.close();
    }
  });
}

test("reworked: a lead whose mapping fails is left out of the batch file and fails alone", async () => {
  const sb = await startSandbox();
  sb.reworked.control({ processingDelayMs: 50 });
  const t = await startApp({ publicUrl: true });
  try {
    const account = SANDBOX_ACCOUNTS.reworked;
    const rw = await t.api("POST", "/v1/destinations", {
      name: "rw-poison",
      connector: "reworked",
      baseUrl: `${sb.url}/reworked`,
      email: account.email,
      password: account.password,
      options: { batchSize: 2, batchWindowMs: 60_000, pollIntervalMs: 60_000 },
      mapping: { email: "email", full_name: onPoison(HOSTILE.deep.expr, "name") },
    });
    assert.equal(rw.status, 201, rw.text);
    const ids: string[] = [];
    for (const city of ["Poison", "Pune"]) {
      const res = await t.api("POST", "/v1/leads", lead("rw", city));
      assert.equal(res.status, 201, res.text);
      ids.push(res.body.id as string);
    }
    const [poison, good] = await Promise.all(
      ids.map((id) =>
        eventually(async () => {
          const d = (await t.api("GET", `/v1/leads/${id}`)).body.deliveries[0] as DeliveryView;
          return d.status === "delivered" || d.status === "failed" ? d : undefined;
        }),
      ),
    );
    assert.equal(poison?.status, "failed");
    assert.equal(poison?.lastError?.code, "mapping_error");
    assert.equal(good?.status, "delivered");
    const rows = sb.reworked.state.jobs.flatMap((j) => j.rows.map((r) => r.leadpush_id));
    assert.deepEqual(rows, [ids[1]]);
  } finally {
    await t.close();
    await sb.close();
  }
});
