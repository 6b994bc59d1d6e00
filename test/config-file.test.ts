import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { applyConfigFile } from "../src/app.ts";
import { ConfigFileError, loadConfigFile } from "../src/config-file.ts";
import { startApp, type TestApp } from "./helpers/harness.ts";

const dir = mkdtempSync(join(tmpdir(), "leadpush-config-"));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe("leadpush.config.yaml", () => {
  let t: TestApp;
  before(async () => {
    t = await startApp({ worker: false });
  });
  after(async () => t.close());

  test("a missing file is fine: nothing to apply", () => {
    assert.equal(loadConfigFile(join(dir, "absent.yaml")), undefined);
  });

  const bad: [string, string, RegExp][] = [
    ["not YAML", "destinations: [\n  - name: x\n  bad", /not valid YAML/],
    ["unknown top-level key", "destinatons: []\n", /\(top level\).*destinatons/],
    [
      "unknown connector, with its line",
      "destinations:\n  - name: crm\n    connector: htp\n    url: https://crm.example.com/leads\n",
      /bad\.yaml:3: destinations\[0\]\.connector: expected one of: http/,
    ],
    [
      "wrong auth field type",
      "destinations:\n  - name: crm\n    connector: http\n    url: https://crm.example.com\n    auth:\n      type: basic\n      username: u\n      password: 42\n",
      /bad\.yaml:8: destinations\[0\]\.auth\.password: .*string/,
    ],
    [
      "missing env var",
      "destinations:\n  - name: crm\n    connector: http\n    url: ${CRM_URL}\n",
      /:4: destinations\[0\]\.url: environment variable CRM_URL is not set/,
    ],
    [
      "a name declared twice",
      "destinations:\n  - {name: a, connector: http, url: 'https://a.example'}\n  - {name: a, connector: http, url: 'https://b.example'}\n",
      /declared twice/,
    ],
    ["an API key without a key", "apiKeys:\n  - name: web\n    scopes: [ingest]\n", /apiKeys\[0\]\.key/],
  ];
  for (const [what, text, expected] of bad) {
    test(`rejects ${what}`, () => {
      const p = file("bad.yaml", text);
      assert.throws(
        () => loadConfigFile(p, {}),
        (err: unknown) => {
          assert.ok(err instanceof ConfigFileError);
          assert.match(err.message, expected);
          assert.ok(err.message.includes(p), "names the file");
          return true;
        },
      );
    });
  }

  test("applies destinations and keys by name, with ${ENV} interpolation, twice without duplicates", async () => {
    const p = file(
      "good.yaml",
      [
        "destinations:",
        "  - name: crm",
        "    connector: http",
        "    url: ${CRM_URL}",
        "    auth: {type: basic, username: crm, password: '${CRM_PASSWORD}'}",
        "    timeoutMs: ${CRM_TIMEOUT:-5000}",
        "apiKeys:",
        "  - name: website",
        "    scopes: [ingest]",
        "    key: ${WEBSITE_KEY}",
      ].join("\n"),
    );
    const env = {
      CRM_URL: "https://crm.example.com/leads",
      CRM_PASSWORD: "pa55-from-env",
      WEBSITE_KEY: "website-key-0123456789",
    };
    const cfg = loadConfigFile(p, env)!;
    await applyConfigFile(t.app, cfg);
    await applyConfigFile(t.app, loadConfigFile(p, { ...env, CRM_URL: "https://crm2.example.com/leads" })!);
    const list = await t.api("GET", "/v1/destinations");
    assert.equal(list.body.data.length, 1);
    assert.equal(list.body.data[0].url, "https://crm2.example.com/leads");
    assert.equal(list.body.data[0].timeoutMs, 5000);
    assert.equal(list.body.data[0].auth.password, "[redacted]");
    const ingest = await t.api(
      "POST",
      "/v1/leads",
      { name: "K", email: "k@cfg.test" },
      { key: "website-key-0123456789" },
    );
    assert.equal(ingest.status, 201);
    assert.equal(
      (await t.api("GET", "/v1/destinations", undefined, { key: "website-key-0123456789" })).status,
      403,
    );
  });
});
