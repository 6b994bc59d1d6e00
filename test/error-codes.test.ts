// The error codes and statuses have one home (src/domain/): the README's table and the dashboard's
// status list are generated from it, and every code written in the source is listed there.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { between, README, renderCodes, renderWebStatuses, WEB_STATUSES } from "../scripts/docs-codes.ts";
import { CODE_FAMILIES } from "../src/domain/codes.ts";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    // The simulators speak the vendors' codes, not ours.
    if (e.isDirectory()) return e.name === "sandbox" ? [] : sourceFiles(path);
    return e.name.endsWith(".ts") ? [path] : [];
  });
}

void test("README's error-code table is the one generated from src/domain/codes.ts", () => {
  const inReadme = between(readFileSync(README, "utf8"));
  assert.ok(inReadme !== undefined, "README.md has the error-codes markers");
  assert.equal(inReadme, renderCodes(), "README.md is out of date: run npm run docs:codes");
});

void test("the dashboard's status list is the one generated from src/domain/status.ts", () => {
  assert.equal(readFileSync(WEB_STATUSES, "utf8"), renderWebStatuses(), "run npm run docs:codes");
});

void test("every code has a one-line meaning and belongs to one family only (http_NNN aside)", () => {
  const seen = new Map<string, string>();
  for (const f of CODE_FAMILIES) {
    for (const [code, meaning] of Object.entries(f.codes)) {
      assert.match(code, /^[a-z][a-z0-9_]*$/i, `${code}: snake_case`);
      assert.ok(meaning.length > 10 && !meaning.includes("\n"), `${code}: one line`);
      // internal_error and lead_erased are both an API answer and a delivery's code, with one meaning each.
      if (seen.has(code) && !["http_NNN", "internal_error", "lead_erased"].includes(code))
        assert.fail(`${code} is in both ${seen.get(code)} and ${f.title}`);
      seen.set(code, f.title);
    }
  }
});

void test("every code literal in src/ is listed in src/domain/codes.ts", () => {
  const listed = new Set(CODE_FAMILIES.flatMap((f) => Object.keys(f.codes)));
  const patterns = [
    /\bcode: *"([a-z][a-z0-9_]*)"/g,
    /\b(?:AppError|sendError|errorPage)\([^"()]{0,40}?"([a-z][a-z0-9_]*)"/g,
    /\breadonly code = "([a-z][a-z0-9_]*)"/g,
  ];
  const found = new Map<string, string>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, "utf8");
    for (const re of patterns) for (const m of text.matchAll(re)) found.set(m[1]!, file.slice(SRC.length));
  }
  assert.ok(found.size > 40, `the scan finds the codes (${found.size})`);
  const unlisted = [...found].filter(([code]) => !listed.has(code));
  assert.deepEqual(unlisted, [], "codes used in src/ but missing from src/domain/codes.ts");
});
