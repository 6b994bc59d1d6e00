import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SANDBOX_ACCOUNTS } from "../src/sandbox/accounts.ts";
import { reworkedEnrichment } from "../src/sandbox/reworked-enrichment.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import {
  BACKENDS,
  type Backend,
  eventually,
  freePort,
  freshDatabase,
  startApp,
  type TestApp,
} from "./helpers/harness.ts";

const A = SANDBOX_ACCOUNTS.reworked;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Delivery {
  id: string;
  destination: string;
  destinationId: string;
  status: string;
  attemptCount: number;
  lastError: { code: string; message: string } | null;
  upstream: Record<string, string> | null;
  enrichmentMissing: boolean | null;
  attempts: { outcome: string; error: { code: string } | null }[];
}

for (const backend of BACKENDS) {
  describe(`reworked connector (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    before(async () => {
      sb = await startSandbox();
      sb.reworked.control({ processingDelayMs: 150 });
      t = await startApp({ backend, publicUrl: true });
    });
    after(async () => {
      await t.close();
      await sb.close();
    });

    /** A reworked destination and a downstream `http` one reading its enrichment; leads routed by `to`. */
    async function pipeline(app: TestApp, name: string, options: Record<string, unknown>) {
      const filter = `attributes.to = '${name}'`;
      const rw = await app.api("POST", "/v1/destinations", {
        name,
        connector: "reworked",
        baseUrl: `${sb.url}/reworked`,
        email: A.email,
        password: A.password,
        options: { pollIntervalMs: 60_000, ...options },
        filter,
        retry: { delaysMs: [100, 100], jitter: 0 },
      });
      assert.equal(rw.status, 201, rw.text);
      const crm = await app.api("POST", "/v1/destinations", {
        name: `${name}-crm`,
        connector: "http",
        url: `${sb.url}/sink/${name}`,
        after: [name],
        filter,
        mapping: {
          email: "email",
          company: `enrichment.\`${name}\`.company`,
          score: `enrichment.\`${name}\`.lead_score`,
        },
      });
      assert.equal(crm.status, 201, crm.text);
      return rw.body.id as string;
    }

    async function leads(app: TestApp, to: string, emails: string[]) {
      const ids: string[] = [];
      for (const email of emails) {
        const res = await app.api("POST", "/v1/leads", { name: "Asha", lastName: "Rao", email, to });
        assert.equal(res.status, 201, res.text);
        ids.push(res.body.id);
      }
      return ids;
    }

    /** Waits until every delivery of these leads is final; returns them by lead, by destination. */
    async function settled(app: TestApp, ids: string[], timeoutMs = 10_000) {
      let last: unknown;
      return eventually(
        async () => {
          const out: { lead: Record<string, any>; by: Record<string, Delivery> }[] = [];
          for (const id of ids) {
            const r = await app.api("GET", `/v1/leads/${id}`);
            const ds = r.body.deliveries as Delivery[];
            last = ds.map((d) => [d.destination, d.status, d.lastError?.code]);
            if (!ds.every((d) => d.status === "delivered" || d.status === "failed")) return undefined;
            out.push({ lead: r.body, by: Object.fromEntries(ds.map((d) => [d.destination, d])) });
          }
          return out;
        },
        timeoutMs,
        "deliveries final",
      ).catch((err: Error) => {
        throw new Error(`${err.message}; last seen: ${JSON.stringify(last)}`);
      });
    }

    const jobsOf = (name: string) =>
      sb.reworked.state.jobs.filter((j) => j.rows.some((r) => r.email?.includes(`@${name}.`)));
    const expected = (email: string) => reworkedEnrichment({ email, full_name: "Asha Rao" });

    test("batch by size, completed by the callback: enrichment merged, downstream pushed with it", async () => {
      const name = "rw-size";
      await pipeline(t, name, { batchSize: 3, batchWindowMs: 60_000 });
      const emails = ["a@rw-size.test", "b@rw-size.test", "c@rw-size.test"];
      const ids = await leads(t, name, emails);
      const done = await settled(t, ids);
      for (const [i, { lead, by }] of done.entries()) {
        const email = emails[i]!;
        assert.equal(by[name]!.status, "delivered");
        assert.deepEqual(lead.enrichment[name], expected(email));
        assert.deepEqual(
          by[name]!.attempts.map((a) => a.outcome),
          ["awaiting", "delivered"],
        );
        assert.equal(by[`${name}-crm`]!.status, "delivered");
        assert.equal(by[`${name}-crm`]!.enrichmentMissing, false);
      }
      const jobs = jobsOf(name);
      assert.equal(jobs.length, 1, "one file for three leads");
      assert.deepEqual(jobs[0]!.columns, [
        "leadpush_id",
        "email",
        "first_name",
        "last_name",
        "full_name",
        "phone",
        "city",
      ]);
      assert.deepEqual(jobs[0]!.rows.map((r) => r.leadpush_id).sort(), [...ids].sort());
      assert.equal(
        sb.reworked.state.statusRequests.filter(
          (s) => s.file_upload_identifier === jobs[0]!.file_upload_identifier,
        ).length,
        0,
        "no poll: the callback came first",
      );
      const got = sb.sink.received.filter((r) => r.path === `/${name}`);
      assert.deepEqual(
        got.map((r) => r.body).sort((x: any, y: any) => x.email.localeCompare(y.email)),
        emails.map((e) => ({ email: e, company: expected(e).company, score: expected(e).lead_score })),
      );
      const list = await t.api("GET", `/v1/batches?destination=${name}`);
      assert.equal(list.status, 200);
      assert.equal(list.body.data.length, 1);
      const b = list.body.data[0];
      assert.deepEqual(
        [b.status, b.size, b.vendorStatus, b.callbacks, b.checks],
        ["completed", 3, "PROCESSED", 1, 1],
      );
      assert.equal(b.externalId, jobs[0]!.file_upload_identifier);
      assert.deepEqual([...b.leadIds].sort(), [...ids].sort());
      const one = await t.api("GET", `/v1/batches/${b.id}`);
      assert.deepEqual(
        one.body.items.map((i: { status: string }) => i.status),
        ["delivered", "delivered", "delivered"],
      );
      assert.deepEqual(
        one.body.log.map((e: { step: string }) => e.step),
        ["process-leads", "download"],
      );
      assert.ok(!JSON.stringify(one.body).includes(A.password));
      // The account was checked when the first lead joined: its attempt shows the handshake.
      const first = await t.api("GET", `/v1/leads/${ids[0]}`);
      const joined = first.body.deliveries.find((x: Delivery) => x.destination === name).attempts[0];
      assert.deepEqual(
        joined.exchanges.map((e: { step: string }) => e.step),
        ["auth user-authenticate", "auth generate-token"],
      );
      assert.ok(!JSON.stringify(first.body).includes(A.password));
      assert.equal((await t.api("GET", "/v1/batches", undefined, { key: null })).status, 401);
      assert.equal((await t.api("GET", `/v1/batches/${b.id}`, undefined, { key: null })).status, 401);
      assert.equal((await t.api("GET", "/v1/batches/nope")).status, 404);
    });

    test("batch by window, completed by polling when no callback comes", async () => {
      const name = "rw-window";
      sb.reworked.control({ callbackMode: "none" });
      try {
        await pipeline(t, name, { batchSize: 100, batchWindowMs: 400, pollIntervalMs: 100 });
        const started = Date.now();
        const ids = await leads(t, name, ["a@rw-window.test", "b@rw-window.test"]);
        await sleep(150);
        assert.equal(jobsOf(name).length, 0, "the window is still open");
        const done = await settled(t, ids);
        assert.ok(Date.now() - started >= 400);
        for (const { by } of done) assert.equal(by[name]!.status, "delivered");
        const job = jobsOf(name)[0]!;
        assert.equal(jobsOf(name).length, 1);
        assert.equal(job.rows.length, 2);
        assert.ok(
          sb.reworked.state.statusRequests.some(
            (s) => s.file_upload_identifier === job.file_upload_identifier,
          ),
        );
        assert.equal(sb.reworked.state.callbacks.filter((c) => c.url === job.callback_url).length, 0);
        const b = (await t.api("GET", `/v1/batches?destination=${name}`)).body.data[0];
        assert.equal(b.callbacks, 0);
        assert.ok(b.checks >= 1);
      } finally {
        sb.reworked.control({ callbackMode: "once" });
      }
    });

    test("a repeated callback changes nothing; signed URLs need a valid signature", async () => {
      const name = "rw-dup";
      sb.reworked.control({ callbackMode: "twice" });
      try {
        await pipeline(t, name, { batchSize: 2 });
        const ids = await leads(t, name, ["a@rw-dup.test", "b@rw-dup.test"]);
        const done = await settled(t, ids);
        const job = jobsOf(name)[0]!;
        await eventually(
          () => sb.reworked.state.callbacks.filter((c) => c.url === job.callback_url).length === 2,
        );
        assert.deepEqual(
          sb.reworked.state.callbacks.filter((c) => c.url === job.callback_url).map((c) => c.status),
          [200, 200],
        );
        // And once more by hand, after completion.
        const again = await fetch(job.callback_url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ file_upload_identifier: job.file_upload_identifier, status: "PROCESSED" }),
        });
        assert.equal(again.status, 200);
        assert.equal(((await again.json()) as { status: string }).status, "completed");
        await sleep(100);
        for (const { by } of done) assert.equal(by[name]!.attemptCount, 1);
        for (const id of ids) {
          const r = await t.api("GET", `/v1/leads/${id}`);
          const d = r.body.deliveries.find((x: Delivery) => x.destination === name);
          assert.deepEqual(
            d.attempts.map((a: { outcome: string }) => a.outcome),
            ["awaiting", "delivered"],
          );
        }
        assert.equal(sb.sink.received.filter((r) => r.path === `/${name}`).length, 2);

        // The file URL works without an API key; a tampered or unsigned one does not.
        const file = await fetch(job.file_url);
        assert.equal(file.status, 200);
        assert.match(file.headers.get("content-type") ?? "", /text\/csv/);
        assert.match(await file.text(), /^leadpush_id,email,/);
        const tampered = job.file_url.replace(/.$/, (c) => (c === "A" ? "B" : "A"));
        assert.equal((await fetch(tampered)).status, 403);
        const swapped = job.callback_url.replace("/v1/callbacks/", "/v1/files/");
        assert.equal((await fetch(swapped)).status, 403, "a callback token is no file token");
        const bad = await fetch(`${t.url}/v1/callbacks/nope`, { method: "POST" });
        assert.equal(bad.status, 403);
        assert.equal(((await bad.json()) as { error: { code: string } }).error.code, "invalid_signature");
      } finally {
        sb.reworked.control({ callbackMode: "once" });
      }
    });

    test("FAILED: leads retried with a new file; a lead missing from the result fails and goes downstream unenriched", async () => {
      const name = "rw-fail";
      sb.reworked.control({ failNextJob: true, dropEmails: ["gone@rw-fail.test"] });
      try {
        const rwId = await pipeline(t, name, { batchSize: 2 });
        const [okId, goneId] = await leads(t, name, ["ok@rw-fail.test", "gone@rw-fail.test"]);
        const done = await settled(t, [okId!, goneId!]);
        const [ok, gone] = done;
        assert.equal(ok!.by[name]!.status, "delivered");
        assert.equal(ok!.by[name]!.attemptCount, 2);
        assert.deepEqual(
          ok!.by[name]!.attempts.map((a) => `${a.outcome}${a.error ? `:${a.error.code}` : ""}`),
          ["awaiting", "retry:batch_failed", "awaiting", "delivered"],
        );
        assert.deepEqual(ok!.lead.enrichment[name], expected("ok@rw-fail.test"));
        assert.equal(gone!.by[name]!.status, "failed");
        assert.equal(gone!.by[name]!.lastError!.code, "missing_from_result");
        assert.equal(gone!.lead.enrichment[name], undefined);

        const jobs = jobsOf(name);
        assert.deepEqual(
          jobs.map((j) => j.status),
          ["FAILED", "PROCESSED"],
        );
        assert.notEqual(jobs[0]!.file_url, jobs[1]!.file_url, "a new file");
        const batches = (await t.api("GET", `/v1/batches?destination=${name}`)).body.data;
        assert.deepEqual(
          batches.map((b: { status: string }) => b.status),
          ["completed", "failed"],
        );
        assert.equal(batches[1].error.code, "batch_failed");

        // Downstream: both pushed; the lead whose enrichment failed for good is marked as such.
        assert.equal(ok!.by[`${name}-crm`]!.enrichmentMissing, false);
        assert.equal(gone!.by[`${name}-crm`]!.status, "delivered");
        assert.equal(gone!.by[`${name}-crm`]!.enrichmentMissing, true);
        assert.deepEqual(gone!.by[`${name}-crm`]!.upstream, { [rwId]: "failed" });
        const pushed = sb.sink.received
          .filter((r) => r.path === `/${name}`)
          .map((r) => r.body as Record<string, unknown>);
        assert.deepEqual(
          pushed.find((b) => b.email === "gone@rw-fail.test"),
          { email: "gone@rw-fail.test" },
        );
        assert.equal(
          pushed.find((b) => b.email === "ok@rw-fail.test")?.company,
          expected("ok@rw-fail.test").company,
        );
      } finally {
        sb.reworked.control({ dropEmails: [] });
      }
    });

    test("a lead without email fails at once; wrong credentials are a clear auth_rejected", async () => {
      const name = "rw-auth";
      const res = await t.api("POST", "/v1/destinations", {
        name,
        connector: "reworked",
        baseUrl: `${sb.url}/reworked`,
        email: A.email,
        password: "wrong-password",
        options: { batchSize: 1 },
        filter: `attributes.to = '${name}'`,
        retry: { delaysMs: [], jitter: 0 },
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.password, "[redacted]");
      const [phoneOnly] = await (async () => {
        const r = await t.api("POST", "/v1/leads", { name: "P", phone: "9876543210", to: name });
        return [r.body.id as string];
      })();
      const [bad] = await leads(t, name, ["x@rw-auth.test"]);
      const done = await settled(t, [phoneOnly!]);
      assert.equal(done[0]!.by[name]!.lastError!.code, "no_email");
      // Refused credentials hold the destination (auth_failing): the delivery waits, not failed.
      const held = await eventually(async () => {
        const d = (await t.api("GET", `/v1/leads/${bad!}`)).body.deliveries[0] as Delivery;
        return d.lastError ? d : undefined;
      });
      assert.equal(held.status, "retrying");
      assert.equal(held.lastError!.code, "auth_rejected");
      assert.match(held.lastError!.message, /user-authenticate refused \(403/);
      assert.equal((await t.api("GET", `/v1/destinations/${name}`)).body.state, "auth_failing");
      // Its probes must not reach the simulator in later tests.
      await t.api("DELETE", `/v1/destinations/${name}`);
      const noCreds = await t.api("POST", "/v1/destinations", {
        name: "rw-nocreds",
        connector: "reworked",
        email: A.email,
      });
      assert.equal(noCreds.status, 400);
    });

    test("tokens: renewed ahead of expiry with generate-token only; an apiKey skips user-authenticate", async () => {
      const rw = sb.reworked.state;
      sb.reworked.control({ tokenLifetimeSeconds: 2 });
      try {
        const auths = rw.authRequests.length;
        const tokens = rw.tokenRequests.length;
        await pipeline(t, "rw-token", { batchSize: 1 });
        await settled(t, await leads(t, "rw-token", ["a@rw-token.test"]));
        assert.deepEqual([rw.authRequests.length - auths, rw.tokenRequests.length - tokens], [1, 1]);
        await sleep(1100); // two-second tokens are renewed a second ahead of expiry
        await settled(t, await leads(t, "rw-token", ["b@rw-token.test"]));
        assert.deepEqual([rw.authRequests.length - auths, rw.tokenRequests.length - tokens], [1, 2]);

        const withKey = await t.api("POST", "/v1/destinations", {
          name: "rw-key",
          connector: "reworked",
          baseUrl: `${sb.url}/reworked`,
          email: A.email,
          apiKey: rw.accounts[0]!.apiKey,
          options: { batchSize: 1 },
          filter: "attributes.to = 'rw-key'",
        });
        assert.equal(withKey.status, 201, withKey.text);
        assert.equal(withKey.body.apiKey, "[redacted]");
        const [id] = await leads(t, "rw-key", ["c@rw-key.test"]);
        const [done] = await settled(t, [id!]);
        assert.equal(done!.by["rw-key"]!.status, "delivered");
        assert.equal(rw.authRequests.length - auths, 1, "no user-authenticate with an apiKey");
      } finally {
        sb.reworked.control({ tokenLifetimeSeconds: 86400 });
      }
    });

    test("a batch in flight survives a restart (state in the database, timers rebuilt)", async () => {
      const db = await freshDatabase(backend as Backend);
      const port = await freePort();
      sb.reworked.control({ callbackMode: "none", processingDelayMs: 600 });
      try {
        const first = await startApp({ database: db, port, publicUrl: true });
        const name = "rw-restart";
        await pipeline(first, name, { batchSize: 1, pollIntervalMs: 200 });
        const [id] = await leads(first, name, ["a@rw-restart.test"]);
        await eventually(async () => {
          const b = (await first.api("GET", `/v1/batches?destination=${name}`)).body.data[0];
          return b?.status === "processing";
        });
        await first.close();
        const second = await startApp({ database: db, port, publicUrl: true });
        try {
          const [done] = await settled(second, [id!]);
          assert.equal(done!.by[name]!.status, "delivered");
          assert.deepEqual(done!.lead.enrichment[name], expected("a@rw-restart.test"));
          assert.equal(jobsOf(name).length, 1, "not submitted twice");
        } finally {
          await second.close();
        }
      } finally {
        sb.reworked.control({ callbackMode: "once", processingDelayMs: 150 });
        await db.drop();
      }
    });

    if (backend === "postgres") {
      test("two processes on one database share the batches, each run once", async () => {
        const db = await freshDatabase("postgres");
        const apps = [
          await startApp({ database: db, publicUrl: true }),
          await startApp({ database: db, publicUrl: true }),
        ];
        try {
          const name = "rw-shared";
          await pipeline(apps[0]!, name, { batchSize: 2 });
          // The other process sees new destinations within its cache refresh (1 s); a worker that
          // claims a delivery of a destination it does not know yet fails it as deleted.
          await sleep(1100);
          const ids: string[] = [];
          for (let i = 0; i < 6; i++)
            ids.push(...(await leads(apps[i % 2]!, name, [`l${i}@rw-shared.test`])));
          const done = await settled(apps[0]!, ids, 15_000);
          for (const { by } of done) {
            assert.equal(by[name]!.status, "delivered", JSON.stringify(by[name]!.lastError));
            assert.deepEqual(
              by[name]!.attempts.map((a) => a.outcome),
              ["awaiting", "delivered"],
            );
          }
          const batches = (await apps[1]!.api("GET", `/v1/batches?destination=${name}`)).body.data;
          assert.equal(batches.length, 3);
          assert.ok(
            batches.every((b: { status: string; size: number }) => b.status === "completed" && b.size === 2),
          );
          assert.equal(jobsOf(name).length, 3);
          assert.equal(sb.sink.received.filter((r) => r.path === `/${name}`).length, 6);
        } finally {
          for (const a of apps) await a.close();
          await db.drop();
        }
      });
    }
  });
}
