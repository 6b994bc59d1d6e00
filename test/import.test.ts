import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "csv-parse/sync";
import { after, before, describe, test } from "node:test";
import { ADMIN_TOKEN, BACKENDS, startApp, type TestApp } from "./helpers/harness.ts";

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

  test("POST /v1/imports: mixed CRLF and LF line endings, quoted fields, every row read", async () => {
    const csv =
      'name,email\r\nMixA,"mixa@imp.test"\nMixB,"mixb@imp.test"\r\n"Mix ""C""",mixc@imp.test\nMixD,mixd@imp.test\r\n';
    const res = await t.api("POST", "/v1/imports", csv, { headers: { "content-type": "text/csv" } });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.accepted, 4, res.text);
    assert.equal(res.body.rejectedCount, 0, res.text);
  });
});

// Rows are idempotent within an import, and a bad row is a rejected row (issue 12, item 6).
for (const backend of BACKENDS) {
  describe(`CSV import: bad rows and re-sends (${backend})`, () => {
    let t: TestApp;
    const dir = mkdtempSync(join(tmpdir(), "leadpush-import-"));
    before(async () => {
      t = await startApp({ backend, worker: false, env: { LOG_LEVEL: "warn" } });
    });
    after(async () => t.close());

    const csvHeaders = { "content-type": "text/csv" };
    const countLeads = async (source: string) => {
      const row = await t.app.kysely
        .selectFrom("leads")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("source", "=", source)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    };

    test("a NUL in row 1 100 is a rejected row; sending the file again stores nothing twice", async () => {
      const source = `nul-${backend}`;
      const lines = ["name,email,source"];
      for (let i = 1; i <= 1200; i++) {
        lines.push(i === 1100 ? `Nul\u0000Row,nul@imp.test,${source}` : `Row${i},row${i}@nul.test,${source}`);
      }
      const csv = lines.join("\n") + "\n";
      const first = await t.api("POST", "/v1/imports", csv, { headers: csvHeaders });
      assert.equal(first.status, 201, first.text.slice(0, 500));
      assert.equal(first.body.accepted, 1199);
      assert.equal(first.body.complete, true);
      assert.equal(first.body.rejected.length, 1);
      assert.equal(first.body.rejected[0].row, 1101); // the header is line 1
      assert.equal(first.body.rejected[0].error.details[0].code, "nul_character");
      const again = await t.api("POST", "/v1/imports", csv, { headers: csvHeaders });
      assert.equal(again.status, 201, again.text.slice(0, 500));
      assert.equal(again.body.accepted, 0);
      assert.equal(again.body.repeated, 1199);
      assert.equal(await countLeads(source), 1199);
      // The CLI derives the same kind of row keys: importing the same file creates nothing new.
      const file = join(dir, `nul-${backend}.csv`);
      writeFileSync(file, csv);
      const cli = await run(process.execPath, [
        "src/cli.ts",
        "import",
        file,
        "--url",
        t.url,
        "--key",
        ADMIN_TOKEN,
      ]);
      assert.match(cli.stdout, /0 accepted/);
      assert.match(cli.stdout, /1199 already imported before/);
      const cliAgain = await run(process.execPath, [
        "src/cli.ts",
        "import",
        file,
        "--url",
        t.url,
        "--key",
        ADMIN_TOKEN,
      ]);
      assert.match(cliAgain.stdout, /1199 already imported before/);
      assert.equal(await countLeads(source), 1199);
    });

    test("a row over 1 MB stops the import after the rows before it; the fixed file resumes", async () => {
      const source = `big-${backend}`;
      const row = (i: number, note = "short") => `Big${i},big${i}@imp.test,${source},${note}`;
      const lines = [
        "name,email,source,notes",
        row(1),
        row(2),
        row(3, "y".repeat(1_500_000)),
        row(4),
        row(5),
      ];
      const res = await t.api("POST", "/v1/imports", lines.join("\n") + "\n", { headers: csvHeaders });
      assert.equal(res.status, 201, res.text.slice(0, 500));
      assert.equal(res.body.complete, false);
      assert.equal(res.body.accepted, 2);
      assert.equal(res.body.rejected[0].error.code, "row_too_large");
      assert.equal(res.body.rejected[0].row, 4);
      assert.equal(await countLeads(source), 2);
      lines[3] = row(3);
      const fixed = await t.api("POST", "/v1/imports", lines.join("\n") + "\n", { headers: csvHeaders });
      assert.equal(fixed.body.complete, true);
      assert.equal(fixed.body.repeated, 2);
      assert.equal(fixed.body.accepted, 3);
      assert.equal(await countLeads(source), 5);
    });

    test("an import's Idempotency-Key is its identity, scoped to the API key", async () => {
      const source = `keyed-${backend}`;
      const csv = `name,email,source\nK1,k1@imp.test,${source}\nK2,k2@imp.test,${source}\n`;
      const send = (key: string, apiKey?: string) =>
        t.api("POST", "/v1/imports", csv, {
          headers: { ...csvHeaders, "idempotency-key": key },
          ...(apiKey ? { key: apiKey } : {}),
        });
      assert.equal((await send("file-7")).body.accepted, 2);
      assert.equal((await send("file-7")).body.repeated, 2);
      assert.equal((await send("file-8")).body.accepted, 2); // another import of the same rows
      const other = (await t.app.keys.create("other-source", ["ingest"])).key;
      assert.equal((await send("file-7", other)).body.accepted, 2);
      assert.equal(await countLeads(source), 6);
    });
  });
}
