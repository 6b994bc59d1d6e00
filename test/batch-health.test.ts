import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { SANDBOX_ACCOUNTS } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";

// A batching vendor's batch steps feed its destination's health like single pushes do: a vendor
// failing every batch opens the circuit, refused credentials show `auth_failing`, and a working
// step after the outage brings it back to `active` with every lead delivered.

const A = SANDBOX_ACCOUNTS.reworked;

interface Delivery {
  destination: string;
  status: string;
  attemptCount: number;
  lastError: { code: string } | null;
}

for (const backend of BACKENDS) {
  describe(`batch outcomes feed destination health (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    before(async () => {
      sb = await startSandbox();
      sb.reworked.control({ processingDelayMs: 100 });
      t = await startApp({ backend, publicUrl: true });
    });
    after(async () => {
      await t?.close();
      await sb?.close();
    });

    async function destination(name: string) {
      const res = await t.api("POST", "/v1/destinations", {
        name,
        connector: "reworked",
        baseUrl: `${sb.url}/reworked`,
        email: A.email,
        password: A.password,
        options: { batchSize: 1, pollIntervalMs: 100, pollMaxIntervalMs: 200 },
        filter: `attributes.to = '${name}'`,
        retry: { delaysMs: [100], jitter: 0 },
        circuit: { failureThreshold: 2, cooldownMs: 400 },
      });
      assert.equal(res.status, 201, res.text);
    }
    async function lead(name: string, email: string): Promise<string> {
      const res = await t.api("POST", "/v1/leads", { name: "Asha", email, to: name });
      assert.equal(res.status, 201, res.text);
      return res.body.id as string;
    }
    const deliveryOf = async (id: string, name: string) =>
      ((await t.api("GET", `/v1/leads/${id}`)).body.deliveries as Delivery[]).find(
        (d) => d.destination === name,
      )!;
    const stateOf = async (name: string) => (await t.api("GET", `/v1/destinations/${name}`)).body.state;

    test("a vendor answering 503 to every batch step opens the circuit; after the outage it closes and the lead is delivered", async () => {
      const name = "rw-outage";
      await destination(name);
      sb.reworked.control({ outageStatus: 503 });
      let id: string;
      try {
        id = await lead(name, "a@rw-outage.test");
        await eventually(async () => (await stateOf(name)) === "circuit_open", 10_000, "circuit_open");
        const d = await deliveryOf(id, name);
        assert.notEqual(d.status, "failed", "a held destination fails nothing");
        const dest = (await t.api("GET", `/v1/destinations/${name}`)).body;
        assert.match(dest.health.circuit.reason, /consecutive retryable failures/);
      } finally {
        sb.reworked.control({ outageStatus: 0 });
      }
      await eventually(async () => (await stateOf(name)) === "active", 10_000, "active again");
      const done = await eventually(async () => {
        const d = await deliveryOf(id, name);
        return d.status === "delivered" ? d : undefined;
      }, 10_000);
      assert.equal(done.attemptCount, 1, "the outage spent no retry of the lead");
    });

    test("credentials refused at a batch step: auth_failing, the lead waits; fixed, it is active and delivered", async () => {
      const name = "rw-refused";
      await destination(name);
      // A first lead with working credentials: the account token is cached.
      const warm = await lead(name, "warm@rw-refused.test");
      await eventually(async () => (await deliveryOf(warm, name)).status === "delivered", 10_000);
      const account = sb.reworked.state.accounts.find((x) => x.email === A.email)!;
      const was = { password: account.password, apiKey: account.apiKey };
      // The vendor changes the account's credentials and revokes its tokens: the next lead joins a
      // batch with the cached token, and the batch's process-leads meets refused credentials.
      account.password = "changed-by-the-vendor";
      account.apiKey = "changed-by-the-vendor";
      sb.reworked.control({ revokeTokens: true });
      let id: string;
      try {
        id = await lead(name, "b@rw-refused.test");
        await eventually(async () => (await stateOf(name)) === "auth_failing", 10_000, "auth_failing");
        const d = await eventually(async () => {
          const x = await deliveryOf(id, name);
          return x.lastError ? x : undefined;
        });
        assert.notEqual(d.status, "failed");
        assert.equal(d.lastError!.code, "auth_rejected");
      } finally {
        Object.assign(account, was);
      }
      await eventually(async () => (await stateOf(name)) === "active", 10_000, "active again");
      await eventually(async () => (await deliveryOf(id, name)).status === "delivered", 10_000);
    });
  });
}
