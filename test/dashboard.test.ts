import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Page } from "playwright-core";
import { startSandbox } from "../src/sandbox/server.ts";
import { openBrowser } from "./helpers/browser.ts";
import { ADMIN_TOKEN, eventually, startApp, type TestApp } from "./helpers/harness.ts";

const INJECTED = `<img src=x onerror="window.__pwned=1">Mallory`;

describe("dashboard (real browser)", () => {
  let t: TestApp;
  let ok: Awaited<ReturnType<typeof startSandbox>>;
  let bad: Awaited<ReturnType<typeof startSandbox>>;
  let page: Page;
  let pageErrors: string[] = [];
  let closeBrowser: (() => Promise<void>) | undefined;
  let appClosed = false;

  before(async () => {
    ok = await startSandbox();
    bad = await startSandbox();
    t = await startApp();
    ({ page, pageErrors, close: closeBrowser } = await openBrowser());
  });
  after(async () => {
    await closeBrowser?.();
    if (t && !appClosed) await t.close();
    await ok?.close();
    await bad?.close();
  });

  test("static files: / redirects, strict CSP, unknown files 404", async () => {
    const root = await fetch(`${t.url}/`, { redirect: "manual" });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get("location"), "/dashboard");
    const html = await fetch(`${t.url}/dashboard`);
    assert.equal(html.status, 200);
    assert.match(html.headers.get("content-type") ?? "", /text\/html/);
    assert.match(html.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    const js = await fetch(`${t.url}/dashboard/app.js`);
    assert.match(js.headers.get("content-type") ?? "", /javascript/);
    assert.equal((await fetch(`${t.url}/dashboard/nope.js`)).status, 404);
    assert.equal((await fetch(`${t.url}/dashboard/..%2Fpackage.json`)).status, 404);
    const spec = await t.api("GET", "/openapi.json");
    assert.equal(spec.body.paths["/dashboard"], undefined, "not in the API docs");
  });

  test("log in, overview counts, filter, attempts, retry, escaping, server down", async () => {
    const dest = async (name: string, url: string) => {
      const r = await t.api("POST", "/v1/destinations", {
        name,
        connector: "http",
        url: `${url}/sink/leads`,
        auth: { type: "basic", username: "leadpush", password: "very-secret-password" },
        retry: { delaysMs: [100], jitter: 0 },
      });
      assert.equal(r.status, 201, r.text);
    };
    bad.sink.behave({ status: 400 });
    await dest("crm-bad", bad.url);
    await dest("crm-ok", ok.url);
    // Gets none of the leads: each lead's page says why.
    const mumbai = await t.api("POST", "/v1/destinations", {
      name: "crm-mumbai",
      connector: "http",
      url: `${ok.url}/sink/mumbai`,
      filter: `city = "Mumbai"`,
    });
    assert.equal(mumbai.status, 201, mumbai.text);
    for (const [name, email] of [
      ["Asha", "asha@dash.test"],
      [INJECTED, "mallory@dash.test"],
      ["Kiran", "kiran@dash.test"],
    ]) {
      const r = await t.api("POST", "/v1/leads", { name, email, city: "Pune" });
      assert.equal(r.status, 201, r.text);
    }
    await eventually(async () => {
      const s = (await t.api("GET", "/v1/stats")).body;
      return s.deliveries.delivered === 3 && s.deliveries.failed === 3;
    });

    // The key: a wrong one is refused with a clear message; it never appears in the URL.
    await page.goto(`${t.url}/`);
    assert.match(page.url(), /\/dashboard$/);
    await page.fill("#key", "wrong-key");
    await page.click("#login button[type=submit]");
    await page.locator("#login-error", { hasText: "401" }).waitFor();
    await page.fill("#key", ADMIN_TOKEN);
    await page.click("#login button[type=submit]");

    // Overview: counts by status, destinations with connector, auth, state and counts.
    await page.locator("[data-count=failed] .n", { hasText: "3" }).waitFor();
    assert.equal(await page.textContent("[data-count=delivered] .n"), "3");
    assert.equal(await page.textContent("[data-count=pending] .n"), "0");
    const badRow = page.locator("tr[data-destination=crm-bad]");
    assert.match((await badRow.textContent()) ?? "", /crm-bad\s*http\s*basic\s*active/);
    assert.match(await page.locator("main").innerText(), /Replay failed \(3\)/);
    assert.doesNotMatch(await page.content(), /very-secret-password/);
    assert.doesNotMatch(page.url(), new RegExp(ADMIN_TOKEN));
    await page.screenshot({ path: join(tmpdir(), "leadpush-dashboard-overview.png"), fullPage: true });

    // Deliveries: filter by failed, expand one to its attempts.
    await page.click("nav a[data-view=deliveries]");
    await page.selectOption("select[aria-label=Status]", "failed");
    await eventually(
      async () => (await page.locator("tr[data-delivery]").count()) === 3,
      10_000,
      "3 failed rows",
    );
    assert.equal(await page.locator("tr[data-delivery][data-status=failed]").count(), 3);
    const first = page.locator("tr[data-delivery]").first();
    const deliveryId = await first.getAttribute("data-delivery");
    assert.ok(deliveryId);
    await first.locator("button.toggle").click();
    const attempt = page.locator("tr.detail tr[data-attempt='1']");
    await attempt.waitFor();
    assert.equal((await attempt.locator(".response-status").textContent())?.trim(), "400");
    assert.match((await attempt.textContent()) ?? "", /POST http:\/\/127\.0\.0\.1:\d+\/sink\/leads/);
    assert.match((await attempt.textContent()) ?? "", /told to answer 400/);
    assert.match((await attempt.textContent()) ?? "", /http_400/);
    await page.screenshot({ path: join(tmpdir(), "leadpush-dashboard-deliveries.png"), fullPage: true });

    // Retry after the client is fixed: the delivery becomes delivered.
    bad.sink.behave({ times: 0 });
    await first.getByRole("button", { name: "Retry" }).click();
    await page.selectOption("select[aria-label=Status]", "");
    const row = page.locator(`tr[data-delivery="${deliveryId}"]`);
    await page
      .locator(`tr[data-delivery="${deliveryId}"][data-status=delivered]`)
      .waitFor({ timeout: 15_000 });
    assert.match((await row.textContent()) ?? "", /delivered/);
    await page.locator("tr.detail tr[data-attempt='2'] .response-status", { hasText: "201" }).waitFor();
    assert.equal(bad.sink.counts.ok, 1);

    // Leads: search, and the injected name is text, not markup.
    await page.click("nav a[data-view=leads]");
    await page.fill("input[type=search]", "mallory");
    await page.locator("tr[data-lead]").first().waitFor();
    await eventually(
      async () => (await page.locator("tr[data-lead]").count()) === 1,
      10_000,
      "one lead found",
    );
    assert.equal((await page.locator("tr[data-lead] .lead-name a").textContent())?.trim(), INJECTED);
    assert.equal(await page.locator("main img").count(), 0, "no element created from the name");
    await page.click("tr[data-lead] .lead-name a");
    await page.locator("h1.lead-name").waitFor();
    assert.equal(await page.textContent("h1.lead-name"), INJECTED);
    assert.equal(await page.locator("main img").count(), 0);
    assert.equal(await page.locator("tr[data-delivery]").count(), 2, "the lead's two deliveries");
    const routing = page.locator("tr[data-routing=crm-mumbai]");
    assert.equal(await routing.getAttribute("data-decision"), "filtered");
    assert.match((await routing.textContent()) ?? "", /filtered.*city = "Mumbai"/);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
    await page.screenshot({ path: join(tmpdir(), "leadpush-dashboard-lead.png"), fullPage: true });
    assert.deepEqual(pageErrors, []);

    // The server goes away: a clear message, not a blank page.
    await t.close();
    appClosed = true;
    await page.locator("#banner", { hasText: "Cannot reach leadpush" }).waitFor({ timeout: 15_000 });
    assert.equal(await page.textContent("h1.lead-name"), INJECTED, "the last data stays on screen");
  });
});
