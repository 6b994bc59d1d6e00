// Connect an oauth2_code destination from the dashboard: the Connect button gets a one-time ticket,
// the browser goes through the sandbox's simulated Cognito hosted UI and comes back to the
// dashboard, signed in still, where the destination shows `active`. The connect URL opened with no
// API key is a page that says what to do, not 401 JSON.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Page } from "playwright-core";
import { SANDBOX_ACCOUNTS } from "../src/sandbox/accounts.ts";
import { startSandbox } from "../src/sandbox/server.ts";
import { openBrowser, screenshots } from "./helpers/browser.ts";
import { createDestination, delivered, freePort, postLead } from "./helpers/connect.ts";
import { ADMIN_TOKEN, startApp, type TestApp } from "./helpers/harness.ts";

const E = SANDBOX_ACCOUNTS.eminence;

void describe("dashboard: Connect (real browser, simulated hosted UI)", () => {
  let sb: Awaited<ReturnType<typeof startSandbox>>;
  let t: TestApp;
  let publicUrl = "";
  let page: Page;
  let pageErrors: string[] = [];
  let closeBrowser: (() => Promise<void>) | undefined;
  const shot = screenshots("dashboard-connect", () => page);
  let dest: { id: string; name: string; state: string };

  before(async () => {
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    sb = await startSandbox({ redirectUris: [`${publicUrl}/v1/oauth/callback`] });
    t = await startApp({
      env: { PORT: String(port), LEADPUSH_PUBLIC_URL: publicUrl, LEADPUSH_DUPLICATE_WINDOW_DAYS: "0" },
    });
    dest = await createDestination(t, {
      name: "eminence",
      connector: "eminence",
      url: `${sb.url}/eminence/leads`,
      auth: {
        type: "oauth2_code",
        authorizeUrl: `${sb.url}/hosted-ui/oauth2/authorize`,
        tokenUrl: `${sb.url}/hosted-ui/oauth2/token`,
        clientId: E.clientId,
        clientSecret: E.clientSecret,
      },
      options: { assistantId: 7 },
    });
    ({ page, pageErrors, close: closeBrowser } = await openBrowser());
  });
  after(async () => {
    await closeBrowser?.();
    await t?.close();
    await sb?.close();
  });

  void test("the connect URL with no API key is a page that says to use the dashboard", async () => {
    await page.goto(`${publicUrl}/v1/destinations/${dest.id}/connect`);
    await shot("connect-without-key");
    assert.equal(await page.locator("h1").textContent(), "Connect from the dashboard");
    assert.match(
      (await page.locator("body").textContent()) ?? "",
      /Sign in to the leadpush dashboard.*press Connect/,
    );
    const link = page.locator("#dashboard-link");
    assert.equal(await link.getAttribute("href"), `/dashboard#/destinations/${dest.id}`);
    // An API client that does not ask for HTML still gets the JSON error.
    const json = await fetch(`${publicUrl}/v1/destinations/${dest.id}/connect`, { redirect: "manual" });
    assert.equal(json.status, 401);
    assert.equal(((await json.json()) as { error: { code: string } }).error.code, "unauthorized");
  });

  void test("Connect in the dashboard: to the provider and back, signed in, the destination active", async () => {
    const leadId = await postLead(t, {
      name: "Asha",
      email: "asha-connect@example.com",
      phone: "+919123456780",
    });
    await page.goto(`${publicUrl}/dashboard`);
    await page.fill("#key", ADMIN_TOKEN);
    await page.press("#key", "Enter");
    const row = page.locator('tr[data-destination="eminence"]');
    await row.locator(".badge", { hasText: "needs_reconnect" }).waitFor();
    await shot("needs-reconnect");
    const button = row.locator('button[data-connect="eminence"]');
    assert.equal(await button.textContent(), "Connect");
    // The keyboard works: focus the button and press Enter.
    await button.focus();
    await Promise.all([
      page.waitForURL(/\/dashboard#\/destinations\/.*connected=1/),
      page.keyboard.press("Enter"),
    ]);
    assert.equal(sb.hostedUi.state.authorizationCodeGrants, 1, "the hosted UI issued a code");
    // Back in the dashboard, still signed in (the key is in the tab), on the destination's page,
    // which shows it active.
    await page.locator("#banner", { hasText: "Connected" }).waitFor();
    const head = page.locator(".dest-head");
    await head.locator("h1 .badge", { hasText: "active" }).waitFor();
    await shot("connected");
    assert.equal(await page.locator("#login").isHidden(), true);
    assert.equal(await head.locator('button[data-connect="eminence"]').textContent(), "Reconnect");
    const done = await delivered(t, leadId);
    assert.equal(done.attemptCount, 1);
    assert.deepEqual(pageErrors, []);
  });

  void test("a connect ticket is good once, for its destination only", async () => {
    const r = await t.api("POST", `/v1/destinations/${dest.id}/connect-ticket`);
    assert.equal(r.status, 201, r.text);
    const { url } = r.body as { url: string };
    assert.ok(url.startsWith(`${publicUrl}/v1/destinations/${dest.id}/connect?ticket=ct_`), url);
    const other = await createDestination(t, { name: "other", connector: "http", url: `${sb.url}/sink/x` });
    const wrong = await fetch(url.replace(dest.id, other.id), {
      redirect: "manual",
      headers: { accept: "text/html" },
    });
    assert.equal(wrong.status, 401, "a ticket for another destination is refused (and used up)");
    const reused = await fetch(url, { redirect: "manual", headers: { accept: "text/html" } });
    assert.equal(reused.status, 401);
    assert.match(await reused.text(), /already used or has expired[\s\S]*connect_ticket_invalid/);

    const fresh = (
      (await t.api("POST", `/v1/destinations/${dest.id}/connect-ticket`)).body as { url: string }
    ).url;
    const ticket = new URL(fresh).searchParams.get("ticket")!;
    // A ticket is no OAuth state: the callback refuses it (and it is used up there).
    const cb = await fetch(`${publicUrl}/v1/oauth/callback?state=${ticket}&code=x`, { redirect: "manual" });
    assert.equal(cb.status, 400);
    const go = await fetch(fresh, { redirect: "manual" });
    assert.equal(go.status, 401);

    const ok = ((await t.api("POST", `/v1/destinations/${dest.id}/connect-ticket`)).body as { url: string })
      .url;
    const start = await fetch(ok, { redirect: "manual" });
    assert.equal(start.status, 302);
    assert.ok(start.headers.get("location")!.startsWith(`${sb.url}/hosted-ui/oauth2/authorize?`));

    const notOauth = await t.api("POST", `/v1/destinations/${other.id}/connect-ticket`);
    assert.equal(notOauth.status, 400);
    assert.equal((notOauth.body as { error: { code: string } }).error.code, "connect_not_supported");
  });
});
