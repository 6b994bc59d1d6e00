import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FILE_GRACE_MS } from "../src/api/signed.ts";
import { SANDBOX_ACCOUNTS } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { BACKENDS, eventually, startApp, type TestApp } from "./helpers/harness.ts";

const A = SANDBOX_ACCOUNTS.reworked;

for (const backend of BACKENDS) {
  describe(`a finished batch's file URL stops serving its CSV (${backend})`, () => {
    let t: TestApp;
    let sb: Awaited<ReturnType<typeof startSandbox>>;
    /** The app's clock runs this far ahead of the real one. */
    let ahead = 0;
    before(async () => {
      sb = await startSandbox();
      sb.reworked.control({ processingDelayMs: 150 });
      t = await startApp({ backend, publicUrl: true, now: () => Date.now() + ahead });
    });
    after(async () => {
      await t.close();
      await sb.close();
    });

    /** One lead through a one-lead Reworked batch; returns its batch once final, and the file URL. */
    async function finishedBatch(name: string) {
      const rw = await t.api("POST", "/v1/destinations", {
        name,
        connector: "reworked",
        baseUrl: `${sb.url}/reworked`,
        email: A.email,
        password: A.password,
        options: { batchSize: 1, batchWindowMs: 60_000, pollIntervalMs: 100 },
        filter: `attributes.to = '${name}'`,
      });
      assert.equal(rw.status, 201, rw.text);
      const email = `p@${name}.test`;
      const lead = await t.api("POST", "/v1/leads", { name: "Asha", email, to: name });
      assert.equal(lead.status, 201, lead.text);
      const batch = await eventually(async () => {
        const list = await t.api("GET", `/v1/batches?destination=${name}`);
        const b = list.body.data[0];
        return b && (b.status === "completed" || b.status === "failed") ? b : undefined;
      });
      const job = sb.reworked.state.jobs.find((j) => j.rows.some((r) => r.email === email));
      assert.ok(job, "the vendor received the batch");
      // The vendor downloaded it when processing started.
      const dl = sb.reworked.state.downloads.find((d) => d.url === job.file_url);
      assert.equal(dl?.status, 200);
      return { batch, fileUrl: job.file_url, email };
    }

    test("completed: served during the grace period, then 410 file_expired", async () => {
      ahead = 0;
      const { batch, fileUrl, email } = await finishedBatch(`fu-done-${backend}`);
      assert.equal(batch.status, "completed");
      const soon = await fetch(fileUrl);
      assert.equal(soon.status, 200);
      assert.ok((await soon.text()).includes(email));
      ahead = FILE_GRACE_MS + 1000;
      const late = await fetch(fileUrl);
      assert.equal(late.status, 410);
      const body = (await late.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, "file_expired");
      assert.ok(!JSON.stringify(body).includes(email));
    });

    test("failed: the same", async () => {
      ahead = 0;
      sb.reworked.control({ failNextJob: true });
      const { batch, fileUrl } = await finishedBatch(`fu-failed-${backend}`);
      assert.equal(batch.status, "failed");
      assert.equal((await fetch(fileUrl)).status, 200);
      ahead = FILE_GRACE_MS + 1000;
      const late = await fetch(fileUrl);
      assert.equal(late.status, 410);
      assert.equal(((await late.json()) as { error: { code: string } }).error.code, "file_expired");
    });
  });
}
