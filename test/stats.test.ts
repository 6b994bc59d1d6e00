import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startSandbox } from "../src/sandbox/server.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";

for (const backend of BACKENDS) {
  describe(`GET /v1/stats (${backend})`, () => {
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

    test("counts by status, overall and per destination; admin only; in the OpenAPI", async () => {
      const empty = await t.api("GET", "/v1/stats");
      assert.equal(empty.status, 200, empty.text);
      assert.deepEqual(empty.body, {
        leads: 0,
        deliveries: { pending: 0, retrying: 0, awaiting: 0, blocked: 0, delivered: 0, failed: 0 },
        destinations: [],
      });

      const ok = await t.api("POST", "/v1/destinations", {
        name: "ok",
        connector: "http",
        url: `${sb.url}/sink/leads`,
        auth: { type: "basic", username: "u", password: "secret-pw" },
      });
      assert.equal(ok.status, 201, ok.text);
      const off = await t.api("POST", "/v1/destinations", {
        name: "off",
        connector: "http",
        url: `${sb.url}/sink/leads`,
        enabled: false,
      });
      assert.equal(off.status, 201, off.text);
      for (const email of ["a@stats.test", "b@stats.test"]) {
        assert.equal((await t.api("POST", "/v1/leads", { name: "S", email })).status, 201);
      }
      const stats = await eventually(async () => {
        const r = await t.api("GET", "/v1/stats");
        return r.body.deliveries.delivered === 2 ? r.body : undefined;
      });
      assert.equal(stats.leads, 2);
      assert.deepEqual(stats.deliveries, {
        pending: 0,
        retrying: 0,
        awaiting: 0,
        blocked: 0,
        delivered: 2,
        failed: 0,
      });
      assert.deepEqual(
        stats.destinations.map((d: Record<string, unknown>) => ({ ...d, id: undefined })),
        [
          {
            id: undefined,
            name: "off",
            connector: "http",
            authType: "none",
            enabled: false,
            state: "disabled",
            deliveries: { pending: 0, retrying: 0, awaiting: 0, blocked: 0, delivered: 0, failed: 0 },
          },
          {
            id: undefined,
            name: "ok",
            connector: "http",
            authType: "basic",
            enabled: true,
            state: "active",
            deliveries: { pending: 0, retrying: 0, awaiting: 0, blocked: 0, delivered: 2, failed: 0 },
          },
        ],
      );
      assert.doesNotMatch(JSON.stringify(stats), /secret-pw/);

      assert.equal((await t.api("GET", "/v1/stats", undefined, { key: null })).status, 401);
      const spec = await t.api("GET", "/openapi.json");
      const op = spec.body.paths["/v1/stats"]?.get;
      assert.ok(op, "documented in the OpenAPI");
      assert.ok(op.responses["200"].content["application/json"].schema.properties.destinations);
    });
  });
}
