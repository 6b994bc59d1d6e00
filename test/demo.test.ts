import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { test } from "node:test";
import { freePort } from "./helpers/harness.ts";
import { SAMPLE_LEADS } from "../src/commands/demo-leads.ts";
import { DEMO_DESTINATIONS } from "../src/commands/demo.ts";

const run = promisify(execFile);

test(
  "npm run demo -- --once: every sample lead reaches every seed system",
  { timeout: 150_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "leadpush-demo-"));
    try {
      const { stdout } = await run(
        process.execPath,
        [
          "src/cli.ts",
          "demo",
          "--once",
          "--timeout",
          "120",
          "--port",
          String(await freePort()),
          "--sandbox-port",
          String(await freePort()),
          "--data-dir",
          join(dir, "data"),
        ],
        { timeout: 140_000 },
      );
      assert.match(stdout, /every sample lead reached every destination/);
      // The demo's data directory holds leads and a master key: owner-only, as `serve`'s is.
      assert.equal((statSync(join(dir, "data")).mode & 0o777).toString(8), "700");
      assert.doesNotMatch(stdout, /not available in this build/, "every seed system has its connector");
      assert.match(
        stdout,
        /Ejento's agent on Asha: "Lead qualification/,
        "the agent's answer reached the lead",
      );
      assert.match(
        stdout,
        /CRM after Reworked received: \{.*"company":"[^"]+"/,
        "the downstream push carries Reworked's columns",
      );
      const table = stdout.split("\n").filter((l) => /^\S+\s+\d+\s+\d+/.test(l));
      const names = DEMO_DESTINATIONS.map((d) => d.body("http://x").name as string);
      for (const name of names) {
        const row = table.find((l) => l.startsWith(name + " "));
        assert.ok(row, `a row for ${name}:\n${stdout}`);
        assert.equal(Number(row.split(/\s+/)[1]), SAMPLE_LEADS.length, row);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
