// Destinations in the browser (issue 15), against the sandbox: a csrf destination is created from
// the schema-generated form, tested with a wrong password (the failure shows), fixed, tested again
// (the redacted request shows, the password never does), saved, paused and resumed; another one is
// deleted after a confirmation that says what happens to its waiting delivery.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Page } from "playwright-core";
import { SANDBOX_ACCOUNTS as A } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { openBrowser, screenshots } from "./helpers/browser.ts";
import { ADMIN_TOKEN, eventually, startApp, type TestApp } from "./helpers/harness.ts";

const WRONG = "wrong-pass-7391";

describe("destinations in the dashboard (real browser)", () => {
  let t: TestApp;
  let sb: Awaited<ReturnType<typeof startSandbox>>;
  let page: Page;
  let pageErrors: string[] = [];
  let closeBrowser: (() => Promise<void>) | undefined;
  const shot = screenshots("dest-ui", () => page);

  before(async () => {
    sb = await startSandbox();
    t = await startApp();
    ({ page, pageErrors, close: closeBrowser } = await openBrowser());
  });
  after(async () => {
    await closeBrowser?.();
    await t?.close();
    await sb?.close();
  });

  test("create a csrf destination from the form, test it, fix it, save, pause, resume, delete another", async () => {
    // A paused destination with one lead waiting: deleting it must say what happens to that lead.
    const old = await t.api("POST", "/v1/destinations", {
      name: "old-crm",
      connector: "http",
      url: `${sb.url}/sink/old`,
      paused: true,
    });
    assert.equal(old.status, 201, old.text);
    const lead = await t.api("POST", "/v1/leads", { name: "Waiting", email: "waiting@dest-ui.test" });
    assert.equal(lead.status, 201, lead.text);

    await page.goto(`${t.url}/dashboard`);
    await page.fill("#key", ADMIN_TOKEN);
    await page.click("#login button[type=submit]");
    await page.click("nav a[data-view=destinations]");
    await page.locator("tr[data-destination=old-crm]", { hasText: "paused" }).waitFor();
    await page.click("text=New destination");
    await page.locator("h1", { hasText: "New destination" }).waitFor();

    // Connector, then auth type: exactly that type's fields.
    await page.fill('[data-path="name"] input', "crm-csrf");
    await page.selectOption("#dest-connector", "http");
    await page.fill('[data-path="url"] input', `${sb.url}/csrf/leads`);
    await page.selectOption("#dest-auth-type", "csrf");
    const authFields = await page
      .locator('.field[data-path^="auth."]')
      .evaluateAll((els) => els.map((e) => e.getAttribute("data-path")));
    assert.deepEqual(authFields, [
      "auth.type",
      "auth.tokenUrl",
      "auth.username",
      "auth.password",
      "auth.ttlSeconds",
    ]);
    assert.match(
      await page.locator('[data-path="auth.tokenUrl"] .help').innerText(),
      /CSRF token is fetched/,
    );
    assert.equal(await page.getAttribute('[data-path="auth.password"] input', "type"), "password");

    // A bad token URL: the API's 400 shows next to that field.
    await page.fill('[data-path="auth.tokenUrl"] input', "not a url");
    await page.fill('[data-path="auth.username"] input', A.csrf.username);
    await page.fill('[data-path="auth.password"] input', WRONG);
    await page.click("button[data-action=test]");
    await page.locator('[data-path="auth.tokenUrl"] .field-error', { hasText: /url/i }).waitFor();
    assert.equal(await page.getAttribute('[data-path="auth.tokenUrl"] input', "aria-invalid"), "true");
    assert.equal(await page.locator('[data-path="auth.username"] .field-error').innerText(), "");
    await shot("field-error");
    await page.fill('[data-path="auth.tokenUrl"] input', `${sb.url}/csrf/token`);

    // The filter editor: a syntax error with its position, then the result as typed.
    await page.fill('[data-path="filter"] textarea', 'city = "Bengaluru');
    await page.locator('.preview[data-state="error"] [data-preview-error]').waitFor();
    assert.match(await page.locator('[data-path="filter"] .caret').innerText(), /\^ position \d+/);
    await shot("filter-error");
    await page.fill('[data-path="filter"] textarea', 'city = "Bengaluru"');
    await page
      .locator('[data-path="filter"] .preview[data-state="ok"]', { hasText: "would be sent" })
      .waitFor();
    // A real recent lead instead of the sample: it has no city, so the filter leaves it out.
    await page.selectOption("select[aria-label='Lead for previews and tests']", lead.body.id);
    await page.locator('[data-path="filter"] .preview', { hasText: "would be filtered out" }).waitFor();
    await page.selectOption("select[aria-label='Lead for previews and tests']", "");
    await page.locator('[data-path="filter"] .preview', { hasText: "would be sent" }).waitFor();
    // The mapping, one expression per field, on the sample lead.
    await page.selectOption("select[aria-label=Mapping]", "fields");
    await page.fill(".map-row input[aria-label=Expression]", 'name & " " & lastName');
    await page
      .locator('[data-path="mapping"] [data-preview-result]', { hasText: '"email": "Asha Rao"' })
      .waitFor();
    await page.fill(".map-row input[aria-label='Payload field']", "fullName");
    await page
      .locator('[data-path="mapping"] [data-preview-result]', { hasText: '"fullName": "Asha Rao"' })
      .waitFor();

    // Test with the wrong password: the sign-in really fails, and says so.
    await page.click("button[data-action=test]");
    await page
      .locator('[data-test-result="auth_failed"] [data-auth=failed]', { hasText: "auth_rejected" })
      .waitFor();
    await shot("test-wrong-password");
    assert.equal(sb.csrf.state.leads.length, 0);

    // Fixed: the sign-in works and the redacted request that would be sent shows.
    await page.fill('[data-path="auth.password"] input', A.csrf.password);
    await page.click("button[data-action=test]");
    await page.locator('[data-test-result="ok"] [data-outcome=dry_run]').waitFor();
    const push = page.locator('.exchange[data-step^="push"]');
    assert.match(
      await push.locator("[data-part=request-headers]").innerText(),
      /x-csrf-token\s+\[redacted\]/,
    );
    assert.match(await push.locator("[data-part=request-body]").innerText(), /"fullName": "Asha Rao"/);
    assert.doesNotMatch(await page.content(), new RegExp(A.csrf.password));
    assert.equal(sb.csrf.state.leads.length, 0, "a test does not send");
    assert.equal((await t.api("GET", "/v1/destinations/crm-csrf")).status, 404, "not saved by a test");
    await shot("test-ok");

    // Save: the destination's page, its password set and never shown.
    await page.click("button[data-action=save]");
    await page.locator(".dest-head h1", { hasText: "crm-csrf" }).waitFor();
    assert.match(page.url(), /#\/destinations\/[^/]+$/);
    assert.equal(await page.locator('[data-path="auth.password"] [data-secret-state]').innerText(), "set");
    assert.equal(await page.locator('[data-path="auth.password"] input').isHidden(), true);
    assert.doesNotMatch(await page.content(), new RegExp(A.csrf.password));
    const saved = (await t.api("GET", "/v1/destinations/crm-csrf")).body;
    assert.equal(saved.filter, 'city = "Bengaluru"');
    assert.deepEqual(saved.mapping, { fullName: 'name & " " & lastName' });
    await shot("saved");

    // The saved form: Send test lead really sends it and shows the vendor's answer.
    await page.click("button[data-action=send]");
    await page.locator("[data-outcome=delivered]").waitFor();
    assert.equal(sb.csrf.state.leads.length, 1);
    assert.equal(
      (await t.api("GET", "/v1/deliveries")).body.data.length,
      1,
      "only the waiting lead's delivery",
    );
    // A replaced password is tested before it is saved; kept again, the stored one is used.
    await page.click('[data-path="auth.password"] button');
    await page.fill('[data-path="auth.password"] input', WRONG);
    await page.click("button[data-action=test]");
    await page.locator("[data-auth=failed]", { hasText: "auth_rejected" }).waitFor();
    await page.click('[data-path="auth.password"] button');
    await page.click("button[data-action=test]");
    await page.locator("[data-auth=ok]").waitFor();
    assert.doesNotMatch(await page.content(), new RegExp(`${A.csrf.password}|${WRONG}`));
    assert.equal((await t.api("GET", "/v1/destinations/crm-csrf")).body.state, "active");

    // Disable and enable, pause and resume.
    await page.click("button[data-action=disable]");
    await page.locator('.dest-head[data-state="disabled"]').waitFor();
    assert.equal((await t.api("GET", "/v1/destinations/crm-csrf")).body.enabled, false);
    await page.click("button[data-action=enable]");
    await page.locator('.dest-head[data-state="active"]').waitFor();
    await page.click("button[data-action=pause]");
    await page.locator('.dest-head[data-state="paused"]').waitFor();
    assert.equal((await t.api("GET", "/v1/destinations/crm-csrf")).body.paused, true);
    await shot("paused");
    await page.click("button[data-action=resume]");
    await page.locator('.dest-head[data-state="active"]').waitFor();
    assert.equal((await t.api("GET", "/v1/destinations/crm-csrf")).body.paused, false);

    // Delete the other one: the confirmation says what happens to its waiting delivery.
    await page.click("nav a[data-view=destinations]");
    await page.click("tr[data-destination=old-crm] a");
    await page.locator(".dest-head h1", { hasText: "old-crm" }).waitFor();
    let asked = "";
    page.once("dialog", (d) => {
      asked = d.message();
      void d.accept();
    });
    await page.click("button[data-action=delete]");
    await page.locator("#banner", { hasText: "old-crm deleted" }).waitFor();
    assert.match(asked, /1 waiting deliveries .* fail with destination_deleted/);
    await page.locator("tr[data-destination=crm-csrf]").waitFor();
    assert.equal(await page.locator("tr[data-destination=old-crm]").count(), 0);
    await eventually(
      async () => {
        const d = (await t.api("GET", `/v1/deliveries?leadId=${lead.body.id}`)).body.data;
        return d.some(
          (x: { status: string; lastError: { code: string } | null }) =>
            x.lastError?.code === "destination_deleted",
        );
      },
      10_000,
      "the waiting delivery failed as destination_deleted",
    );
    await shot("deleted");
    assert.deepEqual(pageErrors, []);
  });
});
