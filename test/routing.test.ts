import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { compileFilter } from "../src/connectors/mapping.ts";
import { routeLead, type RoutableDestination } from "../src/ingest/routing.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";

type Routing = { destination: string; decision: string; reason: string; duplicateOf?: string };
type Delivery = { destination: string; status: string };

describe("routeLead", () => {
  const base = { enabled: true, after: [], pushDuplicates: false, dedupe: undefined, filterText: "x" };
  test("a filter that rejects is recorded as filter_error with its message, and not routed", async () => {
    const rejects: RoutableDestination = {
      ...base,
      id: "d1",
      name: "rejects",
      filter: {
        matches: () => Promise.reject(Object.assign(new Error("boom: too deep"), { code: "filter_error" })),
      },
    };
    const fine: RoutableDestination = { ...base, id: "d2", name: "fine", filter: compileFilter(undefined) };
    const r = await routeLead([rejects, fine], { name: "A" }, 1000);
    assert.deepEqual(
      r.targets.map((t) => t.destinationName),
      ["fine"],
    );
    assert.equal(r.skipped?.length, 1);
    assert.equal(r.skipped?.[0]?.decision, "filter_error");
    assert.match(r.skipped?.[0]?.reason ?? "", /boom: too deep/);
  });

  test("a filter that errors at run time rejects with filter_error (it is not silently 'no match')", async () => {
    const filter = compileFilter('$error("boom")');
    await assert.rejects(filter.matches({ name: "A" }), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, "filter_error");
      assert.match(err.message ?? "", /boom/);
      return true;
    });
  });
});

for (const backend of BACKENDS) {
  describe(`routing and duplicates (${backend})`, () => {
    let t: TestApp;
    /** The app's clock runs this far ahead of the real one (window tests move it). */
    let offset = 0;
    before(async () => {
      t = await startApp({ backend, worker: false, now: () => Date.now() + offset });
    });
    after(async () => t.close());

    /** A destination that only sees leads whose `source` is `group`. */
    async function dest(group: string, name: string, extra: Record<string, unknown> = {}) {
      const res = await t.api("POST", "/v1/destinations", {
        name: `${name}-${backend}`,
        connector: "http",
        url: "http://127.0.0.1:9/x",
        filter: `source = "${group}"`,
        ...extra,
      });
      assert.equal(res.status, 201, res.text);
      return res.body as { id: string; name: string };
    }
    async function lead(group: string, body: Record<string, unknown>) {
      const res = await t.api("POST", "/v1/leads", { name: "Meera", source: group, ...body });
      assert.equal(res.status, 201, res.text);
      const view = await t.api("GET", `/v1/leads/${res.body.id}`);
      assert.equal(view.status, 200, view.text);
      return view.body as {
        id: string;
        duplicateOf: string | null;
        deliveries: Delivery[];
        routing: Routing[];
      };
    }
    const sent = (l: { deliveries: Delivery[] }) => l.deliveries.map((d) => d.destination).sort();
    const why = (l: { routing: Routing[] }, name: string) =>
      l.routing.find((r) => r.destination === `${name}-${backend}`);

    test("a second project for the same person is pushed; the same project is a duplicate", async () => {
      await dest("proj", "crm");
      const first = await lead("proj", { email: "meera@proj.test", projectId: "P1" });
      assert.deepEqual(sent(first), [`crm-${backend}`]);
      const other = await lead("proj", { email: "meera@proj.test", projectId: "P2" });
      assert.equal(other.duplicateOf, null);
      assert.deepEqual(sent(other), [`crm-${backend}`], "another project is a new lead");
      assert.equal(why(other, "crm"), undefined);
      // Another person (no shared field) about P1: a new lead.
      const again = await lead("proj", { email: "other@proj.test", phone: "+919811100001", projectId: "P1" });
      assert.deepEqual(sent(again), [`crm-${backend}`], "no shared field with P1's lead yet");
      const repeat = await lead("proj", { email: "meera@proj.test", projectId: "P1" });
      assert.equal(repeat.duplicateOf, first.id);
      assert.deepEqual(repeat.deliveries, []);
      assert.equal(why(repeat, "crm")?.decision, "duplicate");
      assert.equal(why(repeat, "crm")?.duplicateOf, first.id);
      // Two leads without a project count as the same project.
      const bare = await lead("proj", { phone: "+919811100002" });
      const bareAgain = await lead("proj", { phone: "+919811100002" });
      assert.deepEqual(sent(bare), [`crm-${backend}`]);
      assert.equal(bareAgain.duplicateOf, bare.id);
      assert.equal(why(bareAgain, "crm")?.duplicateOf, bare.id);
      // In one batch: the second of two equal leads repeats the first.
      const batch = await t.api("POST", "/v1/leads/batch", {
        leads: [
          { name: "B1", email: "batch@proj.test", projectId: "P9", source: "proj" },
          { name: "B2", email: "batch@proj.test", projectId: "P9", source: "proj" },
          { name: "B3", email: "batch@proj.test", projectId: "P8", source: "proj" },
        ],
      });
      const [b1, b2, b3] = batch.body.results;
      assert.equal(b1.deliveries.length, 1);
      assert.equal(b2.duplicateOf, b1.id);
      assert.equal(b2.deliveries.length, 0);
      assert.equal(b3.deliveries.length, 1);
      const b2View = await t.api("GET", `/v1/leads/${b2.id}`);
      assert.equal(why(b2View.body, "crm")?.duplicateOf, b1.id);
    });

    test("per-destination dedupe: off, phone only, project not counting, own window", async () => {
      await dest("dd", "default");
      await dest("dd", "off", { dedupe: false });
      await dest("dd", "phone", { dedupe: { fields: ["phone"] } });
      await dest("dd", "person", { dedupe: { project: false } });
      await dest("dd", "hour", { dedupe: { windowHours: 1 } });
      await dest("dd", "wants", { pushDuplicates: true });
      const all = ["default", "hour", "off", "person", "phone", "wants"].map((n) => `${n}-${backend}`);
      const a = await lead("dd", { email: "ravi@dd.test", phone: "+919822200001", projectId: "X" });
      assert.deepEqual(sent(a), all);
      // Same email, other phone, same project: a duplicate by email, not by phone.
      const b = await lead("dd", { email: "ravi@dd.test", phone: "+919822200002", projectId: "X" });
      assert.deepEqual(sent(b), [`off-${backend}`, `phone-${backend}`, `wants-${backend}`]);
      for (const n of ["default", "person", "hour"]) assert.equal(why(b, n)?.duplicateOf, a.id, n);
      // Same phone, another project: new for the default rule, a repeat where the project does not count.
      const c = await lead("dd", { email: "x@dd.test", phone: "+919822200001", projectId: "Y" });
      assert.ok(sent(c).includes(`default-${backend}`));
      assert.equal(why(c, "person")?.duplicateOf, a.id);
      assert.equal(c.duplicateOf, null);
      // Two hours later: outside the 1-hour window, inside the default 30 days.
      offset = 2 * 3_600_000;
      try {
        const d = await lead("dd", { email: "ravi@dd.test", phone: "+919822200001", projectId: "X" });
        assert.ok(sent(d).includes(`hour-${backend}`), "outside its window: pushed");
        assert.equal(why(d, "default")?.decision, "duplicate");
        assert.equal(d.duplicateOf, a.id);
      } finally {
        offset = 0;
      }
    });

    test("a pipeline whose upstream skips a duplicate goes ahead instead of waiting for it", async () => {
      await dest("pipe", "enrich");
      await dest("pipe", "after-enrich", { after: [`enrich-${backend}`], pushDuplicates: true });
      const first = await lead("pipe", { email: "k@pipe.test" });
      assert.deepEqual(first.deliveries.map((d) => `${d.destination}:${d.status}`).sort(), [
        `after-enrich-${backend}:blocked`,
        `enrich-${backend}:pending`,
      ]);
      const again = await lead("pipe", { email: "k@pipe.test" });
      assert.equal(why(again, "enrich")?.decision, "duplicate");
      assert.deepEqual(
        again.deliveries.map((d) => `${d.destination}:${d.status}`),
        [`after-enrich-${backend}:pending`],
      );
    });

    test("dedupe and paused are validated; bad shapes get invalid_destination", async () => {
      for (const dedupe of [true, { fields: [] }, { fields: ["name"] }, { windowHours: 0 }, { extra: 1 }]) {
        const res = await t.api("POST", "/v1/destinations", {
          name: `bad-dedupe-${backend}`,
          connector: "http",
          url: "http://127.0.0.1:9/x",
          dedupe,
        });
        assert.equal(res.status, 400, JSON.stringify(dedupe));
        assert.equal(res.body.error.code, "invalid_destination");
        assert.equal(res.body.error.details[0].path[0], "dedupe", res.text);
      }
      const bad = await t.api("POST", "/v1/destinations", {
        name: `bad-paused-${backend}`,
        connector: "http",
        url: "http://127.0.0.1:9/x",
        paused: "yes",
      });
      assert.equal(bad.status, 400);
      const ok = await dest("none", "valid-dedupe", { dedupe: "off", paused: true });
      const view = await t.api("GET", `/v1/destinations/${ok.id}`);
      assert.equal(view.body.dedupe, "off");
      assert.equal(view.body.paused, true);
      assert.equal(view.body.state, "paused");
      const spec = await t.api("GET", "/openapi.json");
      assert.match(JSON.stringify(spec.body), /"dedupe"/);
    });

    test("erasing a lead erases what its routing records may quote of it (filter errors)", async () => {
      const l = await lead("erase", { email: "quoted@erase.test" });
      const d = await dest("erase", "quoting");
      // A filter's error message can quote the lead's values (JSONata does: 'Unable to cast "…"').
      await t.app.kysely
        .insertInto("lead_routing")
        .values({
          lead_id: l.id,
          destination_id: d.id,
          destination_name: d.name,
          decision: "filter_error",
          reason: 'filter failed: Unable to cast value to a number: "quoted@erase.test"',
          duplicate_of: null,
          created_at: Date.now(),
        })
        .execute();
      assert.equal((await t.api("DELETE", `/v1/leads/${l.id}`)).status, 204);
      const after = await t.api("GET", `/v1/leads/${l.id}`);
      assert.match(why(after.body, "quoting")?.reason ?? "", /\[erased\]/);
      assert.doesNotMatch(JSON.stringify(after.body), /quoted@erase/);
    });

    test("routing records: filtered (naming the filter), disabled, filter error", async () => {
      await dest("rr", "pune", { filter: `source = "rr" and city = "Pune"` });
      await dest("rr", "switched-off", { enabled: false });
      await dest("rr", "broken", { filter: `source = "rr" and $error("boom")` });
      await dest("rr", "takes");
      const l = await lead("rr", { email: "s@rr.test", city: "Delhi" });
      assert.deepEqual(sent(l), [`takes-${backend}`]);
      assert.equal(why(l, "pune")?.decision, "filtered");
      assert.match(why(l, "pune")?.reason ?? "", /city = "Pune"/);
      assert.equal(why(l, "switched-off")?.decision, "disabled");
      // A filter that fails at run time is not routed to, and says so (not a silent "filtered").
      assert.equal(why(l, "broken")?.decision, "filter_error", JSON.stringify(l.routing));
      assert.match(why(l, "broken")?.reason ?? "", /boom/);
      assert.equal(why(l, "takes"), undefined);
      // Other tests' destinations explain themselves too: every destination is accounted for.
      const count = (await t.api("GET", "/v1/destinations")).body.data.length;
      assert.equal(l.deliveries.length + l.routing.length, count);
    });
  });

  describe(`pause and disable (${backend})`, () => {
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

    test("leads during a pause get pending deliveries that wait; resume delivers them all", async () => {
      const name = `paused-${backend}`;
      const created = await t.api("POST", "/v1/destinations", {
        name,
        connector: "http",
        url: `${sb.url}/sink/paused`,
      });
      assert.equal(created.status, 201, created.text);
      const paused = await t.api("PATCH", `/v1/destinations/${name}`, { paused: true });
      assert.equal(paused.status, 200, paused.text);
      assert.equal(paused.body.paused, true);
      assert.equal(paused.body.state, "paused");
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await t.api("POST", "/v1/leads", { name: "P", email: `p${i}@pause.test` });
        assert.equal(res.status, 201, res.text);
        assert.deepEqual(
          res.body.deliveries.map((d: Delivery) => d.status),
          ["pending"],
        );
        ids.push(res.body.id);
      }
      await new Promise((r) => setTimeout(r, 700)); // a worker that claimed them would push by now
      assert.equal(sb.sink.received.filter((r) => r.path.startsWith("/paused")).length, 0);
      const waiting = await t.api("GET", `/v1/leads/${ids[0]}`);
      assert.equal(waiting.body.deliveries[0].status, "pending");
      assert.deepEqual(waiting.body.routing, []);
      const resumed = await t.api("PATCH", `/v1/destinations/${name}`, { paused: false });
      assert.equal(resumed.body.state, "active");
      for (const id of ids)
        await eventually(
          async () => (await t.api("GET", `/v1/leads/${id}`)).body.deliveries[0].status === "delivered",
          5000,
          `lead ${id} delivered after resume`,
        );
      assert.equal(sb.sink.received.filter((r) => r.path.startsWith("/paused")).length, 3);
    });

    test("enabled: false routes nothing there and says so on the lead", async () => {
      const name = `disabled-${backend}`;
      await t.api("POST", "/v1/destinations", { name, connector: "http", url: `${sb.url}/sink/off` });
      await t.api("PATCH", `/v1/destinations/${name}`, { enabled: false });
      const res = await t.api("POST", "/v1/leads", { name: "D", email: "d@disabled.test" });
      const view = await t.api("GET", `/v1/leads/${res.body.id}`);
      const rec = view.body.routing.find((r: Routing) => r.destination === name);
      assert.equal(rec?.decision, "disabled");
      assert.ok(!view.body.deliveries.some((d: Delivery) => d.destination === name));
    });
  });
}
