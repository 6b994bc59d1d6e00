import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "csv-parse/sync";
import { after, before, describe, test } from "node:test";
import { ADMIN_TOKEN, startApp, type TestApp } from "./helpers/harness.ts";

const run = promisify(execFile);
const ROWS = 100_000;

describe("CSV import", () => {
  let t: TestApp;
  const dir = mkdtempSync(join(tmpdir(), "leadpush-import-"));
  before(async () => {
    t = await startApp({ worker: false, env: { LOG_LEVEL: "warn" } });
  });
  after(async () => t.close());

  test(`leadpush import: ${ROWS} rows with bad rows and duplicates`, { timeout: 180_000 }, async () => {
    const lines = ["First Name,Last Name,E-mail,Mobile No,City,Project,Budget"];
    let bad = 0;
    let dups = 0;
    for (let i = 0; i < ROWS; i++) {
      if (i % 1000 === 7) {
        lines.push(`,NoName,noname${i}@x.test,,Pune,P1,1`); // missing name
        bad++;
      } else if (i % 1000 === 13) {
        lines.push(`Bad${i},Email,not-an-email,,Pune,P1,1`); // invalid email
        bad++;
      } else if (i % 1000 === 21) {
        // Same email and project as the row before (another project would be a new lead).
        lines.push(`Dup${i},Again,lead${i - 1}@x.test,,Pune,P${(i - 1) % 50},2`);
        dups++;
      } else {
        lines.push(`Lead${i},"Kumar, Jr",lead${i}@x.test,${9000000000 + i},Pune,P${i % 50},${i}`);
      }
    }
    const file = join(dir, "leads.csv");
    writeFileSync(file, lines.join("\n") + "\n");
    const { stdout } = await run(
      process.execPath,
      ["src/cli.ts", "import", file, "--url", t.url, "--key", ADMIN_TOKEN],
      {
        maxBuffer: 10 * 1024 * 1024,
      },
    );
    assert.match(stdout, new RegExp(`${ROWS} rows`));
    assert.match(stdout, new RegExp(`${ROWS - bad} accepted \\(${dups} duplicates\\), ${bad} rejected`));
    const rejects = parse(readFileSync(join(dir, "leads.rejected.csv")), { columns: true }) as Record<
      string,
      string
    >[];
    assert.equal(rejects.length, bad);
    assert.equal(rejects[0]!.row, "9"); // line 9: the header is line 1, data row index 7
    assert.equal(rejects[0]!.error_code, "invalid_lead");
    assert.match(rejects[0]!.error ?? "", /name/);
    assert.equal(rejects[1]!["E-mail"], "not-an-email");
    const page = await t.api("GET", "/v1/leads?q=lead42@x.test");
    const lead = page.body.data.find((l: { email: string }) => l.email === "lead42@x.test");
    assert.equal(lead.lastName, "Kumar, Jr");
    assert.equal(lead.phone, "+919000000042");
    assert.equal(lead.projectId, "P42");
    assert.deepEqual(lead.attributes, { Budget: "42" });
  });

  test("POST /v1/imports: a CSV body, per-row errors", async () => {
    const csv = "name,email,mobile_number\nAsha,asha@imp.test,9123456780\n,nobody@imp.test,\nRavi,,\n";
    const res = await t.api("POST", "/v1/imports", csv, { headers: { "content-type": "text/csv" } });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.accepted, 1);
    assert.equal(res.body.rejectedCount, 2);
    assert.deepEqual(
      res.body.rejected.map((r: { row: number }) => r.row),
      [3, 4],
    );
    assert.ok(res.body.id);
    const empty = await t.api("POST", "/v1/imports", "", { headers: { "content-type": "text/csv" } });
    assert.equal(empty.body.rejected[0].error.code, "invalid_csv");
  });
});
