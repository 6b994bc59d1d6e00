// The Keys view: create (shown once, copy button), list, revoke with a confirmation; revoking the
// key the dashboard is signed in with takes a clear warning and signs it out.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Dialog, Page } from "playwright-core";
import { openBrowser, screenshots } from "./helpers/browser.ts";
import { ADMIN_TOKEN, eventually, startApp, type TestApp } from "./helpers/harness.ts";

void describe("dashboard: API keys (real browser)", () => {
  let t: TestApp;
  let page: Page;
  let pageErrors: string[] = [];
  let closeBrowser: (() => Promise<void>) | undefined;
  let context: Awaited<ReturnType<typeof openBrowser>>["context"];
  const shot = screenshots("dashboard-keys", () => page);

  before(async () => {
    t = await startApp({ worker: false });
    ({ page, pageErrors, context, close: closeBrowser } = await openBrowser());
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: t.url });
  });
  after(async () => {
    await closeBrowser?.();
    await t?.close();
  });

  const ingest = (key: string) =>
    fetch(`${t.url}/v1/leads`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "Key", email: `key-${Math.random()}@example.com` }),
    });

  let created = "";
  void test("create a key: shown once with a copy button, then only its prefix", async () => {
    await page.goto(`${t.url}/dashboard#/keys`);
    await page.fill("#key", ADMIN_TOKEN);
    await page.press("#key", "Enter");
    await page.locator("h1", { hasText: "API keys" }).waitFor();
    await page.fill("#key-name", "website-form");
    await page.selectOption("#key-scope", "ingest");
    await page.press("#key-name", "Enter");
    const shown = page.locator("#new-key");
    await shown.waitFor();
    created = await shown.inputValue();
    assert.match(created, /^lp_[A-Za-z0-9_-]{32}$/);
    await page.locator("#copy-key").click();
    await page.locator("#copy-key", { hasText: "Copied" }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), created);
    const row = page.locator('tr[data-key="website-form"]');
    await row.waitFor();
    await shot("created");
    assert.match((await row.textContent()) ?? "", new RegExp(`${created.slice(0, 7)}…`));
    assert.match((await row.textContent()) ?? "", /ingest.*never.*active/);
    assert.equal((await ingest(created)).status, 201);
    // Its use is recorded (at most once a minute per process) and shown.
    await eventually(async () => {
      const { body } = await t.api("GET", "/v1/keys");
      return (body as { data: { name: string; lastUsedAt: string | null }[] }).data.find(
        (k) => k.name === "website-form" && k.lastUsedAt !== null,
      );
    });
    await row.locator("td", { hasText: "never" }).waitFor({ state: "detached" });

    // Done: the key is gone from the page for good; the list never shows it.
    await page.getByRole("button", { name: "Done" }).click();
    assert.equal(await page.locator("#new-key").count(), 0);
    assert.ok(!(await page.content()).includes(created), "the key is nowhere on the page");
    const list = await t.api("GET", "/v1/keys");
    assert.ok(!JSON.stringify(list.body).includes(created));
  });

  void test("revoke with a confirmation: refused at once", async () => {
    const messages: string[] = [];
    const dismissFirst = (d: Dialog) => {
      messages.push(d.message());
      void (messages.length === 1 ? d.dismiss() : d.accept());
    };
    page.on("dialog", dismissFirst);
    const row = page.locator('tr[data-key="website-form"]');
    await row.locator("button[data-revoke]").click();
    assert.equal((await ingest(created)).status, 201, "dismissed: nothing revoked");
    await row.locator("button[data-revoke]").click();
    await row.locator(".badge", { hasText: "revoked" }).waitFor();
    page.off("dialog", dismissFirst);
    await shot("revoked");
    assert.match(messages[0]!, /Revoke the key "website-form"/);
    assert.equal((await ingest(created)).status, 401, "refused at once");
    await page.locator("#banner", { hasText: "was revoked" }).waitFor();
  });

  void test("the key you are signed in with: marked, and revoking it warns and signs out", async () => {
    const own = await t.api("POST", "/v1/keys", { name: "my-admin", scopes: ["admin"] });
    assert.equal(own.status, 201, own.text);
    const ownKey = (own.body as { key: string }).key;
    await page.locator("#logout").click();
    await page.fill("#key", ownKey);
    await page.press("#key", "Enter");
    await page.goto(`${t.url}/dashboard#/keys`);
    const row = page.locator('tr[data-key="my-admin"]');
    await row.locator(".b-you").waitFor();
    await shot("signed-in-with-own-key");
    const messages: string[] = [];
    const handler = (d: Dialog) => {
      messages.push(d.message());
      void d.accept();
    };
    page.on("dialog", handler);
    await row.locator("button[data-revoke]").click();
    await page.locator("#login").waitFor({ state: "visible" });
    page.off("dialog", handler);
    await shot("signed-out");
    assert.match(messages[0]!, /the key you are signed in with/);
    assert.match(messages[0]!, /signs this dashboard out/);
    assert.match(
      (await page.locator("#login-error").textContent()) ?? "",
      /You revoked the key you were signed in with/,
    );
    const res = await fetch(`${t.url}/v1/stats`, { headers: { authorization: `Bearer ${ownKey}` } });
    assert.equal(res.status, 401);
    assert.deepEqual(pageErrors, []);
  });
});
