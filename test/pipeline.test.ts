import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startSandbox } from "../src/sandbox/server.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";

for (const backend of BACKENDS) {
  describe(`pipelines: after (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    before(async () => {
      sb = await startSandbox();
      t = await startApp({ backend });
      const retry = { delaysMs: [50], jitter: 0 };
      for (const body of [
        { name: "enricher", connector: "http", url: `${sb.url}/sink/enrich`, retry },
        { name: "crm", connector: "http", url: `${sb.url}/sink/crm`, retry, after: ["enricher"] },
      ]) {
        assert.equal((await t.api("POST", "/v1/destinations", body)).status, 201);
      }
    });
    after(async () => {
      await t.close();
      await sb.close();
    });

    test("downstream waits for upstream, then is pushed", async () => {
      sb.sink.reset();
      sb.sink.behave({ delayMs: 150 });
      const res = await t.api("POST", "/v1/leads", { name: "Anil", email: "anil@pipe.test" });
      const byDest = Object.fromEntries(
        res.body.deliveries.map((d: { destination: string; status: string }) => [d.destination, d.status]),
      );
      assert.deepEqual(byDest, { enricher: "pending", crm: "blocked" });
      await sb.sink.waitFor(2, 5000);
      assert.deepEqual(
        sb.sink.received.map((r) => r.path),
        ["/enrich", "/crm"],
      );
      assert.ok(
        sb.sink.received[1]!.at - sb.sink.received[0]!.at >= 140,
        "crm was pushed after enrich answered",
      );
    });

    test("upstream failed for good: downstream still pushed, and it is recorded", async () => {
      sb.sink.reset();
      sb.sink.behave({ status: 400, times: 1 });
      const res = await t.api("POST", "/v1/leads", { name: "Bela", email: "bela@pipe.test" });
      const lead = await eventually(async () => {
        const r = await t.api("GET", `/v1/leads/${res.body.id}`);
        return r.body.deliveries.every(
          (d: { status: string }) => d.status === "delivered" || d.status === "failed",
        )
          ? r.body
          : undefined;
      });
      const status = Object.fromEntries(
        lead.deliveries.map((d: { destination: string; status: string }) => [d.destination, d.status]),
      );
      assert.deepEqual(status, { enricher: "failed", crm: "delivered" });
      assert.deepEqual(
        sb.sink.received.map((r) => r.path),
        ["/enrich", "/crm"],
      );
    });
  });
}
